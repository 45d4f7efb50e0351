/* Unit tests for naming a snapshot's VMs: names from a fake /proc, a second VM of one
 * process, two processes claiming one name, unknown processes, and the pid cache. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmnames.h"

static char root[64];

static void write_cmdline(int pid, const char *args, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d", root, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/cmdline", root, pid);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite(args, 1, len, f);
	fclose(f);
}

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/ipiv-vmnames-XXXXXX");
	assert_non_null(mkdtemp(root));
	write_cmdline(100, "ipivbench\0--name\0web\0", 21);
	write_cmdline(200, "qemu-system-x86_64\0-name\0guest=db,debug-threads=on\0", 51);
	write_cmdline(300, "ipivbench\0--name\0web\0", 21);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd);
}

static void test_names(void **state)
{
	struct ipiv_vm_stats vms[5];
	struct ipiv_snapshot snap = {.vms = vms, .n_vms = 5};
	struct vm_name_cache cache = {0};
	char(*names)[VM_NAME_MAX];

	memset(vms, 0, sizeof(vms));
	vms[0].pid = 100; /* web */
	vms[1].pid = 200; /* db */
	vms[2].pid = 300; /* web again, another process */
	vms[3].pid = 200; /* a second VM in the db process */
	vms[4].pid = 0;	  /* no known process */
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "web-100");
	assert_string_equal(names[1], "db");
	assert_string_equal(names[2], "web-300");
	assert_string_equal(names[3], "db-vm3");
	assert_string_equal(names[4], "vm-4");
	assert_int_equal(cache.n, 3);
	free(names);

	/* web-300's process is gone: its cache entry goes, web-100 is unique again */
	snap.n_vms = 2;
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "web");
	assert_string_equal(names[1], "db");
	assert_int_equal(cache.n, 2);
	free(names);

	/* the cache, not /proc, answers for a known pid */
	write_cmdline(100, "ipivbench\0--name\0renamed\0", 25);
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "web");
	free(names);
	vm_name_cache_free(&cache);
	assert_int_equal(cache.n, 0);
}

static void test_prefetch_keeps_a_name_past_exit(void **state)
{
	struct ipiv_vm_stats vm = {.pid = 400};
	struct ipiv_snapshot snap = {.vms = &vm, .n_vms = 1};
	struct vm_name_cache cache = {0};
	char path[128], (*names)[VM_NAME_MAX];

	write_cmdline(400, "ipivbench\0--name\0brief\0", 23);
	vm_name_cache_prefetch(&cache, root, 400);
	vm_name_cache_prefetch(&cache, root, -1); /* ignored */
	/* the process exits before the first snapshot */
	snprintf(path, sizeof(path), "%s/400/cmdline", root);
	unlink(path);
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "brief");
	free(names);
	vm_name_cache_free(&cache);
}

/* A VM whose process exited before any discovery read /proc (it lived less than a poll
 * interval, or a prefetch already found it gone) is named from the command line ipivd
 * kept when it appeared; a name /proc gave stays, whatever that command line says. */
static void test_kept_cmdline_names_a_vm_gone_before_discovery(void **state)
{
	static const char kept[] = "/usr/bin/ipivbench\0--name\0blink\0-r\0";
	struct ipiv_vm_stats vms[2];
	struct ipiv_snapshot snap = {.vms = vms, .n_vms = 2};
	struct vm_name_cache cache = {0};
	char(*names)[VM_NAME_MAX];

	memset(vms, 0, sizeof(vms));
	write_cmdline(600, "ipivbench\0--name\0web6\0", 22);
	vms[0].pid = 500; /* no /proc entry */
	vms[1].pid = 600; /* /proc says "web6" */
	for (int i = 0; i < 2; i++) {
		memcpy(vms[i].cmdline, kept, sizeof(kept) - 1);
		vms[i].cmdline_len = sizeof(kept) - 1;
	}
	vm_name_cache_prefetch(&cache, root, 500); /* "pid-500" so far */
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "blink");
	assert_string_equal(names[1], "web6");
	free(names);
	/* a command line that names nothing leaves the pid name */
	memcpy(vms[0].cmdline, "sleep\0", 6);
	vms[0].cmdline_len = 6;
	vms[0].pid = 501;
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "pid-501");
	free(names);
	vm_name_cache_free(&cache);
}

static void test_empty_snapshot(void **state)
{
	struct ipiv_snapshot snap = {.n_vms = 0};
	struct vm_name_cache cache = {0};
	char(*names)[VM_NAME_MAX];

	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	free(names);
	vm_name_cache_free(&cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_prefetch_keeps_a_name_past_exit),
		cmocka_unit_test(test_kept_cmdline_names_a_vm_gone_before_discovery),
		cmocka_unit_test(test_empty_snapshot),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
