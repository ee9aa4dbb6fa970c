/*
 * Traffic statistics (issue 5 item 6): GET /debug/traffic, one JSON line
 * per DERP connection and mesh link of the whole node, and the periodic
 * JSON-lines dump to traffic.dump_file.  The counters themselves are
 * plain fields bumped by conn.c, session.c and mesh/link.c; this file
 * only reads them.  Node-wide answers: the serving worker asks its
 * siblings over the bus and waits for them (bounded in time and size).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/log.h"
#include "mesh/link.h"
#include "worker/wk.h"

#define HTTP_MAX	(16 * 1024 * 1024)	/* response body cap */
#define WAIT_MS		1000		/* siblings' answers */
#define REQS_MAX	4		/* queries waiting, per worker */
#define DUMP_CHUNK	(64 * 1024)	/* bytes per write(2) */
#define WORKERS_MAX	256		/* conf: workers <= 256 */
#define DUMP_STEP	128		/* connections per loop turn */
#define STEP_DELAY_MS	1		/* 0 would run in the same turn */

struct traffic_req {
	struct traffic_req	*next;
	struct worker		*w;
	struct conn		*c;
	uint32_t		 id;
	int			 waiting;	/* siblings not finished */
	int			 asked;
	uint8_t			 done[WORKERS_MAX / 8];
	struct bbuf		 body;
	bool			 truncated;
	struct loop_timer	 timer;
};

struct traffic {
	struct worker		*w;
	struct traffic_req	*reqs;
	int			 nreqs;
	uint32_t		 next_id;
	uint8_t			*chunk;		/* sibling's answer */
	size_t			 chunk_len;
	/* dump */
	char			 path[PATH_MAX];
	int			 interval_s, max_entries;
	struct loop_timer	 tick;
	struct bbuf		 lines;		/* pending lines */
	int			 nlines;
	bool			 failing;	/* last write failed */
	struct traffic_ctr	 link_dumped[CONF_MAX_PEERS];
	/* A period's walk over w->conns, DUMP_STEP per turn. */
	struct conn		*cursor;
	bool			 walking;
	int64_t			 walk_ms;	/* the period's time stamp */
	struct loop_timer	 step;
};

/* A line sink: 0, or -ENOSPC once it is full (later lines dropped). */
typedef int	(*sink_fn)(void *arg, const char *line, size_t n);

static int64_t
unix_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
rec_conn(const struct conn *c, struct traffic_rec *r, int64_t now_ms)
{
	uint64_t	now = loop_now(c->w->loop);

	memset(r, 0, sizeof(*r));
	r->key = c->key;
	r->conn = c->id;
	r->worker = c->w->id;
	r->link = -1;
	r->addr = c->addr;
	r->mesh = c->can_mesh;
	r->connected_s = now > c->registered_ms ?
	    (now - c->registered_ms) / 1000 : 0;
	r->unique_senders = registry_saw_count(c);
	r->tot = c->tr;
	r->time_ms = now_ms;
}

static void
rec_link(struct worker *w, int i, struct mesh_link_stats *st,
    struct traffic_rec *r, int64_t now_ms)
{
	uint64_t	now = loop_now(w->loop);

	mesh_link_stats(w->links[i], st);
	memset(r, 0, sizeof(*r));
	r->key = st->has_key ? st->key : NULL;
	r->worker = w->id;
	r->link = i;
	r->addr = st->addr;
	r->peer = st->host;
	r->mesh = true;
	r->up = st->up;
	r->connected_s = st->up && now > st->up_ms ?
	    (now - st->up_ms) / 1000 : 0;
	r->tot = st->tr;
	r->time_ms = now_ms;
}

static bool
reportable(const struct conn *c)
{
	return c->state == ST_DERP && !c->closing;
}

/* Every live DERP connection and mesh link of this worker, in order. */
static void
emit_all(struct worker *w, sink_fn sink, void *arg)
{
	struct traffic_rec	 r;
	struct mesh_link_stats	 st;
	struct conn		*c;
	char			 line[TRAFFIC_LINE_MAX];
	ssize_t			 n;
	int64_t			 now = unix_ms();
	int			 i;

	for (c = w->conns; c != NULL; c = c->next) {
		if (!reportable(c))
			continue;
		rec_conn(c, &r, now);
		if ((n = traffic_format(line, sizeof(line), &r)) > 0 &&
		    sink(arg, line, (size_t)n) < 0)
			return;
	}
	for (i = 0; i < w->nlinks; i++) {
		rec_link(w, i, &st, &r, now);
		if ((n = traffic_format(line, sizeof(line), &r)) > 0 &&
		    sink(arg, line, (size_t)n) < 0)
			return;
	}
}

