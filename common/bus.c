/*
 * Presence bus implementation.  Sockets: one PUB (own events), one SUB
 * (everyone else's), one ROUTER (serves snapshots) and one DEALER per
 * other worker (requests them).  Messages are encoded and decoded in
 * common/bus_wire.c.  Every ZeroMQ call is non-blocking; a full PUB
 * queue drops, and subscribers notice the gap and resync.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "common/bus.h"
#include "common/bus_wire.h"
#include "common/log.h"
#include "derp/wire.h"

#define PENDING_MAX	65536
#define SYNC_RETRY_MS	1000

/* SYNCING: a snapshot is on its way, deltas wait in pending.
 * REPLAYING: it ended; the waiting deltas (and any that arrive
 * meanwhile, behind them) are applied BUS_REPLAY_STEP per
 * bus_process() call; sync_end (the sweep) comes after the last. */
enum sync_state { S_UNSYNCED, S_SYNCING, S_REPLAYING, S_SYNCED };

/* A snapshot being served to one requester, over as many loop turns as
 * its owner takes (bus_snapshot_add): its END carries the sequence
 * number of the moment it began, so the requester replays every delta
 * published since, whatever the walk saw of them. */
struct serve {
	bool		 active;
	uint32_t	 req;
	uint64_t	 seq0;
};

struct pubstate {
	enum sync_state	 state;
	bool		 began;		/* sync_begin called for this sync */
	bool		 ever;
	uint64_t	 epoch, seq;
	uint64_t	 asked_ms;	/* request sent, or its last reply */
	uint32_t	 req;		/* the request being answered */
	struct bus_msg	*pending;	/* ring of PENDING_MAX, lazily */
	size_t		 phead, npending;
	void		*dealer;
};

struct bus {
	void			*ctx, *pub, *sub, *router;
	int			 self, n;
	uint64_t		 epoch, seq;
	struct bus_callbacks	 cb;
	struct pubstate		*ps;		/* per worker */
	struct serve		*sv;		/* per requester */
	struct bus_stats	 st;
	uint8_t			*tbuf;		/* traffic reply, lazily */
	uint8_t			*batch;		/* deltas not yet sent */
	size_t			 blen;
	unsigned		 bn;
	bool			 all;		/* next process: every socket */
	int			 rr;		/* next replay starts here */
};

static uint64_t
mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The routing id of worker w's dealers: a ROUTER answers a request by
 * it, whenever the answer is ready (not only inside the request's
 * callback).  ZeroMQ reserves ids that begin with a zero byte. */
static size_t
routing_id(uint8_t id[3], int w)
{
	id[0] = 'w';
	id[1] = (uint8_t)(w >> 8);
	id[2] = (uint8_t)w;
	return 3;
}

static void
endpoint(char *out, size_t cap, const char *dir, const char *kind, int id)
{
	snprintf(out, cap, "ipc://%s/%s-%d", dir, kind, id);
}

void
bus_cleanup_dir(const char *dir, int n)
{
	char	ep[4200];
	int	i;

	for (i = 0; i < n; i++) {
		endpoint(ep, sizeof(ep), dir, "pub", i);
		(void)unlink(ep + 6);
		endpoint(ep, sizeof(ep), dir, "snap", i);
		(void)unlink(ep + 6);
	}
}

/* ---- setup ---- */

static void *
sock(struct bus *b, int type, const char *ep, bool bind)
{
	void	*s = zmq_socket(b->ctx, type);
	int	 hwm = 1000000, zero = 0;

	if (s == NULL)
		return NULL;
	(void)zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	(void)zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	(void)zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (ep != NULL && (bind ? zmq_bind(s, ep) : zmq_connect(s, ep)) != 0) {
		zmq_close(s);
		return NULL;
	}
	return s;
}

