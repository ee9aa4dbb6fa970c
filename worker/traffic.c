/*
 * Traffic statistics (issue 5 item 6): GET /debug/traffic, one JSON line
 * per DERP connection and mesh link of the whole node, and the periodic
 * JSON-lines dump to traffic.dump_file.  The counters themselves are
 * plain fields bumped by conn.c, session.c and mesh/link.c; this file
 * only reads them.  Node-wide answers: the serving worker asks its
 * siblings over the bus and waits for them (bounded in time and size).
 * Every walk over w->conns (a query's own part, a sibling's answer, the
 * dump) takes a bounded step per loop turn, never all at once.
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
#define WAIT_MS		3000		/* siblings' answers: their walks
					 * take a step per turn */
#define REQS_MAX	4		/* queries waiting, per worker */
#define DUMP_CHUNK	(64 * 1024)	/* bytes per write(2) */
#define WORKERS_MAX	256		/* conf: workers <= 256 */
#define DUMP_STEP	128		/* connections per loop turn */
#define QUERY_STEP	512		/* the same, per query (unchanged
					 * counters are not skipped) */
#define ANSWERS_MAX	16		/* siblings' queries being answered */
#define STEP_DELAY_MS	1		/* 0 would run in the same turn */

/* A query's walk over w->conns, then the mesh links. */
struct twalk {
	struct conn		*cursor;
	int64_t			 now;
};

struct traffic_req {
	struct traffic_req	*next;
	struct worker		*w;
	struct conn		*c;
	uint32_t		 id;
	int			 waiting;	/* siblings not finished */
	int			 asked;
	bool			 expired;	/* no more waiting for them */
	bool			 local_done;	/* walk finished */
	struct twalk		 walk;
	uint8_t			 done[WORKERS_MAX / 8];
	struct bbuf		 body;
	bool			 truncated;
	struct loop_timer	 timer;
};

/* This worker's answer to a sibling's query, sent chunk by chunk. */
struct answer {
	struct answer		*next;
	struct traffic		*t;
	int			 to;
	uint32_t		 id;
	size_t			 total;
	bool			 failed;
	struct twalk		 walk;
	uint8_t			*chunk;		/* BUS_TRAFFIC_CHUNK */
	size_t			 chunk_len;
};

struct traffic {
	struct worker		*w;
	struct traffic_req	*reqs;
	int			 nreqs;
	uint32_t		 next_id;
	struct answer		*answers;
	int			 nanswers;
	struct loop_timer	 qstep;		/* queries' walks */
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

static void
walk_start(struct worker *w, struct twalk *k)
{
	k->cursor = w->conns;
	k->now = unix_ms();
}

/*
 * Up to budget more live DERP connections of this worker into sink,
 * then (at the end) its mesh links; true when the walk is over (or the
 * sink full).  Formatting is about 3 us per line: 100,000 at once would
 * hold every client of the worker for 300 ms.
 */
static bool
walk_step(struct worker *w, struct twalk *k, size_t budget, sink_fn sink,
    void *arg)
{
	struct traffic_rec	 r;
	struct mesh_link_stats	 st;
	struct conn		*c;
	char			 line[TRAFFIC_LINE_MAX];
	ssize_t			 n;
	int			 i;

	for (c = k->cursor; c != NULL && budget > 0; c = c->next, budget--) {
		if (!reportable(c))
			continue;
		rec_conn(c, &r, k->now);
		if ((n = traffic_format(line, sizeof(line), &r)) > 0 &&
		    sink(arg, line, (size_t)n) < 0) {
			k->cursor = NULL;
			return true;
		}
	}
	k->cursor = c;
	if (c != NULL)
		return false;
	for (i = 0; i < w->nlinks; i++) {
		rec_link(w, i, &st, &r, k->now);
		if ((n = traffic_format(line, sizeof(line), &r)) > 0 &&
		    sink(arg, line, (size_t)n) < 0)
			break;
	}
	return true;
}

static void	query_arm(struct traffic *t);

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
	http_respond_debug_take(c, 200, "OK", "application/x-ndjson", extra,
	    &q->body);
}

/* All answers are in, or the wait is over: respond and close. */
static void
req_finish(struct traffic_req *q)
{
	struct conn	*c = q->c;

	if (q->waiting > 0)
		log_warn_conn("traffic_partial", "conn=%" PRIu64 " missing=%d",
		    c->id, q->waiting);
	c->treq = NULL;
	c->close_after_write = true;
	req_respond(q);
	req_unlink(c->w->traffic, q);
	conn_flush_later(c);
}

/* The siblings' time is up: answer once the local walk is over. */
static void
req_timeout(struct loop_timer *tm)
{
	struct traffic_req	*q = tm->arg;

	q->expired = true;
	if (q->local_done)
		req_finish(q);
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
	walk_start(w, &q->walk);
	if (c->hp.method != HTTP_HEAD && w->nworkers > 1) {
		q->id = ++t->next_id;
		q->asked = q->waiting = node_traffic_request(w, q->id);
	}
	if (q->waiting > 0 &&
	    loop_timer_set(w->loop, &q->timer, WAIT_MS) < 0)
		q->waiting = 0;
	q->next = t->reqs;
	t->reqs = q;
	t->nreqs++;
	q->local_done = walk_step(w, &q->walk, QUERY_STEP, body_sink, q);
	if (q->local_done && q->waiting == 0) {
		req_respond(q);		/* keep-alive as usual */
		req_unlink(t, q);
		return;
	}
	c->treq = q;		/* http.c parses nothing more meanwhile */
	query_arm(t);
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
	if (--q->waiting == 0 && q->local_done)
		req_finish(q);
}

