/*
 * Unit tests for worker/watch.c: a new watcher's presence list goes out
 * a bounded step at a time, only while its control buffer is below the
 * mark, and with keys leaving and arriving between the steps the
 * watcher ends with exactly the present keys: one PeerPresent for each
 * key there throughout, a PeerGone last for each that left, a
 * PeerPresent last for each that came.  Connections are in-memory; the
 * frames are read back from the watcher's control buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "derp/frame.h"
#include "worker/wk.h"

#define N	12000		/* keys before the watch */
#define NMAX	(N + 2000)
#define STEP	1024

static struct worker *
wk_new(void)
{
	struct worker	*w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->m = &w->m_local;
	w->nworkers = 1;
	w->loop = loop_new();
	w->reg = registry_new();
	assert_non_null(w->loop);
	assert_non_null(w->reg);
	return w;
}

static struct conn *
conn_mk(struct worker *w, uint32_t id)
{
	struct conn	*c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->w = w;
	c->fd = -1;
	c->state = ST_DERP;
	memset(c->key, 0x5c, sizeof(c->key));
	memcpy(c->key, &id, sizeof(id));
	c->port = (uint16_t)id;
	assert_int_equal(registry_add(w, c), 0);
	return c;
}

static void
conn_rm(struct conn *c)
{
	registry_forget_saw(c);
	registry_remove(c->w, c);
	bbuf_free(&c->ctrl);
	free(c);
}

/* What the watcher was told, per key id. */
static struct {
	int	presents, gones;
	bool	present;	/* by its last frame */
} seen[NMAX];

static uint32_t
id_of(const uint8_t *key)
{
	uint32_t	id;

	memcpy(&id, key, sizeof(id));
	assert_true(id < NMAX);
	return id;
}

/* Read every frame queued for x (as its writes would). */
static void
drain(struct conn *x)
{
	const uint8_t	*p = x->ctrl.p + x->ctrl.off;
	size_t		 left = bbuf_len(&x->ctrl), len;
	uint32_t	 id;

	while (left > 0) {
		assert_true(left >= 5);
		len = (size_t)p[1] << 24 | (size_t)p[2] << 16 |
		    (size_t)p[3] << 8 | p[4];
		assert_true(left >= 5 + len);
		if (p[0] == DERP_FRAME_PEER_PRESENT) {
			assert_int_equal(len, DERP_PEER_PRESENT_FRAME_LEN - 5);
			id = id_of(p + 5);
			/* The address is the key's own (ids are ports). */
			assert_int_equal(p[5 + 48] << 8 | p[5 + 49],
			    (uint16_t)id);
			seen[id].presents++;
			seen[id].present = true;
		} else {
			assert_int_equal(p[0], DERP_FRAME_PEER_GONE);
			id = id_of(p + 5);
			seen[id].gones++;
			seen[id].present = false;
		}
		p += 5 + len;
		left -= 5 + len;
	}
	bbuf_consume(&x->ctrl, bbuf_len(&x->ctrl));
}

/* Run w's loop until x's control buffer holds more than `over` bytes,
 * or `turns` 1 ms ticks have passed. */
struct run {
	struct worker	*w;
	struct conn	*x;
	size_t		 over;
	int		 turns;
	struct loop_timer t;
};

static void
run_tick(struct loop_timer *t)
{
	struct run	*r = t->arg;

	if (bbuf_len(&r->x->ctrl) > r->over || --r->turns <= 0)
		loop_stop(r->w->loop);
	else
		assert_int_equal(loop_timer_set(r->w->loop, &r->t, 1), 0);
}

static void
run_loop(struct worker *w, struct conn *x, size_t over, int turns)
{
	struct run	r = { w, x, over, turns, { 0 } };

	loop_timer_init(&r.t, run_tick, &r);
	assert_int_equal(loop_timer_set(w->loop, &r.t, 1), 0);
	assert_int_equal(loop_run(w->loop), 0);
	loop_timer_cancel(w->loop, &r.t);
}

