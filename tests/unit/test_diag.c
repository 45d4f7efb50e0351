/* Unit tests for daemon/lib/diag.c: every rule fires with its severity and evidence, stays quiet
 * below its threshold and minimum sample count, clears when the window goes quiet; threshold
 * flags parse and refuse bad values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "diag.h"
#include "send_cells.h"

#define X2	   ICR_MODE_X2APIC
#define FIXED(vec) ((uint32_t)(vec) | (ICR_DM_FIXED << ICR_DELIVERY_SHIFT))
#define DM(mode)   ((uint32_t)(mode) << ICR_DELIVERY_SHIFT)
#define SH(sh)	   ((uint32_t)(sh) << ICR_SHORTHAND_SHIFT)

static uint32_t C_PHYS, C_LOGICAL, C_ALLBUT, C_BCAST, C_NMI, C_INIT, C_SIPI, C_LOWEST;

static struct diag_thresholds th;

static int setup(void **state)
{
	C_PHYS = icr_classify(FIXED(0xfd), 3, X2);
	C_LOGICAL = icr_classify(FIXED(0xfd) | ICR_DEST_LOGICAL, 0x00010002, X2);
	C_ALLBUT = icr_classify(FIXED(0xfc) | SH(ICR_SH_ALL_BUT_SELF), 0, X2);
	C_BCAST = icr_classify(FIXED(0xfc), ICR_X2APIC_BROADCAST, X2);
	C_NMI = icr_classify(DM(ICR_DM_NMI), 3, X2);
	C_INIT = icr_classify(DM(ICR_DM_INIT), 3, X2);
	C_SIPI = icr_classify(DM(ICR_DM_SIPI) | 0x10, 3, X2);
	C_LOWEST = icr_classify(DM(ICR_DM_LOWEST_PRIO) | 0x30, 3, X2);
	diag_thresholds_default(&th);
	return 0;
}

static void add_send(struct ipiv_vm_stats *vm, uint32_t path, uint32_t class, uint64_t n)
{
	test_send_cell(vm, path, class)->count += n;
	vm->counts.sent_by_path[path] += n;
	vm->counts.sent += n;
	if (icr_class_accel_eligible(class))
		vm->counts.sent_accel_eligible += n;
}

static struct ipiv_vm_stats *vm_new(void)
{
	struct ipiv_vm_stats *vm = calloc(1, sizeof(*vm));

	assert_non_null(vm);
	vm->vm = 0xffff888100000000ull;
	vm->alive = true;
	vm->vcpu_count = 4;
	return vm;
}

static struct diag_result res;

static const struct diag_result *eval(const struct accel_state *host,
				      const struct ipiv_vm_stats *prev,
				      const struct ipiv_vm_stats *cur,
				      const struct diag_latency *lat)
{
	struct diag_vm_input in = {.cur = cur, .prev = prev, .window_seconds = 10, .latency = lat};

	memset(&res, 0, sizeof(res));
	diag_evaluate_vm(host, &in, &th, &res);
	return &res;
}

static const struct diag_finding *find(const struct diag_result *r, enum diag_rule_id rule)
{
	for (size_t i = 0; i < r->n_findings; i++)
		if (r->findings[i].rule == rule)
			return &r->findings[i];
	return NULL;
}

static const char *skipped(const struct diag_result *r, enum diag_rule_id rule)
{
	for (size_t i = 0; i < r->n_skipped; i++)
		if (r->skipped[i].rule == rule)
			return r->skipped[i].needs;
	return NULL;
}

static const struct diag_evidence *ev(const struct diag_finding *f, const char *name)
{
	for (size_t i = 0; i < f->n_evidence; i++)
		if (!strcmp(f->evidence[i].name, name))
			return &f->evidence[i];
	fail_msg("no evidence %s in %s", name, diag_rule_name(f->rule));
	return NULL;
}

static double evn(const struct diag_finding *f, const char *name)
{
	const struct diag_evidence *e = ev(f, name);

	assert_true(e->is_number);
	return e->value;
}

static const struct diag_finding *must_fire(const struct diag_result *r, enum diag_rule_id rule,
					    enum diag_severity sev)
{
	const struct diag_finding *f = find(r, rule);

	if (!f)
		fail_msg("%s did not fire", diag_rule_name(rule));
	assert_int_equal(f->severity, sev);
	assert_true(f->title[0] != '\0');
	assert_true(f->remedy[0] != '\0');
	assert_true(f->n_evidence > 0);
	return f;
}

static void must_not_fire(const struct diag_result *r, enum diag_rule_id rule)
{
	if (find(r, rule))
		fail_msg("%s fired: %s", diag_rule_name(rule), find(r, rule)->title);
}

/* An Intel host with IPIv in effect, or not; facts filled as accel_read would. */
static void host_intel(struct accel_state *h, enum accel_state_value hw,
		       enum accel_state_value enabled)
{
	memset(h, 0, sizeof(*h));
	h->vendor = ACCEL_VENDOR_INTEL;
	snprintf(h->model_name, sizeof(h->model_name), "Intel(R) Xeon(R) Platinum 8480+");
	h->backend = ACCEL_BACKEND_KVM_INTEL;
	h->mechanism = "ipiv";
	h->apicv_hw = h->apicv_enabled = ACCEL_YES;
	h->ipiv_hw = hw;
	h->ipiv_enabled = enabled;
	h->ipiv_effective = hw == ACCEL_YES && enabled == ACCEL_YES ? ACCEL_YES
			    : hw == ACCEL_NO || enabled == ACCEL_NO ? ACCEL_NO
								    : ACCEL_UNKNOWN;
	h->why = enabled == ACCEL_NO ? "kvm_intel.enable_ipiv=N" : "test";
	h->facts[ACCEL_CPU_IPI_VIRT].state = hw;
	h->facts[ACCEL_INTEL_ENABLE_IPIV].state = enabled;
	snprintf(h->facts[ACCEL_INTEL_ENABLE_IPIV].value, 32, "%s",
		 enabled == ACCEL_YES ? "Y" : "N");
	snprintf(h->facts[ACCEL_INTEL_ENABLE_IPIV].source, 256,
		 "/sys/module/kvm_intel/parameters/enable_ipiv");
}