/* ---- answering a sibling ---- */

static int
answer_sink(void *arg, const char *line, size_t n)
{
	struct answer	*a = arg;

	if (a->total + n > HTTP_MAX)
		return -ENOSPC;
	if (a->chunk_len + n > BUS_TRAFFIC_CHUNK) {
		if (node_traffic_reply(a->t->w, a->to, a->id, a->chunk,
		    a->chunk_len, false) < 0) {
			a->failed = true;
			return -ENOSPC;
		}
		a->chunk_len = 0;
	}
	memcpy(a->chunk + a->chunk_len, line, n);
	a->chunk_len += n;
	a->total += n;
	return 0;
}

/* A step of the answer; true when it is over (sent, or failed: the
 * requester's wait ends it). */
static bool
answer_step(struct answer *a, size_t budget)
{
	struct worker	*w = a->t->w;

	if (!walk_step(w, &a->walk, budget, answer_sink, a))
		return false;
	if (!a->failed && node_traffic_reply(w, a->to, a->id, a->chunk,
	    a->chunk_len, true) < 0)
		log_warn_conn("traffic_answer_failed", "req=%" PRIu32 " to=%d",
		    a->id, a->to);
	return true;
}

static void
answer_free(struct traffic *t, struct answer *a)
{
	struct answer	**pp;

	for (pp = &t->answers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			t->nanswers--;
			break;
		}
	free(a->chunk);
	free(a);
}

void
traffic_answer(struct worker *w, int to, uint32_t id)
{
	struct traffic	*t = w->traffic;
	struct answer	*a;

	if (t == NULL)
		return;
	if (t->nanswers >= ANSWERS_MAX || (a = calloc(1, sizeof(*a))) ==
	    NULL) {
		(void)node_traffic_reply(w, to, id, NULL, 0, true);
		return;
	}
	if ((a->chunk = malloc(BUS_TRAFFIC_CHUNK)) == NULL) {
		free(a);
		(void)node_traffic_reply(w, to, id, NULL, 0, true);
		return;
	}
	a->t = t;
	a->to = to;
	a->id = id;
	walk_start(w, &a->walk);
	a->next = t->answers;
	t->answers = a;
	t->nanswers++;
	if (answer_step(a, QUERY_STEP))
		answer_free(t, a);
	else
		query_arm(t);
}

/* ---- the queries' steps ---- */

/* A step of every query's walk; true when one is left. */
static bool
query_run(struct traffic *t, size_t budget)
{
	struct traffic_req	*q, *nq;
	struct answer		*a, *na;
	bool			 more = false;

	for (q = t->reqs; q != NULL; q = nq) {
		nq = q->next;	/* req_finish frees q, nothing else */
		if (q->local_done)
			continue;
		if (!walk_step(t->w, &q->walk, budget, body_sink, q)) {
			more = true;
			continue;
		}
		q->local_done = true;
		if (q->waiting == 0 || q->expired)
			req_finish(q);
	}
	for (a = t->answers; a != NULL; a = na) {
		na = a->next;
		if (answer_step(a, budget))
			answer_free(t, a);
		else
			more = true;
	}
	return more;
}

static void
query_timer(struct loop_timer *tm)
{
	struct traffic	*t = tm->arg;

	if (query_run(t, QUERY_STEP) &&
	    loop_timer_set(t->w->loop, &t->qstep, STEP_DELAY_MS) < 0)
		(void)query_run(t, SIZE_MAX);	/* no memory: finish */
}

static void
query_arm(struct traffic *t)
{
	if (!loop_timer_armed(&t->qstep) &&
	    loop_timer_set(t->w->loop, &t->qstep, STEP_DELAY_MS) < 0)
		(void)query_run(t, SIZE_MAX);
}

/* ---- the dump ---- */

static void
dump_write(struct traffic *t)
{
	struct worker	*w = t->w;
	const char	*p, *nl;
	size_t		 left = bbuf_len(&t->lines), n;
	ssize_t		 r;
	int		 fd = -1, err = 0;

	if (left == 0 || t->path[0] == '\0')
		goto out;
	/* Not before: an empty buffer has no memory (p NULL, + 0 is UB). */
	p = (const char *)t->lines.p + t->lines.off;
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
	struct traffic		*t = w->traffic;
	struct traffic_req	*q;
	struct answer		*a;

	if (t == NULL)
		return;
	if (t->cursor == c)
		t->cursor = c->next;
	for (q = t->reqs; q != NULL; q = q->next)
		if (q->walk.cursor == c)
			q->walk.cursor = c->next;
	for (a = t->answers; a != NULL; a = a->next)
		if (a->walk.cursor == c)
			a->walk.cursor = c->next;
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
	loop_timer_init(&t->qstep, query_timer, t);
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
	while (t->answers != NULL)
		answer_free(t, t->answers);
	if (t->path[0] != '\0')
		dump_links(t, unix_ms());
	dump_write(t);
	loop_timer_cancel(w->loop, &t->tick);
	loop_timer_cancel(w->loop, &t->step);
	loop_timer_cancel(w->loop, &t->qstep);
	free(t);
	w->traffic = NULL;
}
