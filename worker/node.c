/*
 * One node, many workers: this worker's side of the presence bus (what
 * it publishes about its clients, what it learns of its siblings') and
 * of the packet rings (packets for clients on a sibling go out through
 * ring self->sib and a doorbell; packets from siblings come in through
 * ring sib->self).  Routing decisions stay in session.c and registry.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/log.h"
#include "common/ring.h"
#include "worker/worker.h"
#include "worker/wk.h"

#define BUS_FDS_MAX	300
#define RING_PACKET	1
#define SNAP_DELAY_MS	1	/* 0 would run again in the same turn */
#define REPLAY_DELAY_MS	1

struct node {
	struct worker		*w;
	struct bus		*bus;
	struct loop_io		 bus_io[BUS_FDS_MAX];
	int			 nbus;
	struct loop_timer	 tick;
	int			 ticks;
	void			*rings;
	size_t			 ring_cap;
	const int		*doorbells;
	struct loop_io		 bell_io;
	bool			*dirty;		/* rings rung this round */
	bool			 more;		/* a ring was left non-empty */
	/* Snapshots being served, per requester: the next connection of
	 * w->conns to send (NODE_SNAP_STEP per turn), moved past one that
	 * is freed (node_forget). */
	struct conn		**snap_cur;
	bool			*snap_on;
	struct loop_timer	 snap_step;
	/* The bus replays a snapshot's waiting deltas a step per
	 * bus_process(): the next step a turn later, fd wakeup or not. */
	struct loop_timer	 replay;
};

static void
client_of(const struct worker *w, const struct conn *c, struct bus_client *b)
{
	memset(b, 0, sizeof(*b));
	memcpy(b->key, c->key, DERP_KEY_LEN);
	b->worker = (uint16_t)w->id;
	b->conn_id = c->id;
	b->stamp = c->stamp;
	b->flags = session_flags(c);
	memcpy(b->ip16, c->ip16, 16);
	b->port = c->port;
}

void
node_close_key(struct worker *w, const uint8_t key[DERP_KEY_LEN])
{
	struct bus_client	b;

	if (w->node == NULL)
		return;
	memset(&b, 0, sizeof(b));
	memcpy(b.key, key, DERP_KEY_LEN);
	b.worker = (uint16_t)w->id;
	(void)bus_publish(w->node->bus, BUS_CLOSE, &b);
}

void
node_publish(struct worker *w, const struct conn *c, int ev)
{
	struct bus_client	b;

	if (w->node == NULL)
		return;
	client_of(w, c, &b);
	/* A failed send is a gap the siblings detect and resync. */
	(void)bus_publish(w->node->bus, (enum bus_event)ev, &b);
}

/* ---- bus callbacks ---- */

static void
on_event(void *arg, enum bus_event ev, const struct bus_client *c)
{
	struct worker	*w = arg;
	int		 rc;

	if (c->worker >= w->nworkers || c->worker == w->id)
		return;
	switch (ev) {
	case BUS_ADD:
		rc = registry_remote_add(w, c);
		/* Watchers see every new connection, as Go's do. */
		if (rc == 1)
			session_watchers_present(w, c->key, c->ip16, c->port,
			    c->flags);
		break;
	case BUS_DEL:
		registry_remote_del(w, c);
		break;
	case BUS_ACTIVE:
		registry_remote_active(w, c);
		break;
	case BUS_CLOSE:
		registry_close_key(w, c->key);
		break;
	}
}

static void
on_sync_begin(void *arg, int worker)
{
	registry_remote_mark(arg, worker);
}

static void
on_sync_end(void *arg, int worker)
{
	struct worker	*w = arg;

	registry_remote_sweep(w, worker, false);
	w->m->node_keys = registry_count(w->reg);
	worker_check_ready(w);
}

static void
on_worker_down(void *arg, int worker)
{
	struct worker	*w = arg;

	log_notice("sibling_down", "sibling=%d", worker);
	registry_remote_sweep(w, worker, true);
}

/* Up to budget more connections of the snapshot for sibling `to`;
 * false while it goes on. */
