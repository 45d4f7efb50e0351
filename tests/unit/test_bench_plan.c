/* Unit tests for ipivbench's pattern plans: ICR bits, destinations, fan-out and the exact
 * deliveries the guest must count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "plan.h"
#include "guest/layout.h"

static struct bench_config config(enum bench_pattern p, unsigned vcpus, unsigned ipis)
{
	struct bench_config c;

	memset(&c, 0, sizeof(c));
	c.pattern = p;
	c.vcpus = vcpus;
	c.ipis = ipis;
	c.runs = 1;
	return c;
}

static void test_x2apic_phys_round_robin(void **state)
{
	struct bench_config c = config(BENCH_X2APIC_PHYS, 4, 10);
	struct bench_plan p;
	uint64_t exp[BENCH_MAX_VCPUS];
	char err[128];

	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), 0);
	assert_true(p.x2apic);
	assert_int_equal(p.send_kind, SEND_X2APIC_ICR);
	assert_int_equal(p.icr_low, IPI_VECTOR); /* fixed, physical, no shorthand */
	assert_int_equal(p.nslots, 3);
	assert_int_equal(p.dest[0], 1);
	assert_int_equal(p.dest[2], 3);
	assert_int_equal(p.fanout, 1);
	/* 10 IPIs over 3 targets, slot restarting each run: 4,3,3 per run; 2 runs */
	bench_plan_expected(&c, &p, 2, exp);
	assert_int_equal(exp[0], 0);
	assert_int_equal(exp[1], 8);
	assert_int_equal(exp[2], 6);
	assert_int_equal(exp[3], 6);
}

static void test_x2apic_logical_ids(void **state)
{
	struct bench_config c = config(BENCH_X2APIC_LOGICAL, 20, 1);
	struct bench_plan p;
	char err[128];

	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), 0);
	assert_int_equal(p.icr_low, IPI_VECTOR | (1u << 11));
	assert_int_equal(p.dest[0], 1u << 1);		      /* vCPU 1: cluster 0 */
	assert_int_equal(p.dest[16], (1u << 16) | (1u << 1)); /* vCPU 17: cluster 1 */
}

static void test_multicast_reaches_odd_vcpus_only(void **state)
{
	struct bench_config c = config(BENCH_X2APIC_MULTICAST, 6, 7);
	struct bench_plan p;
	uint64_t exp[BENCH_MAX_VCPUS];
	char err[128];

	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), 0);
	assert_int_equal(p.nslots, 1);
	assert_int_equal(p.dest[0], (1u << 1) | (1u << 3) | (1u << 5));
	assert_int_equal(p.fanout, 3);
	bench_plan_expected(&c, &p, 3, exp);
	assert_int_equal(exp[1], 21);
	assert_int_equal(exp[2], 0);
	assert_int_equal(exp[3], 21);
	assert_int_equal(exp[4], 0);
	assert_int_equal(exp[5], 21);
}

static void test_broadcast_fanout(void **state)
{
	struct bench_config c = config(BENCH_XAPIC_BROADCAST, 4, 5);
	struct bench_plan p;
	uint64_t exp[BENCH_MAX_VCPUS];
	char err[128];

	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), 0);
	assert_false(p.x2apic);
	assert_int_equal(p.icr_low, IPI_VECTOR | (3u << 18));
	assert_int_equal(p.fanout, 3);
	bench_plan_expected(&c, &p, 1, exp);
	assert_int_equal(exp[0], 0);
	assert_int_equal(exp[1], 5);
	assert_int_equal(exp[3], 5);
}

static void test_self_and_nmi_and_pv(void **state)
{
	struct bench_config c = config(BENCH_X2APIC_SELF, 2, 4);
	struct bench_plan p;
	uint64_t exp[BENCH_MAX_VCPUS];
	char err[128];

	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), 0);
	assert_int_equal(p.send_kind, SEND_X2APIC_SELF);
	bench_plan_expected(&c, &p, 1, exp);
	assert_int_equal(exp[0], 4);
	assert_int_equal(exp[1], 0);

	c = config(BENCH_NMI, 2, 1);
	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), 0);
	assert_int_equal(p.icr_low, 4u << 8);

	c = config(BENCH_PV_SEND_IPI, 3, 1);
	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), 0);
	assert_true(p.needs_pv);
	assert_int_equal(p.send_kind, SEND_PV_HYPERCALL);
	assert_int_equal(p.dest[1], 2);
}

static void test_xapic_logical_flat_limit(void **state)
{
	struct bench_config c = config(BENCH_XAPIC_LOGICAL, 12, 1);
	struct bench_plan p;
	char err[128];

	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), 0);
	assert_int_equal(p.nslots, 7); /* flat mode addresses 8 APICs */
	assert_int_equal(p.dest[6], 1u << 7);
}

static void test_bad_config(void **state)
{
	struct bench_config c = config(BENCH_X2APIC_PHYS, 1, 1);
	struct bench_plan p;
	char err[128];

	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "vCPU count"));
	c = config(BENCH_PATTERN_COUNT, 2, 1);
	assert_int_equal(bench_plan_make(&c, &p, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "pattern"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x2apic_phys_round_robin),
		cmocka_unit_test(test_x2apic_logical_ids),
		cmocka_unit_test(test_multicast_reaches_odd_vcpus_only),
		cmocka_unit_test(test_broadcast_fanout),
		cmocka_unit_test(test_self_and_nmi_and_pv),
		cmocka_unit_test(test_xapic_logical_flat_limit),
		cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
