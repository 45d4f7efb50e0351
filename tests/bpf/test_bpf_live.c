// SPDX-License-Identifier: GPL-2.0
/* The collector on this kernel: every probe whose tracepoint exists attaches, VM
 * discovery finds a VM this test creates through /dev/kvm (never run), then reclaims it
 * once its file descriptors are closed; a real guest's sends read its APICv state and its
 * VM keeps the start of its VMM's command line, which a VM discovery registers does not. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libgen.h>
#include <signal.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/kvm.h>

#include "collector.h"
#include "ipiv.skel.h"

static struct collector *col;

static bool tracepoint_in_tracefs(const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/kvm/%s", name);
	if (stat(path, &st) == 0)
		return true;
	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/sched/%s", name);
	return stat(path, &st) == 0;
}

/* Whether vmlinux or the kvm module has function fn in its BTF. */
static bool kernel_has_function(const char *fn)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	struct btf *kvm = btf__load_module_btf("kvm", vmlinux);
	bool has = btf__find_by_name_kind(vmlinux, fn, BTF_KIND_FUNC) > 0 ||
		   (kvm && btf__find_by_name_kind(kvm, fn, BTF_KIND_FUNC) > 0);

	btf__free(kvm);
	btf__free(vmlinux);
	return has;
}

static void test_probes_attach(void **state)
{
	struct ipiv_snapshot *s;
	size_t attached = 0;

	assert_int_equal(collector_snapshot(col, &s), 0);
	assert_true(s->self.n_probes > 0);
	for (size_t i = 0; i < s->self.n_probes; i++) {
		const struct ipiv_probe *p = &s->self.probes[i];
		bool exists = strchr(p->name, '/') || tracepoint_in_tracefs(p->name);

		print_message("probe %-28s %s\n", p->name,
			      p->attached ? "attached" : strerror(-p->err));
		if (!strncmp(p->name, "fexit/", 6)) {
			/* attached, or: the function is not in BTF, or this kernel refuses
			 * fexit (EPERM on kvm_pvm) */
			if (!kernel_has_function(p->name + 6))
				assert_int_equal(p->err, -ENOENT);
			else if (!p->attached)
				assert_int_equal(p->err, -EPERM);
			attached += p->attached;
			continue;
		}
		/* a tracepoint that exists must attach; one that does not must say ENOENT */
		assert_int_equal(p->attached, exists);
		if (!exists)
			assert_int_equal(p->err, -ENOENT);
		attached += p->attached;
	}
	assert_int_equal(s->self.n_attached, attached);
	/* program run statistics come from the kernel for every loaded program */
	assert_true(s->self.n_progs >= attached);
	collector_snapshot_free(s);
}

/* The inhibit names ipivd exports are this kernel's own (enum kvm_apicv_inhibit in BTF), and
 * every snapshot carries them. */
static void test_inhibit_names_are_the_kernels(void **state)
{
	struct ipiv_snapshot *s;
	struct btf *vmlinux = btf__load_vmlinux_btf();
	struct btf *kvm = btf__load_module_btf("kvm", vmlinux);
	const struct btf *btf =
		kvm && btf__find_by_name_kind(kvm, "kvm_apicv_inhibit", BTF_KIND_ENUM) > 0
			? kvm
			: vmlinux;
	int id = btf__find_by_name_kind(btf, "kvm_apicv_inhibit", BTF_KIND_ENUM);
	const struct btf_enum *e;
	const struct btf_type *t;
	unsigned checked = 0;

	if (id < 0)
		fail_msg("no enum kvm_apicv_inhibit in this kernel's BTF");
	assert_int_equal(collector_snapshot(col, &s), 0);
	assert_memory_equal(&s->inhibit_names, collector_inhibit_names(col),
			    sizeof(s->inhibit_names));
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, e++) {
		const char *name = btf__name_by_offset(btf, e->name_off);
		char want[64];
		size_t j;

		if (strncmp(name, "APICV_INHIBIT_REASON_", 21) || e->val >= IPIV_INHIBIT_COUNT)
			continue;
		for (j = 0; name[21 + j] && j < sizeof(want) - 1; j++)
			want[j] = tolower((unsigned char)name[21 + j]);
		want[j] = '\0';
		assert_string_equal(ipiv_inhibit_name(&s->inhibit_names, e->val), want);
		checked++;
	}
	assert_true(checked >= 10);
	assert_string_equal(ipiv_inhibit_names_source(&s->inhibit_names),
			    btf == kvm ? "btf:kvm" : "btf:vmlinux");
	collector_snapshot_free(s);
	btf__free(kvm);
	btf__free(vmlinux);
}

