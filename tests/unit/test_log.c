/*
 * common/log.c's rate limiter: a burst, then a steady rate (a token
 * bucket), the held-back count on the next line let through, the
 * level filter using no budget, the per-connection limit and its
 * setting, and the flush that reports counts no later line did; the
 * clock injected, the output read back through a pipe.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

static uint64_t	fake_now;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static void
test_log_limit_burst_then_suppressed(void **state)
{
	struct log_limit	l = LOG_LIMIT_INIT(3, 1000);
	uint64_t		sup = 99;
	int			i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_true(log_limit_allow(&l, 100, &sup));
		assert_int_equal(sup, 0);
	}
	for (i = 0; i < 4; i++)
		assert_false(log_limit_allow(&l, 200, &sup));
	/* 3 a second: a line's worth of credit 333.3 ms after the burst. */
	assert_false(log_limit_allow(&l, 433, &sup));
	assert_true(log_limit_allow(&l, 434, &sup));
	assert_int_equal(sup, 5);
	/* The count restarted with the line let through; no credit. */
	assert_false(log_limit_allow(&l, 435, &sup));
	assert_true(log_limit_allow(&l, 767, &sup));
	assert_int_equal(sup, 1);
}

/* Burst 50, then 10 a second, offered a line every ms for 10 s: the
 * burst and exactly 100 more, one each 100 ms. */
static void
test_log_limit_burst_then_steady_rate(void **state)
{
	struct log_limit	l = { .burst = 50, .rate = 10,
				    .interval_ms = 1000 };
	uint64_t		sup, held = 0, t;
	int			let = 0;

	(void)state;
	for (t = 0; t < 60; t++)
		if (log_limit_allow(&l, 1000, &sup))
			let++;
	assert_int_equal(let, 50);
	for (t = 1001; t <= 11000; t++)
		if (log_limit_allow(&l, t, &sup)) {
			let++;
			held += sup;
			assert_int_equal(t % 100, 0);
		}
	assert_int_equal(let, 150);
	/* Every line offered is let through or counted, once. */
	assert_int_equal(held + l.suppressed, 60 + 10000 - 150);
}

static void
test_log_limit_quiet_window_full_burst(void **state)
{
	struct log_limit	l = LOG_LIMIT_INIT(2, 500);
	uint64_t		sup;
	int			i, k;

	(void)state;
	for (k = 0; k < 3; k++) {
		/* Each well after the last: the bucket is full again. */
		for (i = 0; i < 2; i++)
			assert_true(log_limit_allow(&l, 10000 *
			    (uint64_t)(k + 1), &sup));
		assert_false(log_limit_allow(&l, 10000 * (uint64_t)(k + 1),
		    &sup));
	}
	assert_true(log_limit_allow(&l, 50000, &sup));
	assert_int_equal(sup, 1);
	/* A full bucket holds burst lines, however long the quiet. */
	assert_true(log_limit_allow(&l, UINT64_MAX / 2, &sup));
	assert_true(log_limit_allow(&l, UINT64_MAX / 2, &sup));
	assert_false(log_limit_allow(&l, UINT64_MAX / 2, &sup));
}

static void
test_log_limit_clock_backwards_adds_nothing(void **state)
{
	struct log_limit	l = LOG_LIMIT_INIT(1, 1000);
	uint64_t		sup;

	(void)state;
	assert_true(log_limit_allow(&l, 5000, &sup));
	assert_false(log_limit_allow(&l, 5001, &sup));
	assert_false(log_limit_allow(&l, 10, &sup));
	/* Time counts again from where the clock now is. */
	assert_false(log_limit_allow(&l, 1008, &sup));
	assert_true(log_limit_allow(&l, 1009, &sup));
	assert_int_equal(sup, 3);
}

static void
test_log_limit_rate_zero_lets_all(void **state)
{
	struct log_limit	l = { .burst = 1, .rate = 0,
				    .interval_ms = 1000 };
	uint64_t		sup;
	int			i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		assert_true(log_limit_allow(&l, 7, &sup));
		assert_int_equal(sup, 0);
	}
}

