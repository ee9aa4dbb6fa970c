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

#include "common/bus.h"
#include "worker/wk.h"

#define NKEYS	100000
#define NWK	8
#define ROUNDS	5

struct timing {
	double	start, step, total;	/* ms */
	size_t	steps;
};

static double
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
key_of(uint8_t key[DERP_KEY_LEN], uint32_t i, uint8_t tag)
{
	memset(key, 0, DERP_KEY_LEN);
	memcpy(key, &i, sizeof(i));
	key[31] = tag;
}

static void
client_of(struct bus_client *bc, uint32_t i, uint8_t tag)
{
	memset(bc, 0, sizeof(*bc));
	key_of(bc->key, i, tag);
	bc->worker = (uint16_t)(i % NWK);
	bc->conn_id = i;
}

static struct conn	*locals[NKEYS];

static struct worker *
setup(bool mesh)
{
	struct worker		*w = calloc(1, sizeof(*w));
	struct conn		*watcher;
	struct bus_client	 bc;
	uint32_t		 i;

	if (w == NULL || (w->loop = loop_new()) == NULL ||
	    (w->reg = registry_new()) == NULL)
		abort();
	w->m = &w->m_local;
	w->nworkers = NWK;
	w->cfg.queue_packets = 32;
	w->cfg.queue_bytes = 98304;
	/* The other node's link watching this one. */
	if ((watcher = calloc(1, sizeof(*watcher))) == NULL)
		abort();
	watcher->w = w;
	watcher->fd = -1;
	watcher->state = ST_DERP;
	watcher->watcher = true;
	w->watchers = watcher;
	for (i = 0; i < NKEYS; i++) {
		client_of(&bc, i, 0);
		if (bc.worker == 0) {
			if ((locals[i] = calloc(1, sizeof(**locals))) == NULL)
				abort();
			locals[i]->w = w;
			locals[i]->state = ST_DERP;
			memcpy(locals[i]->key, bc.key, DERP_KEY_LEN);
			if (registry_add(w, locals[i]) < 0)
				abort();
		} else if (registry_remote_add(w, &bc) < 0)
			abort();
	}
	for (i = 0; mesh && i < NKEYS; i++) {
		key_of(bc.key, i, 1);
		if (registry_fwd_add(w, bc.key, 0) < 0)
			abort();
	}
	return w;
}

static void
teardown(struct worker *w)
{
	uint32_t	i;

	for (i = 0; i < NKEYS; i++)
		if (locals[i] != NULL) {
			registry_remove(w, locals[i]);
			free(locals[i]);
			locals[i] = NULL;
		}
	bbuf_free(&w->watchers->ctrl);
	free(w->watchers);
	registry_free(w->reg);
	loop_free(w->loop);
	free(w);
}

/* What the call left for later turns, one step at a time. */
static void
steps(struct worker *w, struct timing *t)
{
	double	t0, d;
	bool	done;

	do {
		t0 = now_ms();
		done = registry_reap(w, REGISTRY_REAP_STEP);
		d = now_ms() - t0;
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
	double		 t0 = now_ms();

	registry_remote_sweep(w, 3, true);
	t->start = now_ms() - t0;
	t->total = t->start;
	steps(w, t);
	if (registry_count(w->reg) != NKEYS - NKEYS / NWK)
		abort();
	teardown(w);
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

	t0 = now_ms();
	registry_remote_mark(w, 3);
	mark->start = mark->total = now_ms() - t0;
	for (i = 3; i < NKEYS; i += NWK) {
		client_of(&bc, i, 0);
		if (registry_remote_add(w, &bc) < 0)
			abort();
	}
	t0 = now_ms();
	registry_remote_sweep(w, 3, false);
	sweep->start = sweep->total = now_ms() - t0;
	steps(w, sweep);
	if (registry_count(w->reg) != NKEYS)
		abort();
	teardown(w);
}

static void
fwd_clear(struct timing *t)
{
	struct worker	*w = setup(true);
	double		 t0 = now_ms();

	registry_fwd_clear(w, 0);
	t->start = t->total = now_ms() - t0;
	steps(w, t);
	if (registry_count(w->reg) != NKEYS)
		abort();
	teardown(w);
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