static void host_amd(struct accel_state *h, enum accel_state_value enable_ipiv)
{
	memset(h, 0, sizeof(*h));
	h->vendor = ACCEL_VENDOR_AMD;
	h->backend = ACCEL_BACKEND_KVM_AMD;
	h->mechanism = "x2avic";
	h->apicv_hw = h->apicv_enabled = h->ipiv_hw = ACCEL_YES;
	h->ipiv_enabled = h->ipiv_effective = enable_ipiv;
	h->why = "test";
	h->facts[ACCEL_CPU_AVIC].state = ACCEL_YES;
	h->facts[ACCEL_AMD_AVIC].state = ACCEL_YES;
	h->facts[ACCEL_AMD_ENABLE_IPIV].state = enable_ipiv;
}

/* ---- host rules ---- */

static void test_accel_disabled_in_module(void **state)
{
	struct accel_state h;
	struct diag_result r;
	const struct diag_finding *f;

	host_intel(&h, ACCEL_YES, ACCEL_NO);
	memset(&r, 0, sizeof(r));
	diag_evaluate_host(&h, &th, &r);
	f = must_fire(&r, DIAG_RULE_ACCEL_DISABLED_IN_MODULE, DIAG_WARNING);
	assert_string_equal(ev(f, "kvm_intel.enable_ipiv")->text, "no (N)");
	assert_string_equal(ev(f, "cpu.ipi_virt")->text, "yes");
	assert_non_null(strstr(f->remedy, "enable_ipiv=Y"));
	assert_non_null(strstr(f->title, "kvm_intel.enable_ipiv=N"));
	must_not_fire(&r, DIAG_RULE_ACCEL_UNAVAILABLE);

	/* enabled: quiet */
	host_intel(&h, ACCEL_YES, ACCEL_YES);
	memset(&r, 0, sizeof(r));
	diag_evaluate_host(&h, &th, &r);
	assert_int_equal(r.n_findings, 0);
	assert_int_equal(r.n_skipped, 0);

	/* the module's side unknown: not evaluated, and says what it needs */
	host_intel(&h, ACCEL_YES, ACCEL_UNKNOWN);
	memset(&r, 0, sizeof(r));
	diag_evaluate_host(&h, &th, &r);
	assert_int_equal(r.n_findings, 0);
	assert_non_null(skipped(&r, DIAG_RULE_ACCEL_DISABLED_IN_MODULE));

	/* AMD with enable_ipiv=N */
	host_amd(&h, ACCEL_NO);
	h.why = "kvm_amd.enable_ipiv=N: every IPI exits (AVIC_INCOMPLETE_IPI)";
	memset(&r, 0, sizeof(r));
	diag_evaluate_host(&h, &th, &r);
	f = must_fire(&r, DIAG_RULE_ACCEL_DISABLED_IN_MODULE, DIAG_WARNING);
	assert_non_null(strstr(f->remedy, "kvm_amd"));
	assert_non_null(strstr(f->title, "AVIC"));

	/* no host state at all */
	memset(&r, 0, sizeof(r));
	diag_evaluate_host(NULL, &th, &r);
	assert_int_equal(r.n_findings, 0);
	assert_int_equal(r.n_skipped, 2);
}

static void test_accel_unavailable(void **state)
{
	struct accel_state h;
	struct diag_result r;
	const struct diag_finding *f;

	host_intel(&h, ACCEL_NO, ACCEL_NO);
	memset(&r, 0, sizeof(r));
	diag_evaluate_host(&h, &th, &r);
	f = must_fire(&r, DIAG_RULE_ACCEL_UNAVAILABLE, DIAG_INFO);
	assert_string_equal(ev(f, "model")->text, "Intel(R) Xeon(R) Platinum 8480+");
	must_not_fire(&r, DIAG_RULE_ACCEL_DISABLED_IN_MODULE);

	host_intel(&h, ACCEL_UNKNOWN, ACCEL_YES);
	memset(&r, 0, sizeof(r));
	diag_evaluate_host(&h, &th, &r);
	must_not_fire(&r, DIAG_RULE_ACCEL_UNAVAILABLE);
	assert_non_null(skipped(&r, DIAG_RULE_ACCEL_UNAVAILABLE));

	host_intel(&h, ACCEL_YES, ACCEL_NO);
	h.backend = ACCEL_BACKEND_KVM_PVM;
	h.ipiv_effective = ACCEL_NO;
	memset(&r, 0, sizeof(r));
	diag_evaluate_host(&h, &th, &r);
	f = must_fire(&r, DIAG_RULE_ACCEL_UNAVAILABLE, DIAG_INFO);
	assert_string_equal(ev(f, "backend")->text, "kvm_pvm");
	/* enabling IPIv in a module PVM does not use would be wrong advice */
	must_not_fire(&r, DIAG_RULE_ACCEL_DISABLED_IN_MODULE);
}

