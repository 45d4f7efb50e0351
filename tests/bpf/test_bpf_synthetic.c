// SPDX-License-Identifier: GPL-2.0
/* Feeds synthetic KVM tracepoint arguments through the real raw_tp programs of
 * bpf/ipiv.bpf.c (BPF_PROG_TEST_RUN, in this thread's context) and checks the exact
 * counts the collector reads back. This thread is made a vCPU by a tid map entry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <time.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "ipiv.skel.h"

#define VMX IPIV_ISA_VMX
#define SVM IPIV_ISA_SVM

static struct collector *col;
static struct ipiv_bpf *skel;

static uint32_t my_tid(void)
{
	return (uint32_t)syscall(SYS_gettid);
}

/* This thread's pidfd: the key of its task storage (the test runs in the main thread). */
static int my_pidfd(void)
{
	static int fd = -1;

	if (fd < 0)
		fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	assert_true(fd >= 0);
	return fd;
}

/* Sets this thread's storage: vCPU vcpu_id of the fake VM vm (0: no vCPU), keeping the
 * counts it cached for keep_vm (0: all of them). A real thread moves its cache to the maps
 * when it takes another VM's vCPU; a test has no use for an earlier test's counts. */
static void set_thread(uint64_t vm, uint32_t vcpu_id, uint8_t apic_mode, uint64_t keep_vm)
{
	struct ipiv_thread t = {
		.vm = vm, .vcpu_id = vcpu_id, .tgid = getpid(), .apic_mode = apic_mode};
	struct ipiv_thread old;
	int fd = my_pidfd(), map = bpf_map__fd(skel->maps.threads), n = 0;

	if (!bpf_map_lookup_elem(map, &fd, &old))
		for (int i = 0; i < IPIV_THREAD_CACHE; i++)
			if (old.cache[i].state == IPIV_CACHE_VALID &&
			    (!keep_vm || old.cache[i].key.vm == keep_vm))
				t.cache[n++] = old.cache[i];
	assert_int_equal(bpf_map_update_elem(map, &fd, &t, BPF_ANY), 0);
}

/* Makes this thread vCPU vcpu_id of the fake VM vm, in the given APIC mode. */
static void be_vcpu(uint64_t vm, uint32_t vcpu_id, uint8_t apic_mode)
{
	set_thread(vm, vcpu_id, apic_mode, vm);
}

/* Not a vCPU any more; what it cached stays readable. */
static void be_nobody(void)
{
	set_thread(0, IPIV_VCPU_NONE, IPIV_APIC_UNKNOWN, 0);
}

static struct ipiv_thread my_thread(void)
{
	struct ipiv_thread t;
	int fd = my_pidfd();

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.threads), &fd, &t), 0);
	return t;
}

static void add_vm_entry(uint64_t vm, const char *stats_id)
{
	struct ipiv_vm state = {.tgid = getpid()};

	snprintf(state.stats_id, sizeof(state.stats_id), "%s", stats_id);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.vms), &vm, &state, BPF_ANY), 0);
}

/* Runs prog once with the raw tracepoint arguments args (the u64 array raw_tp sees). */
static void fire(struct bpf_program *prog, const uint64_t *args, size_t n)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = n * sizeof(*args));
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);

	if (err)
		fail_msg("BPF_PROG_TEST_RUN %s: %s", bpf_program__name(prog), strerror(-err));
	assert_int_equal(opts.retval, 0);
}

#define FIRE(prog, ...)                                                        \
	do {                                                                   \
		uint64_t args_[] = {__VA_ARGS__};                              \
		fire(skel->progs.prog, args_, sizeof(args_) / sizeof(*args_)); \
	} while (0)

static void apic_ipi(uint32_t icr_low, uint32_t dest_id)
{
	FIRE(ipiv_apic_ipi, icr_low, dest_id);
}

static uint32_t icr(uint32_t vector, uint32_t dm, int logical, uint32_t shorthand)
{
	return vector | dm << ICR_DELIVERY_SHIFT | (logical ? ICR_DEST_LOGICAL : 0) |
	       shorthand << ICR_SHORTHAND_SHIFT;
}

static struct ipiv_snapshot *snap(void)
{
	struct ipiv_snapshot *s;

	assert_int_equal(collector_snapshot(col, &s), 0);
	return s;
}

static const struct ipiv_vm_stats *vm_of(const struct ipiv_snapshot *s, uint64_t vm)
{
	const struct ipiv_vm_stats *v = snapshot_find_vm(s, vm);

	if (!v)
		fail_msg("VM %#llx missing from the snapshot", (unsigned long long)vm);
	return v;
}

static uint64_t drop_count(enum ipiv_drop_reason reason)
{
	struct ipiv_snapshot *s = snap();
	uint64_t n = s->self.drops[reason];

	collector_snapshot_free(s);
	return n;
}

static void test_x2apic_sends_by_class(void **state)
{
	const uint64_t vm = 0xffff888000001000;
	const uint32_t unicast = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);
	struct {
		uint32_t icr_low, dest;
	} sends[] = {
		{unicast, 2},
		{unicast, 0xff}, /* APIC ID 255 in x2APIC, not broadcast */
		{unicast, 0xffffffff},
		{icr(0xfd, ICR_DM_FIXED, 1, ICR_SH_NONE), 0x00010003},
		{icr(0xfd, ICR_DM_LOWEST_PRIO, 1, ICR_SH_NONE), 0x00000004},
		{icr(0, ICR_DM_SMI, 0, ICR_SH_NONE), 1},
		{icr(2, ICR_DM_NMI, 0, ICR_SH_NONE), 1},
		{icr(0, ICR_DM_INIT, 0, ICR_SH_NONE), 3},
		{icr(0x9a, ICR_DM_SIPI, 0, ICR_SH_NONE), 3},
		{icr(0xfb, ICR_DM_FIXED, 0, ICR_SH_SELF), 0},
		{icr(0xfb, ICR_DM_FIXED, 0, ICR_SH_ALL), 0},
		{icr(0xfb, ICR_DM_FIXED, 0, ICR_SH_ALL_BUT_SELF), 0},
	};
	const size_t n = sizeof(sends) / sizeof(sends[0]);

	be_vcpu(vm, 1, IPIV_APIC_X2APIC);
	for (size_t i = 0; i < n; i++)
		apic_ipi(sends[i].icr_low, sends[i].dest);
	apic_ipi(unicast, 2);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);
	const uint32_t eligible = icr_classify(unicast, 2, ICR_MODE_X2APIC);

	assert_int_equal(v->counts.sent, n + 1);
	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_X2APIC_MSR], n + 1);
	assert_int_equal(v->counts.sent_accel_eligible, 3); /* dest 2 twice, dest 0xff once */
	assert_int_equal(vm_sent(v, IPIV_PATH_X2APIC_MSR, eligible), 3);
	for (size_t i = 2; i < n; i++) {
		uint32_t class = icr_classify(sends[i].icr_low, sends[i].dest, ICR_MODE_X2APIC);

		assert_int_equal(vm_sent(v, IPIV_PATH_X2APIC_MSR, class), 1);
	}
	assert_true(vm_sent(v, IPIV_PATH_X2APIC_MSR, ICR_CLASS_BROADCAST | ICR_DM_FIXED) == 1);
	assert_int_equal(vm_sent(v, IPIV_PATH_X2APIC_MSR, ICR_CLASS_LOGICAL | ICR_CLASS_MULTICAST),
			 1);
	assert_int_equal(v->n_send_cells, n - 1); /* the two unicast sends share a cell */
	/* in (path, class) order: the JSON API and /metrics list them so, vm_sent() needs it */
	for (size_t i = 1; i < v->n_send_cells; i++)
		assert_true(ipiv_send_cell_cmp(&v->send_cells[i - 1], &v->send_cells[i]) < 0);
	const struct ipiv_vcpu_stats *row = vm_find_vcpu(v, 1);
	assert_non_null(row);
	assert_int_equal(row->counts.sent, n + 1);
	assert_int_equal(row->tid, my_tid());
	assert_int_equal(v->vcpu_count, 1);
	collector_snapshot_free(s);
}

static void test_apic_mode_hints(void **state)
{
	const uint64_t vm = 0xffff888000002000;
	const uint32_t unicast = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);

	be_vcpu(vm, 0, IPIV_APIC_UNKNOWN);
	apic_ipi(unicast, 1);		      /* no exit, no mode: unknown path */
	FIRE(ipiv_mmio, 2, 4, 0xfee00310, 0); /* not the ICR */
	FIRE(ipiv_mmio, 1, 4, 0xfee00300, 0); /* a read */
	apic_ipi(unicast, 1);
	assert_int_equal(my_thread().apic_mode, IPIV_APIC_UNKNOWN);
	FIRE(ipiv_mmio, 2, 4, 0xfee00300, 0);
	assert_int_equal(my_thread().apic_mode, IPIV_APIC_XAPIC);
	apic_ipi(unicast, 0xff);				 /* xAPIC broadcast */
	apic_ipi(icr(0xfd, ICR_DM_FIXED, 1, ICR_SH_NONE), 0x03); /* logical multicast */
	FIRE(ipiv_msr, 1, 0x830, 0x2000000fd, 0);
	assert_int_equal(my_thread().apic_mode, IPIV_APIC_X2APIC);
	apic_ipi(unicast, 0xff);		/* unicast in x2APIC */
	FIRE(ipiv_msr, 1, 0x1b, 0xfee00900, 0); /* APIC_BASE back to xAPIC */
	assert_int_equal(my_thread().apic_mode, IPIV_APIC_XAPIC);
	FIRE(ipiv_msr, 1, 0x1b, 0xfee00d00, 1); /* faulted write changes nothing */
	FIRE(ipiv_msr, 0, 0x1b, 0xfee00d00, 0); /* a read changes nothing */
	assert_int_equal(my_thread().apic_mode, IPIV_APIC_XAPIC);
	FIRE(ipiv_msr, 1, 0x1b, 0xfee00d00, 0);
	assert_int_equal(my_thread().apic_mode, IPIV_APIC_X2APIC);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_UNKNOWN], 2);
	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_XAPIC_MMIO], 2);
	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_X2APIC_MSR], 1);
	assert_int_equal(vm_sent(v, IPIV_PATH_XAPIC_MMIO, ICR_CLASS_BROADCAST), 1);
	assert_int_equal(vm_sent(v, IPIV_PATH_XAPIC_MMIO, ICR_CLASS_LOGICAL | ICR_CLASS_MULTICAST),
			 1);
	assert_int_equal(vm_sent(v, IPIV_PATH_X2APIC_MSR, 0), 1);
	assert_int_equal(v->counts.sent, 5);
	collector_snapshot_free(s);
}

