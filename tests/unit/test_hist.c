/* Unit tests for the log-linear latency buckets: edges are exact and inclusive, buckets
 * tile the value range with no gap or overlap, and every bucket is at most 6.25 % wide. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "hist.h"

static void test_small_values(void **state)
{
	assert_int_equal(hist_bucket(0), 0);
	assert_int_equal(hist_bucket(63), 0);
	assert_int_equal(hist_bucket(64), 1);
	assert_int_equal(hist_bucket(67), 1); /* 64..67: width 4 = 64/16 */
	assert_int_equal(hist_bucket(68), 2);
	assert_int_equal(hist_bucket(127), 16);
	assert_int_equal(hist_bucket(128), 17);
}

static void test_edges_inclusive(void **state)
{
	/* A value equal to a bucket's upper edge (its Prometheus le) lands in it; one more
	 * lands in the next. */
	for (uint32_t b = 0; b < HIST_BUCKETS - 1; b++) {
		uint64_t hi = hist_bucket_hi(b);

		assert_int_equal(hist_bucket(hi), b);
		assert_int_equal(hist_bucket(hi + 1), b + 1);
		assert_int_equal(hist_bucket(hist_bucket_lo(b)), b);
	}
}

static void test_tiling_and_width(void **state)
{
	for (uint32_t b = 1; b < HIST_BUCKETS - 1; b++) {
		uint64_t lo = hist_bucket_lo(b), hi = hist_bucket_hi(b);

		assert_int_equal(lo, hist_bucket_hi(b - 1) + 1);
		assert_true(hi >= lo);
		/* width relative to the lower edge: at most 1/16 */
		assert_true((hi - lo + 1) * 16 <= lo);
	}
}

static void test_range_ends(void **state)
{
	uint64_t ten_s = 10ull * 1000 * 1000 * 1000;
	uint32_t b = hist_bucket(ten_s);

	/* 10 s is resolved, not lumped into the overflow bucket: octave 33, sub-bucket 2 */
	assert_int_equal(b, 1 + (33 - 6) * 16 + 2);
	assert_true(hist_bucket_lo(b) <= ten_s && ten_s <= hist_bucket_hi(b));
	assert_int_equal(hist_bucket((1ull << 34) - 1), HIST_BUCKETS - 2);
	assert_int_equal(hist_bucket(1ull << 34), HIST_BUCKETS - 1);
	assert_int_equal(hist_bucket(~0ull), HIST_BUCKETS - 1);
	assert_int_equal(HIST_BUCKETS, 1 + 28 * 16 + 1);
}

static void test_log2(void **state)
{
	for (int i = 0; i < 64; i++) {
		assert_int_equal(hist_log2(1ull << i), i);
		if (i > 1)
			assert_int_equal(hist_log2((1ull << i) - 1), i - 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_values),
		cmocka_unit_test(test_edges_inclusive),
		cmocka_unit_test(test_tiling_and_width),
		cmocka_unit_test(test_range_ends),
		cmocka_unit_test(test_log2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
