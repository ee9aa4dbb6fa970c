/*
 * Unit tests for common/bus.c: codec round trip and malformed messages;
 * three worker buses in one process converge on the
 * node-wide table through adds, deletes, late joins, WORKER_DOWN, a
 * restarted publisher (new epoch) and thousands of events; snapshots
 * served a few entries per step while clients come and go (the joiner
 * still ends with exactly the publishers' tables); a traffic query
 * answered in chunks by every sibling; deltas batched per turn and the
 * batch codec; a replay of the deltas behind a snapshot in bounded
 * steps (the sweep after its last), and a resync in the middle of one.  Progress is polled against
 * deadlines.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/bus.h"

#define NW	3
#define MAXE	12000

struct table {
	struct bus_client	e[MAXE];
	bool			stale[MAXE];
	int			n;
	int			self;
};

static struct table	tabs[NW];
static struct bus	*buses[NW];
static char		 dir[64];

static int
find(struct table *t, const struct bus_client *c)
{
	int	i;

	for (i = 0; i < t->n; i++)
		if (t->e[i].worker == c->worker && t->e[i].conn_id == c->conn_id)
			return i;
	return -1;
}

static void
del_at(struct table *t, int i)
{
	t->e[i] = t->e[t->n - 1];
	t->stale[i] = t->stale[t->n - 1];
	t->n--;
}

static void
on_event(void *arg, enum bus_event ev, const struct bus_client *c)
{
	struct table	*t = arg;
	int		 i = find(t, c);

	if (ev == BUS_DEL) {
		if (i >= 0)
			del_at(t, i);
		return;
	}
	if (i < 0 && t->n < MAXE)
		i = t->n++;
	if (i >= 0) {
		t->e[i] = *c;
		t->stale[i] = false;
	}
}

static void
on_begin(void *arg, int w)
{
	struct table	*t = arg;
	int		 i;

	for (i = 0; i < t->n; i++)
		if (t->e[i].worker == w)
			t->stale[i] = true;
}

static int	ends[NW][NW];	/* on_end calls: [subscriber][publisher] */

static void
sweep(void *arg, int w)
{
	struct table	*t = arg;
	int		 i;

	for (i = t->n - 1; i >= 0; i--)
		if (t->e[i].worker == w && t->stale[i])
			del_at(t, i);
}

static void
on_end(void *arg, int w)
{
	struct table	*t = arg;

	ends[t->self][w]++;
	sweep(arg, w);
}

static void
on_down(void *arg, int w)
{
	on_begin(arg, w);
	sweep(arg, w);
}

/* Local clients of each worker: what its snapshots serve, SNAP_STEP
 * entries per step from a cursor, as the worker walks w->conns (a
 * deleted entry closes up behind the cursor, new ones are appended). */
static struct table	local[NW];
#define SNAP_STEP	5
static struct {
	bool	on;
	int	idx;
} srv[NW][NW];
static int	serve_steps;

static void
on_snapshot(void *arg, struct bus *b, int to)
{
	struct table	*t = arg;

	(void)b;
	assert_true(to >= 0 && to < NW && to != t->self);
	srv[t->self][to].on = true;
	srv[t->self][to].idx = 0;
}

static void
serve_some(void)
{
	int	w, to, k;

	for (w = 0; w < NW; w++)
		for (to = 0; buses[w] != NULL && to < NW; to++) {
			if (!srv[w][to].on)
				continue;
			serve_steps++;
			for (k = 0; k < SNAP_STEP && srv[w][to].idx <
			    local[w].n; k++)
				if (bus_snapshot_add(buses[w], to,
				    &local[w].e[srv[w][to].idx++]) < 0) {
					srv[w][to].on = false;
					break;
				}
			if (srv[w][to].on && srv[w][to].idx >= local[w].n) {
				srv[w][to].on = false;
				(void)bus_snapshot_end(buses[w], to);
			}
		}
}

static void
del_local(int w, int i)
{
	struct bus_client	c = local[w].e[i];
	int			to;

	memmove(&local[w].e[i], &local[w].e[i + 1], (size_t)(local[w].n -
	    i - 1) * sizeof(c));
	local[w].n--;
	for (to = 0; to < NW; to++)
		if (srv[w][to].idx > i)
			srv[w][to].idx--;
	assert_int_equal(bus_publish(buses[w], BUS_DEL, &c), 0);
}