struct bus *
bus_open(const char *dir, int self, int n, const struct bus_callbacks *cb)
{
	struct bus	*b;
	char		 ep[4200];
	uint8_t		 id[3];
	size_t		 idlen = routing_id(id, self);
	int		 i, one = 1;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->self = self;
	b->n = n;
	if (cb != NULL)
		b->cb = *cb;
	randombytes_buf(&b->epoch, sizeof(b->epoch));
	if ((b->ctx = zmq_ctx_new()) == NULL)
		goto fail;
	endpoint(ep, sizeof(ep), dir, "pub", self);
	(void)unlink(ep + 6);
	if ((b->pub = sock(b, ZMQ_PUB, ep, true)) == NULL)
		goto fail;
	if ((b->ps = calloc((size_t)n, sizeof(*b->ps))) == NULL)
		goto fail;
	if ((b->sv = calloc((size_t)n, sizeof(*b->sv))) == NULL)
		goto fail;
	/* Request numbers differ between incarnations: a reply meant for
	 * a dead predecessor (same routing id) is not taken as ours.  A
	 * snapshot still being served to one finishes unread (ZeroMQ drops
	 * what is routed to no one); the successor's request replaces it. */
	for (i = 0; i < n; i++)
		randombytes_buf(&b->ps[i].req, sizeof(b->ps[i].req));
	endpoint(ep, sizeof(ep), dir, "snap", self);
	(void)unlink(ep + 6);
	if ((b->router = sock(b, ZMQ_ROUTER, ep, true)) == NULL ||
	    /* A respawned sibling's dealer takes its id over at once. */
	    zmq_setsockopt(b->router, ZMQ_ROUTER_HANDOVER, &one,
	    sizeof(one)) != 0 ||
	    (b->sub = sock(b, ZMQ_SUB, NULL, false)) == NULL ||
	    zmq_setsockopt(b->sub, ZMQ_SUBSCRIBE, "", 0) != 0)
		goto fail;
	for (i = 0; i < n; i++) {
		if (i == self)
			continue;
		endpoint(ep, sizeof(ep), dir, "pub", i);
		if (zmq_connect(b->sub, ep) != 0)
			goto fail;
		endpoint(ep, sizeof(ep), dir, "snap", i);
		if ((b->ps[i].dealer = sock(b, ZMQ_DEALER, NULL, false)) ==
		    NULL || zmq_setsockopt(b->ps[i].dealer, ZMQ_ROUTING_ID, id,
		    idlen) != 0 || zmq_connect(b->ps[i].dealer, ep) != 0)
			goto fail;
	}
	return b;
fail:
	bus_close(b);
	errno = errno ? errno : EIO;
	return NULL;
}

void
bus_close(struct bus *b)
{
	int	i;

	if (b == NULL)
		return;
	for (i = 0; b->ps != NULL && i < b->n; i++) {
		if (b->ps[i].dealer != NULL)
			zmq_close(b->ps[i].dealer);
		free(b->ps[i].pending);
	}
	free(b->ps);
	free(b->sv);
	if (b->pub != NULL)
		(void)bus_flush(b);
	free(b->batch);
	free(b->tbuf);
	if (b->pub != NULL)
		zmq_close(b->pub);
	if (b->sub != NULL)
		zmq_close(b->sub);
	if (b->router != NULL)
		zmq_close(b->router);
	if (b->ctx != NULL)
		zmq_ctx_term(b->ctx);
	free(b);
}

int
bus_fds(struct bus *b, int *fds, int max)
{
	void	*socks[3] = { b->sub, b->router, NULL };
	size_t	 sl;
	int	 k = 0, i, fd;

	for (i = 0; socks[i] != NULL && k < max; i++) {
		sl = sizeof(fd);
		if (zmq_getsockopt(socks[i], ZMQ_FD, &fd, &sl) == 0)
			fds[k++] = fd;
	}
	for (i = 0; b->ps != NULL && i < b->n && k < max; i++) {
		sl = sizeof(fd);
		if (b->ps[i].dealer != NULL &&
		    zmq_getsockopt(b->ps[i].dealer, ZMQ_FD, &fd, &sl) == 0)
			fds[k++] = fd;
	}
	return k;
}

/* ---- publishing ---- */