static void test_exit_context_decides_path(void **state)
{
	const uint64_t vm = 0xffff888000003000;
	const uint32_t unicast = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);
	const uint32_t logical = icr(0xfd, ICR_DM_FIXED, 1, ICR_SH_NONE);

	be_vcpu(vm, 2, IPIV_APIC_X2APIC);
	/* IPIv fallback: trap-like APIC_WRITE on the ICR, x2APIC logical */
	FIRE(ipiv_test_exit, VMX, 56, 0x300);
	apic_ipi(logical, 0x00010001);
	FIRE(ipiv_test_entry, 0);
	apic_ipi(unicast, 1); /* after entry: the APIC mode again */
	/* failed-entry flag in the high bits does not hide the basic reason */
	FIRE(ipiv_test_exit, VMX, 0x80000000u | 56, 0x300);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_entry, 0);
	/* the exit wins over the APIC mode */
	FIRE(ipiv_test_exit, VMX, 44, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_test_exit, VMX, 32, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_test_exit, VMX, 85, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_test_exit, SVM, 0x7c, 1);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_test_exit, SVM, 0x400, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_entry, 0);
	/* an exit unrelated to the ICR (HLT) leaves the APIC mode in charge */
	FIRE(ipiv_test_exit, VMX, 12, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_entry, 0);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_APIC_WRITE], 2);
	assert_int_equal(vm_sent(v, IPIV_PATH_APIC_WRITE, ICR_CLASS_LOGICAL), 1);
	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_XAPIC_MMIO], 2);
	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_X2APIC_MSR], 5);
	assert_int_equal(v->counts.sent, 9);
	assert_int_equal(v->counts.exits, 8);
	/* exits by (isa, reason), sorted */
	const struct ipiv_exit_cell want[] = {
		{VMX, 12, 1}, {VMX, 32, 1},   {VMX, 44, 1},    {VMX, 56, 2},
		{VMX, 85, 1}, {SVM, 0x7c, 1}, {SVM, 0x400, 1},
	};
	assert_int_equal(v->n_exits, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < v->n_exits; i++) {
		assert_int_equal(v->exits[i].isa, want[i].isa);
		assert_int_equal(v->exits[i].reason, want[i].reason);
		assert_int_equal(v->exits[i].count, want[i].count);
	}
	assert_int_equal(my_thread().in_exit, 0);
	collector_snapshot_free(s);
}

static void test_pv_kvm_hypercall(void **state)
{
	const uint64_t vm = 0xffff888000004000;

	be_vcpu(vm, 3, IPIV_APIC_X2APIC);
	/* nr 10: a0/a1 bitmap, a2 lowest APIC ID, a3 ICR */
	FIRE(ipiv_hypercall, 10, 0x6, 0, 0, 0xfd);
	FIRE(ipiv_hypercall, 10, 0xff, 0, 0, 0xfd);
	FIRE(ipiv_hypercall, 10, 0x1, 0, 4, icr(0, ICR_DM_NMI, 0, ICR_SH_NONE));
	FIRE(ipiv_hypercall, 11, 0x1, 0, 0, 0xfd); /* KVM_HC_SCHED_YIELD: not an IPI */
	FIRE(ipiv_hypercall, 5, 0x1, 0, 0, 0xfd);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_int_equal(v->counts.sent, 3);
	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_PV_KVM], 3);
	assert_int_equal(vm_sent(v, IPIV_PATH_PV_KVM, ICR_DM_FIXED), 2);
	assert_int_equal(vm_sent(v, IPIV_PATH_PV_KVM, ICR_DM_NMI), 1);
	collector_snapshot_free(s);
}

static void test_avic_incomplete_each_cause(void **state)
{
	const uint64_t vm = 0xffff888000005000;
	const uint32_t unicast = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);

	be_vcpu(vm, 4, IPIV_APIC_XAPIC);
	for (uint32_t id = 0; id <= 4; id++) {
		FIRE(ipiv_test_exit, SVM, 0x401, unicast);
		FIRE(ipiv_avic_incomplete_ipi, 4, 1u << 24, unicast, id, 1);
		/* KVM emulates causes 0 and 2 through kvm_apic_send_ipi */
		if (id == 0 || id == 2)
			apic_ipi(unicast, 1);
		FIRE(ipiv_test_entry, 0);
	}
	FIRE(ipiv_avic_incomplete_ipi, 4, 0xffu << 24, unicast, 7, 0); /* unknown cause */
	/* a pending echo that never came is dropped at entry: the next send counts */
	FIRE(ipiv_avic_incomplete_ipi, 4, 1u << 24, unicast, 0, 1);
	FIRE(ipiv_test_entry, 0);
	apic_ipi(unicast, 1);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	for (uint32_t cause = 0; cause < IPIV_AVIC_CAUSE_COUNT; cause++)
		assert_int_equal(v->counts.avic_incomplete[cause],
				 cause == IPIV_AVIC_INVALID_INT_TYPE ? 2 : 1);
	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_AVIC], 7);
	assert_int_equal(vm_sent(v, IPIV_PATH_AVIC, ICR_DM_FIXED), 6);
	assert_int_equal(vm_sent(v, IPIV_PATH_AVIC, ICR_DM_FIXED | ICR_CLASS_BROADCAST), 1);
	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_XAPIC_MMIO], 1);
	assert_int_equal(v->counts.sent, 8);
	collector_snapshot_free(s);
}

static void test_hyperv_send(void **state)
{
	const uint64_t vm = 0xffff888000006000;

	be_vcpu(vm, 5, IPIV_APIC_X2APIC);
	FIRE(ipiv_hv_send_ipi, 0xf3, 0x6);
	FIRE(ipiv_hv_send_ipi_ex, 0xf3, 0, 0x1); /* sparse 4K set */
	FIRE(ipiv_hv_send_ipi_ex, 0xf3, 1, 0);	 /* HV_GENERIC_SET_ALL */

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_int_equal(v->counts.sent_by_path[IPIV_PATH_PV_HYPERV], 3);
	assert_int_equal(vm_sent(v, IPIV_PATH_PV_HYPERV, ICR_DM_FIXED), 2);
	assert_int_equal(vm_sent(v, IPIV_PATH_PV_HYPERV, ICR_DM_FIXED | ICR_CLASS_BROADCAST), 1);
	assert_int_equal(v->counts.sent_accel_eligible, 2);
	collector_snapshot_free(s);
}

static void test_receives_and_matrix(void **state)
{
	const uint64_t vm = 0xffff888000007000;
	const uint64_t no_identity = drop_count(IPIV_DROP_NO_IDENTITY);

	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	for (int i = 0; i < 3; i++)
		FIRE(ipiv_apic_accept_irq, 1, ICR_DM_FIXED << 8, 0, 0xfd);
	FIRE(ipiv_apic_accept_irq, 2, ICR_DM_NMI << 8, 0, 2);
	be_vcpu(vm, 2, IPIV_APIC_X2APIC);
	FIRE(ipiv_apic_accept_irq, 0, ICR_DM_FIXED << 8, 1, 0xfc);
	/* a thread that is no vCPU of any known VM: dropped, and said so */
	be_nobody();
	FIRE(ipiv_apic_accept_irq, 0, 0, 0, 0x30);
	apic_ipi(0xfd, 1);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_int_equal(s->self.drops[IPIV_DROP_NO_IDENTITY], no_identity + 2);
	assert_int_equal(v->counts.received, 5);
	assert_int_equal(v->counts.received_by_delivery[ICR_DM_FIXED], 4);
	assert_int_equal(v->counts.received_by_delivery[ICR_DM_NMI], 1);
	assert_int_equal(vm_find_vcpu(v, 1)->counts.received, 3);
	assert_int_equal(vm_find_vcpu(v, 2)->counts.received_by_delivery[ICR_DM_NMI], 1);
	assert_int_equal(vm_find_vcpu(v, 0)->counts.received, 1);
	const struct ipiv_matrix_cell want[] = {{0, 1, 3}, {0, 2, 1}, {2, 0, 1}};
	assert_int_equal(v->n_matrix, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(v->matrix[i].src_vcpu, want[i].src_vcpu);
		assert_int_equal(v->matrix[i].dst_vcpu, want[i].dst_vcpu);
		assert_int_equal(v->matrix[i].count, want[i].count);
	}
	assert_int_equal(v->vcpu_count, 3);
	collector_snapshot_free(s);
}