static void test_discovers_and_reclaims_vm(void **state)
{
	int kvm_fd, vm_fd, vcpu_fds[3];
	struct ipiv_snapshot *s;
	const struct ipiv_vm_stats *vm = NULL;
	char stats_id[IPIV_STATS_ID_LEN];
	uint64_t vm_key;

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		skip(); /* discovery needs a VM; the probe test above still ran */
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	assert_true(vm_fd >= 0);
	for (int i = 0; i < 3; i++) {
		vcpu_fds[i] = ioctl(vm_fd, KVM_CREATE_VCPU, i);
		assert_true(vcpu_fds[i] >= 0);
	}

	assert_int_equal(collector_poll(col), 0);
	assert_int_equal(collector_snapshot(col, &s), 0);
	snprintf(stats_id, sizeof(stats_id), "kvm-%d", getpid());
	for (size_t i = 0; i < s->n_vms; i++)
		if (s->vms[i].pid == getpid())
			vm = &s->vms[i];
	assert_non_null(vm);
	assert_true(vm->alive);
	assert_string_equal(vm->stats_id, stats_id);
	assert_int_equal(vm->vcpu_count, 3);
	assert_true(vm->inhibits_known); /* read from struct kvm at discovery */
	vm_key = vm->vm;
	collector_snapshot_free(s);

	for (int i = 0; i < 3; i++)
		close(vcpu_fds[i]);
	close(vm_fd);
	close(kvm_fd);
	/* gone after reclaim_after (2) polls that miss it; KVM frees the VM asynchronously
	 * only after the last reference, which closing every fd drops */
	assert_int_equal(collector_poll(col), 0);
	assert_int_equal(collector_snapshot(col, &s), 0);
	assert_non_null(snapshot_find_vm(s, vm_key));
	assert_false(snapshot_find_vm(s, vm_key)->alive);
	collector_snapshot_free(s);
	assert_int_equal(collector_poll(col), 0);
	assert_int_equal(collector_snapshot(col, &s), 0);
	assert_null(snapshot_find_vm(s, vm_key));
	assert_true(s->self.vms_reclaimed >= 1);
	collector_snapshot_free(s);
}

/* The APICv state of vCPU 0 of the guest pid as latency last read it at a send (from the
 * thread iterator); IPIV_APICV_UNKNOWN while that thread has not sent. */
static int sender_apicv(struct bpf_link *iter, pid_t pid)
{
	struct ipiv_thread_rec rec;
	int fd = bpf_iter_create(bpf_link__fd(iter)), apicv = IPIV_APICV_UNKNOWN;

	assert_true(fd >= 0);
	while (read(fd, &rec, sizeof(rec)) == sizeof(rec))
		if (rec.tgid == (uint32_t)pid && rec.t.vm && rec.t.vcpu_id == 0)
			apicv = rec.t.apicv;
	close(fd);
	return apicv;
}

/* The snapshot row of the VM of process pid (NULL if none or no snapshot); free *s after
 * use. It does not assert, so that callers can stop their child first. */
static const struct ipiv_vm_stats *vm_of_pid(pid_t pid, struct ipiv_snapshot **s)
{
	*s = NULL;
	if (collector_snapshot(col, s))
		return NULL;
	for (size_t i = 0; i < (*s)->n_vms; i++)
		if ((*s)->vms[i].pid == pid)
			return &(*s)->vms[i];
	return NULL;
}

/*
 * A real guest: latency reads the sender's APICv state at each send through its struct
 * kvm_vcpu (the synthetic tests set it by hand), which on this kvm_pvm host, without
 * APICv, reads inactive; and its VM keeps the first IPIV_CMDLINE_LEN bytes of the VMM's
 * argv, exactly, marked cut since this one is longer.
 */
static void test_real_guest_apicv_and_cmdline(void **state)
{
	char self[4096], bench[4200], want[IPIV_CMDLINE_LEN];
	const char *argv[80] = {bench, "--name", "apicv-read", "-k", "1000000"};
	size_t argc = 5, want_len = 0;
	const struct ipiv_vm_stats *vm;
	struct ipiv_snapshot *s;
	struct bpf_link *iter;
	struct timespec start, now;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int apicv = IPIV_APICV_UNKNOWN;
	pid_t pid;

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		fail_msg("no /dev/kvm to run a guest");
	assert_true(n > 0);
	self[n] = 0;
	/* .output/tests/bpf/test_bpf_live -> .output/ipivbench */
	snprintf(bench, sizeof(bench), "%s/../../ipivbench", dirname(self));
	/* "--runs 1" again and again, past IPIV_CMDLINE_LEN bytes */
	for (size_t bytes = strlen(bench) + 28; bytes <= IPIV_CMDLINE_LEN + 20; bytes += 9) {
		assert_true(argc + 3 < sizeof(argv) / sizeof(*argv));
		argv[argc++] = "--runs";
		argv[argc++] = "1";
	}
	argv[argc] = NULL;
	for (size_t i = 0; i < argc && want_len < sizeof(want); i++) {
		size_t len = strlen(argv[i]) + 1;

		if (len > sizeof(want) - want_len)
			len = sizeof(want) - want_len;
		memcpy(want + want_len, argv[i], len);
		want_len += len;
	}
	assert_int_equal(want_len, IPIV_CMDLINE_LEN);

	iter = bpf_program__attach_iter(collector_skel(col)->progs.ipiv_dump_threads, NULL);
	assert_non_null(iter);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO); /* its "interrupted by a signal" is expected */
		execv(bench, (char *const *)argv);
		_exit(127);
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		usleep(50000);
		apicv = sender_apicv(iter, pid);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (apicv == IPIV_APICV_UNKNOWN && now.tv_sec - start.tv_sec < 20);
	vm = vm_of_pid(pid, &s);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	bpf_link__destroy(iter);
	assert_int_equal(apicv, IPIV_APICV_INACTIVE);
	assert_non_null(vm);
	assert_int_equal(vm->cmdline_len, IPIV_CMDLINE_LEN);
	assert_true(vm->cmdline_cut);
	assert_memory_equal(vm->cmdline, want, IPIV_CMDLINE_LEN);
	collector_snapshot_free(s);
}