static int
send_msg(void *s, struct bus_msg *m, const void *id, size_t idlen,
    struct bus_stats *st)
{
	uint8_t	buf[MSG_MAX];
	size_t	len = bus_encode(buf, m);

	if (len == 0)
		return -EINVAL;
	if (id != NULL && zmq_send(s, id, idlen, ZMQ_DONTWAIT | ZMQ_SNDMORE)
	    < 0) {
		st->send_dropped++;
		return -errno;
	}
	if (zmq_send(s, buf, len, ZMQ_DONTWAIT) < 0) {
		st->send_dropped++;
		return -errno;
	}
	return 0;
}

#define BATCH_CAP	(2 + BUS_BATCH_MAX * (1 + MSG_MAX))

/*
 * Deltas leave in batches: one ZeroMQ message per loop turn instead of
 * one per client event, so a reconnect storm wakes each sibling (and
 * both sides' ZeroMQ I/O threads) once a turn, not twice a client.
 * Order and sequence numbers are unchanged; a lost batch is a gap.
 */
int
bus_publish(struct bus *b, enum bus_event ev, const struct bus_client *c)
{
	struct bus_msg	m = { .pub = (uint16_t)b->self, .epoch = b->epoch };
	size_t		len;

	m.type = ev == BUS_ADD ? M_ADD : ev == BUS_DEL ? M_DEL :
	    ev == BUS_CLOSE ? M_CLOSE : M_ACTIVE;
	m.seq = ++b->seq;
	m.c = *c;
	b->st.published++;
	if (b->batch == NULL && (b->batch = malloc(BATCH_CAP)) == NULL) {
		b->st.send_dropped++;	/* a gap, as a failed send */
		return -ENOMEM;
	}
	if (b->bn == 0) {
		b->batch[0] = BUS_VERSION;
		b->batch[1] = M_BATCH;
		b->blen = 2;
	}
	if ((len = bus_encode(b->batch + b->blen + 1, &m)) == 0)
		return -EINVAL;
	b->batch[b->blen] = (uint8_t)len;
	b->blen += 1 + len;
	return ++b->bn == BUS_BATCH_MAX ? bus_flush(b) : 0;
}

int
bus_flush(struct bus *b)
{
	unsigned	n = b->bn;

	if (n == 0)
		return 0;
	b->bn = 0;
	b->st.batches++;
	/* A dropped batch shows up as a gap at the subscribers. */
	if (zmq_send(b->pub, b->batch, b->blen, ZMQ_DONTWAIT) < 0) {
		b->st.send_dropped += n;
		return -errno;
	}
	return 0;
}

void
bus_tick(struct bus *b)
{
	struct bus_msg	m = { .type = M_HEARTBEAT, .pub = (uint16_t)b->self };

	m.epoch = b->epoch;
	m.seq = b->seq;
	(void)bus_flush(b);	/* the heartbeat's seq covers them */
	(void)send_msg(b->pub, &m, NULL, 0, &b->st);
	bus_process(b);
}

/* A reply through the ROUTER to worker to's dealer. */
static int
reply(struct bus *b, int to, struct bus_msg *m)
{
	uint8_t	id[3];
	size_t	idlen = routing_id(id, to);

	b->all = true;	/* the send may have taken the router's edge */
	return send_msg(b->router, m, id, idlen, &b->st);
}

int
bus_snapshot_add(struct bus *b, int to, const struct bus_client *c)
{
	struct bus_msg	m = { .type = M_SNAP_ADD, .pub = (uint16_t)b->self };
	int		rc;

	if (to < 0 || to >= b->n || !b->sv[to].active)
		return -ESRCH;
	m.epoch = b->epoch;
	m.seq = b->seq;
	m.req = b->sv[to].req;
	m.c = *c;
	/* A lost entry would leave the requester a wrong view: stop, and
	 * it asks again when its wait runs out. */
	if ((rc = reply(b, to, &m)) < 0)
		b->sv[to].active = false;
	return rc;
}