/* ---- VM rules ---- */

static void test_apicv_inhibited(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	const struct diag_finding *f;

	/* no bitmap seen: not evaluated */
	assert_non_null(skipped(eval(NULL, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED));

	vm->inhibits_known = true;
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED);
	assert_null(skipped(&res, DIAG_RULE_APICV_INHIBITED));

	vm->inhibits = (1u << 7) | (1u << 8);
	vm->inhibit_set[7] = 1;
	vm->inhibit_set[8] = 3;
	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 99);
	f = must_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED, DIAG_WARNING);
	assert_string_equal(ev(f, "reasons")->text, "nested,irqwin");
	assert_string_equal(ev(f, "inhibits")->text, "0x180");
	assert_int_equal(evn(f, "inhibit_sets_in_window"), 4);
	assert_non_null(strstr(f->remedy, "nested:"));
	assert_non_null(strstr(f->remedy, "irqwin:"));

	/* at min-ipis sent, the VM is suffering: critical */
	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 1);
	must_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED, DIAG_CRITICAL);

	/* host-wide reasons are the host's finding, not the VM's: "disabled" (the module's),
	 * and on a host without APICv hardware every reason (nothing the VM changes
	 * accelerates it; 6.1 leaves "absent" set while disabled) */
	{
		struct accel_state host;

		memset(&host, 0, sizeof(host));
		vm->inhibits = 1;
		host.apicv_hw = ACCEL_NO;
		must_not_fire(eval(&host, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED);
		assert_null(skipped(&res, DIAG_RULE_APICV_INHIBITED));
		host.apicv_hw = ACCEL_YES;
		must_not_fire(eval(&host, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED);
		must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED);
		vm->inhibits = 1 | (1u << 2);
		host.apicv_hw = ACCEL_NO;
		must_not_fire(eval(&host, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED);
		vm->inhibits = 1u << 8;
		must_not_fire(eval(&host, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED);
		/* with APICv hardware the other reasons are the VM's own: a finding about them
		 * alone, a warning while the module keeps APICv off too */
		vm->inhibits = 1 | (1u << 2) | (1u << 8);
		host.apicv_hw = ACCEL_YES;
		f = must_fire(eval(&host, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED, DIAG_WARNING);
		assert_string_equal(ev(f, "reasons")->text, "absent,irqwin");
		assert_string_equal(ev(f, "host_reasons")->text, "disabled");
		assert_string_equal(ev(f, "inhibits")->text, "0x105");
		assert_non_null(strstr(f->remedy, "kernel_irqchip"));
		assert_non_null(strstr(f->remedy, "irqwin:"));
		assert_null(strstr(f->remedy, "disabled:"));
		assert_non_null(strstr(f->title, "(absent,irqwin)"));
		/* unknown hardware: only "disabled" is known to be the host's */
		vm->inhibits = 1u << 8;
		host.apicv_hw = ACCEL_UNKNOWN;
		f = must_fire(eval(&host, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED,
			      DIAG_CRITICAL);
		assert_string_equal(ev(f, "reasons")->text, "irqwin");
	}

	/* cleared inhibit: the finding goes */
	vm->inhibits = 0;
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_APICV_INHIBITED);
	free(vm);
}

static void test_host_wide_inhibits(void **state)
{
	struct accel_state host;
	struct diag_host_inhibits in = {.vms = 3, .reasons = 1 | (1u << 2)};
	const struct diag_finding *f;

	memset(&host, 0, sizeof(host));
	host.apicv_hw = ACCEL_YES;
	assert_int_equal(diag_host_wide_inhibits(&host, 0x105), 1);
	assert_int_equal(diag_host_wide_inhibits(&host, 0x104), 0);
	assert_int_equal(diag_host_wide_inhibits(NULL, 0x105), 1);
	host.apicv_hw = ACCEL_NO;
	assert_int_equal(diag_host_wide_inhibits(&host, 0x105), 0x105);
	assert_int_equal(diag_host_wide_inhibits(&host, 0), 0);

	/* one finding for the host, however many VMs: information without APICv hardware */
	memset(&res, 0, sizeof(res));
	diag_evaluate_host_inhibits(&host, &in, &res);
	assert_int_equal(res.n_findings, 1);
	f = must_fire(&res, DIAG_RULE_APICV_INHIBITED, DIAG_INFO);
	assert_int_equal(evn(f, "vms"), 3);
	assert_string_equal(ev(f, "reasons")->text, "disabled,absent");
	assert_string_equal(ev(f, "inhibits")->text, "0x5");
	assert_string_equal(ev(f, "apicv_hardware")->text, "no");
	assert_non_null(strstr(f->title, "because the host has none"));
	assert_non_null(strstr(f->remedy, "accel_unavailable"));

	/* the module turned it off on hardware that has it: a warning with the module's remedy */
	host.apicv_hw = ACCEL_YES;
	host.vendor = ACCEL_VENDOR_INTEL;
	in.reasons = 1;
	memset(&res, 0, sizeof(res));
	diag_evaluate_host_inhibits(&host, &in, &res);
	f = must_fire(&res, DIAG_RULE_APICV_INHIBITED, DIAG_WARNING);
	assert_non_null(strstr(f->remedy, "kvm_intel enable_apicv=Y"));
	host.vendor = ACCEL_VENDOR_AMD;
	memset(&res, 0, sizeof(res));
	diag_evaluate_host_inhibits(&host, &in, &res);
	f = must_fire(&res, DIAG_RULE_APICV_INHIBITED, DIAG_WARNING);
	assert_non_null(strstr(f->remedy, "kvm_amd avic=1"));
	memset(&res, 0, sizeof(res));
	diag_evaluate_host_inhibits(NULL, &in, &res);
	must_fire(&res, DIAG_RULE_APICV_INHIBITED, DIAG_WARNING);

	/* no VM with a host-wide reason: nothing */
	in.vms = 0;
	memset(&res, 0, sizeof(res));
	diag_evaluate_host_inhibits(&host, &in, &res);
	assert_int_equal(res.n_findings, 0);
	diag_evaluate_host_inhibits(&host, NULL, &res);
	assert_int_equal(res.n_findings, 0);
}

static void test_logical_dest_mode(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	const struct diag_finding *f;

	/* 20 of 99: share is there, samples are not */
	add_send(vm, IPIV_PATH_APIC_WRITE, C_LOGICAL, 20);
	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 79);
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_LOGICAL_DEST_MODE);

	/* 20 of 100: exactly at both thresholds */
	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 1);
	f = must_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_LOGICAL_DEST_MODE, DIAG_WARNING);
	assert_int_equal(evn(f, "logical"), 20);
	assert_int_equal(evn(f, "sent"), 100);
	assert_float_equal(evn(f, "logical_share"), 0.2, 1e-9);
	assert_float_equal(evn(f, "logical_per_second"), 2.0, 1e-9);
	assert_non_null(strstr(f->remedy, "x2apic_phys"));
	assert_non_null(strstr(f->remedy, "intremap=off"));
	/* no APIC-write exits seen on this kernel: no trap evidence */
	for (size_t i = 0; i < f->n_evidence; i++)
		assert_null(strstr(f->evidence[i].name, "icr_traps_"));
	/* with it, the exact unvirtualized writes by reason are part of the evidence */
	vm->counts.icr_write_traps[IPIV_TRAP_LOGICAL] = 20;
	vm->counts.icr_write_traps[IPIV_TRAP_DELIVERY_MODE] = 2;
	f = must_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_LOGICAL_DEST_MODE, DIAG_WARNING);
	assert_int_equal(evn(f, "icr_traps_logical"), 20);
	assert_int_equal(evn(f, "icr_traps_delivery_mode"), 2);

	/* 20 of 101: below the share */
	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 1);
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_LOGICAL_DEST_MODE);
	free(vm);
}

