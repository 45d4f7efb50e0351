// SPDX-License-Identifier: GPL-2.0
/* APICv inhibit reason names decoded from BTF (enum kvm_apicv_inhibit), not a fixed list:
 * synthetic BTF with another kernel's numbering, malformed enumerators, no enum at all. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <bpf/btf.h>

#include "collector.h"

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
	/* without a collector the fixed 6.18 list answers */
	assert_string_equal(ipiv_inhibit_names_source(), "builtin");
	assert_string_equal(ipiv_inhibit_name(12), "physical_id_too_big");
	assert_string_equal(ipiv_inhibit_name(IPIV_INHIBIT_COUNT), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbering_follows_btf),
		cmocka_unit_test(test_malformed_enumerators),
		cmocka_unit_test(test_no_enum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
