/*
 * Unit tests for common/hist.c: exact small values, the bucket error
 * bound over the whole 64-bit range, quantiles of known distributions,
 * merging, and the empty histogram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/hist.h"

static void
test_hist_small_values_exact(void **state)
{
	uint64_t	v;

	(void)state;
	for (v = 0; v < 4 * HIST_SUB; v++) {
		if (v < HIST_SUB)
			assert_int_equal(hist_index(v), v);
		assert_true(hist_bucket_high(hist_index(v)) >= v);
	}
	/* Up to 2 * HIST_SUB every value still has its own bucket. */
	for (v = 0; v < 2 * HIST_SUB; v++)
		assert_int_equal(hist_bucket_high(hist_index(v)), v);
}

static void
test_hist_error_bound(void **state)
{
	uint64_t	v, hi;
	unsigned	i, e, prev = 0;

	(void)state;
	for (e = 0; e < 64; e++) {
		for (i = 0; i < 3; i++) {
			v = ((uint64_t)1 << e) + (i == 0 ? 0 : i == 1 ?
			    ((uint64_t)1 << e) / 3 : ((uint64_t)1 << e) - 1);
			if (e == 63 && i == 2)
				v = UINT64_MAX;
			assert_true(hist_index(v) < HIST_NBUCKETS);
			assert_true(hist_index(v) >= prev);	/* monotone */
			prev = hist_index(v);
			hi = hist_bucket_high(hist_index(v));
			assert_true(hi >= v);
			/* Within 1 / HIST_SUB of the value. */
			assert_true((double)(hi - v) <= (double)v / HIST_SUB);
		}
	}
	assert_int_equal(hist_index(UINT64_MAX), HIST_NBUCKETS - 1);
	assert_true(hist_bucket_high(HIST_NBUCKETS - 1) == UINT64_MAX);
}

static void
test_hist_quantiles_uniform(void **state)
{
	static struct hist	h;
	uint64_t		v, q50, q99;

	(void)state;
	hist_init(&h);
	/* 1..100000 ns, once each. */
	for (v = 1; v <= 100000; v++)
		hist_add(&h, v);
	assert_int_equal(h.n, 100000);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 100000);
	q50 = hist_quantile(&h, 0.5);
	q99 = hist_quantile(&h, 0.99);
	assert_true(q50 >= 50000 && q50 <= 50000 + 50000 / HIST_SUB);
	assert_true(q99 >= 99000 && q99 <= 99000 + 99000 / HIST_SUB);
	assert_int_equal(hist_quantile(&h, 1.0), 100000);
	assert_int_equal(hist_quantile(&h, 0.0), 1);
	assert_int_equal(h.sum, (uint64_t)100000 * 100001 / 2);
}

static void
test_hist_quantile_outliers(void **state)
{
	static struct hist	h;
	int			i;

	(void)state;
	hist_init(&h);
	/* 990 fast values and 10 slow ones: p99 is still fast, p99.9 and
	 * the max see the outliers. */
	for (i = 0; i < 990; i++)
		hist_add(&h, 100000);
	for (i = 0; i < 10; i++)
		hist_add(&h, 20000000);
	assert_true(hist_quantile(&h, 0.5) < 100000 + 100000 / HIST_SUB);
	assert_true(hist_quantile(&h, 0.99) < 100000 + 100000 / HIST_SUB);
	assert_true(hist_quantile(&h, 0.999) >= 20000000);
	assert_int_equal(hist_quantile(&h, 1.0), 20000000);
}

static void
test_hist_merge(void **state)
{
	static struct hist	a, b, all;
	uint64_t		v;

	(void)state;
	hist_init(&a);
	hist_init(&b);
	hist_init(&all);
	for (v = 1; v < 5000; v++) {
		hist_add(v % 2 ? &a : &b, v * 37);
		hist_add(&all, v * 37);
	}
	hist_merge(&a, &b);
	assert_int_equal(a.n, all.n);
	assert_int_equal(a.min, all.min);
	assert_int_equal(a.max, all.max);
	assert_int_equal(a.sum, all.sum);
	assert_int_equal(hist_quantile(&a, 0.9), hist_quantile(&all, 0.9));
	assert_memory_equal(a.c, all.c, sizeof(a.c));
}

static void
test_hist_empty(void **state)
{
	static struct hist	h, e;

	(void)state;
	hist_init(&h);
	hist_init(&e);
	assert_int_equal(hist_quantile(&h, 0.5), 0);
	assert_int_equal(hist_quantile(&h, 1.0), 0);
	hist_add(&h, 42);
	hist_merge(&h, &e);	/* merging an empty one changes nothing */
	assert_int_equal(h.min, 42);
	assert_int_equal(hist_quantile(&h, 0.5), 42);
	assert_int_equal(hist_quantile(&h, 0.01), 42);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_small_values_exact),
		cmocka_unit_test(test_hist_error_bound),
		cmocka_unit_test(test_hist_quantiles_uniform),
		cmocka_unit_test(test_hist_quantile_outliers),
		cmocka_unit_test(test_hist_merge),
		cmocka_unit_test(test_hist_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