static void test_eoi_and_wakeups(void **state)
{
	const uint64_t vm = 0xffff888000008000;
	const uint64_t dups = drop_count(IPIV_DROP_EOI_DUPLICATE);

	be_vcpu(vm, 6, IPIV_APIC_X2APIC);
	/* this kernel traces each EOI twice, the second with vector -1 */
	FIRE(ipiv_eoi, 0, 0xfd);
	FIRE(ipiv_eoi, 0, (uint32_t)-1);
	FIRE(ipiv_eoi, 0, 0xfc);
	FIRE(ipiv_eoi, 0, (uint64_t)-1);
	FIRE(ipiv_eoi, 0, 0); /* vector 0 is a vector */
	FIRE(ipiv_vcpu_wakeup, 1000, 1, 1);
	FIRE(ipiv_vcpu_wakeup, 500, 0, 1);
	FIRE(ipiv_vcpu_wakeup, 2500, 1, 0);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_int_equal(s->self.drops[IPIV_DROP_EOI_DUPLICATE], dups + 2);
	assert_int_equal(v->counts.eois, 3);
	assert_int_equal(vm_find_vcpu(v, 6)->counts.eois, 3);
	assert_int_equal(v->counts.wakeups, 3);
	assert_int_equal(v->counts.wakeups_halted, 2);
	assert_int_equal(v->counts.halt_ns, 4000);
	collector_snapshot_free(s);
}

/* One histogram's count and smallest observation (bucket lower edge), VM-wide. */
static uint64_t lat_count(const struct ipiv_vm_stats *v, uint16_t kind, uint16_t sub,
			  uint64_t *min_ns)
{
	struct latency_hist h;

	if (!vm_latency(v, kind, sub, &h))
		return 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		if (h.buckets[b]) {
			*min_ns = hist_bucket_lo(b);
			break;
		}
	return h.count;
}

/* vm's binding to a dense latency slot: the slot + 1, IPIV_LAT_NO_SLOT, 0 if none. */
static uint64_t lat_binding(uint64_t vm)
{
	struct ipiv_lat_key key = {.vm = vm, .vcpu = IPIV_LAT_VM_WIDE, .kind = IPIV_LAT_BINDING};
	struct ipiv_lat_value bound;

	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.lat), &key, &bound))
		return 0;
	return bound.count;
}

/* The dense latency slot + 1 of vm, 0 if it has none (its records are hashed). */
static uint32_t lat_slot(uint64_t vm)
{
	uint64_t bound = lat_binding(vm);

	return bound == IPIV_LAT_NO_SLOT ? 0 : bound;
}

static struct ipiv_lat_slot slot_header(uint32_t slot)
{
	struct ipiv_lat_slot header;
	uint32_t idx = slot - 1;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.lat_slots), &idx, &header), 0);
	return header;
}

/* The target records of dense slot + 1 `slot`. */
static struct ipiv_lat_targets *slot_targets(uint32_t slot)
{
	static struct ipiv_lat_targets block;
	uint32_t idx = slot - 1;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.lat_targets), &idx, &block), 0);
	return &block;
}

/* Latency's record of target vCPU vcpu of vm (zero when it has none): in the VM's dense
 * slot, or in the targets hash. */
static struct ipiv_target target(uint64_t vm, uint32_t vcpu)
{
	struct ipiv_target_key key = {.vm = vm, .vcpu = vcpu};
	struct ipiv_target tg = {};
	uint32_t slot = lat_slot(vm);

	if (slot && vcpu < IPIV_LAT_SLOT_VCPUS)
		return slot_targets(slot)->vcpu[vcpu];
	bpf_map_lookup_elem(bpf_map__fd(skel->maps.targets), &key, &tg);
	return tg;
}

/* Overwrites that record, which exists, as another CPU's stores would. */
static void set_target(uint64_t vm, uint32_t vcpu, const struct ipiv_target *tg)
{
	struct ipiv_target_key key = {.vm = vm, .vcpu = vcpu};
	uint32_t slot = lat_slot(vm), idx = slot - 1;
	struct ipiv_lat_targets *block;

	if (slot && vcpu < IPIV_LAT_SLOT_VCPUS) {
		block = slot_targets(slot);
		block->vcpu[vcpu] = *tg;
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.lat_targets), &idx,
						     block, BPF_ANY),
				 0);
		return;
	}
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.targets), &key, tg, BPF_EXIST),
			 0);
}

/*
 * Timestamped sequences through the real programs: the BPF side takes its own clock, so
 * the test sleeps between events and checks each latency lands at or above the sleep. This
 * is how the exit-cost and running-target paths (kvm_exit/kvm_entry) are proven on hosts
 * where they never fire.
 */
static void test_latency_sequences(void **state)
{
	const uint64_t vm = 0xffff88800000c000;
	const uint32_t unicast = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);
	const uint32_t nmi = icr(0, ICR_DM_NMI, 0, ICR_SH_NONE);
	uint64_t min = 0;

	/* vCPU 0 exits on an x2APIC ICR write, sends to vCPU 1, re-enters 3 ms later */
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	FIRE(ipiv_test_exit, VMX, 32, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_apic_accept_irq, 1, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);
	usleep(3000);
	FIRE(ipiv_test_entry, 0);
	/* vCPU 1 was running: it enters 2 ms later, then EOIs the vector */
	be_vcpu(vm, 1, IPIV_APIC_X2APIC);
	usleep(2000);
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_eoi, 0, 0xfd);
	/* an EOI nothing was sent for */
	FIRE(ipiv_eoi, 0, 0xfc);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_true(v->latency_enabled);
	assert_int_equal(lat_count(v, IPIV_LAT_EXIT, IPIV_PATH_X2APIC_MSR, &min), 1);
	assert_true(min >= 2800000 && min < 1000000000); /* >= the 3 ms sleep, bucket-wide */
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_ACCEPT, IPIV_PATH_X2APIC_MSR, &min), 1);
	assert_true(min < 3000000); /* the accept followed the send at once */
	assert_int_equal(lat_count(v, IPIV_LAT_ACCEPT_RUN, IPIV_LAT_CASE_RUNNING, &min), 1);
	assert_true(min >= 4500000); /* 3 + 2 ms */
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_EOI, IPIV_PATH_X2APIC_MSR, &min), 1);
	assert_true(min >= 4500000);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_EOI_UNSENT], 1);
	collector_snapshot_free(s);

	/* a halted target: woken 1 ms after the accept; the halt itself is 7 us */
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	apic_ipi(unicast, 2);
	FIRE(ipiv_apic_accept_irq, 2, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);
	/* the same vector again before the EOI: coalesced in the IRR */
	apic_ipi(unicast, 2);
	FIRE(ipiv_apic_accept_irq, 2, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);
	/* an NMI: no EOI will ever come */
	apic_ipi(nmi, 3);
	FIRE(ipiv_apic_accept_irq, 3, ICR_DM_NMI << ICR_DELIVERY_SHIFT, 0, 0);
	be_vcpu(vm, 2, IPIV_APIC_X2APIC);
	usleep(1000);
	FIRE(ipiv_vcpu_wakeup, 7000, 1, 1);
	FIRE(ipiv_eoi, 0, 0xfd);
	/* a device interrupt raised by a vCPU thread long after its last send: not an IPI */
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	usleep(2000);
	FIRE(ipiv_apic_accept_irq, 4, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0x30);

	s = snap();
	v = vm_of(s, vm);
	assert_int_equal(lat_count(v, IPIV_LAT_ACCEPT_RUN, IPIV_LAT_CASE_HALTED, &min), 1);
	assert_true(min >= 900000);
	assert_int_equal(lat_count(v, IPIV_LAT_HALT, 1, &min), 1);
	assert_int_equal(min, hist_bucket_lo(hist_bucket(7000)));
	assert_int_equal(v->lat_unmatched[IPIV_UNM_OVERWRITTEN], 1);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_NMI], 1);
	/* send->EOI: the first and the coalesced-into one, measured once more */
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_EOI, IPIV_PATH_X2APIC_MSR, &min), 2);
	/* the device interrupt made no send->accept sample: still 4 (3 IPIs + 1 earlier) */
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_ACCEPT, IPIV_PATH_X2APIC_MSR, &min), 4);
	collector_snapshot_free(s);
	be_nobody();
}

/*
 * Inside a traced exit a send's deliveries are those before the next kvm_entry, however long
 * a loaded host takes between the targets of one multicast (emulated SVM: over 1 ms), and an
 * interrupt of another vector KVM injects before that entry (a timer) is not one of them.
 */
static void test_latency_send_window_in_exit(void **state)
{
	const uint64_t vm = 0xffff888000014000;
	const uint32_t multicast = icr(0xfd, ICR_DM_FIXED, 1, ICR_SH_NONE);
	uint64_t min = 0;

	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	FIRE(ipiv_test_exit, SVM, 0x7c, 1);
	apic_ipi(multicast, 0x0000000a); /* cluster 0, vCPUs 1 and 3 */
	FIRE(ipiv_apic_accept_irq, 1, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);
	usleep(2000);
	FIRE(ipiv_apic_accept_irq, 3, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);
	FIRE(ipiv_apic_accept_irq, 0, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xec);
	FIRE(ipiv_test_entry, 0);
	/* after the entry, the same vector is no longer this send's */
	FIRE(ipiv_apic_accept_irq, 2, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	/* vCPUs 1 and 3: not the timer, nor the accept after the entry */
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_ACCEPT, IPIV_PATH_X2APIC_MSR, &min), 2);
	assert_true(target(vm, 3).wake_since != 0);
	assert_int_equal(target(vm, 2).wake_since, 0);
	collector_snapshot_free(s);
	be_nobody();
}

/*
 * Without exit tracing (kvm_pvm) a send's deliveries are those before the jiffies counter
 * has moved on by more than one (1 to 8 ms by CONFIG_HZ): a delivery 30 ms after the send
 * in the same thread is not the send's, neither timed nor kept for a wake. A delivery of
 * the send 0.5 ms later (within the window) starts its target's wait at the send's time.
 */