int
bus_snapshot_end(struct bus *b, int to)
{
	struct bus_msg	m = { .type = M_SNAP_END, .pub = (uint16_t)b->self };

	if (to < 0 || to >= b->n || !b->sv[to].active)
		return -ESRCH;
	b->sv[to].active = false;
	m.epoch = b->epoch;
	m.seq = b->sv[to].seq0;
	m.req = b->sv[to].req;
	b->st.snapshots_served++;
	return reply(b, to, &m);
}

/* ---- subscribing ---- */

static void
request_sync(struct bus *b, int w)
{
	struct pubstate	*ps = &b->ps[w];
	struct bus_msg	 m = { .type = M_SNAP_REQ, .pub = (uint16_t)b->self };

	if (ps->state == S_SYNCED || ps->state == S_REPLAYING)
		b->st.resyncs++;
	ps->state = S_SYNCING;
	ps->began = false;
	ps->phead = 0;
	ps->npending = 0;
	ps->asked_ms = mono_ms();
	ps->req++;	/* replies to an older request are ignored */
	m.worker = (uint16_t)b->self;
	m.req = ps->req;
	log_debug("bus_sync_request", "publisher=%d", w);
	(void)send_msg(ps->dealer, &m, NULL, 0, &b->st);
	b->all = true;	/* the send may have taken the dealer's edge */
}

static void
apply(struct bus *b, const struct bus_msg *m)
{
	enum bus_event	ev;

	if (b->cb.event == NULL || m->type == M_HEARTBEAT)
		return;
	ev = m->type == M_DEL ? BUS_DEL : m->type == M_ACTIVE ? BUS_ACTIVE :
	    m->type == M_CLOSE ? BUS_CLOSE : BUS_ADD;
	b->cb.event(b->cb.arg, ev, &m->c);
}

/* A delta in order after what ps has seen (synchronised, or replaying
 * what waited): applied, or a gap and a resync. */
static void
accept_delta(struct bus *b, struct pubstate *ps, const struct bus_msg *m)
{
	if (m->epoch != ps->epoch || (m->type == M_HEARTBEAT ? m->seq >
	    ps->seq : m->seq > ps->seq + 1)) {
		log_debug("bus_gap", "publisher=%d have=%llu got=%llu", m->pub,
		    (unsigned long long)ps->seq, (unsigned long long)m->seq);
		b->st.gaps++;
		request_sync(b, m->pub);
		return;
	}
	if (m->type == M_HEARTBEAT || m->seq <= ps->seq)
		return;
	ps->seq = m->seq;
	apply(b, m);
}

static void
on_delta(struct bus *b, const struct bus_msg *m)
{
	struct pubstate	*ps;

	if (m->pub >= b->n || m->pub == b->self) {
		b->st.bad_messages++;
		return;
	}
	ps = &b->ps[m->pub];
	if (ps->state == S_UNSYNCED) {
		request_sync(b, m->pub);
		return;
	}
	if (ps->state == S_SYNCED) {
		accept_delta(b, ps, m);
		return;
	}
	/* Behind the snapshot, or behind what still waits from one. */
	if (ps->npending == PENDING_MAX || (ps->pending == NULL &&
	    (ps->pending = malloc(PENDING_MAX * sizeof(*ps->pending))) ==
	    NULL)) {
		/* Too far behind: drop them all and start over. */
		b->st.pending_dropped += ps->npending + 1;
		log_debug("bus_pending_full", "publisher=%d", m->pub);
		request_sync(b, m->pub);
		return;
	}
	ps->pending[(ps->phead + ps->npending++) % PENDING_MAX] = *m;
}

