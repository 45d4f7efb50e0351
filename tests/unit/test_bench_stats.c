/* Unit tests for bench/stats.c: median of odd and even counts, the degenerate samples,
 * sample stddev against hand-computed values, an input left as it was, and the Mann-Whitney
 * U test's p-values against hand-counted exact distributions and the normal approximation. */
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

/* Exact p-values are ratios of small whole numbers: compare to a few ulps. */
#define assert_p(actual, expected)                                     \
	do {                                                           \
		double p_ = (actual), e_ = (expected);                 \
		if (fabs(p_ - e_) > 1e-12 * (e_ > 1e-300 ? e_ : 1.0))  \
			fail_msg("p = %.17g, expected %.17g", p_, e_); \
	} while (0)

static void test_utest_three_runs_separated_is_p_0_1(void **state)
{
	/* benchstat's caveat: 3 + 3 runs, every A below every B. Of the C(6, 3) = 20 equally
	 * likely splits, one puts A lowest and one highest: p = 2/20, never below 0.05. */
	const double a[] = {4100, 4000, 4200}, b[] = {5100, 5000, 5200};
	struct bench_utest t;

	assert_int_equal(bench_utest(a, 3, b, 3, &t), 0);
	assert_true(t.exact);
	assert_true(t.u == 0.0);
	assert_p(t.p, 0.1);

	assert_int_equal(bench_utest(b, 3, a, 3, &t), 0);
	assert_true(t.u == 9.0);
	assert_p(t.p, 0.1);
	assert_p(bench_utest_min_p(3, 3), 0.1);
}

static void test_utest_exact_small_samples_by_hand(void **state)
{
	/* 4 + 4 runs (C(8, 4) = 70 splits). The splits with U = u are the partitions of u
	 * into at most 4 parts of at most 4: 1, 1, 2, 3, 5 for u = 0..4. */
	const double a1[] = {1, 2, 3, 5}, b1[] = {4, 6, 7, 8}; /* U = 1: p = 2 x 2/70 */
	const double a4[] = {1, 2, 5, 6}, b4[] = {3, 4, 7, 8}; /* U = 4: p = 2 x 12/70 */
	/* 5 + 5 runs (252 splits), U = 0, 1, 2, 3 in 1, 1, 2, 3 ways: the tables' two-sided
	 * 0.05 critical value is U = 2 (p = 8/252), U = 3 is p = 14/252. */
	const double a52[] = {1, 2, 3, 4, 7}, b52[] = {5, 6, 8, 9, 10};
	const double a53[] = {1, 2, 3, 5, 7}, b53[] = {4, 6, 8, 9, 10};
	struct bench_utest t;

	assert_int_equal(bench_utest(a1, 4, b1, 4, &t), 0);
	assert_true(t.u == 1.0);
	assert_p(t.p, 4.0 / 70);
	assert_int_equal(bench_utest(a4, 4, b4, 4, &t), 0);
	assert_true(t.u == 4.0);
	assert_p(t.p, 24.0 / 70);
	assert_int_equal(bench_utest(a52, 5, b52, 5, &t), 0);
	assert_true(t.u == 2.0);
	assert_p(t.p, 8.0 / 252);
	assert_true(t.p < BENCH_ALPHA);
	assert_int_equal(bench_utest(a53, 5, b53, 5, &t), 0);
	assert_true(t.u == 3.0);
	assert_p(t.p, 14.0 / 252);
	assert_true(t.p >= BENCH_ALPHA);

	/* 4 + 4 can be significant only when fully separated: 2/70 */
	assert_p(bench_utest_min_p(4, 4), 2.0 / 70);
	assert_p(bench_utest_min_p(5, 5), 2.0 / 252);
	/* one run against 39 others: 2/40 is exactly alpha, not below it */
	assert_p(bench_utest_min_p(1, 39), 0.05);
	assert_p(bench_utest_min_p(1, 1), 1.0);
}

static void test_utest_unequal_sizes_and_order(void **state)
{
	/* 2 + 6 runs, A the two lowest: 1 split of C(8, 2) = 28 in that tail */
	const double a[] = {10, 11}, b[] = {12, 13, 14, 15, 16, 17};
	struct bench_utest t, r;

	assert_int_equal(bench_utest(a, 2, b, 6, &t), 0);
	assert_p(t.p, 2.0 / 28);
	/* the test is symmetric: swapping A and B mirrors U and keeps p */
	assert_int_equal(bench_utest(b, 6, a, 2, &r), 0);
	assert_true(r.u == 12.0 - t.u);
	assert_p(r.p, t.p);
}