static void test_latency_send_window_no_exit(void **state)
{
	const uint64_t vm = 0xffff888000017000;
	const uint32_t fixed = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);
	uint64_t min = 0, before, after, since;
	struct timespec ts;

	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	/* bpf_ktime_get_ns() is CLOCK_MONOTONIC */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	before = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	apic_ipi(fixed, 1);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	after = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	usleep(500); /* within the window at any CONFIG_HZ: less than a jiffy */
	FIRE(ipiv_apic_accept_irq, 1, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);
	since = target(vm, 1).wake_since;
	assert_true(since >= (before & ~1ull) && since <= after);
	apic_ipi(fixed, 2);
	usleep(30000);
	FIRE(ipiv_apic_accept_irq, 2, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_int_equal(lat_count(v, IPIV_LAT_SEND_ACCEPT, IPIV_PATH_X2APIC_MSR, &min), 1);
	assert_int_equal(target(vm, 2).wake_since, 0);
	collector_snapshot_free(s);
	be_nobody();
}

static void accept_vector(uint32_t target_vcpu, uint32_t vector)
{
	apic_ipi(icr(vector, ICR_DM_FIXED, 0, ICR_SH_NONE), target_vcpu);
	FIRE(ipiv_apic_accept_irq, target_vcpu, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, vector);
}

/*
 * A target keeps IPIV_TARGET_IRQS vectors awaiting EOIs: one more is counted, not kept;
 * an EOI frees its slot; a slot being filled by another CPU is neither matched nor
 * overwritten; a delivery whose EOI never came gives its slot up after the stale limit.
 */
static void test_latency_vector_slots(void **state)
{
	const uint64_t vm = 0xffff88800000d000;
	const struct ipiv_vm_stats *v;
	struct ipiv_snapshot *s;
	struct ipiv_target tg;
	uint64_t min = 0;

	add_vm_entry(vm, "kvm-slots"); /* a real VM is registered before it has targets */
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	for (uint32_t vec = 0xf0; vec < 0xf0 + IPIV_TARGET_IRQS + 1; vec++)
		accept_vector(6, vec);
	assert_true(lat_slot(vm) != 0); /* its record is in a dense slot */
	tg = target(vm, 6);
	for (int i = 0; i < IPIV_TARGET_IRQS; i++)
		assert_int_equal(tg.irq[i].state, IPIV_IRQ_VALID | (0xf0 + i));
	assert_true(tg.wake_since != 0);

	/* vCPU 6 EOIs 0xf1; the vector that found no room has no slot to match */
	be_vcpu(vm, 6, IPIV_APIC_X2APIC);
	FIRE(ipiv_eoi, 0, 0xf1);
	FIRE(ipiv_eoi, 0, 0xf0 + IPIV_TARGET_IRQS);
	assert_int_equal(target(vm, 6).irq[1].state, 0);
	/* the freed slot takes the next vector */
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	accept_vector(6, 0xe0);
	assert_int_equal(target(vm, 6).irq[1].state, IPIV_IRQ_VALID | 0xe0);
	/* 0xf2 again before its EOI (coalesced in the IRR): the newer send takes the slot */
	tg = target(vm, 6);
	usleep(100);
	accept_vector(6, 0xf2);
	assert_int_equal(target(vm, 6).irq[2].state, IPIV_IRQ_VALID | 0xf2);
	assert_true(target(vm, 6).irq[2].send_ts > tg.irq[2].send_ts);

	/* slot 0 is being filled on another CPU: a send of its vector is counted coalesced
	 * and leaves it alone, and its EOI does not match the half-written slot */
	tg = target(vm, 6);
	tg.irq[0].state = IPIV_IRQ_FILLING | 0xf0;
	tg.irq[0].send_ts = 42;
	set_target(vm, 6, &tg);
	accept_vector(6, 0xf0);
	assert_int_equal(target(vm, 6).irq[0].send_ts, 42);
	be_vcpu(vm, 6, IPIV_APIC_X2APIC);
	FIRE(ipiv_eoi, 0, 0xf0);
	tg = target(vm, 6);
	assert_int_equal(tg.irq[0].state, IPIV_IRQ_FILLING | 0xf0);
	tg.irq[0].state = IPIV_IRQ_VALID | 0xf0;
	set_target(vm, 6, &tg);

	s = snap();
	v = vm_of(s, vm);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_SLOTS_FULL], 1);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_EOI_UNSENT], 2);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_OVERWRITTEN], 2);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_STALE], 0);
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_EOI, IPIV_PATH_X2APIC_MSR, &min), 1);
	collector_snapshot_free(s);

	/* past the stale limit, with every slot taken and vCPU 6 never seen running: a new
	 * vector takes the first stale slot, and the wait starts over */
	usleep(IPIV_LAT_STALE_NS / 1000 + 20000);
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	accept_vector(6, 0xd0);
	tg = target(vm, 6);
	assert_int_equal(tg.irq[0].state, IPIV_IRQ_VALID | 0xd0);
	s = snap();
	v = vm_of(s, vm);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_STALE], 1);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_WAKE_UNSEEN], 1);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_SLOTS_FULL], 1);
	collector_snapshot_free(s);
	/* it runs: the wait it had since the new accept ends, a fresh (not stale) sample */
	be_vcpu(vm, 6, IPIV_APIC_X2APIC);
	FIRE(ipiv_test_entry, 0);
	assert_int_equal(target(vm, 6).wake_since, 0);
	s = snap();
	v = vm_of(s, vm);
	assert_int_equal(lat_count(v, IPIV_LAT_ACCEPT_RUN, IPIV_LAT_CASE_RUNNING, &min), 1);
	assert_true(min < IPIV_LAT_STALE_NS / 2);
	collector_snapshot_free(s);

	/* slots published by other CPUs after this accept read its clock are not stale */
	struct timespec mono;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	tg = target(vm, 6);
	for (int i = 0; i < IPIV_TARGET_IRQS; i++) {
		tg.irq[i].state = IPIV_IRQ_VALID | (0xb0 + i);
		tg.irq[i].send_ts = mono.tv_sec * 1000000000ull + mono.tv_nsec + 50000000;
	}
	set_target(vm, 6, &tg);
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	accept_vector(6, 0xc0);
	assert_int_equal(target(vm, 6).irq[0].state, IPIV_IRQ_VALID | 0xb0);
	s = snap();
	v = vm_of(s, vm);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_STALE], 1);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_SLOTS_FULL], 2);
	collector_snapshot_free(s);
	be_nobody();
}

/* Makes this thread vCPU vcpu_id of vm with APICv in state apicv; its last exit at
 * exit_ts (0: none). */
static void be_vcpu_apicv(uint64_t vm, uint32_t vcpu_id, uint8_t apicv, uint64_t exit_ts)
{
	struct ipiv_thread t;

	be_vcpu(vm, vcpu_id, IPIV_APIC_X2APIC);
	t = my_thread();
	t.apicv = apicv;
	t.exit_ts = exit_ts;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.threads), &(int){my_pidfd()},
					     &t, BPF_EXIST),
			 0);
}

/*
 * With APICv/AVIC active the guest's EOIs of IPIs do not exit: the delivery is counted as
 * eoi_virtualized at once and keeps no slot that only a stale limit would free. A target
 * in the guest takes a posted interrupt with no exit: its next entry or wakeup (after an
 * exit that came after the accept) is counted as delivered_in_guest, not timed; a target
 * out of the guest at the accept (its last exit before it) waited for it, which is timed.
 */
static void test_latency_eoi_virtualized(void **state)
{
	const uint64_t vm = 0xffff88800000e000;
	struct ipiv_snapshot *s;
	struct ipiv_target tg;
	uint64_t min = 0, exit3;

	add_vm_entry(vm, "kvm-apicv");
	/* vCPU 3 exits to the host (and stays there, preempted) before the IPIs below */
	be_vcpu_apicv(vm, 3, IPIV_APICV_ACTIVE, 0);
	FIRE(ipiv_test_exit, VMX, 1, 0);
	exit3 = my_thread().exit_ts;
	assert_true(exit3 != 0);

	be_vcpu_apicv(vm, 0, IPIV_APICV_ACTIVE, 0);
	accept_vector(1, 0xfd);
	accept_vector(1, 0xfd);
	tg = target(vm, 1);
	for (int i = 0; i < IPIV_TARGET_IRQS; i++)
		assert_int_equal(tg.irq[i].state, 0);
	assert_true(tg.wake_since != 0); /* the wake is still timed */
	/* APICv inhibited again: the next delivery waits for its EOI as usual */
	be_vcpu_apicv(vm, 0, IPIV_APICV_INACTIVE, 0);
	accept_vector(1, 0xfd);
	assert_int_equal(target(vm, 1).irq[0].state, IPIV_IRQ_VALID | 0xfd);

	/* APICv on: IPIs to vCPU 2 (in the guest), 3 (preempted) and 4 (halted) */
	be_vcpu_apicv(vm, 0, IPIV_APICV_ACTIVE, 0);
	accept_vector(2, 0xfd);
	accept_vector(3, 0xfd);
	accept_vector(4, 0xfd);
	accept_vector(5, 0xfd);
	usleep(1000);
	/* vCPU 5 took it in the guest, then halted (its HLT exit after the accept), is woken */
	be_vcpu_apicv(vm, 5, IPIV_APICV_ACTIVE, 0);
	FIRE(ipiv_test_exit, VMX, 12, 0);
	FIRE(ipiv_vcpu_wakeup, 5000, 1, 1);
	/* vCPU 2 exits for some other reason after taking the IPI in the guest, re-enters */
	be_vcpu_apicv(vm, 2, IPIV_APICV_ACTIVE, 0);
	FIRE(ipiv_test_exit, VMX, 1, 0);
	FIRE(ipiv_test_entry, 0);
	/* vCPU 3 is scheduled in again and enters: it waited for that */
	be_vcpu_apicv(vm, 3, IPIV_APICV_ACTIVE, exit3);
	FIRE(ipiv_test_entry, 0);
	/* vCPU 4 is woken */
	be_vcpu_apicv(vm, 4, IPIV_APICV_ACTIVE, 0);
	FIRE(ipiv_vcpu_wakeup, 5000, 1, 1);

	s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_int_equal(v->lat_unmatched[IPIV_UNM_EOI_VIRTUALIZED], 6);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_OVERWRITTEN], 0);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_IN_GUEST], 2);
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_ACCEPT, IPIV_PATH_X2APIC_MSR, &min), 7);
	assert_int_equal(lat_count(v, IPIV_LAT_ACCEPT_RUN, IPIV_LAT_CASE_RUNNING, &min), 1);
	assert_true(min >= 900000);
	assert_int_equal(lat_count(v, IPIV_LAT_ACCEPT_RUN, IPIV_LAT_CASE_HALTED, &min), 1);
	assert_true(min >= 900000);
	collector_snapshot_free(s);
	for (uint32_t i = 2; i <= 5; i++)
		assert_int_equal(target(vm, i).wake_since, 0);
	be_nobody();
}