/* Traffic query: each worker answers with a small chunk, a full-size
 * one and a last one; worker 0 collects what arrives. */
static uint8_t	big[BUS_TRAFFIC_CHUNK];
static size_t	got_bytes[NW];
static int	got_last[NW], got_chunks[NW];
static uint32_t	got_req[NW];

static void
on_traffic_req(void *arg, struct bus *b, int to, uint32_t req)
{
	struct table	*t = arg;
	char		 first[32];
	int		 n = snprintf(first, sizeof(first), "w%d\n", t->self);

	assert_int_equal(to, 0);
	assert_int_equal(bus_traffic_reply(b, to, req, first, (size_t)n,
	    false), 0);
	assert_int_equal(bus_traffic_reply(b, to, req, big, sizeof(big),
	    false), 0);
	assert_int_equal(bus_traffic_reply(b, to, req, big, sizeof(big) + 1,
	    false), -EMSGSIZE);
	assert_int_equal(bus_traffic_reply(b, to, req, "end\n", 4, true), 0);
}

static void
on_traffic_data(void *arg, int worker, uint32_t req, const uint8_t *p,
    size_t n, bool last)
{
	struct table	*t = arg;
	char		 first[32];

	assert_int_equal(t->self, 0);
	assert_true(worker > 0 && worker < NW);
	if (got_chunks[worker] == 0) {
		snprintf(first, sizeof(first), "w%d\n", worker);
		assert_int_equal(n, strlen(first));
		assert_memory_equal(p, first, n);
	}
	got_req[worker] = req;
	got_chunks[worker]++;
	got_bytes[worker] += n;
	got_last[worker] += last;
}

static struct bus *
open_worker(int w)
{
	struct bus_callbacks	cb = { on_event, on_begin, on_end, on_down,
				    on_snapshot, on_traffic_req,
				    on_traffic_data, &tabs[w] };

	tabs[w].self = w;
	return bus_open(dir, w, NW, &cb);
}

static uint64_t
ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* b's descriptors appended to pf (64 at most), for a poll of them all. */
static void
add_fds(struct pollfd *pf, int *nf, struct bus *b)
{
	int	fds[32], k, i;

	k = bus_fds(b, fds, 32);
	for (i = 0; i < k && *nf < 64; i++) {
		pf[*nf].fd = fds[i];
		pf[*nf].events = POLLIN;
		(*nf)++;
	}
}

/* Drive every bus until each is synced and each worker's table holds
 * all others' locals. */
static bool
converge(int timeout_ms)
{
	uint64_t	deadline = ms() + (uint64_t)timeout_ms, last_tick = 0;
	struct pollfd	pf[64];
	int		w, k, nf, i, want;

	while (ms() < deadline) {
		bool	ok = true;

		for (w = 0; w < NW; w++) {
			if (buses[w] == NULL)
				continue;
			want = 0;
			for (k = 0; k < NW; k++)
				if (k != w && buses[k] != NULL)
					want += local[k].n;
			/* Deltas can fill a table before the snapshots
			 * finish: synced is part of converged. */
			if (tabs[w].n != want || !bus_synced(buses[w]))
				ok = false;
			for (i = 0; ok && i < tabs[w].n; i++)
				if (buses[tabs[w].e[i].worker] == NULL)
					ok = false;
		}
		if (ok)
			return true;
		serve_some();
		nf = 0;
		for (w = 0; w < NW; w++) {
			if (buses[w] == NULL)
				continue;
			if (ms() - last_tick > 200)
				bus_tick(buses[w]);
			(void)bus_flush(buses[w]);	/* a worker's turn end */
			bus_process(buses[w]);
			add_fds(pf, &nf, buses[w]);
		}
		if (ms() - last_tick > 200)
			last_tick = ms();
		(void)poll(pf, (nfds_t)nf, 20);
	}
	return false;
}

static void
add_local(int w, uint64_t id)
{
	struct bus_client	c;

	memset(&c, 0, sizeof(c));
	memcpy(c.key, &id, sizeof(id));
	c.key[31] = (uint8_t)w;
	c.worker = (uint16_t)w;
	c.conn_id = id;
	c.flags = 1;
	c.port = (uint16_t)id;
	local[w].e[local[w].n++] = c;
	assert_int_equal(bus_publish(buses[w], BUS_ADD, &c), 0);
}