static void test_shorthand_broadcast(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	const struct diag_finding *f;

	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 80);
	add_send(vm, IPIV_PATH_APIC_WRITE, C_ALLBUT, 10);
	add_send(vm, IPIV_PATH_APIC_WRITE, C_BCAST, 9);
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_SHORTHAND_BROADCAST); /* 99 sent */

	add_send(vm, IPIV_PATH_APIC_WRITE, C_BCAST, 1);
	f = must_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_SHORTHAND_BROADCAST, DIAG_WARNING);
	assert_int_equal(evn(f, "all_but_self"), 10);
	assert_int_equal(evn(f, "broadcast"), 10);
	assert_float_equal(evn(f, "shorthand_broadcast_share"), 0.2, 1e-9);
	assert_non_null(strstr(f->remedy, "kvm-pv-ipi"));
	/* shorthand and broadcast are not counted as logical mode */
	must_not_fire(&res, DIAG_RULE_LOGICAL_DEST_MODE);

	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 50);
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_SHORTHAND_BROADCAST);
	free(vm);
}

static void test_targets_halted(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	struct diag_latency lat = {0};
	const struct diag_finding *f;

	vm->counts.received = 199;
	vm->counts.wakeups = 150;
	vm->counts.wakeups_halted = 120;
	vm->counts.halt_ns = 150 * 40000ull;
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_TARGETS_HALTED);

	vm->counts.received = 200;
	lat.halt_ns = (struct diag_figure){true, 38000, 500};
	lat.wakeup_ns = (struct diag_figure){true, 9000, 99}; /* too few: not shown */
	f = must_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_TARGETS_HALTED, DIAG_WARNING);
	assert_int_equal(evn(f, "received"), 200);
	assert_int_equal(evn(f, "wakeups_halted"), 120);
	assert_int_equal(evn(f, "wakeups_polled"), 30);
	assert_float_equal(evn(f, "halted_wakeups_per_received"), 0.6, 1e-9);
	assert_float_equal(evn(f, "mean_halt_us"), 40.0, 1e-9);
	assert_float_equal(evn(f, "median_halt_us"), 38.0, 1e-9);
	for (size_t i = 0; i < f->n_evidence; i++)
		assert_string_not_equal(f->evidence[i].name, "median_wakeup_us");
	assert_non_null(strstr(f->remedy, "halt_poll_ns"));
	assert_non_null(strstr(f->remedy, "haltpoll"));

	vm->counts.wakeups_halted = 99; /* 0.495 per interrupt */
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_TARGETS_HALTED);
	free(vm);
}

