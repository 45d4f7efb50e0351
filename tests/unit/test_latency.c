/* Unit tests for user-space latency histograms: quantiles and their stated error, merging,
 * Prometheus edges that keep "a value equal to le lands in that bucket". */
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "latency.h"

static void test_quantiles_bracket_the_truth(void **state)
{
	static struct latency_hist h;
	uint64_t values[1000];

	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 1000; i++) {
		values[i] = 1000 + 37 * i; /* 1000 .. 37963 ns, sorted */
		latency_add(&h, values[i]);
	}
	assert_int_equal(h.count, 1000);
	const double qs[] = {0.5, 0.9, 0.99, 1.0};
	for (unsigned i = 0; i < 4; i++) {
		struct latency_quantile r = latency_quantile(&h, qs[i]);
		uint64_t truth = values[(int)ceil(qs[i] * 1000) - 1];

		assert_true(r.valid);
		assert_false(r.overflow);
		assert_true(fabs(r.value_ns - (double)truth) <= r.error_ns + 0.5);
		assert_true(r.error_ns <= r.value_ns * 0.0625); /* the stated bucket error */
	}
}

static void test_empty_and_bad_q(void **state)
{
	static struct latency_hist h;

	memset(&h, 0, sizeof(h));
	assert_false(latency_quantile(&h, 0.5).valid);
	latency_add(&h, 100);
	assert_false(latency_quantile(&h, 0).valid);
	assert_false(latency_quantile(&h, 1.5).valid);
	assert_true(latency_quantile(&h, 0.5).valid);
	assert_true(latency_mean_ns(&h) == 100.0);
}

static void test_overflow_bucket(void **state)
{
	static struct latency_hist h;

	memset(&h, 0, sizeof(h));
	latency_add(&h, 1ull << 40);
	struct latency_quantile r = latency_quantile(&h, 0.5);
	assert_true(r.valid);
	assert_true(r.overflow);
	assert_true(isinf(r.error_ns));
}

static void test_merge(void **state)
{
	static struct latency_hist a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	latency_add(&a, 70);
	latency_add(&b, 70);
	latency_add(&b, 5000);
	latency_merge(&a, &b);
	assert_int_equal(a.count, 3);
	assert_int_equal(a.sum_ns, 5140);
	assert_int_equal(a.buckets[hist_bucket(70)], 2);
}

static void test_le_edges(void **state)
{
	const double *le = latency_le_seconds();

	/* 63 ns is the first edge; a 63 ns value is in bucket 0, 64 ns in bucket 1 */
	assert_true(le[0] == 63e-9);
	assert_true(le[1] == 67e-9);
	for (unsigned b = 1; b < HIST_BUCKETS - 1; b++)
		assert_true(le[b] > le[b - 1]);
	/* the edge value converted back to ns is the inclusive upper bound */
	for (unsigned b = 0; b < HIST_BUCKETS - 1; b++)
		assert_int_equal(hist_bucket((uint64_t)llround(le[b] * 1e9)), b);
}

/* Every layout: increasing bounds that are hist.h edges, the expected counts, and folding
 * that keeps every observation, a value equal to a bound inside that bound's bucket. */
static void test_layouts(void **state)
{
	static const size_t want[LATENCY_LAYOUT_COUNT] = {10, 29, HIST_BUCKETS - 1};
	/* per layout, the values above its last bound: coarse stops at 2^28 - 1 ns */
	static const uint64_t above_last[LATENCY_LAYOUT_COUNT] = {3, 1, 1};
	static const uint64_t values[] = {
		0,     63,	64,	   1023,      1024,	      5000,	 65535,
		65536, 1000000, 268435455, 268435456, 17179869183ull, 1ull << 40};
	static struct latency_hist h;
	uint64_t counts[HIST_BUCKETS];
	enum latency_layout l;

	memset(&h, 0, sizeof(h));
	for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++)
		latency_add(&h, values[v]);
	for (l = 0; l < LATENCY_LAYOUT_COUNT; l++) {
		const double *le;
		size_t n = latency_layout_bounds(l, &le);
		uint64_t total = 0;

		assert_int_equal(n, want[l]);
		for (size_t i = 0; i < n; i++) {
			uint64_t ns = (uint64_t)llround(le[i] * 1e9);

			assert_true(i == 0 || le[i] > le[i - 1]);
			assert_int_equal(hist_bucket_hi(hist_bucket(ns)), ns); /* an edge */
		}
		latency_fold(&h, l, counts);
		for (size_t i = 0; i <= n; i++)
			total += counts[i];
		assert_int_equal(total, h.count);
		assert_int_equal(counts[n], above_last[l]);
	}
	/* coarse: 1.023 us, 4.095 us, ... 268.4 ms, then +Inf (octave and fine go to 17.18 s) */
	{
		const double *le;

		latency_layout_bounds(LATENCY_LAYOUT_COARSE, &le);
		assert_true(le[0] == 1023e-9);
		assert_true(le[9] == 268435455e-9);
		latency_fold(&h, LATENCY_LAYOUT_COARSE, counts);
		assert_int_equal(counts[0], 4); /* 0, 63, 64, 1023 */
		assert_int_equal(counts[1], 1); /* 1024 */
		assert_int_equal(counts[2], 1); /* 5000 */
		assert_int_equal(counts[3], 1); /* 65535: equal to the bound, inside */
		assert_int_equal(counts[4], 1); /* 65536 */
		assert_int_equal(counts[9], 1); /* 2^28 - 1: the last bound, inside */
		/* +Inf: 2^28, 2^34 - 1, 2^40 */
		latency_layout_bounds(LATENCY_LAYOUT_OCTAVE, &le);
		assert_true(le[28] == 17179869183e-9);
	}
	assert_int_equal(latency_layout_parse("octave", &l), 0);
	assert_int_equal(l, LATENCY_LAYOUT_OCTAVE);
	assert_int_equal(latency_layout_parse("medium", &l), -EINVAL);
	assert_string_equal(latency_layout_name(LATENCY_LAYOUT_FINE), "fine");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantiles_bracket_the_truth),
		cmocka_unit_test(test_empty_and_bad_q),
		cmocka_unit_test(test_overflow_bucket),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_le_edges),
		cmocka_unit_test(test_layouts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
