/*
 * Unit tests for common/loop.c: timer ordering, cancel and re-arm, fd
 * dispatch over a socketpair, loop_stop from a callback, turn lengths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"

struct rec {
	struct loop	*l;
	int		 order[16];
	int		 n;
};

struct tmr {
	struct loop_timer	 t;
	struct rec		*r;
	int			 id;
};

static void
fire(struct loop_timer *t)
{
	struct tmr	*x = t->arg;

	x->r->order[x->r->n++] = x->id;
}

static void
stop_fire(struct loop_timer *t)
{
	struct tmr	*x = t->arg;

	x->r->order[x->r->n++] = x->id;
	loop_stop(x->r->l);
}

static int	fired;

static void
count_fire(struct loop_timer *t)
{
	(void)t;
	fired++;
}

static void
test_loop_timers_fire_in_order(void **state)
{
	struct rec	r = { 0 };
	struct tmr	t[5];
	uint64_t	ms[5] = { 30, 10, 20, 0, 25 };
	int		i;

	(void)state;
	r.l = loop_new();
	assert_non_null(r.l);
	for (i = 0; i < 5; i++) {
		t[i].r = &r;
		t[i].id = i;
		loop_timer_init(&t[i].t, i == 0 ? stop_fire : fire, &t[i]);
		assert_int_equal(loop_timer_set(r.l, &t[i].t, ms[i]), 0);
	}
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(r.n, 5);
	assert_int_equal(r.order[0], 3);
	assert_int_equal(r.order[1], 1);
	assert_int_equal(r.order[2], 2);
	assert_int_equal(r.order[3], 4);
	assert_int_equal(r.order[4], 0);
	loop_free(r.l);
}

static void
test_loop_timer_cancel_and_rearm(void **state)
{
	struct rec	r = { 0 };
	struct tmr	a, b, c;

	(void)state;
	r.l = loop_new();
	a.r = b.r = c.r = &r;
	a.id = 1;
	b.id = 2;
	c.id = 3;
	loop_timer_init(&a.t, fire, &a);
	loop_timer_init(&b.t, fire, &b);
	loop_timer_init(&c.t, stop_fire, &c);
	assert_int_equal(loop_timer_set(r.l, &a.t, 5), 0);
	assert_int_equal(loop_timer_set(r.l, &b.t, 1), 0);
	assert_int_equal(loop_timer_set(r.l, &c.t, 20), 0);
	assert_true(loop_timer_armed(&a.t));
	loop_timer_cancel(r.l, &a.t);
	assert_false(loop_timer_armed(&a.t));
	loop_timer_cancel(r.l, &a.t);	/* twice is harmless */
	assert_int_equal(loop_timer_set(r.l, &b.t, 10), 0);	/* re-arm */
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.order[0], 2);
	assert_int_equal(r.order[1], 3);
	loop_free(r.l);
}

static void
test_loop_many_timers_heap(void **state)
{
	enum { N = 1000 };
	static struct tmr	t[N];
	struct rec		r = { 0 };
	struct tmr		last;
	int			i;

	(void)state;
	r.l = loop_new();
	for (i = 0; i < N; i++) {
		t[i].r = &r;
		t[i].id = 0;
		loop_timer_init(&t[i].t, count_fire, &t[i]);
		assert_int_equal(loop_timer_set(r.l, &t[i].t,
		    (uint64_t)((i * 7919) % 50)), 0);
	}
	for (i = 0; i < N; i += 2)
		loop_timer_cancel(r.l, &t[i].t);
	last.r = &r;
	last.id = 9;
	loop_timer_init(&last.t, stop_fire, &last);
	assert_int_equal(loop_timer_set(r.l, &last.t, 60), 0);
	fired = 0;
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(fired, N / 2);	/* the uncancelled half */
	for (i = 0; i < N; i++)
		assert_false(loop_timer_armed(&t[i].t));
	loop_free(r.l);
}

struct iorec {
	struct loop	*l;
	char		 got[32];
	size_t		 n;
};

static void
on_read(struct loop_io *io, unsigned ev)
{
	struct iorec	*r = io->arg;
	ssize_t		 n;

	assert_true(ev & LOOP_IN);
	n = read(io->fd, r->got + r->n, sizeof(r->got) - r->n);
	if (n > 0)
		r->n += (size_t)n;
	if (r->n >= 5)
		loop_stop(r->l);
}

static void
test_loop_fd_dispatch(void **state)
{
	struct iorec	r = { 0 };
	struct loop_io	io;
	int		sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r.l = loop_new();
	loop_io_init(&io, sv[0], on_read, &r);
	assert_int_equal(loop_io_add(r.l, &io, LOOP_IN), 0);
	assert_int_equal(write(sv[1], "hello", 5), 5);
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(r.n, 5);
	assert_memory_equal(r.got, "hello", 5);
	assert_int_equal(loop_io_mod(r.l, &io, LOOP_IN), 0);	/* no-op */
	loop_io_del(r.l, &io);
	loop_free(r.l);
	close(sv[0]);
	close(sv[1]);
}

/* A timer that keeps its turn busy for 3 ms of monotonic time. */
static void
busy_fire(struct loop_timer *t)
{
	struct rec	*r = t->arg;
	uint64_t	 end = loop_clock_ns() + 3000000;

	while (loop_clock_ns() < end)
		;
	r->n++;
	loop_stop(r->l);
}

/* Each turn lands in the bucket of its length, in the caller's storage;
 * the sum and the longest follow.  Turns only ever take longer than the
 * busy wait, so the bounds checked hold on any machine. */
static void
test_loop_turns_counted(void **state)
{
	struct loop_turns	turns;
	struct rec		r = { 0 };
	struct loop_timer	t;
	uint64_t		total = 0, slow = 0;
	size_t			i;

	(void)state;
	memset(&turns, 0, sizeof(turns));
	r.l = loop_new();
	loop_set_turns(r.l, &turns);
	loop_timer_init(&t, busy_fire, &r);
	assert_int_equal(loop_timer_set(r.l, &t, 0), 0);
	assert_int_equal(loop_run(r.l), 0);	/* first turn: one busy */
	assert_int_equal(loop_timer_set(r.l, &t, 0), 0);
	assert_int_equal(loop_run(r.l), 0);	/* and a second */
	for (i = 0; i < LOOP_TURN_BUCKETS; i++) {
		total += turns.bucket[i];
		/* bucket i holds turns longer than bound i - 1 */
		if (i > 0 && loop_turn_bounds_us[i - 1] >= 2500)
			slow += turns.bucket[i];
	}
	assert_int_equal(r.n, 2);
	assert_int_equal(slow, 2);
	assert_true(total >= 2);
	assert_true(turns.max_ns >= 3000000);
	assert_true(turns.sum_ns >= 6000000);
	for (i = 1; i < LOOP_TURN_BUCKETS - 1; i++)
		assert_true(loop_turn_bounds_us[i] > loop_turn_bounds_us[i - 1]);
	loop_free(r.l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_timers_fire_in_order),
		cmocka_unit_test(test_loop_timer_cancel_and_rearm),
		cmocka_unit_test(test_loop_many_timers_heap),
		cmocka_unit_test(test_loop_fd_dispatch),
		cmocka_unit_test(test_loop_turns_counted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