static bool
snap_serve(struct worker *w, int to, size_t budget)
{
	struct node		*n = w->node;
	struct bus_client	 b;
	struct conn		*c;

	for (c = n->snap_cur[to]; c != NULL && budget > 0; c = c->next,
	    budget--) {
		/* What the registry holds locally: registered, not
		 * closing (session_end took it out). */
		if (c->state != ST_DERP || c->closing || c->peer == NULL)
			continue;
		client_of(w, c, &b);
		if (bus_snapshot_add(n->bus, to, &b) < 0) {
			n->snap_on[to] = false;	/* replaced or abandoned */
			return true;
		}
	}
	n->snap_cur[to] = c;
	if (c != NULL)
		return false;
	n->snap_on[to] = false;
	(void)bus_snapshot_end(n->bus, to);	/* lost: to asks again */
	return true;
}

bool
node_snapshot_step(struct worker *w, size_t budget)
{
	struct node	*n = w->node;
	bool		 done = true;
	int		 to;

	for (to = 0; n != NULL && to < w->nworkers; to++)
		if (n->snap_on[to] && !snap_serve(w, to, budget))
			done = false;
	return done;
}

static void
snap_timer(struct loop_timer *t)
{
	struct worker	*w = t->arg;

	if (!node_snapshot_step(w, NODE_SNAP_STEP) &&
	    loop_timer_set(w->loop, &w->node->snap_step, SNAP_DELAY_MS) < 0)
		(void)node_snapshot_step(w, SIZE_MAX);	/* no memory */
}

/* A snapshot walks w->conns NODE_SNAP_STEP per loop turn: every local
 * client at once would hold the worker for tens of ms at 100,000. */
static void
on_snapshot(void *arg, struct bus *b, int to)
{
	struct worker	*w = arg;
	struct node	*n = w->node;

	(void)b;
	if (to < 0 || to >= w->nworkers)
		return;
	n->snap_cur[to] = w->conns;
	n->snap_on[to] = true;
	if (!snap_serve(w, to, NODE_SNAP_STEP) &&
	    !loop_timer_armed(&n->snap_step) &&
	    loop_timer_set(w->loop, &n->snap_step, SNAP_DELAY_MS) < 0)
		(void)snap_serve(w, to, SIZE_MAX);
}

void
node_forget(struct worker *w, const struct conn *c)
{
	struct node	*n = w->node;
	int		 to;

	for (to = 0; n != NULL && to < w->nworkers; to++)
		if (n->snap_cur[to] == c)
			n->snap_cur[to] = c->next;
}

/* ---- /debug/traffic across workers (traffic.c formats) ---- */

static void
on_traffic_req(void *arg, struct bus *b, int to, uint32_t req)
{
	(void)b;
	traffic_answer(arg, to, req);
}

static void
on_traffic_data(void *arg, int worker, uint32_t req, const uint8_t *p,
    size_t n, bool last)
{
	traffic_on_data(arg, worker, req, p, n, last);
}

int
node_traffic_request(struct worker *w, uint32_t req)
{
	return w->node != NULL ? bus_traffic_request(w->node->bus, req) : 0;
}

int
node_traffic_reply(struct worker *w, int to, uint32_t req, const void *p,
    size_t n, bool last)
{
	if (w->node == NULL)
		return -ENOTCONN;
	return bus_traffic_reply(w->node->bus, to, req, p, n, last);
}

static void
replay_arm(struct worker *w)
{
	struct node	*n = w->node;

	if (bus_replaying(n->bus) && !loop_timer_armed(&n->replay))
		(void)loop_timer_set(w->loop, &n->replay, REPLAY_DELAY_MS);
}

static void
on_replay(struct loop_timer *t)
{
	struct worker	*w = t->arg;

	bus_process(w->node->bus);
	replay_arm(w);
}

static void
on_bus_fd(struct loop_io *io, unsigned events)
{
	struct worker	*w = io->arg;

	(void)events;
	bus_process_fd(w->node->bus, io->fd);
	replay_arm(w);
}