static void
test_watch_steps_bounded_and_complete(void **state)
{
	struct worker	*w = wk_new();
	static struct conn *cs[NMAX];
	struct conn	*x;
	uint64_t	 rnd = 7;
	uint32_t	 i, next = N, r;
	size_t		 len, steps = 1, churn = 0;
	bool		 before[NMAX] = { false };

	(void)state;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < N; i++) {
		cs[i] = conn_mk(w, i);
		before[i] = true;
	}
	x = conn_mk(w, NMAX - 1);	/* the watcher, a key too */
	before[NMAX - 1] = true;
	x->watcher = true;
	x->watch_next = w->watchers;
	w->watchers = x;
	assert_int_equal(watch_start(x), 0);
	/* One step at most, however many keys. */
	len = bbuf_len(&x->ctrl);
	assert_true(len > 0);
	assert_true(len <= STEP * DERP_PEER_PRESENT_FRAME_LEN);
	/* Not drained: one more step below the mark, then it waits. */
	assert_false(watch_more(x, STEP));
	steps++;
	assert_false(watch_more(x, STEP));
	assert_int_equal(bbuf_len(&x->ctrl), 2 * len);
	/* Its timer sends nothing more while the buffer is that full... */
	run_loop(w, x, 2 * len, 20);
	assert_int_equal(bbuf_len(&x->ctrl), 2 * len);
	/* ...and resumes once its writes drained it. */
	drain(x);
	watch_writable(x);
	run_loop(w, x, 0, 5000);
	assert_true(bbuf_len(&x->ctrl) > 0);
	steps++;
	while (x->wwalk != NULL) {
		drain(x);
		/* Between steps: three keys leave, two arrive (announced
		 * live, as session_admitted does). */
		for (i = 0; i < 3; i++) {
			rnd = rnd * 6364136223846793005ULL + 1;
			r = (uint32_t)(rnd >> 33) % next;
			if (cs[r] != NULL) {
				conn_rm(cs[r]);
				cs[r] = NULL;
			}
		}
		for (i = 0; i < 2 && next < NMAX - 1; i++, next++) {
			cs[next] = conn_mk(w, next);
			session_watchers_present(w, cs[next]->key,
			    cs[next]->ip16, cs[next]->port, 1);
		}
		churn++;
		steps++;
		(void)watch_more(x, STEP);
		assert_true(steps < 1000);
	}
	drain(x);
	assert_true(steps > 4);
	assert_true(churn > 2);
	for (i = 0; i < NMAX - 1; i++) {
		if (cs[i] != NULL && before[i]) {
			/* There throughout: exactly once present. */
			assert_int_equal(seen[i].presents, 1);
			assert_int_equal(seen[i].gones, 0);
		} else if (cs[i] != NULL) {
			assert_true(seen[i].presents >= 1);
			assert_true(seen[i].present);
		} else if (i < next) {
			/* Left: never shown present after its PeerGone. */
			assert_int_equal(seen[i].gones, 1);
			assert_false(seen[i].present);
			assert_true(seen[i].presents <= 1);
		}
	}
	assert_int_equal(seen[NMAX - 1].presents, 1);
	for (i = 0; i < NMAX; i++)
		if (cs[i] != NULL)
			conn_rm(cs[i]);
	w->watchers = NULL;
	conn_rm(x);
	registry_free(w->reg);
	loop_free(w->loop);
	free(w);
}

static void
test_watch_stop_midway(void **state)
{
	struct worker	*w = wk_new();
	static struct conn *cs[N];
	struct conn	*x;
	uint32_t	 i;

	(void)state;
	for (i = 0; i < N; i++)
		cs[i] = conn_mk(w, i);
	x = conn_mk(w, NMAX - 1);
	x->watcher = true;
	assert_int_equal(watch_start(x), 0);
	assert_non_null(x->wwalk);
	/* The key under the cursor and the rest go; then the watcher. */
	for (i = 0; i < N; i++)
		conn_rm(cs[i]);
	drain(x);
	assert_true(watch_more(x, STEP));	/* nothing left: done */
	assert_null(x->wwalk);
	watch_stop(x);				/* no-op */
	conn_rm(x);
	registry_free(w->reg);
	loop_free(w->loop);
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_steps_bounded_and_complete),
		cmocka_unit_test(test_watch_stop_midway),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
