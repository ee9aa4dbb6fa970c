/*
 * The presence bus's replay of deltas buffered during a snapshot, timed
 * in-process through the real path: two buses over ipc, the subscriber's
 * callbacks into a real registry holding what one worker of 8 holds at
 * 100,000 clients (and a mesh watcher, told of every new key as
 * node.c's on_event does).  The publisher serves its 12,500 clients as
 * a snapshot, then N more connect before the snapshot's end; each
 * bus_process() call of the subscriber from the END on is timed.  Also
 * the registry's cost alone per delta.  Not part of check:
 * `make bench-replay`.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/fleet.h"

#define NKEYS	FLEET_KEYS
#define NWK	FLEET_WORKERS
#define PUBW	1		/* the publisher's worker index */
#define ROUNDS	3
#ifndef BUS_REPLAY_STEP
#define BUS_REPLAY_STEP	0	/* unbounded */
#endif

/* The subscriber's callbacks: node.c's, on the fake worker. */
static size_t	events;

static void
sub_event(void *arg, enum bus_event ev, const struct bus_client *c)
{
	struct worker	*w = arg;

	events++;
	if (ev == BUS_ADD && registry_remote_add(w, c) == 1)
		session_watchers_present(w, c->key, c->ip16, c->port, c->flags);
	else if (ev == BUS_DEL)
		registry_remote_del(w, c);
}

static void
sub_begin(void *arg, int worker)
{
	registry_remote_mark(arg, worker);
}

static void
sub_end(void *arg, int worker)
{
	registry_remote_sweep(arg, worker, false);
}

static void
sub_snapshot(void *arg, struct bus *b, int to)
{
	(void)arg;
	(void)bus_snapshot_end(b, to);	/* the subscriber has no clients */
}

/* The publisher defers its snapshot until told. */
static int	asked = -1;

static void
pub_snapshot(void *arg, struct bus *b, int to)
{
	(void)arg;
	(void)b;
	asked = to;
}

static void
pump(struct bus **b, int ms)
{
	struct pollfd	pf[16];
	int		fds[8], i, k, nf = 0;

	for (i = 0; i < 2; i++) {
		bus_process(b[i]);
		k = bus_fds(b[i], fds, 8);
		while (k-- > 0 && nf < 16) {
			pf[nf].fd = fds[k];
			pf[nf++].events = POLLIN;
		}
	}
	(void)poll(pf, (nfds_t)nf, ms);
}

struct result {
	double	end_call, longest, total;	/* ms */
	int	calls;
	double	reg_ns;				/* registry alone, per add */
};

static void
one(const char *dir, uint32_t n, struct result *r)
{
	struct worker		*w = fleet_new();
	struct bus_callbacks	 scb = { sub_event, sub_begin, sub_end, NULL,
				    sub_snapshot, NULL, NULL, w };
	struct bus_callbacks	 pcb = { NULL, NULL, NULL, NULL,
				    pub_snapshot, NULL, NULL, NULL };
	struct bus		*b[2];
	struct bus_client	 bc;
	uint64_t		 recv0;
	size_t			 want;
	double			 t0, d, deadline;
	uint32_t		 i;

	bus_cleanup_dir(dir, 2);
	if ((b[1] = bus_open(dir, 1, 2, &pcb)) == NULL ||
	    (b[0] = bus_open(dir, 0, 2, &scb)) == NULL)
		abort();
	/* Until the subscriber has asked and hears the publisher. */
	asked = -1;
	deadline = fleet_now_ms() + 10000;
	while ((asked < 0 || bus_stats(b[0])->received == 0) &&
	    fleet_now_ms() < deadline) {
		bus_tick(b[1]);
		pump(b, 10);
	}
	if (asked != 0)
		abort();
	/* The snapshot: the publisher's 12,500 clients. */
	events = 0;
	for (i = PUBW; i < NKEYS; i += NWK) {
		fleet_client(&bc, i, 0);
		if (bus_snapshot_add(b[1], 0, &bc) < 0)
			abort();
	}
	while (events < NKEYS / NWK && fleet_now_ms() < deadline)
		pump(b, 10);
	/* N new clients meanwhile: buffered behind the snapshot. */
	recv0 = bus_stats(b[0])->received;
	for (i = 0; i < n; i++) {
		fleet_client(&bc, i * NWK + PUBW, 2);
		if (bus_publish(b[1], BUS_ADD, &bc) < 0)
			abort();
	}
	(void)bus_flush(b[1]);
	while (bus_stats(b[0])->received - recv0 < (n + BUS_BATCH_MAX - 1) /
	    BUS_BATCH_MAX && fleet_now_ms() < deadline)
		pump(b, 10);
	if (events != NKEYS / NWK)
		abort();	/* a delta was applied before the END */
	if (bus_snapshot_end(b[1], 0) < 0)
		abort();
	/* From the END on: every call of the subscriber's, timed. */
	want = NKEYS / NWK + n;
	memset(r, 0, sizeof(*r));
	while ((events < want || !bus_synced(b[0])) && fleet_now_ms() < deadline) {
		t0 = fleet_now_ms();
		bus_process(b[0]);
		d = fleet_now_ms() - t0;
		if (events > NKEYS / NWK || bus_synced(b[0])) {
			if (r->calls++ == 0)
				r->end_call = d;
			r->total += d;
			if (d > r->longest)
				r->longest = d;
		}
		if (events < want || !bus_synced(b[0]))
			bus_process(b[1]);	/* b[0]: only the timed calls */
	}
	if (events != want || registry_count(w->reg) != NKEYS + n)
		abort();
	bus_close(b[0]);
	bus_close(b[1]);
	fleet_free(w);

	/* The registry alone: the same n adds, straight in. */
	w = fleet_new();
	t0 = fleet_now_ms();
	for (i = 0; i < n; i++) {
		fleet_client(&bc, i * NWK + PUBW, 2);
		if (registry_remote_add(w, &bc) == 1)
			session_watchers_present(w, bc.key, bc.ip16, bc.port,
			    bc.flags);
	}
	r->reg_ns = (fleet_now_ms() - t0) * 1e6 / n;
	fleet_free(w);
}

static int
cmp_d(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(void)
{
	static const uint32_t	ns[] = { 10000, 65000 };
	struct result		r[ROUNDS];
	double			lg[ROUNDS];
	char			dir[64];
	char			cmd[128];
	size_t			k;
	int			i;

	snprintf(dir, sizeof(dir), "/tmp/derpd-replay-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	printf("replay after a snapshot: %d keys, %d workers, step %d "
	    "(medians of %d)\n", NKEYS, NWK, BUS_REPLAY_STEP, ROUNDS);
	for (k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		for (i = 0; i < ROUNDS; i++) {
			one(dir, ns[k], &r[i]);
			lg[i] = r[i].longest;
		}
		qsort(lg, ROUNDS, sizeof(lg[0]), cmp_d);
		printf("n=%-6u end call %7.3f ms  longest call %7.3f ms  "
		    "calls %d  total %7.3f ms  registry %5.0f ns/add\n",
		    ns[k], r[ROUNDS / 2].end_call, lg[ROUNDS / 2],
		    r[ROUNDS / 2].calls, r[ROUNDS / 2].total,
		    r[ROUNDS / 2].reg_ns);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
