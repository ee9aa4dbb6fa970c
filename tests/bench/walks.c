/*
 * The registry's node-wide walks, timed in-process at 100,000 clients
 * on 8 workers (what one worker holds: its 12,500 clients, 87,500 of
 * its siblings', a mesh watcher): a sibling's death, a presence resync
 * of one sibling, a mesh link's forwarder clear (100,000 keys of the
 * other node).  Each is timed as the call that starts it (what the
 * event that caused it costs in its turn) and as the longest step of
 * the work left, if any.  Not part of check: `make bench-walks`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/bench/fleet.h"

#define NKEYS	FLEET_KEYS
#define NWK	FLEET_WORKERS
#define ROUNDS	5

struct timing {
	double	start, step, total;	/* ms */
	size_t	steps;
};

/* One worker's share of the fleet, with the other node's FLEET_KEYS
 * keys forwarded by mesh link 0 if mesh. */
static struct worker *
setup(bool mesh)
{
	struct worker	*w = fleet_new();
	uint8_t		 key[DERP_KEY_LEN];
	uint32_t	 i;

	for (i = 0; mesh && i < NKEYS; i++) {
		fleet_key(key, i, 1);
		if (registry_fwd_add(w, key, 0) < 0)
			abort();
	}
	return w;
}

/* What the call left for later turns, one step at a time. */
static void
steps(struct worker *w, struct timing *t)
{
	double	t0, d;
	bool	done;

	do {
		t0 = fleet_now_ms();
		done = registry_reap(w, REGISTRY_REAP_STEP);
		d = fleet_now_ms() - t0;
		t->total += d;
		t->steps++;
		if (d > t->step)
			t->step = d;
	} while (!done);
}

static void
sibling_down(struct timing *t)
{
	struct worker	*w = setup(false);
	double		 t0 = fleet_now_ms();

	registry_remote_sweep(w, 3, true);
	t->start = fleet_now_ms() - t0;
	t->total = t->start;
	steps(w, t);
	if (registry_count(w->reg) != NKEYS - NKEYS / NWK)
		abort();
	fleet_free(w);
}

/* A resync in which every client is still there: the mark, the
 * snapshot's 12,500 adds (bus messages over many turns: not timed),
 * the sweep. */
static void
resync(struct timing *mark, struct timing *sweep)
{
	struct worker		*w = setup(false);
	struct bus_client	 bc;
	double			 t0;
	uint32_t		 i;

	t0 = fleet_now_ms();
	registry_remote_mark(w, 3);
	mark->start = mark->total = fleet_now_ms() - t0;
	for (i = 3; i < NKEYS; i += NWK) {
		fleet_client(&bc, i, 0);
		if (registry_remote_add(w, &bc) < 0)
			abort();
	}
	t0 = fleet_now_ms();
	registry_remote_sweep(w, 3, false);
	sweep->start = sweep->total = fleet_now_ms() - t0;
	steps(w, sweep);
	if (registry_count(w->reg) != NKEYS)
		abort();
	fleet_free(w);
}

static void
fwd_clear(struct timing *t)
{
	struct worker	*w = setup(true);
	double		 t0 = fleet_now_ms();

	registry_fwd_clear(w, 0);
	t->start = t->total = fleet_now_ms() - t0;
	steps(w, t);
	if (registry_count(w->reg) != NKEYS)
		abort();
	fleet_free(w);
}

static int
cmp_d(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *name, struct timing *t)
{
	double	s[ROUNDS], p[ROUNDS], a[ROUNDS];
	int	i;

	for (i = 0; i < ROUNDS; i++) {
		s[i] = t[i].start;
		p[i] = t[i].step;
		a[i] = t[i].total;
	}
	qsort(s, ROUNDS, sizeof(s[0]), cmp_d);
	qsort(p, ROUNDS, sizeof(p[0]), cmp_d);
	qsort(a, ROUNDS, sizeof(a[0]), cmp_d);
	printf("%-14s start %7.3f ms (%.3f-%.3f)  longest step %6.3f ms  "
	    "steps %zu  total %7.3f ms\n", name, s[ROUNDS / 2], s[0],
	    s[ROUNDS - 1], p[ROUNDS / 2], t[0].steps, a[ROUNDS / 2]);
}

int
main(void)
{
	struct timing	down[ROUNDS], mark[ROUNDS], sweep[ROUNDS],
			fwd[ROUNDS];
	int		i;

	memset(down, 0, sizeof(down));
	memset(mark, 0, sizeof(mark));
	memset(sweep, 0, sizeof(sweep));
	memset(fwd, 0, sizeof(fwd));
	printf("%d keys, %d workers (medians of %d; start: min-max)\n",
	    NKEYS, NWK, ROUNDS);
	for (i = 0; i < ROUNDS; i++) {
		sibling_down(&down[i]);
		resync(&mark[i], &sweep[i]);
		fwd_clear(&fwd[i]);
	}
	report("sibling_down", down);
	report("resync_mark", mark);
	report("resync_sweep", sweep);
	report("fwd_clear", fwd);
	return 0;
}
