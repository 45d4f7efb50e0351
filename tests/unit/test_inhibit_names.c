// SPDX-License-Identifier: GPL-2.0
/* APICv inhibit reason names decoded from BTF (enum kvm_apicv_inhibit), not a fixed list:
 * synthetic BTF with another kernel's numbering, malformed enumerators, no enum at all; and
 * the tables handed on (labels.h), which are values, not a global. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <bpf/btf.h>

#include "btf_names.h"
#include "labels.h"

static struct btf *btf_with(const char *const *names, const long long *vals, int n)
{
	struct btf *btf = btf__new_empty();

	assert_non_null(btf);
	assert_true(btf__add_enum(btf, "kvm_apicv_inhibit", 4) > 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(btf__add_enum_value(btf, names[i], vals[i]), 0);
	return btf;
}

/* A kernel that numbers the reasons its own way gets its own names at its own bits. */
static void test_numbering_follows_btf(void **state)
{
	static const char *const names[] = {
		"APICV_INHIBIT_REASON_DISABLED", "APICV_INHIBIT_REASON_NESTED",
		"APICV_INHIBIT_REASON_SOMETHING_NEW_2", "NR_APICV_INHIBIT_REASONS"};
	static const long long vals[] = {0, 3, 13, 14};
	char out[IPIV_INHIBIT_COUNT][IPIV_INHIBIT_NAME_MAX] = {{0}};
	struct btf *btf = btf_with(names, vals, 4);

	assert_int_equal(ipiv_inhibit_names_from_btf(btf, out), 3);
	assert_string_equal(out[0], "disabled");
	assert_string_equal(out[3], "nested");
	assert_string_equal(out[13], "something_new_2");
	assert_string_equal(out[1], "");  /* not defined there */
	assert_string_equal(out[14], ""); /* the count is not a reason */
	btf__free(btf);
}

/* Enumerators without the prefix, negative or beyond the bitmap are not reasons; odd
 * characters never reach a label. */
static void test_malformed_enumerators(void **state)
{
	static const char *const names[] = {"SOMETHING_ELSE", "APICV_INHIBIT_REASON_NEG",
					    "APICV_INHIBIT_REASON_HUGE",
					    "APICV_INHIBIT_REASON_A$B"};
	static const long long vals[] = {1, -1, 64, 2};
	char out[IPIV_INHIBIT_COUNT][IPIV_INHIBIT_NAME_MAX] = {{0}};
	struct btf *btf = btf_with(names, vals, 4);

	assert_int_equal(ipiv_inhibit_names_from_btf(btf, out), 1);
	assert_string_equal(out[1], "");
	assert_string_equal(out[2], "a_b");
	btf__free(btf);
}

static void test_no_enum(void **state)
{
	char out[IPIV_INHIBIT_COUNT][IPIV_INHIBIT_NAME_MAX] = {{0}};
	struct btf *btf = btf__new_empty();

	assert_int_equal(ipiv_inhibit_names_from_btf(btf, out), -ENOENT);
	assert_int_equal(ipiv_inhibit_names_from_btf(NULL, out), -ENOENT);
	btf__free(btf);
	/* no table (ipivtop --connect, a hand-made snapshot): the fixed 6.18 list answers */
	assert_string_equal(ipiv_inhibit_names_source(NULL), "builtin");
	assert_string_equal(ipiv_inhibit_name(NULL, 12), "physical_id_too_big");
	assert_string_equal(ipiv_inhibit_name(NULL, 13), "reason_13");
	assert_string_equal(ipiv_inhibit_name(NULL, IPIV_INHIBIT_COUNT), "invalid");
}

/* kvm's BTF (KVM as a module) before vmlinux's; the bits a kernel does not define get
 * "reason_<n>", not 6.18's name for that bit. */
static void test_load_prefers_kvm(void **state)
{
	static const char *const kvm_names[] = {"APICV_INHIBIT_REASON_DISABLED",
						"APICV_INHIBIT_REASON_ONLY_HERE"};
	static const long long kvm_vals[] = {0, 2};
	static const char *const vmlinux_names[] = {"APICV_INHIBIT_REASON_FROM_VMLINUX"};
	static const long long vmlinux_vals[] = {0};
	struct btf *kvm = btf_with(kvm_names, kvm_vals, 2);
	struct btf *vmlinux = btf_with(vmlinux_names, vmlinux_vals, 1);
	struct ipiv_inhibit_names names;

	ipiv_inhibit_names_load(vmlinux, kvm, &names);
	assert_string_equal(ipiv_inhibit_names_source(&names), "btf:kvm");
	assert_string_equal(ipiv_inhibit_name(&names, 0), "disabled");
	assert_string_equal(ipiv_inhibit_name(&names, 1), "reason_1");
	assert_string_equal(ipiv_inhibit_name(&names, 2), "only_here");
	assert_string_equal(ipiv_inhibit_name(&names, 12), "reason_12");
	assert_string_equal(ipiv_inhibit_name(&names, IPIV_INHIBIT_COUNT), "invalid");

	ipiv_inhibit_names_load(vmlinux, NULL, &names); /* KVM built in */
	assert_string_equal(ipiv_inhibit_names_source(&names), "btf:vmlinux");
	assert_string_equal(ipiv_inhibit_name(&names, 0), "from_vmlinux");
	assert_string_equal(ipiv_inhibit_name(&names, 2), "reason_2");
	btf__free(kvm);
	btf__free(vmlinux);
}

/* Neither has the enum: an all-zero table, which answers with the built-in names. */
static void test_load_without_enum_is_builtin(void **state)
{
	struct btf *empty = btf__new_empty();
	struct ipiv_inhibit_names names, zero;

	memset(&names, 0x55, sizeof(names));
	memset(&zero, 0, sizeof(zero));
	ipiv_inhibit_names_load(empty, NULL, &names);
	assert_memory_equal(&names, &zero, sizeof(names));
	assert_string_equal(ipiv_inhibit_names_source(&names), "builtin");
	assert_string_equal(ipiv_inhibit_name(&names, 12), "physical_id_too_big");
	btf__free(empty);
}

/* Two kernels' tables side by side (a snapshot of each): each answers for itself. */
static void test_tables_are_independent(void **state)
{
	static const char *const a_names[] = {"APICV_INHIBIT_REASON_NESTED"};
	static const char *const b_names[] = {"APICV_INHIBIT_REASON_IRQWIN"};
	static const long long vals[] = {7};
	struct btf *a_btf = btf_with(a_names, vals, 1), *b_btf = btf_with(b_names, vals, 1);
	struct ipiv_inhibit_names a, b;

	ipiv_inhibit_names_load(a_btf, NULL, &a);
	ipiv_inhibit_names_load(b_btf, NULL, &b);
	assert_string_equal(ipiv_inhibit_name(&a, 7), "nested");
	assert_string_equal(ipiv_inhibit_name(&b, 7), "irqwin");
	assert_string_equal(ipiv_inhibit_name(NULL, 7), "nested");
	btf__free(a_btf);
	btf__free(b_btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbering_follows_btf),
		cmocka_unit_test(test_malformed_enumerators),
		cmocka_unit_test(test_no_enum),
		cmocka_unit_test(test_load_prefers_kvm),
		cmocka_unit_test(test_load_without_enum_is_builtin),
		cmocka_unit_test(test_tables_are_independent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