static void test_targets_preempted(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	struct diag_latency lat = {0};
	const struct diag_finding *f;

	assert_non_null(skipped(eval(NULL, NULL, vm, NULL), DIAG_RULE_TARGETS_PREEMPTED));
	assert_non_null(skipped(eval(NULL, NULL, vm, &lat), DIAG_RULE_TARGETS_PREEMPTED));

	lat.preempted_share = (struct diag_figure){true, 0.1, 99};
	must_not_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_TARGETS_PREEMPTED);
	assert_null(skipped(&res, DIAG_RULE_TARGETS_PREEMPTED));

	lat.preempted_share.samples = 100;
	lat.preempted_delay_ns = (struct diag_figure){true, 250000, 100};
	f = must_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_TARGETS_PREEMPTED, DIAG_WARNING);
	assert_float_equal(evn(f, "preempted_share"), 0.1, 1e-9);
	assert_float_equal(evn(f, "median_preempted_delay_us"), 250.0, 1e-9);
	assert_non_null(strstr(f->remedy, "overcommit"));

	lat.preempted_share.value = 0.3;
	must_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_TARGETS_PREEMPTED, DIAG_CRITICAL);

	lat.preempted_share.value = 0.09;
	must_not_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_TARGETS_PREEMPTED);
	free(vm);
}

/* Without latency's preempted share, the vCPU state tracepoints of kernel-patches/ give
 * the share of vCPU time preempted: 4 vCPUs x 10 s = 40 vCPU-seconds in the window. */
static void test_targets_preempted_from_vcpu_states(void **state)
{
	struct ipiv_vm_stats *prev = vm_new(), *vm = vm_new();
	const struct diag_finding *f;

	prev->counts.pi_descriptor_updates[IPIV_PI_LOAD] = 100;
	prev->counts.state_ns[IPIV_VSTATE_PREEMPTED] = 50000000000ull; /* before the window */
	*vm = *prev;
	/* the counters moved in the window, but no update: tracking is not live */
	assert_non_null(skipped(eval(NULL, prev, vm, NULL), DIAG_RULE_TARGETS_PREEMPTED));

	vm->counts.pi_descriptor_updates[IPIV_PI_PREEMPT] = 30;
	vm->counts.pi_descriptor_updates[IPIV_PI_LOAD] = 130;
	vm->counts.state_ns[IPIV_VSTATE_PREEMPTED] += 4000000000ull; /* 4 s of 40: 10 % */
	vm->counts.state_ns[IPIV_VSTATE_BLOCKED] = 20000000000ull;
	f = must_fire(eval(NULL, prev, vm, NULL), DIAG_RULE_TARGETS_PREEMPTED, DIAG_WARNING);
	assert_float_equal(evn(f, "preempted_time_share"), 0.1, 1e-9);
	assert_float_equal(evn(f, "preempted_seconds"), 4.0, 1e-9);
	assert_float_equal(evn(f, "vcpu_seconds"), 40.0, 1e-9);
	assert_float_equal(evn(f, "blocked_seconds"), 20.0, 1e-9);
	assert_non_null(strstr(f->remedy, "overcommit"));

	vm->counts.state_ns[IPIV_VSTATE_PREEMPTED] =
		prev->counts.state_ns[IPIV_VSTATE_PREEMPTED] + 12000000000ull; /* 30 % */
	must_fire(eval(NULL, prev, vm, NULL), DIAG_RULE_TARGETS_PREEMPTED, DIAG_CRITICAL);

	/* AMD: IsRunning changes make tracking live as well; 3.9 s of 40 is below 10 % */
	*vm = *prev;
	vm->counts.avic_running_cleared = 7;
	vm->counts.state_ns[IPIV_VSTATE_PREEMPTED] += 3900000000ull;
	must_not_fire(eval(NULL, prev, vm, NULL), DIAG_RULE_TARGETS_PREEMPTED);
	assert_null(skipped(&res, DIAG_RULE_TARGETS_PREEMPTED));
	free(prev);
	free(vm);
}

