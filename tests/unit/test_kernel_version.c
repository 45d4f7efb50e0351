// SPDX-License-Identifier: GPL-2.0
/* ipiv_kernel_at_least: the release strings uname gives, against the versions ipivd's map
 * choices depend on (6.1: maps that allocate as they fill). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "collector.h"

static void test_releases(void **state)
{
	assert_true(ipiv_kernel_at_least("6.1.0", 6, 1));
	assert_true(ipiv_kernel_at_least("6.12.118-amd64", 6, 1));
	assert_true(ipiv_kernel_at_least("6.18.44-fc-v1147", 6, 1));
	assert_true(ipiv_kernel_at_least("7.0-rc1", 6, 1));
	assert_true(ipiv_kernel_at_least("6.10", 6, 9)); /* numbers, not strings: 10 > 9 */
	assert_false(ipiv_kernel_at_least("6.0.19", 6, 1));
	assert_false(ipiv_kernel_at_least("5.15.0-91-generic", 6, 1));
	assert_false(ipiv_kernel_at_least("4.18.0-553.el8_10.x86_64", 6, 1));
	/* not a release: the cautious answer */
	assert_false(ipiv_kernel_at_least("", 6, 1));
	assert_false(ipiv_kernel_at_least("linux", 6, 1));
	assert_false(ipiv_kernel_at_least("6", 6, 1));
	assert_false(ipiv_kernel_at_least(NULL, 6, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_releases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