/*
 * The hash maps take what the dense slots cannot: a target vCPU id beyond a slot's records,
 * and every record of a VM that found all slots taken, which stays hashed after slots free
 * up (so its deliveries are never split between the two). The collector sums both.
 */
/*
 * A dense slot's histogram gives back each observation in its own bucket and the exact sum,
 * whichever group of buckets (struct ipiv_lat_series) it falls in: halt times, which the
 * tracepoint carries, at both edges of buckets on either side of group edges, in the first
 * bucket and in the last.
 */
static void test_latency_dense_buckets_exact(void **state)
{
	const uint64_t vm = 0xffff88800001e000;
	const uint32_t buckets[] = {0,
				    1,
				    IPIV_LAT_GROUP - 1,
				    IPIV_LAT_GROUP,
				    2 * IPIV_LAT_GROUP - 1,
				    2 * IPIV_LAT_GROUP,
				    HIST_BUCKETS - 2,
				    HIST_BUCKETS - 1};
	const size_t n = sizeof(buckets) / sizeof(buckets[0]);
	const struct ipiv_vm_stats *v;
	struct ipiv_snapshot *s;
	struct latency_hist h;
	uint64_t sum = 0;

	add_vm_entry(vm, "kvm-buckets");
	be_vcpu(vm, 3, IPIV_APIC_X2APIC);
	for (size_t i = 0; i < n; i++) {
		uint64_t lo = hist_bucket_lo(buckets[i]);
		uint64_t hi =
			buckets[i] == HIST_BUCKETS - 1 ? lo + 12345 : hist_bucket_hi(buckets[i]);

		FIRE(ipiv_vcpu_wakeup, lo, 1, 1);
		FIRE(ipiv_vcpu_wakeup, hi, 1, 1);
		sum += lo + hi;
	}
	assert_true(lat_slot(vm) != 0);
	s = snap();
	v = vm_of(s, vm);
	assert_true(vm_latency(v, IPIV_LAT_HALT, 1, &h));
	for (uint32_t b = 0, i = 0; b < HIST_BUCKETS; b++) {
		bool listed = i < n && buckets[i] == b;

		assert_int_equal(h.buckets[b], listed ? 2 : 0);
		i += listed;
	}
	assert_int_equal(h.count, 2 * n);
	assert_int_equal(h.sum_ns, sum);
	assert_false(vm_latency(v, IPIV_LAT_HALT, 0, &h) && h.count);
	collector_snapshot_free(s);
}

/* Observations of VM vm's dense series `series` as the BPF side wrote them (0: no slot). */
static uint64_t dense_series_count(uint64_t vm, uint32_t series)
{
	static struct ipiv_lat_series h;
	uint32_t slot = lat_slot(vm), elem = (slot - 1) * IPIV_LAT_SERIES + series;
	uint64_t n = 0;

	if (!slot)
		return 0;
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.lat_series), &elem, &h), 0);
	for (uint32_t b = 0; b < HIST_BUCKETS; b++)
		n += ipiv_lat_series_bucket(&h, b);
	return n;
}

/* The count of the host-wide histogram (kind, sub) of a snapshot, 0 if it has none. */
static uint64_t host_count(uint16_t kind, uint16_t sub)
{
	struct ipiv_snapshot *s = snap();
	const struct latency_hist *h = host_latency(s, kind, sub);
	uint64_t n = h ? h->count : 0;

	collector_snapshot_free(s);
	return n;
}

/* vCPU 0 of vm: an x2APIC ICR write the exit fastpath sends (its exit lasts 2 ms), one it
 * declines, one on a host where no fexit fires, then an exit of the fastpath with no IPI. */
static void fastpath_exits(uint64_t vm)
{
	const uint64_t unicast = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);

	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	FIRE(ipiv_test_exit, VMX, 32, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_fastpath, 0x830, unicast | (1ull << 32), 2); /* EXIT_HANDLED */
	usleep(2000);
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_test_exit, VMX, 32, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_fastpath, 0x830, unicast | (1ull << 32), 0); /* declined */
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_test_exit, VMX, 32, 0);
	apic_ipi(unicast, 1);
	FIRE(ipiv_test_entry, 0);
	/* the TSC deadline MSR through the fastpath: no IPI, no exit cost to record */
	FIRE(ipiv_test_exit, VMX, 32, 0);
	FIRE(ipiv_test_fastpath, 0x6e0, 12345, 1);
	FIRE(ipiv_test_entry, 0);
}

/*
 * The sender's exits the x2APIC fastpath sent: the BPF side records each exit once, in the
 * fastpath's series or the path's; the collector's IPIV_LAT_EXIT has all three, its
 * IPIV_LAT_EXIT_FASTPATH the one, as many as the fastpath counter's handled writes, per VM
 * and host-wide; the same for a VM whose histograms are hashed.
 */

/* Gives every free dense latency slot to a VM of its own (vm_base + slot, claimed now), so the
 * next VM's latency goes to the hash maps; what each slot held is kept in before[] for the
 * caller to put back. */
static void take_free_slots(int slots, struct ipiv_lat_slot *before, uint64_t vm_base)
{
	struct timespec mono;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	for (uint32_t i = 0; i < IPIV_LAT_SLOTS; i++) {
		struct ipiv_lat_slot other = {
			.vm = vm_base + i,
			.claimed_ns = mono.tv_sec * 1000000000ull + mono.tv_nsec,
		};

		assert_int_equal(bpf_map_lookup_elem(slots, &i, &before[i]), 0);
		if (!before[i].vm)
			assert_int_equal(bpf_map_update_elem(slots, &i, &other, BPF_ANY), 0);
	}
}

static void test_latency_exit_fastpath(void **state)
{
	const uint64_t dense_vm = 0xffff888000021000, hashed_vm = 0xffff888000022000;
	struct ipiv_lat_slot before[IPIV_LAT_SLOTS];
	int slots = bpf_map__fd(skel->maps.lat_slots);
	uint64_t host_all = host_count(IPIV_LAT_EXIT, IPIV_PATH_X2APIC_MSR);
	uint64_t host_fast = host_count(IPIV_LAT_EXIT_FASTPATH, IPIV_PATH_X2APIC_MSR);
	const struct ipiv_vm_stats *v;
	struct ipiv_snapshot *s;
	uint64_t min = 0;

	add_vm_entry(dense_vm, "kvm-fastpath");
	fastpath_exits(dense_vm);
	assert_true(lat_slot(dense_vm) != 0);
	assert_int_equal(dense_series_count(dense_vm, IPIV_LAT_SERIES_EXIT + IPIV_PATH_X2APIC_MSR),
			 2);
	assert_int_equal(dense_series_count(dense_vm, IPIV_LAT_SERIES_FASTPATH), 1);
	s = snap();
	v = vm_of(s, dense_vm);
	assert_int_equal(lat_count(v, IPIV_LAT_EXIT, IPIV_PATH_X2APIC_MSR, &min), 3);
	assert_int_equal(lat_count(v, IPIV_LAT_EXIT_FASTPATH, IPIV_PATH_X2APIC_MSR, &min), 1);
	assert_true(min >= 1800000 && min < 1000000000); /* the 2 ms exit, bucket-wide */
	assert_int_equal(v->counts.x2apic_fastpath_handled, 1);
	assert_int_equal(v->counts.x2apic_fastpath_missed, 1);
	assert_int_equal(lat_count(v, IPIV_LAT_EXIT_FASTPATH, IPIV_PATH_X2APIC_MSR, &min),
			 v->counts.x2apic_fastpath_handled);
	collector_snapshot_free(s);
	assert_int_equal(host_count(IPIV_LAT_EXIT, IPIV_PATH_X2APIC_MSR), host_all + 3);
	assert_int_equal(host_count(IPIV_LAT_EXIT_FASTPATH, IPIV_PATH_X2APIC_MSR), host_fast + 1);

	/* every free slot taken: the next VM's histograms are hashed */
	take_free_slots(slots, before, 0xffff889100000000ull);
	add_vm_entry(hashed_vm, "kvm-fastpath-hashed");
	fastpath_exits(hashed_vm);
	for (uint32_t i = 0; i < IPIV_LAT_SLOTS; i++)
		assert_int_equal(bpf_map_update_elem(slots, &i, &before[i], BPF_ANY), 0);
	assert_int_equal(lat_binding(hashed_vm), IPIV_LAT_NO_SLOT);
	s = snap();
	v = vm_of(s, hashed_vm);
	assert_int_equal(lat_count(v, IPIV_LAT_EXIT, IPIV_PATH_X2APIC_MSR, &min), 3);
	assert_int_equal(lat_count(v, IPIV_LAT_EXIT_FASTPATH, IPIV_PATH_X2APIC_MSR, &min), 1);
	assert_true(min >= 1800000 && min < 1000000000);
	collector_snapshot_free(s);
	assert_int_equal(host_count(IPIV_LAT_EXIT_FASTPATH, IPIV_PATH_X2APIC_MSR), host_fast + 2);
	be_nobody();
}

