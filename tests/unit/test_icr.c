// SPDX-License-Identifier: GPL-2.0
/* ICR classification (include/icr.h): every delivery mode, destination mode, shorthand,
 * broadcast in both APIC modes, logical multicast, and IPIv/AVIC eligibility. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "icr.h"

static __u32 icr(__u32 vector, __u32 dm, int logical, __u32 shorthand)
{
	return vector | dm << ICR_DELIVERY_SHIFT | (logical ? ICR_DEST_LOGICAL : 0) |
	       shorthand << ICR_SHORTHAND_SHIFT;
}

static void test_field_extraction(void **state)
{
	__u32 low = icr(0xfd, ICR_DM_NMI, 1, ICR_SH_ALL_BUT_SELF) | 1u << 14 | 1u << 15;

	assert_int_equal(icr_delivery(low), ICR_DM_NMI);
	assert_int_equal(icr_shorthand(low), ICR_SH_ALL_BUT_SELF);
	assert_true(icr_is_logical(low));
	/* level/assert bits and the vector must not leak into the class */
	assert_int_equal(icr_classify(low, 4, ICR_MODE_XAPIC),
			 ICR_DM_NMI | ICR_CLASS_LOGICAL |
				 ICR_SH_ALL_BUT_SELF << ICR_CLASS_SH_SHIFT);
}

static void test_each_delivery_mode(void **state)
{
	for (__u32 dm = 0; dm < ICR_DM_COUNT; dm++) {
		__u32 class = icr_classify(icr(0x40, dm, 0, ICR_SH_NONE), 1, ICR_MODE_X2APIC);

		assert_int_equal(icr_class_delivery(class), dm);
		assert_false(icr_class_is_logical(class));
		assert_int_equal(icr_class_shorthand(class), ICR_SH_NONE);
		assert_false(icr_class_is_broadcast(class));
		/* only fixed delivery is virtualized by IPIv/AVIC */
		assert_int_equal(icr_class_accel_eligible(class), dm == ICR_DM_FIXED);
	}
}

static void test_each_shorthand(void **state)
{
	for (__u32 sh = 0; sh < ICR_SH_COUNT; sh++) {
		__u32 class = icr_classify(icr(0xfb, ICR_DM_FIXED, 0, sh), 0, ICR_MODE_XAPIC);

		assert_int_equal(icr_class_shorthand(class), sh);
		assert_int_equal(icr_class_accel_eligible(class), sh == ICR_SH_NONE);
	}
}

static void test_broadcast_depends_on_mode(void **state)
{
	__u32 fixed = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);

	/* xAPIC: destination field 0xff is broadcast */
	assert_true(icr_class_is_broadcast(icr_classify(fixed, 0xff, ICR_MODE_XAPIC)));
	assert_false(icr_class_accel_eligible(icr_classify(fixed, 0xff, ICR_MODE_XAPIC)));
	assert_false(icr_class_is_broadcast(icr_classify(fixed, 0xfe, ICR_MODE_XAPIC)));
	/* x2APIC: 0xff is APIC ID 255, only 0xffffffff is broadcast */
	assert_false(icr_class_is_broadcast(icr_classify(fixed, 0xff, ICR_MODE_X2APIC)));
	assert_true(icr_class_accel_eligible(icr_classify(fixed, 0xff, ICR_MODE_X2APIC)));
	assert_true(icr_class_is_broadcast(icr_classify(fixed, 0xffffffff, ICR_MODE_X2APIC)));
	/* mode unknown: both encodings count as broadcast */
	assert_true(icr_class_is_broadcast(icr_classify(fixed, 0xff, ICR_MODE_UNKNOWN)));
	assert_true(icr_class_is_broadcast(icr_classify(fixed, 0xffffffff, ICR_MODE_UNKNOWN)));
	assert_false(icr_class_is_broadcast(icr_classify(fixed, 0x100, ICR_MODE_UNKNOWN)));
}