static void test_avic_incomplete(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	struct accel_state h;
	const struct diag_finding *f;

	add_send(vm, IPIV_PATH_AVIC, C_PHYS, 99);
	vm->counts.avic_incomplete[IPIV_AVIC_TARGET_NOT_RUNNING] = 90;
	vm->counts.avic_incomplete[IPIV_AVIC_INVALID_TARGET] = 9;
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_AVIC_INCOMPLETE);

	add_send(vm, IPIV_PATH_AVIC, C_PHYS, 1);
	vm->counts.avic_incomplete[IPIV_AVIC_INVALID_TARGET] = 10;
	host_amd(&h, ACCEL_NO);
	f = must_fire(eval(&h, NULL, vm, NULL), DIAG_RULE_AVIC_INCOMPLETE, DIAG_WARNING);
	assert_int_equal(evn(f, "target_not_running"), 90);
	assert_int_equal(evn(f, "invalid_target"), 10);
	assert_int_equal(evn(f, "avic_incomplete"), 100);
	assert_non_null(strstr(f->title, "target_not_running"));
	assert_non_null(strstr(f->remedy, "enable_ipiv=N"));
	assert_non_null(strstr(f->remedy, "halt-polling"));

	/* a host that lets AVIC send: the enable_ipiv hint is not given */
	host_amd(&h, ACCEL_YES);
	f = must_fire(eval(&h, NULL, vm, NULL), DIAG_RULE_AVIC_INCOMPLETE, DIAG_WARNING);
	assert_null(strstr(f->remedy, "enable_ipiv"));

	/* a small share of many sends is not reported */
	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 1000);
	must_not_fire(eval(&h, NULL, vm, NULL), DIAG_RULE_AVIC_INCOMPLETE);
	free(vm);
}

static void test_fallback_slower_than_fastpath(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	struct diag_latency lat = {0};
	const struct diag_finding *f;

	add_send(vm, IPIV_PATH_APIC_WRITE, C_LOGICAL, 99);
	assert_non_null(
		skipped(eval(NULL, NULL, vm, NULL), DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH));
	lat.exit_ns[IPIV_PATH_APIC_WRITE] = (struct diag_figure){true, 2500, 400};
	assert_non_null(
		skipped(eval(NULL, NULL, vm, &lat), DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH));

	lat.exit_ns[IPIV_PATH_X2APIC_MSR] = (struct diag_figure){true, 1500, 100};
	must_not_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH);

	add_send(vm, IPIV_PATH_APIC_WRITE, C_LOGICAL, 1);
	f = must_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH,
		      DIAG_WARNING);
	assert_float_equal(evn(f, "apic_write_exit_ns"), 2500, 1e-9);
	assert_float_equal(evn(f, "x2apic_msr_exit_ns"), 1500, 1e-9);
	assert_float_equal(evn(f, "slowdown"), 2500.0 / 1500, 1e-9);
	assert_int_equal(evn(f, "apic_write_ipis"), 100);
	assert_non_null(strstr(f->remedy, "enable_ipiv=N"));

	/* too few fastpath observations */
	lat.exit_ns[IPIV_PATH_X2APIC_MSR].samples = 99;
	must_not_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH);

	/* within the allowed slowdown */
	lat.exit_ns[IPIV_PATH_X2APIC_MSR] = (struct diag_figure){true, 2300, 100};
	must_not_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH);

	/* the fastpath's own exits, where its fexit tells them apart, are the reference: here
	 * cheaper than the slow x2APIC exits mixed in above */
	lat.exit_fastpath_ns = (struct diag_figure){true, 1000, 100};
	f = must_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH,
		      DIAG_WARNING);
	assert_float_equal(evn(f, "x2apic_msr_fastpath_exit_ns"), 1000, 1e-9);
	assert_float_equal(evn(f, "slowdown"), 2.5, 1e-9);
	assert_non_null(strstr(f->title, "fastpath's 1000 ns"));
	/* too few of them: every x2APIC exit again */
	lat.exit_fastpath_ns.samples = 99;
	must_not_fire(eval(NULL, NULL, vm, &lat), DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH);
	free(vm);
}

static void test_special_delivery(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	const struct diag_finding *f;

	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 200);
	add_send(vm, IPIV_PATH_APIC_WRITE, C_INIT, 6);
	add_send(vm, IPIV_PATH_APIC_WRITE, C_SIPI, 13);
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_SPECIAL_DELIVERY); /* 19 */

	/* bring-up alone is worth knowing, no more */
	add_send(vm, IPIV_PATH_APIC_WRITE, C_SIPI, 1);
	f = must_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_SPECIAL_DELIVERY, DIAG_INFO);
	assert_int_equal(evn(f, "init"), 6);
	assert_int_equal(evn(f, "sipi"), 14);
	assert_non_null(strstr(f->remedy, "hotplug"));

	add_send(vm, IPIV_PATH_APIC_WRITE, C_NMI, 30);
	add_send(vm, IPIV_PATH_APIC_WRITE, C_LOWEST, 5);
	f = must_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_SPECIAL_DELIVERY, DIAG_WARNING);
	assert_int_equal(evn(f, "nmi"), 30);
	assert_int_equal(evn(f, "lowest_prio"), 5);
	assert_float_equal(evn(f, "special_per_second"), 5.5, 1e-9);
	assert_non_null(strstr(f->remedy, "nmi_watchdog=0"));

	/* a small share of a busy VM */
	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 10000);
	must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_SPECIAL_DELIVERY);
	free(vm);
}