/* Run fn with stderr into a pipe; the captured text in out. */
static void
capture(void (*fn)(void), char *out, size_t cap)
{
	int	p[2], saved;
	ssize_t	r;
	size_t	len = 0;

	assert_int_equal(pipe(p), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	close(p[1]);
	fn();
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	while (len < cap - 1 && (r = read(p[0], out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(p[0]);
}

static int
count(const char *s, const char *needle)
{
	int	n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

static struct log_limit	site = LOG_LIMIT_INIT(LOG_LIMIT_BURST, 1000);

static void
emit_burst(void)
{
	int	i;

	fake_now = 1000;
	for (i = 0; i < LOG_LIMIT_BURST + 7; i++)
		log_msg_limited(&site, LOG_WARNING, "bad_input", "n=%d", i);
	/* Filtered by the level: neither let through nor counted. */
	log_set_level(LOG_ERR);
	for (i = 0; i < 50; i++)
		log_msg_limited(&site, LOG_WARNING, "bad_input", "n=%d", i);
	log_set_level(LOG_INFO);
	fake_now = 2000;
	log_msg_limited(&site, LOG_WARNING, "bad_input", "n=%d", 100);
	log_msg_limited(&site, LOG_WARNING, "bad_input", "n=%d", 101);
}

static void
test_log_msg_limited_lines(void **state)
{
	char	out[16384], *last;

	(void)state;
	log_init("test", LOG_INFO);
	log_set_clock(fake_clock);
	capture(emit_burst, out, sizeof(out));
	log_set_clock(NULL);
	assert_int_equal(count(out, "event=bad_input"), LOG_LIMIT_BURST + 2);
	assert_int_equal(count(out, "n=4\n"), 1);
	assert_int_equal(count(out, "n=5"), 0);
	/* The resumed line says how many were held back, once. */
	assert_int_equal(count(out, "suppressed="), 1);
	assert_non_null(last = strstr(out, "n=100 suppressed=7\n"));
	assert_non_null(strstr(last, "n=101\n"));
	assert_non_null(strstr(out, "warn test event=bad_input n=0"));
}

/* A line at the buffer's limit still ends in a newline; the count is
 * dropped rather than the line overrun. */
static void
emit_long(void)
{
	static char	big[2000];

	memset(big, 'x', sizeof(big) - 1);
	fake_now = 0;
	log_msg_limited(&site, LOG_ERR, "long", "v=%s", big);
}

static void
test_log_msg_limited_long_line(void **state)
{
	char	out[4096];
	size_t	n;

	(void)state;
	site = (struct log_limit)LOG_LIMIT_INIT(1, 1000);
	site.suppressed = 3;	/* a fresh bucket: the line goes out */
	log_set_clock(fake_clock);
	capture(emit_long, out, sizeof(out));
	log_set_clock(NULL);
	n = strlen(out);
	assert_true(n > 0 && n <= 1024);
	assert_int_equal(out[n - 1], '\n');
	assert_int_equal(count(out, "\n"), 1);
}

/* Per-connection sites at burst 3, 1 a second: a storm of 20 lines of
 * two kinds at t=1000, the flush at 1500 (before any credit), again at
 * once (nothing), a line at 2000 with nothing left to report, a
 * suppressed warn at a level that then filters it. */
static struct log_limit	kind_a = LOG_LIMIT_CONN_INIT;
static struct log_limit	kind_b = LOG_LIMIT_CONN_INIT;
static int		flushed[4];

static void
emit_storm(void)
{
	int	i;

	log_set_conn_limit(3, 1);
	fake_now = 1000;
	for (i = 0; i < 20; i++) {
		log_msg_limited(&kind_a, LOG_INFO, "conn_closed", "conn=%d",
		    i);
		if (i < 4)
			log_msg_limited(&kind_b, LOG_WARNING, "client_refused",
			    "conn=%d", i);
	}
	fake_now = 1500;
	flushed[0] = log_limit_flush();
	flushed[1] = log_limit_flush();
	fake_now = 2000;
	log_msg_limited(&kind_a, LOG_INFO, "conn_closed", "conn=%d", 100);
	log_msg_limited(&kind_b, LOG_WARNING, "client_refused", "conn=%d",
	    100);
	log_msg_limited(&kind_b, LOG_WARNING, "client_refused", "conn=%d",
	    101);
	log_set_level(LOG_ERR);
	flushed[2] = log_limit_flush();	/* counted, not shown */
	log_set_level(LOG_INFO);
	flushed[3] = log_limit_flush();
	log_set_conn_limit(LOG_CONN_BURST, LOG_CONN_RATE);
}

static void
test_log_limit_flush_reports_held_back(void **state)
{
	char	out[16384];

	(void)state;
	log_init("worker=1", LOG_INFO);
	log_set_clock(fake_clock);
	capture(emit_storm, out, sizeof(out));
	log_set_clock(NULL);
	assert_int_equal(flushed[0], 2);
	assert_int_equal(flushed[1], 0);
	assert_int_equal(flushed[2], 0);
	assert_int_equal(flushed[3], 0);
	assert_int_equal(count(out, "event=conn_closed"), 3 + 1);
	assert_int_equal(count(out, "event=client_refused"), 3 + 1);
	assert_non_null(strstr(out, "info worker=1 event=log_suppressed "
	    "what=conn_closed count=17\n"));
	assert_non_null(strstr(out, "warn worker=1 event=log_suppressed "
	    "what=client_refused count=1\n"));
	assert_int_equal(count(out, "event=log_suppressed"), 2);
	/* Reported once: not again on the next line let through. */
	assert_int_equal(count(out, "suppressed="), 0);
	assert_non_null(strstr(out, "event=conn_closed conn=100\n"));
	assert_non_null(strstr(out, "event=client_refused conn=100\n"));
	assert_int_equal(count(out, "conn=101"), 0);
}

/* log_set_conn_limit reaches sites already in use; rate 0 is every
 * line. */
static struct log_limit	kind_c = LOG_LIMIT_CONN_INIT;
static int		lines_at[3];

static void
emit_setting(void)
{
	int	i, k;

	fake_now = 5000;
	for (k = 0; k < 3; k++) {
		log_set_conn_limit(k == 0 ? LOG_CONN_BURST : 5,
		    k == 2 ? 0 : LOG_CONN_RATE);
		for (i = 0; i < 200; i++)
			log_msg_limited(&kind_c, LOG_INFO, "ev_c", "k=%d", k);
		fake_now += 100000;
		lines_at[k] = log_limit_flush();
	}
	log_set_conn_limit(LOG_CONN_BURST, LOG_CONN_RATE);
}

static void
test_log_limit_conn_setting(void **state)
{
	char	out[65536];

	(void)state;
	log_init("test", LOG_INFO);
	log_set_clock(fake_clock);
	capture(emit_setting, out, sizeof(out));
	log_set_clock(NULL);
	assert_int_equal(count(out, "event=ev_c k=0"), LOG_CONN_BURST);
	assert_int_equal(count(out, "event=ev_c k=1"), 5);
	assert_int_equal(count(out, "event=ev_c k=2"), 200);
	assert_int_equal(lines_at[0] + lines_at[1] + lines_at[2], 2);
	assert_non_null(strstr(out, "what=ev_c count=150\n"));
	assert_non_null(strstr(out, "what=ev_c count=195\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_limit_burst_then_suppressed),
		cmocka_unit_test(test_log_limit_burst_then_steady_rate),
		cmocka_unit_test(test_log_limit_quiet_window_full_burst),
		cmocka_unit_test(test_log_limit_clock_backwards_adds_nothing),
		cmocka_unit_test(test_log_limit_rate_zero_lets_all),
		cmocka_unit_test(test_log_msg_limited_lines),
		cmocka_unit_test(test_log_msg_limited_long_line),
		cmocka_unit_test(test_log_limit_flush_reports_held_back),
		cmocka_unit_test(test_log_limit_conn_setting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