/* ---- /debug/traffic ---- */

static int
body_sink(void *arg, const char *line, size_t n)
{
	struct traffic_req	*q = arg;

	if (q->truncated || bbuf_append(&q->body, line, n, HTTP_MAX) < 0) {
		q->truncated = true;
		return -ENOSPC;
	}
	return 0;
}

static void
req_unlink(struct traffic *t, struct traffic_req *q)
{
	struct traffic_req	**pp;

	for (pp = &t->reqs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			t->nreqs--;
			break;
		}
	loop_timer_cancel(t->w->loop, &q->timer);
	bbuf_free(&q->body);
	free(q);
}

static void
req_respond(struct traffic_req *q)
{
	struct conn	*c = q->c;
	char		 extra[160];

	snprintf(extra, sizeof(extra), "X-Derpd-Workers: %d/%d\r\n%s",
	    1 + q->asked - q->waiting, c->w->nworkers,
	    q->truncated ? "X-Derpd-Truncated: true\r\n" : "");
	c->big_ctrl = true;
	http_respond_debug(c, 200, "OK", "application/x-ndjson", extra,
	    bbuf_len(&q->body) > 0 ? (const char *)q->body.p + q->body.off :
	    "", bbuf_len(&q->body));
}

/* All answers are in, or the wait is over: respond and close. */
static void
req_finish(struct traffic_req *q)
{
	struct conn	*c = q->c;

	if (q->waiting > 0)
		log_warn("traffic_partial", "conn=%" PRIu64 " missing=%d",
		    c->id, q->waiting);
	c->treq = NULL;
	c->close_after_write = true;
	req_respond(q);
	req_unlink(c->w->traffic, q);
	conn_flush_later(c);
}

static void
req_timeout(struct loop_timer *tm)
{
	req_finish(tm->arg);
}

void
traffic_http(struct conn *c)
{
	struct worker		*w = c->w;
	struct traffic		*t = w->traffic;
	struct traffic_req	*q;

	if (t == NULL || t->nreqs >= REQS_MAX) {
		http_respond_debug(c, 503, "Service Unavailable",
		    "text/plain; charset=utf-8", NULL, "busy\n", 5);
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		conn_close(c, "out_of_memory");
		return;
	}
	q->w = w;
	q->c = c;
	loop_timer_init(&q->timer, req_timeout, q);
	emit_all(w, body_sink, q);
	if (c->hp.method != HTTP_HEAD && w->nworkers > 1) {
		q->id = ++t->next_id;
		q->asked = q->waiting = node_traffic_request(w, q->id);
	}
	if (q->waiting == 0 ||
	    loop_timer_set(w->loop, &q->timer, WAIT_MS) < 0) {
		q->waiting = 0;
		req_respond(q);		/* keep-alive as usual */
		bbuf_free(&q->body);
		free(q);
		return;
	}
	q->next = t->reqs;
	t->reqs = q;
	t->nreqs++;
	c->treq = q;		/* http.c parses nothing more meanwhile */
}

void
traffic_on_data(struct worker *w, int sib, uint32_t id, const uint8_t *p,
    size_t n, bool last)
{
	struct traffic		*t = w->traffic;
	struct traffic_req	*q;

	if (t == NULL || sib < 0 || sib >= WORKERS_MAX)
		return;
	for (q = t->reqs; q != NULL && q->id != id; q = q->next)
		;
	if (q == NULL || (q->done[sib / 8] & (1u << (sib % 8))) != 0)
		return;		/* late, after the wait ended */
	/* Chunks hold whole lines: one that does not fit is dropped. */
	if (n > 0 && (q->truncated ||
	    bbuf_append(&q->body, p, n, HTTP_MAX) < 0))
		q->truncated = true;
	if (!last)
		return;
	q->done[sib / 8] |= (uint8_t)(1u << (sib % 8));
	if (--q->waiting == 0)
		req_finish(q);
}