static void test_logical_unicast_and_multicast(void **state)
{
	__u32 logical = icr(0xfc, ICR_DM_FIXED, 1, ICR_SH_NONE);
	__u32 class;

	/* xAPIC flat: one bit is one CPU, two bits a multicast */
	class = icr_classify(logical, 0x04, ICR_MODE_XAPIC);
	assert_true(icr_class_is_logical(class));
	assert_false(icr_class_is_multicast(class));
	assert_false(icr_class_accel_eligible(class));
	class = icr_classify(logical, 0x05, ICR_MODE_XAPIC);
	assert_true(icr_class_is_multicast(class));
	/* xAPIC logical 0xff is broadcast, not multicast */
	class = icr_classify(logical, 0xff, ICR_MODE_XAPIC);
	assert_true(icr_class_is_broadcast(class));
	assert_false(icr_class_is_multicast(class));

	/* x2APIC cluster: cluster id in 31:16 is not part of the mask */
	class = icr_classify(logical, 0x00030001, ICR_MODE_X2APIC);
	assert_false(icr_class_is_multicast(class));
	class = icr_classify(logical, 0x00010180, ICR_MODE_X2APIC);
	assert_true(icr_class_is_multicast(class));
	assert_false(icr_class_is_broadcast(class));

	/* physical destinations are never multicast, whatever the bits */
	class = icr_classify(icr(0xfc, ICR_DM_FIXED, 0, ICR_SH_NONE), 0x0f, ICR_MODE_XAPIC);
	assert_false(icr_class_is_multicast(class));
	assert_true(icr_class_accel_eligible(class));
}

static void test_init_sipi_sequence(void **state)
{
	/* what Linux sends to start an AP: INIT level assert, then SIPI with the start page */
	__u32 init = icr(0, ICR_DM_INIT, 0, ICR_SH_NONE) | 1u << 14 | 1u << 15;
	__u32 sipi = icr(0x9a, ICR_DM_SIPI, 0, ICR_SH_NONE);

	assert_int_equal(icr_classify(init, 2, ICR_MODE_X2APIC), ICR_DM_INIT);
	assert_int_equal(icr_classify(sipi, 2, ICR_MODE_X2APIC), ICR_DM_SIPI);
	assert_false(icr_class_accel_eligible(ICR_DM_INIT));
	assert_false(icr_class_accel_eligible(ICR_DM_SIPI));
}

static void test_class_fits_table(void **state)
{
	/* every ICR maps into [0, ICR_CLASS_COUNT) */
	__u32 all = 0xffffffff;

	assert_true(icr_classify(all, 0x0000ffff, ICR_MODE_X2APIC) < ICR_CLASS_COUNT);
	assert_true(icr_classify(all, 0xffffffff, ICR_MODE_XAPIC) < ICR_CLASS_COUNT);
	assert_int_equal(icr_popcount32(0), 0);
	assert_int_equal(icr_popcount32(0xffffffff), 32);
	assert_int_equal(icr_popcount32(0x80000001), 2);
}

static void test_format(void **state)
{
	char buf[64];

	icr_class_format(icr_classify(icr(0xfd, ICR_DM_FIXED, 0, 0), 1, ICR_MODE_X2APIC), buf,
			 sizeof(buf));
	assert_string_equal(buf, "fixed/physical/none");
	icr_class_format(icr_classify(icr(2, ICR_DM_NMI, 1, ICR_SH_ALL), 0xff, ICR_MODE_XAPIC), buf,
			 sizeof(buf));
	assert_string_equal(buf, "nmi/logical/all/broadcast");
	icr_class_format(icr_classify(icr(2, ICR_DM_LOWEST_PRIO, 1, 0), 3, ICR_MODE_XAPIC), buf,
			 sizeof(buf));
	assert_string_equal(buf, "lowest_prio/logical/none/multicast");
	icr_class_format(icr_classify(icr(2, ICR_DM_SMI, 0, ICR_SH_SELF), 0, ICR_MODE_XAPIC), buf,
			 sizeof(buf));
	assert_string_equal(buf, "smi/physical/self");
}

/* Mode 3 is reserved in an ICR, but an accepted mode 3 is KVM's PV unhalt kick. */
static void test_accept_delivery_names(void **state)
{
	char buf[64];

	assert_string_equal(icr_delivery_names[ICR_DM_RESERVED3], "reserved3");
	assert_string_equal(icr_accept_delivery_name(ICR_DM_PV_KICK), "pv_kick");
	for (__u32 dm = 0; dm < ICR_DM_COUNT; dm++)
		if (dm != ICR_DM_PV_KICK)
			assert_string_equal(icr_accept_delivery_name(dm), icr_delivery_names[dm]);
	icr_class_format(icr_classify(icr(0, ICR_DM_RESERVED3, 0, 0), 1, ICR_MODE_X2APIC), buf,
			 sizeof(buf));
	assert_string_equal(buf, "reserved3/physical/none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_extraction),
		cmocka_unit_test(test_each_delivery_mode),
		cmocka_unit_test(test_each_shorthand),
		cmocka_unit_test(test_broadcast_depends_on_mode),
		cmocka_unit_test(test_logical_unicast_and_multicast),
		cmocka_unit_test(test_init_sipi_sequence),
		cmocka_unit_test(test_class_fits_table),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_accept_delivery_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
