/* Unit tests for user-space latency histograms: quantiles and their stated error, merging,
 * Prometheus edges that keep "a value equal to le lands in that bucket". */
#include <stdarg.h>
#include <stddef.h>
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

static void test_export_range(void **state)
{
	static struct latency_hist h;
	unsigned first, n;

	memset(&h, 0, sizeof(h));
	assert_false(latency_export_range(&h, &first, &n));
	latency_add(&h, 1ull << 40); /* overflow only: no finite bucket */
	assert_false(latency_export_range(&h, &first, &n));
	latency_add(&h, 1000);
	latency_add(&h, 3000);
	assert_true(latency_export_range(&h, &first, &n));
	assert_int_equal(first, hist_bucket(1000));
	assert_int_equal(first + n - 1, hist_bucket(3000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantiles_bracket_the_truth),
		cmocka_unit_test(test_empty_and_bad_q),
		cmocka_unit_test(test_overflow_bucket),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_le_edges),
		cmocka_unit_test(test_export_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