static void
on_snapshot(struct bus *b, const struct bus_msg *m)
{
	struct pubstate	*ps;

	if (m->pub >= b->n || m->pub == b->self) {
		b->st.bad_messages++;
		return;
	}
	ps = &b->ps[m->pub];
	if (ps->state != S_SYNCING || m->req != ps->req)
		return;		/* a stale reply to an older request */
	ps->asked_ms = mono_ms();	/* progress: no retry meanwhile */
	if (!ps->began) {
		ps->began = true;
		if (b->cb.sync_begin != NULL)
			b->cb.sync_begin(b->cb.arg, m->pub);
	}
	if (m->type == M_SNAP_ADD) {
		apply(b, m);
		return;
	}
	/* The view is the publisher's at seq; what waits comes next,
	 * over the next bus_process() calls (replay_step). */
	ps->epoch = m->epoch;
	ps->seq = m->seq;
	ps->state = S_REPLAYING;
	log_debug("bus_snapshot_end", "publisher=%d seq=%llu pending=%zu",
	    m->pub, (unsigned long long)m->seq, ps->npending);
}

/*
 * Up to BUS_REPLAY_STEP waiting deltas in all, publishers in turn: a
 * full buffer (PENDING_MAX) would be tens of milliseconds in one loop
 * turn.  A publisher whose last one is applied is synchronised: only
 * then sync_end, whose sweep drops what the snapshot did not confirm;
 * a waiting ADD stamps its entry with the snapshot's generation before
 * the sweep, and until the sweep the unconfirmed entries route as they
 * did during the snapshot.  A resync meanwhile (a gap among them, a
 * full buffer, a death) drops what waits and skips that sync_end: the
 * next snapshot's sync_begin marks again and its sync_end sweeps both.
 */
static void
replay_step(struct bus *b)
{
	struct pubstate	*ps;
	struct bus_msg	*m;
	unsigned	 budget = BUS_REPLAY_STEP;
	int		 k, w;

	for (k = 0; k < b->n; k++) {
		w = (b->rr + k) % b->n;
		ps = &b->ps[w];
		while (ps->state == S_REPLAYING && ps->npending > 0 &&
		    budget > 0) {
			m = &ps->pending[ps->phead];
			ps->phead = (ps->phead + 1) % PENDING_MAX;
			ps->npending--;
			budget--;
			b->st.replayed++;
			/* Older than the snapshot, or an older epoch's. */
			if (m->epoch == ps->epoch && m->seq > ps->seq)
				accept_delta(b, ps, m);
		}
		if (ps->state == S_REPLAYING && ps->npending > 0)
			break;		/* out of budget: first next time */
		if (ps->state != S_REPLAYING)
			continue;
		ps->state = S_SYNCED;
		ps->ever = true;
		ps->phead = 0;
		free(ps->pending);
		ps->pending = NULL;
		log_debug("bus_synced", "publisher=%d seq=%llu", w,
		    (unsigned long long)ps->seq);
		if (b->cb.sync_end != NULL)
			b->cb.sync_end(b->cb.arg, w);
	}
	b->rr = (b->rr + k) % b->n;
}

bool
bus_replaying(const struct bus *b)
{
	int	i;

	for (i = 0; b->ps != NULL && i < b->n; i++)
		if (b->ps[i].state == S_REPLAYING)
			return true;
	return false;
}

void
bus_worker_down(struct bus *b, int w)
{
	if (w < 0 || w >= b->n || w == b->self)
		return;
	if (b->cb.worker_down != NULL)
		b->cb.worker_down(b->cb.arg, w);
	/* Its successor (new epoch) is synchronised when it speaks. */
	b->ps[w].state = S_UNSYNCED;
	request_sync(b, w);
}

int
bus_traffic_request(struct bus *b, uint32_t req)
{
	struct bus_msg	m = { .type = M_TRAFFIC_REQ, .pub = (uint16_t)b->self };
	int		i, asked = 0;

	m.epoch = b->epoch;
	m.seq = b->seq;
	m.req = req;
	for (i = 0; b->ps != NULL && i < b->n; i++)
		if (b->ps[i].dealer != NULL &&
		    send_msg(b->ps[i].dealer, &m, NULL, 0, &b->st) == 0)
			asked++;
	b->all = true;
	return asked;
}