static void
on_tick(struct loop_timer *t)
{
	struct worker	*w = t->arg;
	struct node	*n = w->node;

	/* ZMQ_FD is edge-triggered: poll the sockets regularly too. */
	bus_tick(n->bus);
	replay_arm(w);
	n->ticks++;
	w->m->node_keys = registry_count(w->reg);
	w->m->node_conns = registry_node_conns(w->reg);
	worker_check_ready(w);
	w->m->bus_resyncs = bus_stats(n->bus)->resyncs;
	w->m->bus_gaps = bus_stats(n->bus)->gaps;
	w->m->bus_replayed = bus_stats(n->bus)->replayed;
	w->m->bus_pending_dropped = bus_stats(n->bus)->pending_dropped;
	(void)loop_timer_set(w->loop, &n->tick, 200);
}

/* ---- rings ---- */

int
node_send(struct worker *w, int sib, const uint8_t dst[DERP_KEY_LEN],
    const uint8_t src[DERP_KEY_LEN], const uint8_t *pkt, size_t len)
{
	struct node	*n = w->node;
	uint8_t		 hdr[2 * DERP_KEY_LEN];
	int		 rc;

	if (n == NULL || sib < 0 || sib >= w->nworkers)
		return -EINVAL;
	memcpy(hdr, dst, DERP_KEY_LEN);
	memcpy(hdr + DERP_KEY_LEN, src, DERP_KEY_LEN);
	rc = ring_push(ring_set_get(n->rings, w->nworkers, n->ring_cap, w->id,
	    sib), RING_PACKET, hdr, sizeof(hdr), pkt, len);
	if (rc == 0) {
		n->dirty[sib] = true;
		w->m->ring_out++;
	}
	return rc;
}

bool
node_ring_drain(struct worker *w, struct ring_ref r, int sib)
{
	uint8_t		 keys[2 * DERP_KEY_LEN];
	const uint8_t	*d;
	size_t		 len;
	uint16_t	 type;
	int		 k, rc;

	for (k = 0; k < NODE_RING_BUDGET; k++) {
		if ((rc = ring_peek(r, &type, &d, &len)) == -EAGAIN)
			return false;
		if (rc < 0) {
			w->m->ring_resets++;	/* every one, logged or not */
			log_err_limited("ring_corrupt", "from=%d resets=%" PRIu64, sib,
			    w->m->ring_resets);
			ring_reset(r);
			return false;
		}
		if (type != RING_PACKET || len < sizeof(keys) ||
		    len - sizeof(keys) > DERP_MAX_PACKET) {
			w->m->ring_bad++;
		} else {
			/* The keys decide where it goes: read them once. */
			memcpy(keys, d, sizeof(keys));
			session_deliver(w, keys, keys + DERP_KEY_LEN,
			    d + sizeof(keys), len - sizeof(keys));
			w->m->ring_in++;
		}
		ring_pop(r, len);
	}
	return true;
}

static void
drain_rings(struct worker *w)
{
	struct node	*n = w->node;
	int		 sib;

	n->more = false;
	for (sib = 0; sib < w->nworkers; sib++) {
		struct ring_ref	r;

		if (sib == w->id)
			continue;
		r = ring_set_get(n->rings, w->nworkers, n->ring_cap, sib,
		    w->id);
		/* Awake: producers need not ring until we sleep again. */
		ring_awake(r);
		if (node_ring_drain(w, r, sib))
			n->more = true;
	}
}