/* ---- answering a sibling ---- */

struct answer {
	struct traffic	*t;
	uint32_t	 id;
	size_t		 total;
	bool		 failed;
};

static int
answer_sink(void *arg, const char *line, size_t n)
{
	struct answer	*a = arg;
	struct traffic	*t = a->t;

	if (a->total + n > HTTP_MAX)
		return -ENOSPC;
	if (t->chunk_len + n > BUS_TRAFFIC_CHUNK) {
		if (node_traffic_reply(t->w, a->id, t->chunk, t->chunk_len,
		    false) < 0) {
			a->failed = true;
			return -ENOSPC;
		}
		t->chunk_len = 0;
	}
	memcpy(t->chunk + t->chunk_len, line, n);
	t->chunk_len += n;
	a->total += n;
	return 0;
}

void
traffic_answer(struct worker *w, uint32_t id)
{
	struct traffic	*t = w->traffic;
	struct answer	 a = { t, id, 0, false };

	if (t == NULL)
		return;
	if (t->chunk == NULL &&
	    (t->chunk = malloc(BUS_TRAFFIC_CHUNK)) == NULL) {
		(void)node_traffic_reply(w, id, NULL, 0, true);
		return;
	}
	t->chunk_len = 0;
	emit_all(w, answer_sink, &a);
	if (a.failed)
		return;		/* the requester's wait ends it */
	if (node_traffic_reply(w, id, t->chunk, t->chunk_len, true) < 0)
		log_warn("traffic_answer_failed", "req=%" PRIu32, id);
	t->chunk_len = 0;
}

/* ---- the dump ---- */

