/* Unit tests for naming a snapshot's VMs: names from a fake /proc, a second VM of one
 * process, two processes claiming one name, unknown processes, the pid cache, and names
 * that stay a VM's for its life. */
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

#include "naming.h"

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
	assert_string_equal(names[0], "web"); /* the older process has the name first */
	assert_string_equal(names[1], "db");
	assert_string_equal(names[2], "web-2");
	assert_string_equal(names[3], "db-vm2");
	assert_string_equal(names[4], "vm-1");
	assert_int_equal(cache.n_procs, 3);
	free(names);

	/* web-2's process is gone: web keeps its name, as it always does */
	snap.n_vms = 2;
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "web");
	assert_string_equal(names[1], "db");
	assert_int_equal(cache.n_procs, 2);
	assert_int_equal(cache.n_held, 2);
	free(names);

	/* the cache, not /proc, answers for a known pid */
	write_cmdline(100, "ipivbench\0--name\0renamed\0", 25);
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "web");
	free(names);
	vm_name_cache_free(&cache);
	assert_int_equal(cache.n_procs, 0);
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

/* A VM's name is a label: it never changes while the VM lives. A newcomer with a taken
 * name gets a suffix, whatever its pid, and a name is free again once its VM is gone. */
static void test_names_last_a_life(void **state)
{
	struct ipiv_vm_stats vms[3];
	struct ipiv_snapshot snap = {.vms = vms};
	struct vm_name_cache cache = {0};
	char(*names)[VM_NAME_MAX];

	memset(vms, 0, sizeof(vms));
	write_cmdline(900, "ipivbench\0--name\0twin\0", 22);
	write_cmdline(800, "ipivbench\0--name\0twin\0", 22);
	write_cmdline(950, "ipivbench\0--name\0twin\0", 22);
	vms[0] = (struct ipiv_vm_stats){.vm = 0x9000, .pid = 900};
	snap.n_vms = 1;
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "twin");
	free(names);

	/* a second "twin" from a lower pid, listed first: the first keeps its name */
	vms[1] = vms[0];
	vms[0] = (struct ipiv_vm_stats){.vm = 0x8000, .pid = 800};
	snap.n_vms = 2;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
		assert_string_equal(names[0], "twin-2");
		assert_string_equal(names[1], "twin");
		free(names);
	}

	/* the first exits: the second stays twin-2, a third takes the free name */
	vms[1] = (struct ipiv_vm_stats){.vm = 0x9500, .pid = 950};
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "twin-2");
	assert_string_equal(names[1], "twin");
	free(names);

	/* a VM whose process is not known yet has a placeholder until it is */
	vms[2] = (struct ipiv_vm_stats){.vm = 0x7000, .pid = 0};
	snap.n_vms = 3;
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[2], "vm-1");
	free(names);
	write_cmdline(700, "qemu-system-x86_64\0-name\0twin\0", 30);
	vms[2].pid = 700;
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "twin-2");
	assert_string_equal(names[1], "twin");
	assert_string_equal(names[2], "twin-3");
	free(names);
	vm_name_cache_free(&cache);
}

/* Suffixes cut the name on a character boundary; a VM literally named like a suffixed one
 * pushes the newcomer further. */