static void test_latency_dense_and_hashed(void **state)
{
	const uint64_t dense_vm = 0xffff888000015000, hashed_vm = 0xffff888000016000;
	const uint32_t far = IPIV_LAT_SLOT_VCPUS + 44;
	struct ipiv_target_key far_key = {.vm = dense_vm, .vcpu = far};
	struct ipiv_lat_slot before[IPIV_LAT_SLOTS];
	int slots = bpf_map__fd(skel->maps.lat_slots);
	const struct ipiv_vm_stats *v;
	struct ipiv_snapshot *s;
	struct ipiv_target tg;
	uint64_t min = 0;

	add_vm_entry(dense_vm, "kvm-dense");
	add_vm_entry(hashed_vm, "kvm-hashed");
	/* a VM with a slot: vCPU 5's record is in it, vCPU `far`'s in the targets hash */
	be_vcpu(dense_vm, 0, IPIV_APIC_X2APIC);
	accept_vector(5, 0xfd);
	accept_vector(far, 0xfd);
	assert_true(lat_slot(dense_vm) != 0);
	assert_int_equal(slot_targets(lat_slot(dense_vm))->vcpu[5].irq[0].state,
			 IPIV_IRQ_VALID | 0xfd);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.targets), &far_key, &tg), 0);
	assert_int_equal(tg.irq[0].state, IPIV_IRQ_VALID | 0xfd);
	be_vcpu(dense_vm, 5, IPIV_APIC_X2APIC);
	FIRE(ipiv_eoi, 0, 0xfd);
	be_vcpu(dense_vm, far, IPIV_APIC_X2APIC);
	FIRE(ipiv_eoi, 0, 0xfd);
	s = snap();
	v = vm_of(s, dense_vm);
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_ACCEPT, IPIV_PATH_X2APIC_MSR, &min), 2);
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_EOI, IPIV_PATH_X2APIC_MSR, &min), 2);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_EOI_UNSENT], 0);
	collector_snapshot_free(s);

	/* every free slot taken by other VMs: the next VM is hashed */
	take_free_slots(slots, before, 0xffff889000000000ull);
	be_vcpu(hashed_vm, 0, IPIV_APIC_X2APIC);
	accept_vector(1, 0xfd);
	assert_int_equal(lat_binding(hashed_vm), IPIV_LAT_NO_SLOT);
	assert_int_equal(target(hashed_vm, 1).irq[0].state, IPIV_IRQ_VALID | 0xfd);
	/* slots free again: the VM keeps to the hash, where its EOI finds the delivery */
	for (uint32_t i = 0; i < IPIV_LAT_SLOTS; i++)
		assert_int_equal(bpf_map_update_elem(slots, &i, &before[i], BPF_ANY), 0);
	be_vcpu(hashed_vm, 1, IPIV_APIC_X2APIC);
	FIRE(ipiv_eoi, 0, 0xfd);
	assert_int_equal(lat_binding(hashed_vm), IPIV_LAT_NO_SLOT);
	s = snap();
	v = vm_of(s, hashed_vm);
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_ACCEPT, IPIV_PATH_X2APIC_MSR, &min), 1);
	assert_int_equal(lat_count(v, IPIV_LAT_SEND_EOI, IPIV_PATH_X2APIC_MSR, &min), 1);
	assert_int_equal(v->lat_unmatched[IPIV_UNM_EOI_UNSENT], 0);
	collector_snapshot_free(s);
	/* its VM-wide histograms are one element each of lat_hseries, no bucket of lat */
	{
		struct ipiv_lat_series_key hk = {
			.vm = hashed_vm, .series = IPIV_LAT_SERIES_SEND_EOI + IPIV_PATH_X2APIC_MSR};
		struct ipiv_lat_key bk = {.vm = hashed_vm,
					  .vcpu = IPIV_LAT_VM_WIDE,
					  .kind = IPIV_LAT_SEND_EOI,
					  .sub = IPIV_PATH_X2APIC_MSR,
					  .bucket = hist_bucket(1)};
		struct ipiv_lat_series hs;
		struct ipiv_lat_value bv;
		uint64_t n = 0;

		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.lat_hseries), &hk, &hs),
				 0);
		for (uint32_t b = 0; b < HIST_BUCKETS; b++)
			n += ipiv_lat_series_bucket(&hs, b);
		assert_int_equal(n, 1);
		for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
			bk.bucket = b;
			assert_int_not_equal(
				bpf_map_lookup_elem(bpf_map__fd(skel->maps.lat), &bk, &bv), 0);
		}
	}
	be_nobody();
}

