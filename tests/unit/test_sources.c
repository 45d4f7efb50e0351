// SPDX-License-Identifier: GPL-2.0
/* Where each quantity comes from (daemon/lib/sources.c): the first attached probe in its order
 * of preference, "none" when nothing attached, probes present but not attached ignored. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "sources.h"

static const struct ipiv_quantity_source *find(const struct ipiv_quantity_source *src,
					       const char *quantity)
{
	for (size_t q = 0; q < IPIV_N_QUANTITIES; q++)
		if (!strcmp(src[q].quantity, quantity))
			return &src[q];
	fail_msg("no quantity %s", quantity);
	return NULL;
}

static void test_nothing_attached(void **state)
{
	const struct ipiv_probe probes[] = {
		{"kvm_pi_wakeup", "ipiv_pi_wakeup", true, false, -ENOENT},
		{"kvm_exit", "ipiv_exit", true, false, -ENOENT},
		{"fexit/handle_fastpath_set_msr_irqoff", "ipiv_fastpath_set_msr", true, false,
		 -EPERM},
	};
	struct ipiv_quantity_source src[IPIV_N_QUANTITIES];

	ipiv_quantity_sources(probes, 3, src);
	for (size_t q = 0; q < IPIV_N_QUANTITIES; q++) {
		assert_non_null(src[q].quantity);
		assert_null(src[q].probe);
		assert_int_equal(src[q].kind, IPIV_SOURCE_NONE);
	}
	ipiv_quantity_sources(NULL, 0, src);
	assert_null(find(src, "posted_wakeups")->probe);
}

static void test_each_kind(void **state)
{
	const struct ipiv_probe probes[] = {
		{"kvm_apic_ipi", "ipiv_apic_ipi", false, true, 0},
		{"kvm_exit", "ipiv_exit", true, true, 0},
		{"kvm_pi_wakeup", "ipiv_pi_wakeup", true, true, 0},
		{"fexit/handle_fastpath_set_msr_irqoff", "ipiv_fastpath_set_msr", true, false,
		 -ENOENT},
		{"fexit/handle_fastpath_wrmsr", "ipiv_fastpath_wrmsr", true, true, 0},
		{"fexit/vmx_vcpu_pi_load", "ipiv_pi_load", true, false, -ENOENT},
		{"fexit/avic_vcpu_load", "ipiv_avic_load", true, true, 0},
	};
	struct ipiv_quantity_source src[IPIV_N_QUANTITIES];
	const struct ipiv_quantity_source *s;

	ipiv_quantity_sources(probes, sizeof(probes) / sizeof(probes[0]), src);
	s = find(src, "posted_wakeups");
	assert_string_equal(s->probe, "kvm_pi_wakeup");
	assert_string_equal(ipiv_source_kind_name(s->kind), "patched_tracepoint");
	s = find(src, "icr_write_traps");
	assert_string_equal(s->probe, "kvm_exit");
	assert_string_equal(ipiv_source_kind_name(s->kind), "derived");
	/* 6.18's function when 6.17's is absent */
	s = find(src, "x2apic_fastpath");
	assert_string_equal(s->probe, "fexit/handle_fastpath_wrmsr");
	assert_string_equal(ipiv_source_kind_name(s->kind), "fexit");
	s = find(src, "pi_descriptor_updates");
	assert_null(s->probe);
	assert_string_equal(ipiv_source_kind_name(s->kind), "none");
	assert_string_equal(find(src, "avic_running")->probe, "fexit/avic_vcpu_load");
}

static void test_preference_order(void **state)
{
	struct ipiv_probe probes[] = {
		{"fexit/handle_fastpath_wrmsr", "ipiv_fastpath_wrmsr", true, true, 0},
		{"fexit/handle_fastpath_set_msr_irqoff", "ipiv_fastpath_set_msr", true, true, 0},
	};
	struct ipiv_quantity_source src[IPIV_N_QUANTITIES];

	/* both attached (never on one kernel): the table's order decides, not the probes' */
	ipiv_quantity_sources(probes, 2, src);
	assert_string_equal(find(src, "x2apic_fastpath")->probe,
			    "fexit/handle_fastpath_set_msr_irqoff");
	probes[1].attached = false;
	ipiv_quantity_sources(probes, 2, src);
	assert_string_equal(find(src, "x2apic_fastpath")->probe, "fexit/handle_fastpath_wrmsr");
}

/* 6.18's fastpath for the immediate form of WRMSRNS is a source too: alone (its WRMSR sibling
 * inlined or refused), and after the WRMSR one when both attach. */
static void test_fastpath_wrmsr_imm(void **state)
{
	struct ipiv_probe probes[] = {
		{"fexit/handle_fastpath_set_msr_irqoff", "ipiv_fastpath_set_msr", true, false,
		 -ENOENT},
		{"fexit/handle_fastpath_wrmsr", "ipiv_fastpath_wrmsr", true, false, -EINVAL},
		{"fexit/handle_fastpath_wrmsr_imm", "ipiv_fastpath_wrmsr_imm", true, true, 0},
	};
	struct ipiv_quantity_source src[IPIV_N_QUANTITIES];
	const struct ipiv_quantity_source *s;

	ipiv_quantity_sources(probes, 3, src);
	s = find(src, "x2apic_fastpath");
	assert_string_equal(s->probe, "fexit/handle_fastpath_wrmsr_imm");
	assert_string_equal(ipiv_source_kind_name(s->kind), "fexit");
	probes[1].attached = true;
	ipiv_quantity_sources(probes, 3, src);
	assert_string_equal(find(src, "x2apic_fastpath")->probe, "fexit/handle_fastpath_wrmsr");
	probes[1].attached = probes[2].attached = false;
	ipiv_quantity_sources(probes, 3, src);
	assert_null(find(src, "x2apic_fastpath")->probe);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_attached),
		cmocka_unit_test(test_each_kind),
		cmocka_unit_test(test_preference_order),
		cmocka_unit_test(test_fastpath_wrmsr_imm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