static void test_eligible_ipis_exiting(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	struct accel_state h;
	const struct diag_finding *f;

	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 99);
	host_intel(&h, ACCEL_YES, ACCEL_YES);
	must_not_fire(eval(&h, NULL, vm, NULL), DIAG_RULE_ELIGIBLE_IPIS_EXITING);
	assert_non_null(skipped(eval(NULL, NULL, vm, NULL), DIAG_RULE_ELIGIBLE_IPIS_EXITING));

	add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 1);
	f = must_fire(eval(&h, NULL, vm, NULL), DIAG_RULE_ELIGIBLE_IPIS_EXITING, DIAG_WARNING);
	assert_int_equal(evn(f, "eligible_x2apic_msr"), 100);
	assert_string_equal(ev(f, "inhibits_known")->text, "no");

	/* without IPIv these exits are expected */
	host_intel(&h, ACCEL_YES, ACCEL_NO);
	must_not_fire(eval(&h, NULL, vm, NULL), DIAG_RULE_ELIGIBLE_IPIS_EXITING);
	/* on AVIC they are the incomplete-IPI rule's business */
	host_amd(&h, ACCEL_YES);
	must_not_fire(eval(&h, NULL, vm, NULL), DIAG_RULE_ELIGIBLE_IPIS_EXITING);
	/* eligible fallbacks (APIC_WRITE) or PV sends are not this rule */
	host_intel(&h, ACCEL_YES, ACCEL_YES);
	add_send(vm, IPIV_PATH_PV_KVM, C_PHYS, 200);
	must_not_fire(eval(&h, NULL, vm, NULL), DIAG_RULE_ELIGIBLE_IPIS_EXITING);
	free(vm);
}

/* ---- windows ---- */

static void test_idle_vm_has_no_findings(void **state)
{
	struct ipiv_vm_stats *vm = vm_new();
	struct accel_state h;
	struct diag_latency lat = {0};

	host_intel(&h, ACCEL_YES, ACCEL_YES);
	vm->inhibits_known = true;
	for (unsigned p = 0; p < IPIV_PATH_COUNT; p++)
		lat.exit_ns[p] = (struct diag_figure){true, 1000, 0};
	lat.preempted_share = (struct diag_figure){true, 0, 0};
	eval(&h, NULL, vm, &lat);
	assert_int_equal(res.n_findings, 0);
	assert_int_equal(res.n_skipped, 0);
	free(vm);
}

static void test_finding_clears_when_window_goes_quiet(void **state)
{
	struct ipiv_vm_stats *prev = vm_new(), *cur = vm_new();

	/* a burst of logical IPIs before the previous snapshot */
	add_send(prev, IPIV_PATH_APIC_WRITE, C_LOGICAL, 5000);
	add_send(prev, IPIV_PATH_APIC_WRITE, C_NMI, 500);
	prev->counts.received = 5000;
	prev->counts.wakeups_halted = prev->counts.wakeups = 4000;
	*cur = *prev;

	/* since-start counts still show it */
	must_fire(eval(NULL, NULL, cur, NULL), DIAG_RULE_LOGICAL_DEST_MODE, DIAG_WARNING);
	must_fire(&res, DIAG_RULE_SPECIAL_DELIVERY, DIAG_WARNING);
	must_fire(&res, DIAG_RULE_TARGETS_HALTED, DIAG_WARNING);

	/* nothing happened in the window: everything clears */
	eval(NULL, prev, cur, NULL);
	assert_int_equal(res.n_findings, 0);

	/* the window now holds physical IPIs only: still clear */
	add_send(cur, IPIV_PATH_X2APIC_MSR, C_PHYS, 1000);
	cur->counts.received += 1000;
	eval(NULL, prev, cur, NULL);
	assert_int_equal(res.n_findings, 0);

	/* logical again within the window: back */
	add_send(cur, IPIV_PATH_APIC_WRITE, C_LOGICAL, 400);
	const struct diag_finding *f =
		must_fire(eval(NULL, prev, cur, NULL), DIAG_RULE_LOGICAL_DEST_MODE, DIAG_WARNING);
	assert_int_equal(evn(f, "logical"), 400);
	assert_int_equal(evn(f, "sent"), 1400);

	/* a counter that went backwards (VM state reset) counts from zero, not wrapping */
	test_send_cell(prev, IPIV_PATH_X2APIC_MSR, C_PHYS)->count = 1u << 30;
	f = must_fire(eval(NULL, prev, cur, NULL), DIAG_RULE_LOGICAL_DEST_MODE, DIAG_WARNING);
	assert_int_equal(evn(f, "sent"), 1400);
	free(prev);
	free(cur);
}

/* ---- thresholds ---- */

static void test_threshold_defaults_match_table(void **state)
{
	struct diag_thresholds t, t2;

	diag_thresholds_default(&t);
	assert_int_equal(t.min_ipis, 100);
	assert_float_equal(t.logical_share, 0.2, 1e-12);
	assert_float_equal(t.fallback_slowdown, 1.1, 1e-12);
	assert_int_equal(t.min_special, 20);
	/* every field is in the table: setting each to its default from zero gives the same */
	memset(&t2, 0, sizeof(t2));
	for (size_t i = 0; i < diag_n_thresholds; i++) {
		const struct diag_threshold_def *d = &diag_threshold_defs[i];

		assert_int_equal(diag_threshold_set(&t2, d->name, d->def, NULL, 0), 0);
		assert_non_null(d->help);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(d->name, diag_threshold_defs[j].name);
	}
	assert_memory_equal(&t, &t2, sizeof(t));
	assert_int_equal(diag_n_thresholds * 8, sizeof(struct diag_thresholds));
}