static size_t map_size(int fd, size_t key_size)
{
	unsigned char key[64], next[64];
	size_t n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

#define PI_NV(v)     ((uint64_t)(v) << 16)
#define PI_NDST(cpu) ((uint64_t)(cpu) << 32)
#define PI_SN	     (1ull << 1)
#define AVIC_RUNNING (1ull << 62)

/*
 * What v1's patched tracepoints answered, from hooks that exist: unvirtualized ICR writes by
 * reason (an APIC-write exit, then kvm_apic_ipi on the thread), the x2APIC fastpath outcome
 * (fexit on KVM's WRMSR fastpath), posted-interrupt descriptor changes and the blocked and
 * preempted times they imply (fexit on vmx_vcpu_pi_load/put), AVIC IsRunning changes (fexit
 * on avic_vcpu_load/put/blocking/unblocking); and the patched kvm_pi_wakeup, with its
 * latency to the next kvm_entry. The fexit programs cannot load here (no kvm_intel or
 * kvm_amd, and fentry is refused on kvm_pvm): their logic runs through test entries.
 */
static void test_patched_and_derived(void **state)
{
	const uint64_t vm = 0xffff888000010000, vcpu_ptr = 0xffff888000abc000;
	const uint64_t avic_ptr = 0xffff888000abd000;
	const uint32_t fixed = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);
	const uint32_t logical = icr(0xfd, ICR_DM_FIXED, 1, ICR_SH_NONE);
	const uint64_t no_identity = drop_count(IPIV_DROP_NO_IDENTITY);
	uint64_t min = 0;

	/* the sender, vCPU 0, x2APIC: ICR writes trapped by APIC-write exits (reason 56) */
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	for (int i = 0; i < 3; i++) {
		FIRE(ipiv_test_exit, VMX, 56, 0x300);
		apic_ipi(logical, 3);
		FIRE(ipiv_test_entry, 0);
	}
	FIRE(ipiv_test_exit, VMX, 56, 0x300);
	apic_ipi(icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_ALL_BUT_SELF), 0);
	apic_ipi(icr(2, ICR_DM_NMI, 0, ICR_SH_NONE), 1); /* two sends in one exit: both */
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_test_exit, VMX, 56, 0x300);
	apic_ipi(fixed, 0xffffffff); /* x2APIC broadcast */
	FIRE(ipiv_test_entry, 0);
	/* eligible and still trapped: IPIv is off (unknown here: no vCPU pointer to read) */
	for (int i = 0; i < 2; i++) {
		FIRE(ipiv_test_exit, VMX, 0x80000000u | 56, 0x300);
		apic_ipi(fixed, 1);
		FIRE(ipiv_test_entry, 0);
	}
	/* not APIC-write exits: intercepted WRMSR, an SVM exit, no exit context */
	FIRE(ipiv_test_exit, VMX, 32, 0);
	apic_ipi(logical, 3);
	FIRE(ipiv_test_entry, 0);
	FIRE(ipiv_test_exit, SVM, 56, 0);
	apic_ipi(logical, 3);
	FIRE(ipiv_test_entry, 0);
	apic_ipi(logical, 3);
	/* the x2APIC fastpath: 4 ICR writes sent, 1 declined, a TSC deadline write ignored */
	for (int i = 0; i < 4; i++)
		FIRE(ipiv_test_fastpath, 0x830, 0xfd | (1ull << 32), 1);
	FIRE(ipiv_test_fastpath, 0x830, logical | (3ull << 32), 0);
	FIRE(ipiv_test_fastpath, 0x6e0, 12345, 1);

	/* vCPU 2's descriptor on pCPU 5: seen running, block 3 ms, load, preempt 2 ms, load on
	 * pCPU 6; a load or put that changes nothing is no update */
	be_vcpu(vm, 2, IPIV_APIC_X2APIC);
	FIRE(ipiv_test_pi_desc, vcpu_ptr, PI_NV(0xf2) | PI_NDST(5));
	FIRE(ipiv_test_pi_desc, vcpu_ptr, PI_NV(0xf2) | PI_NDST(5));
	FIRE(ipiv_test_pi_desc, vcpu_ptr, PI_NV(0xf1) | PI_NDST(5));
	usleep(3000);
	FIRE(ipiv_test_pi_desc, vcpu_ptr, PI_NV(0xf2) | PI_NDST(5));
	FIRE(ipiv_test_pi_desc, vcpu_ptr, PI_NV(0xf2) | PI_SN | PI_NDST(5));
	usleep(2000);
	FIRE(ipiv_test_pi_desc, vcpu_ptr, PI_NV(0xf2) | PI_NDST(6));
	FIRE(ipiv_test_pi_desc, vcpu_ptr, PI_NV(0xf2) | PI_NDST(6));

	/* vCPU 3 woken twice by posted interrupts (an IPI vector, then a device's); it enters
	 * 1 ms after the first */
	FIRE(ipiv_test_pi_wakeup, vm, 3, 1ull << (0xfd - 0xc0));
	FIRE(ipiv_test_pi_wakeup, vm, 3, 1ull << (0xd1 - 0xc0));
	be_vcpu(vm, 3, IPIV_APIC_X2APIC);
	usleep(1000);
	FIRE(ipiv_test_entry, 0);
	/* vCPU 4 is woken and never seen entering: its wait stays pending until reclaim */
	FIRE(ipiv_test_pi_wakeup, vm, 4, 0);
	assert_int_equal(target(vm, 4).pi_since != 0, 1);
	assert_int_equal(target(vm, 3).pi_since, 0);
	/* the real program (v2: the vCPU alone), handed a vCPU it cannot read, counts nothing */
	FIRE(ipiv_pi_wakeup, 0x1000);

	/* AMD, vCPU 5: seen running, preempted 2 ms, loaded, put while halted 1 ms, loaded; a
	 * write that leaves IsRunning as it was is no change */
	be_vcpu(vm, 5, IPIV_APIC_X2APIC);
	FIRE(ipiv_test_avic_physid, avic_ptr, AVIC_RUNNING | 7, 0);
	FIRE(ipiv_test_avic_physid, avic_ptr, 7, 1);
	usleep(2000);
	FIRE(ipiv_test_avic_physid, avic_ptr, AVIC_RUNNING | 9, 0);
	FIRE(ipiv_test_avic_physid, avic_ptr, 9, 0);
	usleep(1000);
	FIRE(ipiv_test_avic_physid, avic_ptr, AVIC_RUNNING | 9, 0);
	FIRE(ipiv_test_avic_physid, avic_ptr, AVIC_RUNNING | 10, 0);

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);
	const struct ipiv_vcpu_stats *v0 = vm_find_vcpu(v, 0), *v2 = vm_find_vcpu(v, 2);
	const struct ipiv_vcpu_stats *v3 = vm_find_vcpu(v, 3), *v5 = vm_find_vcpu(v, 5);

	assert_non_null(v0);
	assert_int_equal(v0->counts.icr_write_traps[IPIV_TRAP_LOGICAL], 3);
	assert_int_equal(v0->counts.icr_write_traps[IPIV_TRAP_SHORTHAND], 1);
	assert_int_equal(v0->counts.icr_write_traps[IPIV_TRAP_DELIVERY_MODE], 1);
	assert_int_equal(v0->counts.icr_write_traps[IPIV_TRAP_DEST_RANGE], 1);
	assert_int_equal(v0->counts.icr_write_traps[IPIV_TRAP_IPIV_INACTIVE], 2);
	assert_int_equal(v0->counts.icr_write_traps[IPIV_TRAP_OTHER], 0);
	assert_int_equal(v0->counts.sent_by_path[IPIV_PATH_APIC_WRITE], 8);
	assert_int_equal(v0->counts.sent, 11);
	assert_int_equal(v0->counts.x2apic_fastpath_handled, 4);
	assert_int_equal(v0->counts.x2apic_fastpath_missed, 1);

	assert_non_null(v2);
	assert_int_equal(v2->counts.pi_descriptor_updates[IPIV_PI_MIGRATE], 1);
	assert_int_equal(v2->counts.pi_descriptor_updates[IPIV_PI_BLOCK], 1);
	assert_int_equal(v2->counts.pi_descriptor_updates[IPIV_PI_LOAD], 1);
	assert_int_equal(v2->counts.pi_descriptor_updates[IPIV_PI_PREEMPT], 1);
	assert_true(v2->counts.state_ns[IPIV_VSTATE_BLOCKED] >= 3000000);
	assert_true(v2->counts.state_ns[IPIV_VSTATE_BLOCKED] < 1000000000);
	assert_true(v2->counts.state_ns[IPIV_VSTATE_PREEMPTED] >= 2000000);
	assert_true(v2->counts.state_ns[IPIV_VSTATE_PREEMPTED] < 1000000000);
	assert_int_equal(v2->counts.state_ns[IPIV_VSTATE_RUNNING], 0);

	assert_non_null(v3);
	assert_int_equal(v3->counts.posted_wakeups, 2);
	assert_int_equal(v3->counts.posted_wakeups_ipi, 1);
	assert_int_equal(lat_count(v, IPIV_LAT_ACCEPT_RUN, IPIV_LAT_CASE_POSTED, &min), 1);
	assert_true(min >= 900000 && min < 1000000000);
	assert_int_equal(s->self.drops[IPIV_DROP_NO_IDENTITY], no_identity + 1);

	assert_non_null(v5);
	assert_int_equal(v5->counts.avic_running_set, 2);
	assert_int_equal(v5->counts.avic_running_cleared, 2);
	assert_true(v5->counts.state_ns[IPIV_VSTATE_PREEMPTED] >= 2000000);
	assert_true(v5->counts.state_ns[IPIV_VSTATE_NOT_RUNNING] >= 1000000);
	assert_true(v5->counts.state_ns[IPIV_VSTATE_NOT_RUNNING] < 1000000000);
	assert_int_equal(v->counts.state_ns[IPIV_VSTATE_BLOCKED],
			 v2->counts.state_ns[IPIV_VSTATE_BLOCKED]);
	collector_snapshot_free(s);
	be_nobody();
}

static void test_apicv_inhibits(void **state)
{
	const uint64_t vm = 0xffff888000009000;

	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	add_vm_entry(vm, "kvm-4242");
	FIRE(ipiv_apicv_inhibit_changed, 0, 1, 0x1);  /* DISABLED */
	FIRE(ipiv_apicv_inhibit_changed, 5, 1, 0x21); /* APIC_ID_MODIFIED */
	FIRE(ipiv_apicv_inhibit_changed, 5, 0, 0x1);
	FIRE(ipiv_apicv_inhibit_changed, 12, 1, 0x1001); /* 6.18: PHYSICAL_ID_TOO_BIG */

	struct ipiv_snapshot *s = snap();
	const struct ipiv_vm_stats *v = vm_of(s, vm);

	assert_true(v->inhibits_known);
	assert_int_equal(v->inhibits, 0x1001);
	assert_int_equal(v->inhibit_set[0], 1);
	assert_int_equal(v->inhibit_set[5], 1);
	assert_int_equal(v->inhibit_clear[5], 1);
	assert_int_equal(v->inhibit_set[12], 1);
	assert_int_equal(v->inhibit_clear[0], 0);
	assert_int_equal(v->pid, getpid());
	assert_string_equal(v->stats_id, "kvm-4242");
	assert_string_equal(ipiv_inhibit_name(&s->inhibit_names, 12), "physical_id_too_big");
	/* the timeline keeps them in order, with increasing times */
	assert_int_equal(v->n_timeline, 4);
	assert_int_equal(v->timeline[0].reason, 0);
	assert_int_equal(v->timeline[1].reason, 5);
	assert_int_equal(v->timeline[1].set, 1);
	assert_int_equal(v->timeline[2].reason, 5);
	assert_int_equal(v->timeline[2].set, 0);
	assert_int_equal(v->timeline[3].reason, 12);
	for (int k = 1; k < 4; k++)
		assert_true(v->timeline[k].ts >= v->timeline[k - 1].ts);
	collector_snapshot_free(s);

	/* more changes than the ring holds: the last IPIV_TIMELINE, oldest first */
	for (int k = 0; k < IPIV_TIMELINE + 3; k++)
		FIRE(ipiv_apicv_inhibit_changed, 8, k % 2 == 0, (k % 2 == 0) ? 0x1101 : 0x1001);
	s = snap();
	v = vm_of(s, vm);
	assert_int_equal(v->n_timeline, IPIV_TIMELINE);
	for (int k = 0; k < IPIV_TIMELINE; k++) {
		assert_int_equal(v->timeline[k].reason, 8);
		/* changes 3 .. 10 of the loop: set on even k of the loop */
		assert_int_equal(v->timeline[k].set, (k + 3) % 2 == 0);
	}
	collector_snapshot_free(s);
}

/* A vCPU thread counts into its own storage; when it exits (sched_process_exit) the cache
 * moves to the maps between two flush counters, and the totals neither double nor drop. */
static void test_thread_exit_moves_cache(void **state)
{
	const uint64_t vm = 0xffff888000020000;
	const uint32_t unicast = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);
	const uint32_t class = icr_classify(unicast, 1, ICR_MODE_X2APIC);
	struct ipiv_counter_key key = {.vm = vm,
				       .vcpu = 0,
				       .kind = IPIV_CNT_SEND,
				       .sub = IPIV_PATH_X2APIC_MSR,
				       .sub2 = class};
	uint64_t *percpu = calloc(libbpf_num_possible_cpus(), sizeof(*percpu)), sum = 0;
	uint64_t begin = skel->bss->flush_begin, end = skel->bss->flush_end;
	int counters = bpf_map__fd(skel->maps.counters);
	struct ipiv_snapshot *s;
	struct ipiv_thread t;

	assert_non_null(percpu);
	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	for (int i = 0; i < 3; i++)
		apic_ipi(unicast, 1);
	FIRE(ipiv_apic_accept_irq, 1, ICR_DM_FIXED << ICR_DELIVERY_SHIFT, 0, 0xfd);
	/* cached, so not in the map yet */
	assert_int_not_equal(bpf_map_lookup_elem(counters, &key, percpu), 0);
	s = snap();
	assert_int_equal(vm_of(s, vm)->counts.sent, 3);
	collector_snapshot_free(s);

	FIRE(ipiv_thread_exit, 0);
	assert_int_equal(skel->bss->flush_begin, begin + 1);
	assert_int_equal(skel->bss->flush_end, end + 1);
	t = my_thread();
	assert_true(t.exited);
	for (int i = 0; i < IPIV_THREAD_CACHE; i++)
		assert_int_equal(t.cache[i].state, IPIV_CACHE_FREE);
	assert_int_equal(bpf_map_lookup_elem(counters, &key, percpu), 0);
	for (int c = 0; c < libbpf_num_possible_cpus(); c++)
		sum += percpu[c];
	assert_int_equal(sum, 3);
	/* a second exit event moves nothing twice */
	FIRE(ipiv_thread_exit, 0);
	assert_int_equal(skel->bss->flush_begin, begin + 1);

	/* what the exiting thread still counts goes straight to the maps */
	apic_ipi(unicast, 1);
	s = snap();
	assert_int_equal(vm_of(s, vm)->counts.sent, 4);
	assert_int_equal(vm_of(s, vm)->counts.received, 1);
	assert_int_equal(vm_of(s, vm)->n_matrix, 1);
	assert_int_equal(vm_of(s, vm)->matrix[0].count, 1);
	collector_snapshot_free(s);
	free(percpu);
	be_nobody();

	/* a move under way (begin ahead of end) makes a snapshot retry, then give up rather
	 * than return counts that may be doubled or missing */
	skel->bss->flush_begin++;
	assert_int_equal(collector_snapshot(col, &s), -EAGAIN);
	assert_null(s);
	skel->bss->flush_end++;
	s = snap();
	assert_int_equal(vm_of(s, vm)->counts.sent, 4);
	collector_snapshot_free(s);
}

