/* Unit tests for daemon/ipivd/process.c: the process_* numbers from a fake /proc (a command
 * name with spaces and parentheses, unlimited descriptors, malformed files), the families
 * written only once enabled, and a read of the real /proc/self. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "expo.h"
#include "ipivd/process.h"

static char root[64];

static void put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int make_root(void **state)
{
	char path[128];

	snprintf(root, sizeof(root), "/tmp/test_process.XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/self", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/self/fd", root);
	assert_int_equal(mkdir(path, 0755), 0);
	for (int i = 0; i < 5; i++) {
		char name[32];

		snprintf(name, sizeof(name), "self/fd/%d", i);
		put(name, "");
	}
	put("stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 42\n");
	/* comm "(ipiv d) x": spaces and a ')' of its own; utime 250, stime 150 ticks, started
	 * 12345 ticks after boot, 1 GiB virtual, 1000 pages resident */
	put("self/stat", "4242 ((ipiv d) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 "
			 "5 0 12345 1073741824 1000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 "
			 "17 0 0 0 0 0 0\n");
	put("self/limits",
	    "Limit                     Soft Limit           Hard Limit           Units\n"
	    "Max cpu time              unlimited            unlimited            seconds\n"
	    "Max open files            1024                 524288               files\n");
	return 0;
}

static int remove_root(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

static void test_fake_proc(void **state)
{
	struct process_stats ps;

	assert_int_equal(process_read(root, 100, 4096, &ps), 0);
	assert_true(ps.cpu_seconds == 4.0);
	assert_true(ps.start_time_seconds == 1700000000 + 123.45);
	assert_int_equal(ps.virtual_bytes, 1073741824);
	assert_int_equal(ps.resident_bytes, 1000 * 4096);
	assert_int_equal(ps.open_fds, 4); /* five entries, one of them the reader's own */
	assert_true(ps.have_max_fds);
	assert_int_equal(ps.max_fds, 1024);

	put("self/limits",
	    "Max open files            unlimited            unlimited            files\n");
	assert_int_equal(process_read(root, 100, 4096, &ps), 0);
	assert_false(ps.have_max_fds);
}

static void test_malformed_proc(void **state)
{
	struct process_stats ps;

	put("self/limits",
	    "Max open files            many                 1                    files\n");
	assert_int_equal(process_read(root, 100, 4096, &ps), -EINVAL);
	put("self/limits",
	    "Max processes             10                   10                   processes\n");
	assert_int_equal(process_read(root, 100, 4096, &ps), -EINVAL);
	put("self/limits",
	    "Max open files            1024                 1024                 files\n");
	assert_int_equal(process_read(root, 0, 4096, &ps), -EINVAL);

	put("self/stat", "4242 (ipivd S 1\n");
	assert_int_equal(process_read(root, 100, 4096, &ps), -EINVAL);
	put("self/stat", "4242 (ipivd) S 1 2 3\n");
	assert_int_equal(process_read(root, 100, 4096, &ps), -EINVAL);
	put("self/stat", "4242 (ipivd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 "
			 "5 0 12345 1073741824 1000\n");
	put("stat", "cpu  1 2 3\n");
	assert_int_equal(process_read(root, 100, 4096, &ps), -EINVAL);
	put("stat", "btime 1700000000\n");
	assert_int_equal(process_read(root, 100, 4096, &ps), 0);
	assert_int_equal(process_read("/nonexistent", 100, 4096, &ps), -ENOENT);
}

static char *render(void)
{
	struct expo *e;
	char *body;
	size_t len;

	assert_int_equal(expo_new(EXPO_TEXT_0_0_4, &e), 0);
	assert_int_equal(process_metrics_write(e), 0);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	return body;
}

static void test_families_once_enabled(void **state)
{
	char *body = render();

	assert_string_equal(body, ""); /* off by default: the goldens stay the same */
	free(body);
	process_metrics_enable(root);
	body = render();
	assert_non_null(strstr(body, "# TYPE process_cpu_seconds_total counter\n"
				     "process_cpu_seconds_total 4.0\n"));
	assert_non_null(strstr(body, "\nprocess_max_fds 1024.0\n"));
	assert_non_null(strstr(body, "\nprocess_open_fds 4.0\n"));
	assert_non_null(strstr(body, "\nprocess_resident_memory_bytes 4.096e+06\n"));
	assert_non_null(strstr(body, "\nprocess_start_time_seconds 1.70000012345e+09\n"));
	assert_non_null(strstr(body, "\nprocess_virtual_memory_bytes 1.073741824e+09\n"));
	free(body);
	process_metrics_enable(NULL);
}

static void test_real_proc(void **state)
{
	struct process_stats ps;

	assert_int_equal(process_read("/proc", sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), &ps),
			 0);
	assert_true(ps.resident_bytes > 0);
	assert_true(ps.virtual_bytes >= ps.resident_bytes);
	assert_true(ps.open_fds >= 3); /* stdin, stdout, stderr */
	assert_true(ps.start_time_seconds > 1e9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fake_proc),
		cmocka_unit_test(test_malformed_proc),
		cmocka_unit_test(test_families_once_enabled),
		cmocka_unit_test(test_real_proc),
	};

	return cmocka_run_group_tests(tests, make_root, remove_root);
}
