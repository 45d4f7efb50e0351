/* Unit tests for latency's dense series numbering (include/latency_maps.h): every VM-wide
 * histogram (kind, sub) has a series of its own, the collector maps each series back to
 * the same (kind, sub), and nothing else has one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include "ipiv.h"
#include "latency_maps.h"

/* Subs of each histogram kind, as the BPF side records them. */
static uint32_t subs_of(uint32_t kind)
{
	switch (kind) {
	case IPIV_LAT_SEND_ACCEPT:
	case IPIV_LAT_SEND_EOI:
	case IPIV_LAT_EXIT:
	case IPIV_LAT_EXIT_FASTPATH: return IPIV_PATH_COUNT;
	case IPIV_LAT_ACCEPT_RUN: return IPIV_LAT_CASE_COUNT;
	case IPIV_LAT_HALT: return 2;
	}
	return 0;
}

/* Whether (kind, sub) has a dense series: all do but the fastpath's exits of paths other than
 * x2APIC MSR writes, which KVM's exit fastpath never sends (the lat hash takes them). */
static bool dense(uint32_t kind, uint32_t sub)
{
	return kind != IPIV_LAT_EXIT_FASTPATH || sub == IPIV_PATH_X2APIC_MSR;
}

static void test_series_are_one_to_one(void **state)
{
	unsigned char taken[IPIV_LAT_SERIES] = {0};
	uint32_t n = 0;

	assert_int_equal(IPIV_LAT_PATHS, IPIV_PATH_COUNT);
	assert_int_equal(IPIV_LAT_FASTPATH_PATH, IPIV_PATH_X2APIC_MSR);
	for (uint32_t kind = 0; kind < IPIV_LAT_UNMATCHED; kind++)
		for (uint32_t sub = 0; sub < subs_of(kind); sub++) {
			uint32_t s = ipiv_lat_series_of(kind, sub);
			uint16_t back_kind, back_sub;

			if (!dense(kind, sub)) {
				assert_int_equal(s, IPIV_LAT_SERIES);
				continue;
			}
			assert_true(s < IPIV_LAT_SERIES);
			assert_false(taken[s]);
			taken[s] = 1;
			n++;
			ipiv_lat_series_kind(s, &back_kind, &back_sub);
			assert_int_equal(back_kind, kind);
			assert_int_equal(back_sub, sub);
		}
	assert_int_equal(n, IPIV_LAT_SERIES); /* no series is left without a histogram */
	assert_true(IPIV_LAT_SERIES <= 64);   /* a bit each in ipiv_lat_slot.series_used */
}

static void test_no_series_for_the_rest(void **state)
{
	for (uint32_t kind = 0; kind < IPIV_LAT_UNMATCHED; kind++)
		assert_int_equal(ipiv_lat_series_of(kind, subs_of(kind)), IPIV_LAT_SERIES);
	assert_int_equal(ipiv_lat_series_of(IPIV_LAT_UNMATCHED, 0), IPIV_LAT_SERIES);
	assert_int_equal(ipiv_lat_series_of(IPIV_LAT_BINDING, 0), IPIV_LAT_SERIES);
	assert_int_equal(ipiv_lat_series_of(IPIV_LAT_KIND_COUNT, 0), IPIV_LAT_SERIES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_series_are_one_to_one),
		cmocka_unit_test(test_no_series_for_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