/* An entry another program of the thread is filling (one this event interrupted, in a hard
 * IRQ) is neither taken nor reported: the count goes to the next free entry. */
static void test_cache_skips_entry_being_filled(void **state)
{
	const uint64_t vm = 0xffff888000030000;
	const uint32_t unicast = icr(0xfd, ICR_DM_FIXED, 0, ICR_SH_NONE);
	int fd = my_pidfd(), map = bpf_map__fd(skel->maps.threads);
	struct ipiv_snapshot *s;
	struct ipiv_thread t;

	be_vcpu(vm, 0, IPIV_APIC_X2APIC);
	t = my_thread();
	t.cache[0].state = IPIV_CACHE_FILLING;
	t.cache[0].key =
		(struct ipiv_counter_key){.vm = vm,
					  .vcpu = 0,
					  .kind = IPIV_CNT_SEND,
					  .sub = IPIV_PATH_X2APIC_MSR,
					  .sub2 = icr_classify(unicast, 1, ICR_MODE_X2APIC)};
	t.cache[0].n = 1000;
	assert_int_equal(bpf_map_update_elem(map, &fd, &t, BPF_EXIST), 0);
	apic_ipi(unicast, 1);
	apic_ipi(unicast, 1);
	t = my_thread();
	assert_int_equal(t.cache[0].state, IPIV_CACHE_FILLING);
	assert_int_equal(t.cache[0].n, 1000);
	assert_int_equal(t.cache[1].state, IPIV_CACHE_VALID);
	assert_int_equal(t.cache[1].n, 2);
	s = snap();
	assert_int_equal(vm_of(s, vm)->counts.sent, 2);
	collector_snapshot_free(s);
	t.cache[0].state = IPIV_CACHE_FREE;
	assert_int_equal(bpf_map_update_elem(map, &fd, &t, BPF_EXIST), 0);
	be_nobody();
}

/* A full counter map loses counts, but never silently. */
static void test_counter_map_full_is_counted(void **state)
{
	const uint64_t vm = 0xffff88800000a000;
	int fd = bpf_map__fd(skel->maps.counters);
	size_t before = map_size(fd, sizeof(struct ipiv_counter_key));
	uint64_t full = drop_count(IPIV_DROP_COUNTERS_FULL);
	size_t max = bpf_map__max_entries(skel->maps.counters);
	/* the first IPIV_THREAD_CACHE keys stay in the thread's own cache, not the map */
	size_t sends = max - before + IPIV_THREAD_CACHE + 7;

	assert_int_equal(full, 0);
	for (size_t i = 0; i < sends; i++) {
		be_vcpu(vm, (uint32_t)i, IPIV_APIC_X2APIC);
		apic_ipi(0xfd, 1);
	}
	assert_int_equal(map_size(fd, sizeof(struct ipiv_counter_key)), max);
	assert_int_equal(drop_count(IPIV_DROP_COUNTERS_FULL), 7);
}

/* The fake VMs' keys (struct kvm * values no real VM has: the first 16 MiB of the direct
 * map); real VMs running on the host while the test runs are found by discovery too. */
static bool fake_vm(uint64_t vm)
{
	return vm >= 0xffff888000000000ULL && vm < 0xffff888001000000ULL;
}

static size_t fake_vms(const struct ipiv_snapshot *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_vms; i++)
		n += fake_vm(s->vms[i].vm);
	return n;
}

/* Fake VMs have no KVM file, so discovery finds them gone and reclaims them on the
 * second poll; a VM is never reclaimed on its first miss. */
static void test_reclaim_gone_vms(void **state)
{
	const uint64_t vm = 0xffff888000001000, slots_vm = 0xffff88800000d000;
	const uint32_t slot = lat_slot(slots_vm); /* test_latency_vector_slots' VM */
	struct ipiv_snapshot *s;
	int fd = my_pidfd();
	struct ipiv_thread t;
	size_t known;

	be_vcpu(vm, 1, IPIV_APIC_X2APIC);
	apic_ipi(0xfd, 2); /* a count in the thread's cache */
	assert_int_equal(collector_poll(col), 0);
	s = snap();
	assert_non_null(snapshot_find_vm(s, vm));
	/* every fake VM of the earlier tests still in a map or a cache, none alive */
	known = fake_vms(s);
	assert_true(known >= 5);
	for (size_t i = 0; i < s->n_vms; i++)
		if (fake_vm(s->vms[i].vm))
			assert_false(s->vms[i].alive);
	collector_snapshot_free(s);

	assert_int_equal(collector_poll(col), 0);
	s = snap();
	assert_int_equal(fake_vms(s), 0);
	assert_true(s->self.vms_reclaimed >= known);
	assert_int_equal(s->self.polls, 2);
	collector_snapshot_free(s);
	/* the thread of a reclaimed VM loses its storage */
	assert_int_not_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.threads), &fd, &t), 0);
	/* the vCPU state machines and posted wakeups of test_patched_and_derived's VM too */
	assert_int_equal(map_size(bpf_map__fd(skel->maps.vcpu_states), sizeof(uint64_t)), 0);
	assert_int_equal(map_size(bpf_map__fd(skel->maps.targets), sizeof(struct ipiv_target_key)),
			 0);
	/* and the hashed histograms of test_latency_dense_and_hashed's VM without a slot */
	assert_int_equal(
		map_size(bpf_map__fd(skel->maps.lat_hseries), sizeof(struct ipiv_lat_series_key)),
		0);
	/* a reclaimed VM's dense latency slot is unbound, cleared and free (bound long ago:
	 * a slot claimed within the last second is left to the next reclaim) */
	assert_true(slot != 0);
	assert_int_equal(lat_binding(slots_vm), 0);
	assert_int_equal(slot_header(slot).vm, 0);
	assert_int_equal(slot_header(slot).series_used, 0);
	assert_int_equal(slot_header(slot).unmatched[IPIV_UNM_SLOTS_FULL], 0);
	assert_int_equal(slot_targets(slot)->vcpu[6].irq[0].state, 0);
	assert_int_equal(
		map_size(bpf_map__fd(skel->maps.counters), sizeof(struct ipiv_counter_key)) <
			bpf_map__max_entries(skel->maps.counters),
		1);
}

static int can_run(void)
{
	if (geteuid() != 0) {
		printf("SKIP: needs root to load BPF programs\n");
		return 0;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		printf("SKIP: no kernel BTF (/sys/kernel/btf/vmlinux)\n");
		return 0;
	}
	return 1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x2apic_sends_by_class),
		cmocka_unit_test(test_apic_mode_hints),
		cmocka_unit_test(test_exit_context_decides_path),
		cmocka_unit_test(test_pv_kvm_hypercall),
		cmocka_unit_test(test_avic_incomplete_each_cause),
		cmocka_unit_test(test_hyperv_send),
		cmocka_unit_test(test_receives_and_matrix),
		cmocka_unit_test(test_eoi_and_wakeups),
		cmocka_unit_test(test_latency_sequences),
		cmocka_unit_test(test_latency_send_window_in_exit),
		cmocka_unit_test(test_latency_send_window_no_exit),
		cmocka_unit_test(test_latency_vector_slots),
		cmocka_unit_test(test_latency_eoi_virtualized),
		cmocka_unit_test(test_latency_dense_and_hashed),
		cmocka_unit_test(test_latency_dense_buckets_exact),
		cmocka_unit_test(test_latency_exit_fastpath),
		cmocka_unit_test(test_patched_and_derived),
		cmocka_unit_test(test_apicv_inhibits),
		cmocka_unit_test(test_thread_exit_moves_cache),
		cmocka_unit_test(test_cache_skips_entry_being_filled),
		cmocka_unit_test(test_counter_map_full_is_counted),
		cmocka_unit_test(test_reclaim_gone_vms),
	};
	struct collector_opts opts = {
		.test_programs = true, .no_tracepoints = true, .send_accept_latency = true};
	int err, failed;

	if (!can_run())
		return 77;
	err = collector_open(&col, &opts);
	if (err) {
		/* root with BTF: a load failure is a bug, not an environment limit */
		fprintf(stderr, "collector_open: %s\n", strerror(-err));
		return 1;
	}
	skel = collector_skel(col);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	collector_close(col);
	return failed ? 1 : 0;
}
