/* Unit tests for bench/stats.c: median of odd and even counts, the degenerate samples,
 * sample stddev against hand-computed values, and an input left as it was. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "stats.h"

static void test_odd_count_median_is_middle_value(void **state)
{
	const double v[] = {9.0, 1.0, 5.0, 3.0, 7.0};
	struct bench_stats s;

	assert_int_equal(bench_stats_compute(v, 5, &s), 0);
	assert_true(s.median == 5.0);
	assert_true(s.mean == 5.0);
	assert_true(s.min == 1.0);
	assert_true(s.max == 9.0);
}

static void test_even_count_median_averages_middle_pair(void **state)
{
	const double v[] = {10.0, 4.0, 1.0, 7.0};
	struct bench_stats s;

	assert_int_equal(bench_stats_compute(v, 4, &s), 0);
	/* sorted 1 4 7 10: the middle pair is 4 and 7 */
	assert_true(s.median == 5.5);
	assert_true(s.mean == 5.5);
	assert_true(s.min == 1.0);
	assert_true(s.max == 10.0);
}

static void test_single_value(void **state)
{
	const double v[] = {4216.5};
	struct bench_stats s;

	assert_int_equal(bench_stats_compute(v, 1, &s), 0);
	assert_true(s.mean == 4216.5);
	assert_true(s.median == 4216.5);
	assert_true(s.min == 4216.5);
	assert_true(s.max == 4216.5);
	assert_true(s.stddev == 0.0);
}

static void test_empty_and_invalid_input_rejected(void **state)
{
	const double v[] = {1.0, NAN, 3.0};
	const double inf[] = {1.0, INFINITY};
	struct bench_stats s;

	assert_int_equal(bench_stats_compute(v, 0, &s), -EINVAL);
	assert_int_equal(bench_stats_compute(NULL, 3, &s), -EINVAL);
	assert_int_equal(bench_stats_compute(v, 1, NULL), -EINVAL);
	assert_int_equal(bench_stats_compute(v, 3, &s), -EINVAL);
	assert_int_equal(bench_stats_compute(inf, 2, &s), -EINVAL);
}

static void test_sample_stddev_known_values(void **state)
{
	/* The textbook sample: mean 5, squared deviations sum to 32, so the sample
	 * (n - 1 = 7) variance is 32/7; the population one would be 4 (stddev 2). */
	const double v[] = {2, 4, 4, 4, 5, 5, 7, 9};
	/* 1, 2, 3: squared deviations 1 + 0 + 1 over n - 1 = 2, stddev exactly 1 */
	const double w[] = {3, 1, 2};
	struct bench_stats s;

	assert_int_equal(bench_stats_compute(v, 8, &s), 0);
	assert_true(s.mean == 5.0);
	assert_true(fabs(s.stddev - sqrt(32.0 / 7.0)) < 1e-12);
	assert_true(fabs(s.stddev - 2.0) > 0.1);

	assert_int_equal(bench_stats_compute(w, 3, &s), 0);
	assert_true(fabs(s.stddev - 1.0) < 1e-12);
	assert_true(s.median == 2.0);
}

static void test_large_close_values_keep_precision(void **state)
{
	/* Cycle counts near 1e9 that differ by 1: a one-pass sum of squares would lose the
	 * deviation entirely. Deviations -1, 0, 1 give a stddev of exactly 1. */
	const double v[] = {1e9 + 1, 1e9, 1e9 - 1};
	struct bench_stats s;

	assert_int_equal(bench_stats_compute(v, 3, &s), 0);
	assert_true(fabs(s.stddev - 1.0) < 1e-9);
}

static void test_input_untouched(void **state)
{
	const double orig[] = {6106, 6244, 6165, 5992, 6083, 6238, 6164, 5984, 5931, 5955};
	double v[10];
	struct bench_stats s;

	memcpy(v, orig, sizeof(v));
	assert_int_equal(bench_stats_compute(v, 10, &s), 0);
	assert_memory_equal(v, orig, sizeof(v));
	assert_true(s.min == 5931);
	assert_true(s.max == 6244);
	/* sorted middle pair: 6083 and 6106 */
	assert_true(s.median == (6083.0 + 6106.0) / 2.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_odd_count_median_is_middle_value),
	    cmocka_unit_test(test_even_count_median_averages_middle_pair),
	    cmocka_unit_test(test_single_value),
	    cmocka_unit_test(test_empty_and_invalid_input_rejected),
	    cmocka_unit_test(test_sample_stddev_known_values),
	    cmocka_unit_test(test_large_close_values_keep_precision),
	    cmocka_unit_test(test_input_untouched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