int
bus_traffic_reply(struct bus *b, int to, uint32_t req, const void *p,
    size_t n, bool last)
{
	struct bus_msg	m = { .type = M_TRAFFIC_DATA, .pub = (uint16_t)b->self };
	struct wire_out	o;
	uint8_t		id[3];
	size_t		hl, idlen;

	if (to < 0 || to >= b->n || to == b->self)
		return -EINVAL;
	if (n > BUS_TRAFFIC_CHUNK)
		return -EMSGSIZE;
	idlen = routing_id(id, to);
	if (b->tbuf == NULL &&
	    (b->tbuf = malloc(MSG_MAX + BUS_TRAFFIC_CHUNK)) == NULL)
		return -ENOMEM;
	m.epoch = b->epoch;
	m.seq = b->seq;
	if ((hl = bus_encode(b->tbuf, &m)) == 0)
		return -EINVAL;
	wire_out_init(&o, b->tbuf + hl, MSG_MAX - hl);
	wire_put_u32(&o, req);
	wire_put_u8(&o, last ? 1 : 0);
	wire_put_u32(&o, (uint32_t)n);
	if (o.err)
		return -EINVAL;
	hl += o.off;
	if (n > 0)
		memcpy(b->tbuf + hl, p, n);
	if (zmq_send(b->router, id, idlen, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0 ||
	    zmq_send(b->router, b->tbuf, hl + n, ZMQ_DONTWAIT) < 0) {
		b->st.send_dropped++;
		return -errno;
	}
	b->all = true;
	return 0;
}

/* The requester of a message that came in through the ROUTER: the
 * worker its routing id names, or -1. */
static int
requester(const struct bus *b, const uint8_t *id, int idn)
{
	int	w;

	if (idn != 3 || id[0] != 'w')
		return -1;
	w = id[1] << 8 | id[2];
	return w < b->n && w != b->self ? w : -1;
}

static void
serve_snapshot(struct bus *b, int to, uint32_t req)
{
	struct serve	*sv = &b->sv[to];

	/* A newer request from the same sibling replaces the one being
	 * served: that sibling ignores replies to its older ones. */
	sv->active = true;
	sv->req = req;
	sv->seq0 = b->seq;
	if (b->cb.snapshot != NULL)
		b->cb.snapshot(b->cb.arg, b, to);
	else
		(void)bus_snapshot_end(b, to);
}

static void
drain_router(struct bus *b)
{
	uint8_t		id[256], buf[MSG_MAX];
	struct bus_msg	m;
	int		idn, n, more, from;
	size_t		ml;

	/* Until EAGAIN, which is where libzmq processes its pending
	 * commands (as ZMQ_EVENTS would): one such pass per drain, not one
	 * per message (each is a poll() and a getpid() in libzmq). */
	for (;;) {
		if ((idn = zmq_recv(b->router, id, sizeof(id), ZMQ_DONTWAIT))
		    < 0)
			return;
		more = 0;
		ml = sizeof(more);
		(void)zmq_getsockopt(b->router, ZMQ_RCVMORE, &more, &ml);
		if (!more)
			continue;
		if ((n = zmq_recv(b->router, buf, sizeof(buf), ZMQ_DONTWAIT))
		    < 0)
			return;
		if (n > (int)sizeof(buf) || bus_decode(buf, (size_t)n, &m) < 0 ||
		    (m.type != M_SNAP_REQ && m.type != M_TRAFFIC_REQ) ||
		    (from = requester(b, id, idn)) < 0) {
			b->st.bad_messages++;
			continue;
		}
		if (m.type == M_SNAP_REQ)
			serve_snapshot(b, from, m.req);
		else if (b->cb.traffic_req != NULL)
			b->cb.traffic_req(b->cb.arg, b, from, m.req);
		else
			(void)bus_traffic_reply(b, from, m.req, NULL, 0, true);
	}
}

static void
dispatch(struct bus *b, const struct bus_msg *m)
{
	switch (m->type) {
	case M_SNAP_ADD:
	case M_SNAP_END:
		on_snapshot(b, m);
		break;
	case M_ADD:
	case M_DEL:
	case M_ACTIVE:
	case M_CLOSE:
	case M_HEARTBEAT:
		on_delta(b, m);
		break;
	case M_TRAFFIC_DATA:
		if (m->pub >= b->n || m->pub == b->self) {
			b->st.bad_messages++;
			break;
		}
		if (b->cb.traffic_data != NULL)
			b->cb.traffic_data(b->cb.arg, m->pub, m->req, m->data,
			    m->dlen, m->last);
		break;
	default:
		b->st.bad_messages++;
		break;
	}
}

static void
dispatch_cb(void *arg, const struct bus_msg *m)
{
	dispatch(arg, m);
}

static void
drain(struct bus *b, void *s)
{
	zmq_msg_t	zm;
	struct bus_msg	m;
	int		n;

	for (;;) {	/* until EAGAIN: see drain_router */
		if (zmq_msg_init(&zm) != 0)
			return;
		/* Whole messages: a traffic answer is larger than MSG_MAX. */
		if ((n = zmq_msg_recv(&zm, s, ZMQ_DONTWAIT)) < 0) {
			zmq_msg_close(&zm);
			return;
		}
		b->st.received++;
		if (n >= 2 && ((const uint8_t *)zmq_msg_data(&zm))[1] ==
		    M_BATCH) {
			if (bus_decode_batch(zmq_msg_data(&zm),
			    zmq_msg_size(&zm), dispatch_cb, b) < 0)
				b->st.bad_messages++;
		} else if (bus_decode(zmq_msg_data(&zm), zmq_msg_size(&zm),
		    &m) < 0 ||
		    (m.type != M_TRAFFIC_DATA && (size_t)n > MSG_MAX)) {
			b->st.bad_messages++;
		} else {
			dispatch(b, &m);
		}
		zmq_msg_close(&zm);
	}
}

void
bus_process(struct bus *b)
{
	uint64_t	now;
	int		i;

	if (b->sub == NULL)
		return;
	b->all = false;
	now = mono_ms();
	for (i = 0; i < b->n; i++) {
		if (i == b->self)
			continue;
		if (b->ps[i].state == S_UNSYNCED ||
		    (b->ps[i].state == S_SYNCING &&
		    now - b->ps[i].asked_ms > SYNC_RETRY_MS))
			request_sync(b, i);
	}
	drain_router(b);
	drain(b, b->sub);
	for (i = 0; i < b->n; i++)
		if (b->ps[i].dealer != NULL)
			drain(b, b->ps[i].dealer);
	replay_step(b);
}

static bool
is_fd(void *s, int fd)
{
	int	f = -1;
	size_t	sl = sizeof(f);

	return s != NULL && zmq_getsockopt(s, ZMQ_FD, &f, &sl) == 0 &&
	    f == fd;
}

void
bus_process_fd(struct bus *b, int fd)
{
	uint64_t	now;
	int		i;

	if (b->sub == NULL)
		return;
	now = mono_ms();
	for (i = 0; !b->all && i < b->n; i++)
		if (i != b->self && (b->ps[i].state == S_UNSYNCED ||
		    (b->ps[i].state == S_SYNCING &&
		    now - b->ps[i].asked_ms > SYNC_RETRY_MS)))
			b->all = true;
	if (b->all) {
		bus_process(b);
		return;
	}
	/* Only the socket that signalled: draining the others would
	 * cost a poll() and a getpid() each inside libzmq, per event. */
	if (is_fd(b->sub, fd))
		drain(b, b->sub);
	else if (is_fd(b->router, fd))
		drain_router(b);
	else
		for (i = 0; i < b->n; i++)
			if (is_fd(b->ps[i].dealer, fd))
				drain(b, b->ps[i].dealer);
	if (b->all)	/* a resync was asked meanwhile */
		bus_process(b);
	else
		replay_step(b);
}

const struct bus_stats *
bus_stats(const struct bus *b)
{
	return &b->st;
}

bool
bus_synced(const struct bus *b)
{
	int	i;

	for (i = 0; b->ps != NULL && i < b->n; i++)
		if (i != b->self && !b->ps[i].ever)
			return false;
	return true;
}