static void test_utest_ties_exact(void **state)
{
	/* {1, 2} vs {2, 3}: mid-ranks 1, 2.5, 2.5, 4; A's rank sum 3.5. Of the 6 splits,
	 * (1, 2.5) twice sum to 3.5 and the other four more: p = 2 x 2/6. */
	const double a[] = {1, 2}, b[] = {2, 3};
	/* Separated despite ties inside each side: still the one lowest split of 252. */
	const double ta[] = {1, 1, 1, 2, 2}, tb[] = {3, 3, 4, 4, 4};
	/* Ties across the sides; 1/9 and 29/231 by enumerating all C(10, 5) and C(12, 6)
	 * splits with mid-ranks. */
	const double xa[] = {1, 2, 2, 3, 3}, xb[] = {2, 3, 4, 4, 5};
	const double ya[] = {10, 20, 20, 30, 40, 40}, yb[] = {20, 30, 40, 50, 50, 60};
	struct bench_utest t;

	assert_int_equal(bench_utest(a, 2, b, 2, &t), 0);
	assert_true(t.exact);
	assert_true(t.u == 0.5);
	assert_p(t.p, 2.0 / 3);
	assert_int_equal(bench_utest(ta, 5, tb, 5, &t), 0);
	assert_p(t.p, 2.0 / 252);
	assert_int_equal(bench_utest(xa, 5, xb, 5, &t), 0);
	assert_true(t.u == 4.0);
	assert_p(t.p, 1.0 / 9);
	assert_int_equal(bench_utest(ya, 6, yb, 6, &t), 0);
	assert_true(t.u == 7.5);
	assert_p(t.p, 29.0 / 231);
}

static void test_utest_identical_samples_are_p_1(void **state)
{
	const double v[] = {6106, 6244, 6165, 5992, 6083, 6238, 6164, 5984, 5931, 5955,
			    5897, 6140, 6183, 5991, 5866, 6032, 6050, 6004, 5961, 6194};
	const double same[] = {5000, 5000, 5000, 5000};
	double many[200];
	struct bench_utest t;
	unsigned i;

	assert_int_equal(bench_utest(v, 20, v, 20, &t), 0);
	assert_true(t.u == 200.0);
	assert_p(t.p, 1.0);
	/* every value equal: no order at all */
	assert_int_equal(bench_utest(same, 4, same, 4, &t), 0);
	assert_p(t.p, 1.0);
	for (i = 0; i < 200; i++)
		many[i] = 5000 + i % 7;
	assert_int_equal(bench_utest(many, 200, many, 200, &t), 0);
	assert_false(t.exact);
	assert_p(t.p, 1.0);
	for (i = 0; i < 200; i++)
		many[i] = 5000;
	assert_int_equal(bench_utest(many, 200, many, 100, &t), 0);
	assert_p(t.p, 1.0);
}

static void test_utest_separated_twenty_runs(void **state)
{
	/* the seed's xAPIC runs without and with IPIv: no overlap, U = 0 (or 400) and
	 * p = 2 / C(40, 20) */
	const double without[20] = {6106, 6244, 6165, 5992, 6083, 6238, 6164, 5984, 5931, 5955,
				    5897, 6140, 6183, 5991, 5866, 6032, 6050, 6004, 5961, 6194};
	const double with[20] = {4816, 4656, 4658, 4710, 4741, 4904, 4617, 4763, 4712, 4530,
				 4673, 4794, 4728, 4994, 4665, 4654, 4653, 4792, 4626, 4576};
	struct bench_utest t;

	assert_int_equal(bench_utest(without, 20, with, 20, &t), 0);
	assert_true(t.exact);
	assert_true(t.u == 400.0);
	assert_p(t.p, 2.0 / 137846528820.0);
	assert_int_equal(bench_utest(with, 20, without, 20, &t), 0);
	assert_true(t.u == 0.0);
	assert_p(t.p, 2.0 / 137846528820.0);
}

