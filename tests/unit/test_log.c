/*
 * common/log.c's rate limiter: burst lines per window, the held-back
 * count on the next line let through, windows restarting, the level
 * filter using no budget; the clock injected, the output read back
 * through a pipe.
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
		assert_true(log_limit_allow(&l, 100 + (uint64_t)i, &sup));
		assert_int_equal(sup, 0);
	}
	for (i = 0; i < 4; i++)
		assert_false(log_limit_allow(&l, 200, &sup));
	/* Still the window that opened at 100. */
	assert_false(log_limit_allow(&l, 1099, &sup));
	assert_true(log_limit_allow(&l, 1100, &sup));
	assert_int_equal(sup, 5);
	/* The count restarted with the line let through. */
	assert_true(log_limit_allow(&l, 1101, &sup));
	assert_int_equal(sup, 0);
}

static void
test_log_limit_quiet_window_full_burst(void **state)
{
	struct log_limit	l = LOG_LIMIT_INIT(2, 500);
	uint64_t		sup;
	int			i, k;

	(void)state;
	for (k = 0; k < 3; k++) {
		/* Each a fresh window well after the last. */
		for (i = 0; i < 2; i++)
			assert_true(log_limit_allow(&l, 10000 *
			    (uint64_t)(k + 1), &sup));
		assert_false(log_limit_allow(&l, 10000 * (uint64_t)(k + 1),
		    &sup));
	}
	assert_true(log_limit_allow(&l, 50000, &sup));
	assert_int_equal(sup, 1);
}

static void
test_log_limit_clock_backwards_opens_window(void **state)
{
	struct log_limit	l = LOG_LIMIT_INIT(1, 1000);
	uint64_t		sup;

	(void)state;
	assert_true(log_limit_allow(&l, 5000, &sup));
	assert_false(log_limit_allow(&l, 5001, &sup));
	assert_true(log_limit_allow(&l, 10, &sup));
	assert_int_equal(sup, 1);
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
	site.suppressed = 3;
	site.started = true;
	site.window = 0;
	site.used = 0;
	log_set_clock(fake_clock);
	capture(emit_long, out, sizeof(out));
	log_set_clock(NULL);
	n = strlen(out);
	assert_true(n > 0 && n <= 1024);
	assert_int_equal(out[n - 1], '\n');
	assert_int_equal(count(out, "\n"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_limit_burst_then_suppressed),
		cmocka_unit_test(test_log_limit_quiet_window_full_burst),
		cmocka_unit_test(test_log_limit_clock_backwards_opens_window),
		cmocka_unit_test(test_log_msg_limited_lines),
		cmocka_unit_test(test_log_msg_limited_long_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