static int
setup(void **state)
{
	int	w;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/derpd-bus-XXXXXX");
	assert_non_null(mkdtemp(dir));
	bus_cleanup_dir(dir, NW);
	for (w = 0; w < NW; w++)
		assert_non_null(buses[w] = open_worker(w));
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[128];
	int	w;

	(void)state;
	for (w = 0; w < NW; w++)
		bus_close(buses[w]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_bus_codec(void **state)
{
	uint8_t		junk[200];
	struct bus_msg	m;

	(void)state;
	memset(junk, 0, sizeof(junk));
	assert_int_equal(bus_decode(junk, 0, &m), -EPROTO);
	assert_int_equal(bus_decode(junk, sizeof(junk), &m), -EPROTO);
	junk[0] = 1;
	junk[1] = 4;	/* heartbeat: exactly the 20-byte header */
	assert_int_equal(bus_decode(junk, 20, &m), 0);
	assert_int_equal(bus_decode(junk, 21, &m), -EPROTO);
	assert_int_equal(bus_decode(junk, 19, &m), -EPROTO);
	junk[1] = 1;	/* add: 20 + 69 */
	assert_int_equal(bus_decode(junk, 89, &m), 0);
	assert_int_equal(bus_decode(junk, 88, &m), -EPROTO);
	junk[1] = 6;	/* snapshot request: 20 + worker + request */
	assert_int_equal(bus_decode(junk, 26, &m), 0);
	assert_int_equal(bus_decode(junk, 24, &m), -EPROTO);
	junk[1] = 7;	/* snapshot entry: 20 + 69 + request */
	assert_int_equal(bus_decode(junk, 93, &m), 0);
	assert_int_equal(bus_decode(junk, 89, &m), -EPROTO);
	junk[1] = 8;	/* snapshot end: 20 + request */
	assert_int_equal(bus_decode(junk, 24, &m), 0);
	assert_int_equal(bus_decode(junk, 20, &m), -EPROTO);
	junk[1] = 9;	/* close: 20 + 69 */
	assert_int_equal(bus_decode(junk, 89, &m), 0);
	junk[1] = 10;	/* traffic request: 20 + 4 */
	assert_int_equal(bus_decode(junk, 24, &m), 0);
	assert_int_equal(bus_decode(junk, 25, &m), -EPROTO);
	junk[1] = 11;	/* traffic data: 20 + 9 + len */
	junk[28] = 3;
	assert_int_equal(bus_decode(junk, 32, &m), 0);
	assert_int_equal(m.dlen, 3);
	assert_ptr_equal(m.data, junk + 29);
	assert_int_equal(bus_decode(junk, 31, &m), -EPROTO);
	assert_int_equal(bus_decode(junk, 33, &m), -EPROTO);
	junk[28] = 0;
	junk[1] = 1;
	junk[0] = 2;	/* unknown version */
	assert_int_equal(bus_decode(junk, 89, &m), -EPROTO);
	junk[0] = 1;
	junk[1] = 99;
	assert_int_equal(bus_decode(junk, 20, &m), -EPROTO);
}

static int	batch_seen;
static void	assert_views_exact(void);

static void
count_rec(void *arg, const struct bus_msg *m)
{
	(void)arg;
	assert_int_equal(m->type, 1);
	batch_seen++;
}

/* A batch: [version, 12] then [length, delta]...; deltas only. */
static void
test_bus_batch_codec(void **state)
{
	uint8_t	b[2 + 3 * 90];
	size_t	i;

	(void)state;
	memset(b, 0, sizeof(b));
	b[0] = 1;
	b[1] = 12;
	for (i = 0; i < 3; i++) {
		b[2 + i * 90] = 89;
		b[3 + i * 90] = 1;	/* version */
		b[4 + i * 90] = 1;	/* add */
	}
	batch_seen = 0;
	assert_int_equal(bus_decode_batch(b, sizeof(b), count_rec, NULL), 3);
	assert_int_equal(batch_seen, 3);
	assert_int_equal(bus_decode_batch(b, 2, count_rec, NULL), 0);
	/* a length past the end; a record that does not decode */
	assert_int_equal(bus_decode_batch(b, sizeof(b) - 1, count_rec,
	    NULL), -EPROTO);
	b[2 + 90] = 88;
	assert_int_equal(bus_decode_batch(b, sizeof(b), count_rec, NULL),
	    -EPROTO);
	b[2 + 90] = 89;
	b[4 + 90] = 6;	/* a snapshot request has no place in a batch */
	assert_int_equal(bus_decode_batch(b, sizeof(b), count_rec, NULL),
	    -EPROTO);
	b[4 + 90] = 1;
	b[0] = 2;
	assert_int_equal(bus_decode_batch(b, sizeof(b), count_rec, NULL),
	    -EPROTO);
	b[0] = 1;
	b[1] = 1;	/* a plain delta is not a batch */
	assert_int_equal(bus_decode_batch(b, sizeof(b), count_rec, NULL),
	    -EPROTO);
}

/* 150 deltas in one turn leave as 3 messages (64, 64, the flush's 22),
 * and every sibling ends with all of them. */
static void
test_bus_deltas_batched(void **state)
{
	uint64_t	before = bus_stats(buses[2])->batches;
	int		i;

	(void)state;
	assert_true(converge(10000));
	before = bus_stats(buses[2])->batches;
	for (i = 0; i < 150; i++)
		add_local(2, (uint64_t)(900000 + i));
	assert_int_equal(bus_stats(buses[2])->batches - before, 2);
	assert_int_equal(bus_flush(buses[2]), 0);
	assert_int_equal(bus_stats(buses[2])->batches - before, 3);
	assert_int_equal(bus_flush(buses[2]), 0);	/* nothing left */
	assert_int_equal(bus_stats(buses[2])->batches - before, 3);
	assert_true(converge(10000));
	assert_views_exact();
	assert_int_equal(bus_stats(buses[0])->bad_messages, 0);
}

static void
test_bus_adds_and_dels_converge(void **state)
{
	int	w, i;

	(void)state;
	for (w = 0; w < NW; w++)
		for (i = 0; i < 10; i++)
			add_local(w, (uint64_t)(w * 1000 + i + 1));
	assert_true(converge(10000));
	for (w = 0; w < NW; w++)
		assert_true(bus_synced(buses[w]));
	/* Delete half of worker 1's clients. */
	for (i = 0; i < 5; i++)
		del_local(1, local[1].n - 1);
	assert_true(converge(10000));
	assert_int_equal(tabs[0].n, 10 + 5);
}

static void
test_bus_worker_down_and_restart(void **state)
{
	(void)state;
	/* Worker 2 dies: the supervisor says so, everyone drops it. */
	bus_close(buses[2]);
	buses[2] = NULL;
	bus_worker_down(buses[0], 2);
	bus_worker_down(buses[1], 2);
	local[2].n = 0;
	assert_true(converge(10000));
	assert_int_equal(tabs[0].n, 5);
	/* Its successor (new epoch) comes back with new clients. */
	buses[2] = open_worker(2);
	assert_non_null(buses[2]);
	memset(&tabs[2], 0, sizeof(tabs[2]));
	tabs[2].self = 2;
	add_local(2, 7001);
	add_local(2, 7002);
	assert_true(converge(10000));
	assert_int_equal(tabs[0].n, 7);
	assert_int_equal(tabs[2].n, 10 + 5);	/* it learnt the others */
}

static void
test_bus_many_events(void **state)
{
	int	i;

	(void)state;
	for (i = 0; i < 4000; i++)
		add_local(0, (uint64_t)(100000 + i));
	assert_true(converge(20000));
	assert_int_equal(tabs[1].n, local[0].n + local[2].n);
	assert_int_equal(bus_stats(buses[1])->bad_messages, 0);
}

/* Every worker's view is exactly the others' locals, field by field. */
static void
assert_views_exact(void)
{
	int	w, k, i, j, want;

	for (w = 0; w < NW; w++) {
		want = 0;
		for (k = 0; k < NW; k++) {
			if (k == w)
				continue;
			want += local[k].n;
			for (i = 0; i < local[k].n; i++) {
				if ((j = find(&tabs[w], &local[k].e[i])) < 0)
					fail_msg("worker %d lacks %d/%llu", w,
					    k, (unsigned long long)
					    local[k].e[i].conn_id);
				assert_int_equal(tabs[w].e[j].port,
				    local[k].e[i].port);
			}
		}
		assert_int_equal(tabs[w].n, want);
	}
}

/* A joiner's snapshots take hundreds of steps; clients join and leave
 * the publisher between the steps (behind and ahead of its cursor), and
 * the joiner still ends with exactly the publishers' tables. */
static void
test_bus_snapshot_in_steps(void **state)
{
	uint64_t	deadline = ms() + 20000, id = 500000;
	struct pollfd	pf[64];
	int		w, nf, churn = 0, steps0;

	(void)state;
	assert_true(local[0].n > 40 * SNAP_STEP);
	bus_close(buses[2]);
	buses[2] = NULL;
	bus_worker_down(buses[0], 2);
	bus_worker_down(buses[1], 2);
	local[2].n = 0;
	memset(&tabs[2], 0, sizeof(tabs[2]));
	assert_non_null(buses[2] = open_worker(2));
	steps0 = serve_steps;
	while (ms() < deadline && !(bus_synced(buses[2]) && !srv[0][2].on)) {
		if (srv[0][2].on) {
			/* One new (appended), one gone ahead of the cursor,
			 * one behind it. */
			add_local(0, id++);
			del_local(0, local[0].n - 2);
			if (srv[0][2].idx > 1)
				del_local(0, srv[0][2].idx / 2);
			churn++;
		}
		serve_some();
		nf = 0;
		for (w = 0; w < NW; w++) {
			bus_process(buses[w]);
			add_fds(pf, &nf, buses[w]);
		}
		(void)poll(pf, (nfds_t)nf, 1);
	}
	assert_true(bus_synced(buses[2]));
	assert_true(churn > 20);
	assert_true(serve_steps - steps0 > 20);
	assert_true(converge(20000));
	assert_views_exact();
	assert_int_equal(bus_stats(buses[2])->bad_messages, 0);
}

/* Worker 2 restarts; the others hold its snapshots (not served) until
 * both are asked and their heartbeats reach it (a delta lost to a
 * connection not yet up would be a gap: a resync, not a replay), then
 * publish n adds
 * and a few deletes that wait behind the snapshots. */
static void
restart_held(int n, uint64_t *id)
{
	uint64_t	deadline = ms() + 10000;
	struct pollfd	pf[64];
	int		w, i, nf;

	bus_close(buses[2]);
	buses[2] = NULL;
	bus_worker_down(buses[0], 2);
	bus_worker_down(buses[1], 2);
	local[2].n = 0;
	memset(&tabs[2], 0, sizeof(tabs[2]));
	tabs[2].self = 2;
	assert_non_null(buses[2] = open_worker(2));
	while (ms() < deadline && !(srv[0][2].on && srv[1][2].on &&
	    bus_stats(buses[2])->received >= 20)) {
		nf = 0;
		for (w = 0; w < NW; w++) {
			if (w != 2)
				bus_tick(buses[w]);
			bus_process(buses[w]);
			add_fds(pf, &nf, buses[w]);
		}
		(void)poll(pf, (nfds_t)nf, 5);
	}
	assert_true(srv[0][2].on && srv[1][2].on);
	assert_int_equal(srv[0][2].idx, 0);
	for (i = 0; i < n; i++)
		add_local(0, (*id)++);
	for (i = 0; i < 50; i++) {
		add_local(1, (*id)++);
		del_local(0, local[0].n / 2);
	}
	assert_int_equal(bus_flush(buses[0]), 0);
	assert_int_equal(bus_flush(buses[1]), 0);
}

/* One turn of every bus, worker 2's bus_process() checked: it replays
 * at most BUS_REPLAY_STEP.  The count it replayed. */
static uint64_t
turn_checked(void)
{
	struct pollfd	pf[64];
	uint64_t	r0;
	int		w, nf = 0;

	serve_some();
	for (w = 0; w < NW; w++) {
		r0 = bus_stats(buses[w])->replayed;
		bus_process(buses[w]);
		assert_true(bus_stats(buses[w])->replayed - r0 <=
		    BUS_REPLAY_STEP);
		if (w == 2)
			r0 = bus_stats(buses[w])->replayed - r0;
		add_fds(pf, &nf, buses[w]);
	}
	(void)poll(pf, (nfds_t)nf, 1);
	return r0;
}

/* A snapshot with more deltas behind it than one step replays: the
 * replay takes several bus_process() calls, deltas that arrive
 * meanwhile queue behind it, the sweep (on_end) comes only after the
 * last, and the views end exact. */
static void
test_bus_replay_in_steps(void **state)
{
	uint64_t	deadline = ms() + 20000, id = 2000000, got;
	int		steps = 0, ends0, during = 0;

	(void)state;
	restart_held(BUS_REPLAY_STEP + BUS_REPLAY_STEP / 2, &id);
	ends0 = ends[2][0];
	while (ms() < deadline && (srv[0][2].on || srv[1][2].on ||
	    !bus_synced(buses[2]) || bus_replaying(buses[2]))) {
		if (bus_replaying(buses[2])) {
			/* More behind the replay, until it ends (net one
			 * more a turn: converge() cannot mistake one in
			 * flight for none). */
			add_local(0, id++);
			add_local(0, id++);
			del_local(0, local[0].n - 3);
			assert_int_equal(bus_flush(buses[0]), 0);
			during++;
		}
		if ((got = turn_checked()) > 0)
			steps++;
		if (bus_replaying(buses[2]))	/* not swept yet */
			assert_int_equal(ends[2][0], ends0);
	}
	assert_true(bus_synced(buses[2]));
	assert_false(bus_replaying(buses[2]));
	assert_true(steps >= 2);
	assert_true(during >= 1);
	assert_int_equal(ends[2][0], ends0 + 1);
	assert_true(bus_stats(buses[2])->replayed >= BUS_REPLAY_STEP);
	assert_int_equal(bus_stats(buses[2])->pending_dropped, 0);
	assert_true(converge(20000));
	assert_views_exact();
	assert_int_equal(bus_stats(buses[2])->bad_messages, 0);
}

/* A resync (here a WORKER_DOWN) while a replay is under way: what
 * waits is dropped, that sync's on_end never comes, the next snapshot
 * marks and sweeps again, and the views end exact. */
static void
test_bus_resync_during_replay(void **state)
{
	uint64_t	deadline = ms() + 20000, id = 3000000;
	uint64_t	r0;
	int		ends0;

	(void)state;
	restart_held(2 * BUS_REPLAY_STEP, &id);
	ends0 = ends[2][0];
	while (ms() < deadline && !bus_replaying(buses[2]))
		(void)turn_checked();
	assert_true(bus_replaying(buses[2]));
	r0 = bus_stats(buses[2])->replayed;
	assert_true(r0 > 0);
	bus_worker_down(buses[2], 0);	/* drops 0's entries, asks again */
	assert_false(bus_replaying(buses[2]) && bus_stats(buses[2])->replayed
	    - r0 >= 2 * BUS_REPLAY_STEP);
	assert_int_equal(ends[2][0], ends0);
	while (ms() < deadline && (srv[0][2].on || srv[1][2].on ||
	    bus_replaying(buses[2]) || ends[2][0] == ends0))
		(void)turn_checked();
	assert_int_equal(ends[2][0], ends0 + 1);
	assert_true(converge(20000));
	assert_views_exact();
	assert_int_equal(bus_stats(buses[2])->bad_messages, 0);
}

static void
test_bus_traffic_query(void **state)
{
	uint64_t	deadline = ms() + 10000;
	struct pollfd	pf[64];
	int		w, nf;

	(void)state;
	memset(big, '.', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(bus_traffic_request(buses[0], 77), NW - 1);
	while (ms() < deadline && (got_last[1] == 0 || got_last[2] == 0)) {
		nf = 0;
		for (w = 0; w < NW; w++) {
			bus_process(buses[w]);
			add_fds(pf, &nf, buses[w]);
		}
		(void)poll(pf, (nfds_t)nf, 20);
	}
	for (w = 1; w < NW; w++) {
		assert_int_equal(got_last[w], 1);
		assert_int_equal(got_chunks[w], 3);
		assert_int_equal(got_req[w], 77);
		assert_int_equal(got_bytes[w], 3 + sizeof(big) + 4);
	}
	assert_int_equal(bus_stats(buses[0])->bad_messages, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bus_codec),
		cmocka_unit_test(test_bus_adds_and_dels_converge),
		cmocka_unit_test(test_bus_worker_down_and_restart),
		cmocka_unit_test(test_bus_many_events),
		cmocka_unit_test(test_bus_snapshot_in_steps),
		cmocka_unit_test(test_bus_traffic_query),
		cmocka_unit_test(test_bus_batch_codec),
		cmocka_unit_test(test_bus_deltas_batched),
		cmocka_unit_test(test_bus_replay_in_steps),
		cmocka_unit_test(test_bus_resync_during_replay),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