static void
on_bell(struct loop_io *io, unsigned events)
{
	struct worker	*w = io->arg;
	uint64_t	 v;

	(void)events;
	if (read(io->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another wakeup already consumed the count */
	}
	w->m->ring_wakeups++;
	/* The packets are delivered by node_drain, before the flush. */
}

void
node_drain(struct worker *w)
{
	/* Every round, rung or not: a producer skips the doorbell while
	 * we are awake, so its packets wait for this look. */
	if (w->node != NULL)
		drain_rings(w);
}

void
node_after(struct worker *w)
{
	struct node	*n = w->node;
	uint64_t	 one = 1;
	int		 sib;
	bool		 busy;

	if (n == NULL)
		return;
	/* The round's presence deltas, one bus message. */
	(void)bus_flush(n->bus);
	/* A doorbell per sibling per round at most, and only for one that
	 * said it may sleep. */
	for (sib = 0; sib < w->nworkers; sib++)
		if (n->dirty[sib]) {
			n->dirty[sib] = false;
			if (!ring_need_signal(ring_set_get(n->rings,
			    w->nworkers, n->ring_cap, w->id, sib)))
				continue;
			w->m->ring_doorbells++;
			if (write(n->doorbells[sib], &one, sizeof(one)) < 0) {
				/* counter saturated: the sibling is awake */
			}
		}
	/* About to sleep: raise every incoming ring's flag, and go round
	 * again at once if something arrived meanwhile. */
	busy = n->more;
	for (sib = 0; sib < w->nworkers; sib++)
		if (sib != w->id && !ring_sleep(ring_set_get(n->rings,
		    w->nworkers, n->ring_cap, sib, w->id)))
			busy = true;
	if (busy)
		loop_wake(w->loop);
}

void
node_worker_down(struct worker *w, int dead)
{
	if (w->node != NULL)
		bus_worker_down(w->node->bus, dead);
}

bool
node_synced(const struct worker *w)
{
	return w->node == NULL || bus_synced(w->node->bus);
}

int
node_init(struct worker *w, const struct worker_env *env)
{
	struct bus_callbacks	 cb = { on_event, on_sync_begin, on_sync_end,
				    on_worker_down, on_snapshot,
				    on_traffic_req, on_traffic_data, w };
	struct node		*n;
	int			 fds[BUS_FDS_MAX], i;

	if (env == NULL || env->nworkers < 2 || env->rings == NULL)
		return 0;	/* alone: nothing node-wide to share */
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return -ENOMEM;
	if ((n->dirty = calloc((size_t)env->nworkers, sizeof(bool))) ==
	    NULL || (n->snap_on = calloc((size_t)env->nworkers,
	    sizeof(bool))) == NULL || (n->snap_cur =
	    calloc((size_t)env->nworkers, sizeof(*n->snap_cur))) == NULL) {
		free(n->dirty);
		free(n->snap_on);
		free(n);
		return -ENOMEM;
	}
	loop_timer_init(&n->snap_step, snap_timer, w);
	loop_timer_init(&n->replay, on_replay, w);
	w->node = n;
	n->w = w;
	n->rings = env->rings;
	n->ring_cap = env->ring_cap;
	n->doorbells = env->doorbells;
	if ((n->bus = bus_open(env->runtime_dir, w->id, w->nworkers, &cb)) ==
	    NULL) {
		log_err("bus_open_failed", "dir=%s err=%s", env->runtime_dir,
		    strerror(errno));
		return -EIO;
	}
	n->nbus = bus_fds(n->bus, fds, BUS_FDS_MAX);
	for (i = 0; i < n->nbus; i++) {
		loop_io_init(&n->bus_io[i], fds[i], on_bus_fd, w);
		if (loop_io_add(w->loop, &n->bus_io[i], LOOP_IN) < 0)
			return -EIO;
	}
	loop_io_init(&n->bell_io, env->doorbells[w->id], on_bell, w);
	if (loop_io_add(w->loop, &n->bell_io, LOOP_IN) < 0)
		return -EIO;
	loop_timer_init(&n->tick, on_tick, w);
	(void)loop_timer_set(w->loop, &n->tick, 10);
	bus_process(n->bus);
	replay_arm(w);
	return 0;
}

void
node_fini(struct worker *w)
{
	struct node	*n = w->node;
	int		 i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nbus; i++)
		loop_io_del(w->loop, &n->bus_io[i]);
	loop_timer_cancel(w->loop, &n->tick);
	loop_timer_cancel(w->loop, &n->snap_step);
	loop_timer_cancel(w->loop, &n->replay);
	bus_close(n->bus);
	free(n->dirty);
	free(n->snap_on);
	free(n->snap_cur);
	free(n);
	w->node = NULL;
}
