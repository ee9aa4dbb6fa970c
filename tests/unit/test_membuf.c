/*
 * Unit tests for worker/membuf.c: the idle-buffer scan walks at most
 * MEMBUF_STEP connections per step, publishes the gauges only once it
 * has covered every connection, survives the connection under its
 * cursor going away, and starts no second scan while one runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "worker/wk.h"

#define NCONNS	(2 * MEMBUF_STEP + 100)

struct fixture {
	struct worker	*w;
	struct conn	*c;		/* NCONNS of them */
	uint8_t		 scratch[16];
};

/* Like conn_new: each new connection goes to the head of w->conns.
 * Every 3rd holds an output buffer, every 5th a control buffer, every
 * 7th a partial frame, every 11th only the lent scratch buffer (not
 * held); one in 13 is still in its HTTP state. */
static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));
	struct conn	*c;
	int		 i;

	assert_non_null(f);
	assert_non_null(f->w = calloc(1, sizeof(*f->w)));
	assert_non_null(f->c = calloc(NCONNS, sizeof(*f->c)));
	assert_non_null(f->w->loop = loop_new());
	f->w->m = &f->w->m_local;
	f->w->scratch = f->scratch;
	for (i = 0; i < NCONNS; i++) {
		c = &f->c[i];
		c->w = f->w;
		c->state = i % 13 == 0 ? ST_HTTP : ST_DERP;
		c->out.cap = i % 3 == 0 ? 512 : 0;
		c->ctrl.cap = i % 5 == 0 ? 512 : 0;
		if (i % 7 == 0)
			c->in.cap = 512;
		else if (i % 11 == 0) {
			c->in.cap = 16;
			c->in.p = f->scratch;
		}
		c->next = f->w->conns;
		if (f->w->conns != NULL)
			f->w->conns->prev = c;
		f->w->conns = c;
		f->w->nconns++;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	membuf_stop(f->w);
	loop_free(f->w->loop);
	free(f->c);
	free(f->w);
	free(f);
	return 0;
}

static uint64_t
expect(int every, int skip_removed)
{
	uint64_t	n = 0;
	int		i;

	for (i = 0; i < NCONNS; i++)
		if (i % 13 != 0 && i % every == 0 && i != skip_removed)
			n++;
	return n;
}

static void
test_membuf_scan_in_bounded_steps(void **state)
{
	struct fixture	*f = *state;
	struct worker	*w = f->w;
	int		 steps = 1;

	w->m->conn_buf_out = 12345;	/* a previous scan's result */
	membuf_scan(w);			/* the first step runs now */
	assert_true(w->mb.active);
	assert_int_equal(w->m->conn_buf_scans, 0);
	while (!membuf_step(w, MEMBUF_STEP)) {
		steps++;
		/* Nothing published before the walk is complete. */
		assert_int_equal(w->m->conn_buf_out, 12345);
		assert_int_equal(w->m->conn_buf_scans, 0);
		assert_true(steps < NCONNS);
	}
	steps++;
	/* ceil(NCONNS / MEMBUF_STEP) steps in all, the last finishing. */
	assert_int_equal(steps, (NCONNS + MEMBUF_STEP - 1) / MEMBUF_STEP);
	assert_false(w->mb.active);
	assert_int_equal(w->m->conn_buf_scans, 1);
	assert_int_equal(w->m->conn_buf_out, expect(3, -1));
	assert_int_equal(w->m->conn_buf_ctrl, expect(5, -1));
	assert_int_equal(w->m->conn_buf_in, expect(7, -1));
	assert_int_equal(w->m->conn_buf_http, 0);
}

static void
test_membuf_cursor_conn_freed(void **state)
{
	struct fixture	*f = *state;
	struct worker	*w = f->w;
	struct conn	*gone;
	int		 idx;

	membuf_scan(w);
	assert_true(w->mb.active);
	/* The connection the next step starts with goes away, as
	 * conn_free unlinks it. */
	gone = (struct conn *)(uintptr_t)w->mb.cursor;
	assert_non_null(gone);
	idx = (int)(gone - f->c);
	membuf_forget(w, gone);
	if (gone->prev != NULL)
		gone->prev->next = gone->next;
	else
		w->conns = gone->next;
	if (gone->next != NULL)
		gone->next->prev = gone->prev;
	assert_ptr_equal(w->mb.cursor, gone->next);
	/* Forgetting one that is not under the cursor changes nothing. */
	membuf_forget(w, &f->c[0]);
	assert_ptr_equal(w->mb.cursor, gone->next);
	while (!membuf_step(w, MEMBUF_STEP))
		;
	assert_int_equal(w->m->conn_buf_out, expect(3, idx));
	assert_int_equal(w->m->conn_buf_ctrl, expect(5, idx));
	assert_int_equal(w->m->conn_buf_in, expect(7, idx));
}

static void
test_membuf_one_scan_at_a_time(void **state)
{
	struct fixture		*f = *state;
	struct worker		*w = f->w;
	const struct conn	*at;

	membuf_scan(w);
	at = w->mb.cursor;
	membuf_scan(w);		/* the next beat, while one still runs */
	assert_ptr_equal(w->mb.cursor, at);
	/* Closing connections and non-DERP ones are not counted. */
	f->c[3].closing = true;
	assert_true(membuf_step(w, SIZE_MAX));
	assert_int_equal(w->m->conn_buf_out, expect(3, 3));
	assert_int_equal(w->m->conn_buf_scans, 1);
	/* A finished scan starts over from the head, its first step at
	 * once. */
	membuf_scan(w);
	assert_ptr_equal(w->mb.cursor, &f->c[NCONNS - 1 - MEMBUF_STEP]);
	assert_int_equal(w->m->conn_buf_scans, 1);
	membuf_stop(w);
	assert_false(w->mb.active);
	assert_true(membuf_step(w, 1));	/* stopped: nothing to do */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_membuf_scan_in_bounded_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_membuf_cursor_conn_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_membuf_one_scan_at_a_time, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