static void
dump_write(struct traffic *t)
{
	struct worker	*w = t->w;
	const char	*p = (const char *)t->lines.p + t->lines.off;
	size_t		 left = bbuf_len(&t->lines), n;
	ssize_t		 r;
	int		 fd = -1, err = 0;
	const char	*nl;

	if (left == 0 || t->path[0] == '\0')
		goto out;
	fd = open(t->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOCTTY, 0640);
	if (fd == -1) {
		err = errno;
		goto out;
	}
	/* Whole lines per write(2): O_APPEND keeps each one contiguous
	 * beside the other workers' writes. */
	while (left > 0) {
		n = left < DUMP_CHUNK ? left : DUMP_CHUNK;
		if (n < left && (nl = memrchr(p, '\n', n)) != NULL)
			n = (size_t)(nl - p) + 1;
		if ((r = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			break;
		}
		p += r;
		left -= (size_t)r;
	}
	if (err == 0)
		w->m->traffic_dump_lines += (uint64_t)t->nlines;
out:
	if (fd >= 0)
		close(fd);
	if (err != 0) {
		w->m->traffic_dump_errors++;
		if (!t->failing)
			log_warn("traffic_dump_failed", "path=%s err=%s",
			    t->path, strerror(err));
	}
	t->failing = err != 0;
	bbuf_free(&t->lines);
	t->nlines = 0;
}

static void
dump_arm(struct traffic *t)
{
	if (t->path[0] == '\0') {
		loop_timer_cancel(t->w->loop, &t->tick);
		return;
	}
	(void)loop_timer_set(t->w->loop, &t->tick,
	    (uint64_t)t->interval_s * 1000);
}

/* One line into the period; a full period is written at once and the
 * next one starts (bounded memory whatever the connection count). */
static void
dump_add(struct traffic *t, struct traffic_rec *r,
    const struct traffic_ctr *then)
{
	struct traffic_ctr	d;
	char			line[TRAFFIC_LINE_MAX];
	ssize_t			n;

	traffic_sub(&d, &r->tot, then);
	r->delta = &d;
	if ((n = traffic_format(line, sizeof(line), r)) <= 0 ||
	    bbuf_append(&t->lines, line, (size_t)n, (size_t)t->max_entries *
	    TRAFFIC_LINE_MAX) < 0) {
		t->w->m->traffic_dump_errors++;
		return;
	}
	if (++t->nlines >= t->max_entries) {
		t->w->m->traffic_dump_early_flushes++;
		dump_write(t);
		dump_arm(t);
	}
}

static void
dump_links(struct traffic *t, int64_t now)
{
	struct worker		*w = t->w;
	struct traffic_rec	 r;
	struct mesh_link_stats	 st;
	int			 i;

	for (i = 0; i < w->nlinks && i < CONF_MAX_PEERS; i++) {
		rec_link(w, i, &st, &r, now);
		if (traffic_equal(&r.tot, &t->link_dumped[i]))
			continue;
		dump_add(t, &r, &t->link_dumped[i]);
		t->link_dumped[i] = r.tot;
	}
}

/*
 * One step of a period: up to DUMP_STEP connections, their lines
 * written at once; the last step adds the mesh links and arms the next
 * period.  Formatting and writing every connection in one turn would
 * hold every client of the worker: up to about 3 us per connection
 * whose counters changed (measured), 30 ms for 10,000.
 */
static void
dump_step(struct loop_timer *tm)
{
	struct traffic		*t = tm->arg;
	struct traffic_rec	 r;
	struct conn		*c = t->cursor;
	size_t			 n, budget = DUMP_STEP;

	for (;;) {
		for (n = 0; c != NULL && n < budget; c = c->next, n++) {
			if (!reportable(c) ||
			    traffic_equal(&c->tr, &c->tr_dumped))
				continue;
			rec_conn(c, &r, t->walk_ms);
			dump_add(t, &r, &c->tr_dumped);
			c->tr_dumped = c->tr;
		}
		t->cursor = c;
		if (c == NULL)
			break;
		if (loop_timer_set(t->w->loop, &t->step, STEP_DELAY_MS) == 0) {
			dump_write(t);
			return;
		}
		budget = SIZE_MAX;	/* no memory for the timer: finish */
	}
	t->walking = false;
	dump_links(t, t->walk_ms);
	dump_write(t);
	dump_arm(t);
}

static void
dump_tick(struct loop_timer *tm)
{
	struct traffic		*t = tm->arg;

	if (t->walking) {	/* the last period is still being written */
		dump_arm(t);
		return;
	}
	t->walking = true;
	t->cursor = t->w->conns;
	t->walk_ms = unix_ms();
	dump_step(&t->step);
}

void
traffic_forget(struct worker *w, const struct conn *c)
{
	struct traffic	*t = w->traffic;

	if (t != NULL && t->cursor == c)
		t->cursor = c->next;
}

void
traffic_conn_closed(struct conn *c)
{
	struct traffic		*t = c->w->traffic;
	struct traffic_rec	 r;

	if (t == NULL)
		return;
	if (c->treq != NULL) {
		req_unlink(t, c->treq);
		c->treq = NULL;
	}
	if (t->path[0] == '\0' || c->state != ST_DERP ||
	    traffic_equal(&c->tr, &c->tr_dumped))
		return;
	rec_conn(c, &r, unix_ms());
	r.closed = true;
	dump_add(t, &r, &c->tr_dumped);
	c->tr_dumped = c->tr;
}

void
traffic_reload(struct worker *w)
{
	struct traffic	*t = w->traffic;

	if (t == NULL)
		return;
	if (strcmp(t->path, w->cfg.traffic_dump_file) != 0 ||
	    t->nlines >= w->cfg.traffic_max_entries)
		dump_write(t);	/* pending lines: to the old file */
	snprintf(t->path, sizeof(t->path), "%s", w->cfg.traffic_dump_file);
	t->interval_s = w->cfg.traffic_interval_s;
	t->max_entries = w->cfg.traffic_max_entries;
	dump_arm(t);
}

int
traffic_init(struct worker *w)
{
	struct traffic	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -ENOMEM;
	t->w = w;
	loop_timer_init(&t->tick, dump_tick, t);
	loop_timer_init(&t->step, dump_step, t);
	w->traffic = t;
	traffic_reload(w);
	return 0;
}

void
traffic_fini(struct worker *w)
{
	struct traffic	*t = w->traffic;

	if (t == NULL)
		return;
	while (t->reqs != NULL) {
		t->reqs->c->treq = NULL;
		req_unlink(t, t->reqs);
	}
	if (t->path[0] != '\0')
		dump_links(t, unix_ms());
	dump_write(t);
	loop_timer_cancel(w->loop, &t->tick);
	loop_timer_cancel(w->loop, &t->step);
	free(t->chunk);
	free(t);
	w->traffic = NULL;
}