static void test_utest_overlapping_twenty_runs(void **state)
{
	/* the seed's runs against themselves 1 % faster and shuffled: U = 263 of 400. Exact
	 * p from the partition recurrence f(u; m, n) = f(u - n; m - 1, n) + f(u; m, n - 1),
	 * computed separately in rational arithmetic: 2 x sum f(u <= 137) / C(40, 20). */
	const double a[20] = {6106, 6244, 6165, 5992, 6083, 6238, 6164, 5984, 5931, 5955,
			      5897, 6140, 6183, 5991, 5866, 6032, 6050, 6004, 5961, 6194};
	const double b[20] = {5872, 5932, 6102, 6176, 5972, 5990, 6103, 6121, 6045, 6182,
			      5930, 5838, 6132, 5895, 5807, 6079, 6022, 5944, 5901, 5924};
	struct bench_utest t;

	assert_int_equal(bench_utest(a, 20, b, 20, &t), 0);
	assert_true(t.exact);
	assert_true(t.u == 263.0);
	assert_p(t.p, 3138977377.0 / 34461632205.0);
}

static void test_utest_normal_approximation(void **state)
{
	double a[60], b[60];
	struct bench_utest t;
	unsigned i;

	/* 0..59 against 10..69: 1225 pairs with a > b plus half of 50 ties, U = 1250 against
	 * a mean of 1800; 50 pairs of ties take 50 x (2^3 - 2) = 300 from the variance:
	 * sd = sqrt(3600 / 12 x (121 - 300 / (120 x 119))), z = (1250 - 1800 + 0.5) / sd. */
	for (i = 0; i < 60; i++) {
		a[i] = i;
		b[i] = i + 10;
	}
	assert_int_equal(bench_utest(a, 60, b, 60, &t), 0);
	assert_false(t.exact);
	assert_true(t.u == 1250.0);
	assert_true(fabs(t.p - erfc(549.5 / sqrt(300.0 * (121.0 - 300.0 / 14280.0)) / M_SQRT2)) <
		    1e-15);
	assert_true(fabs(t.p - 0.00392188390478464) < 1e-12);

	/* 60 + 55 values with many ties (0..9 six times each against 2..11 five or six times
	 * each): the tie correction shrinks the deviation. Reference from an independent
	 * implementation of the same formula (benchstat's). */
	for (i = 0; i < 60; i++)
		a[i] = i % 10;
	for (i = 0; i < 55; i++)
		b[i] = i % 10 + 2;
	assert_int_equal(bench_utest(a, 60, b, 55, &t), 0);
	assert_false(t.exact);
	assert_true(t.u == 1125.0);
	assert_true(fabs(t.p - 0.00318325035095733) < 1e-12);
}

static void test_utest_exact_at_the_limit(void **state)
{
	/* 50 + 50 is still exact; 51 on one side switches to the approximation, and both
	 * agree that interleaved runs do not differ. */
	double a[51], b[51];
	struct bench_utest t;
	unsigned i;

	for (i = 0; i < 51; i++) {
		a[i] = 2 * i;
		b[i] = 2 * i + 1;
	}
	assert_int_equal(bench_utest(a, 50, b, 50, &t), 0);
	assert_true(t.exact);
	assert_true(t.p > 0.5 && t.p <= 1.0);
	assert_int_equal(bench_utest(a, 51, b, 50, &t), 0);
	assert_false(t.exact);
	assert_true(t.p > 0.5 && t.p <= 1.0);
}

static void test_utest_rejects_bad_input(void **state)
{
	const double v[] = {1.0, 2.0, 3.0}, nan[] = {1.0, NAN}, inf[] = {INFINITY, 1.0};
	struct bench_utest t;

	assert_int_equal(bench_utest(v, 0, v, 3, &t), -EINVAL);
	assert_int_equal(bench_utest(v, 3, v, 0, &t), -EINVAL);
	assert_int_equal(bench_utest(NULL, 3, v, 3, &t), -EINVAL);
	assert_int_equal(bench_utest(v, 3, v, 3, NULL), -EINVAL);
	assert_int_equal(bench_utest(v, 3, nan, 2, &t), -EINVAL);
	assert_int_equal(bench_utest(inf, 2, v, 3, &t), -EINVAL);
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
		cmocka_unit_test(test_utest_three_runs_separated_is_p_0_1),
		cmocka_unit_test(test_utest_exact_small_samples_by_hand),
		cmocka_unit_test(test_utest_unequal_sizes_and_order),
		cmocka_unit_test(test_utest_ties_exact),
		cmocka_unit_test(test_utest_identical_samples_are_p_1),
		cmocka_unit_test(test_utest_separated_twenty_runs),
		cmocka_unit_test(test_utest_overlapping_twenty_runs),
		cmocka_unit_test(test_utest_normal_approximation),
		cmocka_unit_test(test_utest_exact_at_the_limit),
		cmocka_unit_test(test_utest_rejects_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