static void test_suffix_fits(void **state)
{
	struct ipiv_vm_stats vms[4];
	struct ipiv_snapshot snap = {.vms = vms, .n_vms = 4};
	struct vm_name_cache cache = {0};
	char(*names)[VM_NAME_MAX], args[128];
	size_t len;

	memset(vms, 0, sizeof(vms));
	write_cmdline(1001, "ipivbench\0--name\0web\0", 21);
	write_cmdline(1002, "ipivbench\0--name\0web-2\0", 23);
	write_cmdline(1003, "ipivbench\0--name\0web\0", 21);
	/* 50 bytes of 'v' then six two-byte characters: 62 bytes */
	len = (size_t)snprintf(args, sizeof(args), "ipivbench%c--name%c", 0, 0);
	memset(args + len, 'v', 50);
	memcpy(args + len + 50, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 12);
	args[len + 62] = '\0';
	write_cmdline(1004, args, len + 63);
	write_cmdline(1005, args, len + 63);
	for (int i = 0; i < 4; i++)
		vms[i] = (struct ipiv_vm_stats){.vm = 0x1000 * (i + 1), .pid = 1001 + i};
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[0], "web");
	assert_string_equal(names[1], "web-2");
	assert_string_equal(names[2], "web-3");
	assert_int_equal(strlen(names[3]), 62);
	free(names);

	vms[0] = (struct ipiv_vm_stats){.vm = 0x5000, .pid = 1005};
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	/* room for 61 bytes would split the last é: 60 bytes, then "-2" */
	assert_int_equal(strlen(names[0]), 62);
	assert_string_equal(names[0] + 60, "-2");
	assert_memory_equal(names[0], names[3], 60);
	free(names);
	vm_name_cache_free(&cache);
}

/* Each VM's vmm and uuid land in its snapshot row with its name, and stay what they were
 * when it was named, in every later snapshot (fresh rows, as the collector makes them). */
static void test_identity_in_the_snapshot(void **state)
{
	static const char uuid[] = "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b";
	static const char kept[] = "firecracker\0--id\0"
				   "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b\0";
	struct ipiv_vm_stats vms[4];
	struct ipiv_snapshot snap = {.vms = vms, .n_vms = 4};
	struct vm_name_cache cache = {0};
	char(*names)[VM_NAME_MAX];

	write_cmdline(1101,
		      "ipivbench\0--name\0he-id\0--uuid\0"
		      "5E1F2A3B-4C5D-4E6F-8A7B-9C0D1E2F3A4B\0",
		      67);
	write_cmdline(1102,
		      "qemu-system-x86_64\0-name\0guest=lv,debug-threads=on\0-uuid\0"
		      "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b\0",
		      94);
	for (int round = 0; round < 2; round++) {
		memset(vms, 0xff, sizeof(vms)); /* whatever the rows held before */
		vms[0] = (struct ipiv_vm_stats){.vm = 0x1, .pid = 1101};
		vms[1] = (struct ipiv_vm_stats){.vm = 0x2, .pid = 1102};
		vms[2] = (struct ipiv_vm_stats){.vm = 0x3, .pid = 0};
		vms[3] = (struct ipiv_vm_stats){.vm = 0x4, .pid = 1103}; /* gone: kept cmdline */
		memcpy(vms[3].cmdline, kept, sizeof(kept) - 1);
		vms[3].cmdline_len = sizeof(kept) - 1;
		assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
		assert_string_equal(names[0], "he-id");
		assert_int_equal(vms[0].vmm, VM_VMM_IPIVBENCH);
		assert_string_equal(vms[0].uuid, uuid);
		assert_int_equal(vms[1].vmm, VM_VMM_LIBVIRT_QEMU);
		assert_string_equal(vms[1].uuid, uuid);
		assert_int_equal(vms[2].vmm, VM_VMM_UNKNOWN);
		assert_string_equal(vms[2].uuid, "");
		assert_int_equal(vms[3].vmm, VM_VMM_FIRECRACKER);
		assert_string_equal(vms[3].uuid, uuid);
		free(names);
		/* the cache answers, not /proc: a rewritten command line changes nothing */
		write_cmdline(1101, "ipivbench\0--name\0he-id\0", 23);
	}
	/* the placeholder's process becomes known: its identity comes with its name */
	vms[2].pid = 1102;
	vms[2].vmm = 0;
	assert_int_equal(vm_names_for_snapshot(&cache, root, &snap, &names), 0);
	assert_string_equal(names[2], "lv-vm2");
	assert_int_equal(vms[2].vmm, VM_VMM_LIBVIRT_QEMU);
	assert_string_equal(vms[2].uuid, uuid);
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
		cmocka_unit_test(test_names_last_a_life),
		cmocka_unit_test(test_suffix_fits),
		cmocka_unit_test(test_identity_in_the_snapshot),
		cmocka_unit_test(test_empty_snapshot),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