/* A VM that discovery registers (the iterator runs in this process, not the VMM's) keeps
 * no command line: it would be this process' memory at the VMM's addresses. */
static void test_discovered_vm_keeps_no_cmdline(void **state)
{
	const struct ipiv_vm_stats *vm;
	struct ipiv_snapshot *s;
	int ready[2], err;
	pid_t pid;
	char c;

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		fail_msg("no /dev/kvm to create a VM");
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* a VMM that creates a VM and never runs it */
		int kvm = open("/dev/kvm", O_RDWR), vmfd = ioctl(kvm, KVM_CREATE_VM, 0);

		if (vmfd < 0 || ioctl(vmfd, KVM_CREATE_VCPU, 0) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		waitpid(pid, NULL, 0);
		fail_msg("the child could not create a VM");
	}
	close(ready[0]);
	err = collector_poll(col);
	vm = vm_of_pid(pid, &s);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(err, 0);
	assert_non_null(vm);
	assert_true(vm->stats_id[0] != '\0'); /* it was registered and filled */
	assert_int_equal(vm->cmdline_len, 0);
	collector_snapshot_free(s);
}

/* Before Linux 6.1 latency's maps are preallocated at their smaller bounds: that object
 * loads too (here, as if uname said 5.15). */
static void test_latency_maps_before_6_1(void **state)
{
	struct collector_opts opts = {.no_tracepoints = true, .kernel_release = "5.15.0-91"};
	struct collector *old;
	struct ipiv_bpf *skel = collector_skel(col);

	struct utsname u;

	assert_int_equal(uname(&u), 0);
	if (ipiv_kernel_at_least(u.release, 6, 1)) { /* this kernel's own choice */
		assert_true(bpf_map__map_flags(skel->maps.lat) & BPF_F_NO_PREALLOC);
		assert_int_equal(bpf_map__max_entries(skel->maps.lat), IPIV_MAX_LAT);
		assert_true(bpf_map__map_flags(skel->maps.lat_hseries) & BPF_F_NO_PREALLOC);
		assert_int_equal(bpf_map__max_entries(skel->maps.lat_hseries),
				 IPIV_MAX_LAT_HSERIES);
	}
	assert_int_equal(collector_open(&old, &opts), 0);
	skel = collector_skel(old);
	assert_false(bpf_map__map_flags(skel->maps.lat) & BPF_F_NO_PREALLOC);
	assert_false(bpf_map__map_flags(skel->maps.targets) & BPF_F_NO_PREALLOC);
	assert_false(bpf_map__map_flags(skel->maps.lat_hseries) & BPF_F_NO_PREALLOC);
	assert_int_equal(bpf_map__max_entries(skel->maps.lat_hseries),
			 IPIV_MAX_LAT_HSERIES_PREALLOC);
	assert_int_equal(bpf_map__max_entries(skel->maps.lat), IPIV_MAX_LAT_PREALLOC);
	assert_int_equal(bpf_map__max_entries(skel->maps.targets), IPIV_MAX_TARGETS_PREALLOC);
	collector_close(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probes_attach),
		cmocka_unit_test(test_discovers_and_reclaims_vm),
		cmocka_unit_test(test_inhibit_names_are_the_kernels),
		cmocka_unit_test(test_real_guest_apicv_and_cmdline),
		cmocka_unit_test(test_discovered_vm_keeps_no_cmdline),
		cmocka_unit_test(test_latency_maps_before_6_1),
	};
	struct collector_opts opts = {.bpf_stats = true};
	int err, failed;

	if (geteuid() != 0) {
		printf("SKIP: needs root to load BPF programs\n");
		return 77;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		printf("SKIP: no kernel BTF (/sys/kernel/btf/vmlinux)\n");
		return 77;
	}
	if (!tracepoint_in_tracefs("kvm_apic_ipi") && access("/dev/kvm", F_OK) != 0) {
		printf("SKIP: no KVM on this host (no kvm tracepoints, no /dev/kvm)\n");
		return 77;
	}
	err = collector_open(&col, &opts);
	if (err) {
		fprintf(stderr, "collector_open: %s\n", strerror(-err));
		return 1;
	}
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	collector_close(col);
	return failed ? 1 : 0;
}