static void test_threshold_parse(void **state)
{
	struct diag_thresholds t, before;
	char err[160];

	diag_thresholds_default(&t);
	assert_int_equal(diag_threshold_parse(&t, "--diag.logical-share=0.5", err, sizeof(err)), 0);
	assert_float_equal(t.logical_share, 0.5, 1e-12);
	assert_int_equal(diag_threshold_parse(&t, "diag.min-ipis=5", err, sizeof(err)), 0);
	assert_int_equal(t.min_ipis, 5);
	assert_int_equal(diag_threshold_parse(&t, "min-special=7", err, sizeof(err)), 0);
	assert_int_equal(t.min_special, 7);
	assert_int_equal(diag_threshold_parse(&t, "--diag.fallback-slowdown=1", err, sizeof(err)),
			 0);
	assert_float_equal(t.fallback_slowdown, 1.0, 1e-12);

	/* a changed threshold changes what fires */
	{
		struct ipiv_vm_stats *vm = vm_new();

		add_send(vm, IPIV_PATH_APIC_WRITE, C_LOGICAL, 30);
		add_send(vm, IPIV_PATH_X2APIC_MSR, C_PHYS, 70);
		must_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_LOGICAL_DEST_MODE, DIAG_WARNING);
		th.logical_share = t.logical_share;
		must_not_fire(eval(NULL, NULL, vm, NULL), DIAG_RULE_LOGICAL_DEST_MODE);
		diag_thresholds_default(&th);
		free(vm);
	}

	static const struct {
		const char *arg;
		int rc;
		const char *says;
	} bad[] = {
		{"--diag.logical-share=1.5", -EINVAL, "logical-share"},
		{"--diag.logical-share=0", -EINVAL, "(0, 1]"},
		{"--diag.logical-share=abc", -EINVAL, "not a number"},
		{"--diag.logical-share=0.5x", -EINVAL, "not a number"},
		{"--diag.logical-share=nan", -EINVAL, "not a number"},
		{"--diag.logical-share=", -EINVAL, "empty"},
		{"--diag.min-ipis=0", -EINVAL, "count >= 1"},
		{"--diag.min-ipis=-1", -EINVAL, "count >= 1"},
		{"--diag.min-ipis=1.5", -EINVAL, "count >= 1"},
		{"--diag.min-ipis=99999999999999999999999", -EINVAL, "count >= 1"},
		{"--diag.fallback-slowdown=0.9", -EINVAL, "factor"},
		{"--diag.fallback-slowdown=inf", -EINVAL, "not a number"},
		{"--diag.no-such=1", -ENOENT, "no such threshold"},
		{"--diag.=1", -ENOENT, "no such threshold"},
		{"--diag.logical-share", -EINVAL, "NAME=VALUE"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		before = t;
		err[0] = '\0';
		assert_int_equal(diag_threshold_parse(&t, bad[i].arg, err, sizeof(err)), bad[i].rc);
		if (!strstr(err, bad[i].says))
			fail_msg("%s: error \"%s\" lacks \"%s\"", bad[i].arg, err, bad[i].says);
		assert_null(strchr(err, '\n'));
		assert_memory_equal(&t, &before, sizeof(t));
	}
	assert_int_equal(diag_threshold_parse(&t, NULL, NULL, 0), -EINVAL);
	assert_int_equal(diag_threshold_set(&t, "min-ipis", "x", NULL, 0), -EINVAL);
}

static void test_threshold_usage_lists_all(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	diag_thresholds_usage(f);
	fclose(f);
	for (size_t i = 0; i < diag_n_thresholds; i++) {
		char flag[64];

		snprintf(flag, sizeof(flag), "--diag.%s=", diag_threshold_defs[i].name);
		assert_non_null(strstr(buf, flag));
	}
	assert_non_null(strstr(buf, "(default 0.2)"));
	free(buf);
}

static void test_names(void **state)
{
	for (unsigned i = 0; i < DIAG_RULE_COUNT; i++) {
		const char *n = diag_rule_name(i);

		assert_non_null(n);
		for (const char *p = n; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(n, diag_rule_name(j));
	}
	assert_string_equal(diag_rule_name(DIAG_RULE_COUNT), "invalid");
	assert_string_equal(diag_severity_name(DIAG_CRITICAL), "critical");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accel_disabled_in_module),
		cmocka_unit_test(test_accel_unavailable),
		cmocka_unit_test(test_apicv_inhibited),
		cmocka_unit_test(test_host_wide_inhibits),
		cmocka_unit_test(test_logical_dest_mode),
		cmocka_unit_test(test_shorthand_broadcast),
		cmocka_unit_test(test_targets_halted),
		cmocka_unit_test(test_targets_preempted),
		cmocka_unit_test(test_targets_preempted_from_vcpu_states),
		cmocka_unit_test(test_avic_incomplete),
		cmocka_unit_test(test_fallback_slower_than_fastpath),
		cmocka_unit_test(test_special_delivery),
		cmocka_unit_test(test_eligible_ipis_exiting),
		cmocka_unit_test(test_idle_vm_has_no_findings),
		cmocka_unit_test(test_finding_clears_when_window_goes_quiet),
		cmocka_unit_test(test_threshold_defaults_match_table),
		cmocka_unit_test(test_threshold_parse),
		cmocka_unit_test(test_threshold_usage_lists_all),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
