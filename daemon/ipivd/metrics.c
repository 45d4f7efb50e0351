/* ipivd's metric set: every family under the ipiv_ namespace, written from one collector
 * snapshot. Labels come from closed sets (path, delivery, reason...) plus the VM name. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <asm/kvm.h> /* the *_VECTOR numbers SVM_EXIT_REASONS uses */
#include <asm/svm.h>
#include <asm/vmx.h>

#include "metrics.h"

static const char *const dest_kind[] = {"unicast", "multicast", "broadcast"};

static const char *class_dest_kind(uint32_t class)
{
	if (icr_class_is_broadcast(class))
		return dest_kind[2];
	if (icr_class_is_multicast(class))
		return dest_kind[1];
	return dest_kind[0];
}

/*
 * Exit reason names: the kernel's own tables, the ones kvm_stat and perf print. Labels are
 * their lower-case form, "DE excp" becoming "de_excp". A reason listed twice keeps its first
 * name (SVM_EXIT_ERR is -1, the 0xffffffff a truncated VMEXIT_INVALID leaves).
 */
struct exit_name {
	uint32_t reason;
	const char *name;
};

static const struct exit_name vmx_exits[] = {VMX_EXIT_REASONS};
static const struct exit_name svm_exits[] = {SVM_EXIT_REASONS};

/*
 * Label values ipivd exported before it used those tables, where the kernel's name differs
 * or is missing: renaming a label value would break users' queries (docs/metrics.md).
 */
static const struct exit_name vmx_kept[] = {
	{85, "msr_write_imm"}, /* EXIT_REASON_MSR_WRITE_IMM: newer than some uapi headers */
};

static const struct exit_name svm_kept[] = {
	{SVM_EXIT_INTR, "intr"},       /* the kernel's: "interrupt" */
	{SVM_EXIT_IOIO, "ioio"},       /* the kernel's: "io" */
	{SVM_EXIT_VMMCALL, "vmmcall"}, /* the kernel's: "hypercall" */
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *exit_name_find(const struct exit_name *t, size_t n, uint32_t reason)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].reason == reason)
			return t[i].name;
	return NULL;
}

/* Prometheus-safe and lower case: letters lowered, digits and '_' kept, anything else '_'. */
static char exit_label_char(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (char)(c - 'A' + 'a');
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
		return c;
	return '_';
}

const char *metrics_exit_reason(uint32_t isa, uint32_t reason, char *buf, size_t len)
{
	const char *name;
	size_t i;

	if (isa == IPIV_ISA_SVM) {
		name = exit_name_find(svm_kept, ARRAY_LEN(svm_kept), reason);
		if (!name)
			name = exit_name_find(svm_exits, ARRAY_LEN(svm_exits), reason);
	} else {
		name = exit_name_find(vmx_kept, ARRAY_LEN(vmx_kept), reason);
		if (!name)
			name = exit_name_find(vmx_exits, ARRAY_LEN(vmx_exits), reason);
	}
	/* a name that does not fit stays a number, not a truncated name two reasons may share */
	if (name && strlen(name) < len) {
		for (i = 0; name[i]; i++)
			buf[i] = exit_label_char(name[i]);
		buf[i] = '\0';
		return buf;
	}
	snprintf(buf, len, "%u", reason);
	return buf;
}

static const char *isa_name(uint32_t isa)
{
	return isa == IPIV_ISA_SVM ? "svm" : isa == IPIV_ISA_VMX ? "vmx" : "unknown";
}

static int write_sends(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	EXPO_TRY(expo_begin(
		e, "ipiv_ipis_sent", EXPO_COUNTER,
		"IPIs guests asked KVM to send, by path (how the ICR write reached KVM) and "
		"ICR class. Accelerated IPIs to running targets leave no trace and are "
		"not included."));
	for (size_t i = 0; i < s->n_vms; i++) {
		const struct ipiv_vm_stats *vm = &s->vms[i];

		for (size_t j = 0; j < vm->n_send_cells; j++) {
			const struct ipiv_send_cell *cell = &vm->send_cells[j];
			struct expo_label l[] = {
				EXPO_LABEL("vm", names[i]),
				EXPO_LABEL("path", ipiv_path_name(cell->path)),
				EXPO_LABEL("delivery",
					   icr_delivery_names[icr_class_delivery(cell->class)]),
				EXPO_LABEL("dest_mode",
					   icr_dest_mode_names[icr_class_is_logical(cell->class)]),
				EXPO_LABEL("shorthand",
					   icr_shorthand_names[icr_class_shorthand(cell->class)]),
				EXPO_LABEL("dest", class_dest_kind(cell->class)),
			};
			EXPO_TRY(expo_counter(e, l, 6, cell->count));
		}
	}

	EXPO_TRY(expo_begin(e, "ipiv_ipis_sent_accel_eligible", EXPO_COUNTER,
			    "IPIs whose ICR class IPIv/AVIC can deliver without a VM exit (fixed, "
			    "physical, no shorthand, one destination) that still reached KVM."));
	for (size_t i = 0; i < s->n_vms; i++) {
		struct expo_label l[] = {EXPO_LABEL("vm", names[i])};

		EXPO_TRY(expo_counter(e, l, 1, s->vms[i].c.sent_accel_eligible));
	}
	return 0;
}

static int write_receives(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	EXPO_TRY(
		expo_begin(e, "ipiv_interrupts_accepted", EXPO_COUNTER,
			   "Interrupts KVM's local APIC emulation accepted for a vCPU of the VM "
			   "(kvm_apic_accept_irq), by delivery mode: IPIs and device interrupts."));
	for (size_t i = 0; i < s->n_vms; i++)
		for (unsigned dm = 0; dm < ICR_DM_COUNT; dm++) {
			struct expo_label l[] = {
				EXPO_LABEL("vm", names[i]),
				EXPO_LABEL("delivery", icr_accept_delivery_name(dm))};

			if (s->vms[i].c.received_by_mode[dm] || dm == ICR_DM_FIXED)
				EXPO_TRY(expo_counter(e, l, 2, s->vms[i].c.received_by_mode[dm]));
		}

	EXPO_TRY(expo_begin(
		e, "ipiv_eois", EXPO_COUNTER,
		"End-of-interrupt writes KVM saw (trapped EOIs; virtualized EOIs are not "
		"visible)."));
	for (size_t i = 0; i < s->n_vms; i++) {
		struct expo_label l[] = {EXPO_LABEL("vm", names[i])};

		EXPO_TRY(expo_counter(e, l, 1, s->vms[i].c.eois));
	}
	return 0;
}

static int write_halts(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	EXPO_TRY(
		expo_begin(e, "ipiv_vcpu_wakeups", EXPO_COUNTER,
			   "vCPU halts that ended (kvm_vcpu_wakeup); halted=\"true\" when the vCPU "
			   "really blocked, \"false\" when halt-polling caught the event."));
	for (size_t i = 0; i < s->n_vms; i++) {
		const struct ipiv_counts *c = &s->vms[i].c;
		struct expo_label l1[] = {EXPO_LABEL("vm", names[i]), EXPO_LABEL("halted", "true")};
		struct expo_label l0[] = {EXPO_LABEL("vm", names[i]),
					  EXPO_LABEL("halted", "false")};

		EXPO_TRY(expo_counter(e, l1, 2, c->wakeups_waited));
		EXPO_TRY(expo_counter(e, l0, 2, c->wakeups - c->wakeups_waited));
	}

	EXPO_TRY(expo_begin(e, "ipiv_vcpu_halt_seconds", EXPO_COUNTER,
			    "Time vCPUs spent in halt (polling and blocked), summed over vCPUs."));
	for (size_t i = 0; i < s->n_vms; i++) {
		struct expo_label l[] = {EXPO_LABEL("vm", names[i])};

		EXPO_TRY(expo_counter_f(e, l, 1, s->vms[i].c.halt_ns / 1e9));
	}
	return 0;
}

static int write_accel(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	EXPO_TRY(expo_begin(e, "ipiv_avic_incomplete_ipis", EXPO_COUNTER,
			    "AMD AVIC_INCOMPLETE_IPI exits by failure cause."));
	for (size_t i = 0; i < s->n_vms; i++)
		for (unsigned cause = 0; cause < IPIV_AVIC_CAUSE_COUNT; cause++) {
			struct expo_label l[] = {EXPO_LABEL("vm", names[i]),
						 EXPO_LABEL("cause", ipiv_avic_cause_name(cause))};

			if (s->vms[i].c.avic_incomplete[cause])
				EXPO_TRY(expo_counter(e, l, 2, s->vms[i].c.avic_incomplete[cause]));
		}

	EXPO_TRY(expo_begin(e, "ipiv_vm_exits", EXPO_COUNTER,
			    "VM exits by reason, where the kvm_exit tracepoint fires."));
	for (size_t i = 0; i < s->n_vms; i++)
		for (size_t j = 0; j < s->vms[i].n_exits; j++) {
			const struct ipiv_exit_cell *x = &s->vms[i].exits[j];
			char num[METRICS_EXIT_REASON_LEN];
			struct expo_label l[] = {
				EXPO_LABEL("vm", names[i]),
				EXPO_LABEL("isa", isa_name(x->isa)),
				EXPO_LABEL("reason", metrics_exit_reason(x->isa, x->reason, num,
									 sizeof(num))),
			};

			EXPO_TRY(expo_counter(e, l, 3, x->count));
		}

	EXPO_TRY(expo_begin(e, "ipiv_apicv_inhibited", EXPO_GAUGE,
			    "1 for each APICv/AVIC inhibit reason currently set on the VM, as last "
			    "reported by kvm_apicv_inhibit_changed since ipivd started."));
	for (size_t i = 0; i < s->n_vms; i++) {
		const struct ipiv_vm_stats *vm = &s->vms[i];

		if (!vm->inhibits_known)
			continue;
		for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
			if (vm->inhibits & (1ull << r)) {
				struct expo_label l[] = {
					EXPO_LABEL("vm", names[i]),
					EXPO_LABEL("reason", ipiv_inhibit_name(r))};

				EXPO_TRY(expo_gauge(e, l, 2, 1));
			}
	}

	EXPO_TRY(expo_begin(
		e, "ipiv_vm_vcpus_apicv", EXPO_GAUGE,
		"vCPUs of the VM by whether APICv/AVIC is active on them "
		"(kvm_lapic.apicv_active, read from each vCPU at every discovery poll)."));
	for (size_t i = 0; i < s->n_vms; i++) {
		const struct ipiv_vm_stats *vm = &s->vms[i];
		uint64_t on = 0, off = 0;
		struct expo_label l1[] = {EXPO_LABEL("vm", names[i]), EXPO_LABEL("active", "true")};
		struct expo_label l0[] = {EXPO_LABEL("vm", names[i]),
					  EXPO_LABEL("active", "false")};

		for (size_t j = 0; j < vm->n_vcpus; j++) {
			on += vm->vcpus[j].apicv_active == IPIV_APICV_ACTIVE;
			off += vm->vcpus[j].apicv_active == IPIV_APICV_INACTIVE;
		}
		if (on || off) {
			EXPO_TRY(expo_gauge(e, l1, 2, on));
			EXPO_TRY(expo_gauge(e, l0, 2, off));
		}
	}

	EXPO_TRY(expo_begin(e, "ipiv_apicv_inhibit_changes", EXPO_COUNTER,
			    "APICv/AVIC inhibit reasons set or cleared on the VM."));
	for (size_t i = 0; i < s->n_vms; i++)
		for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++) {
			const struct ipiv_vm_stats *vm = &s->vms[i];
			struct expo_label ls[] = {EXPO_LABEL("vm", names[i]),
						  EXPO_LABEL("reason", ipiv_inhibit_name(r)),
						  EXPO_LABEL("action", "set")};
			struct expo_label lc[] = {EXPO_LABEL("vm", names[i]),
						  EXPO_LABEL("reason", ipiv_inhibit_name(r)),
						  EXPO_LABEL("action", "clear")};

			if (vm->inhibit_set[r])
				EXPO_TRY(expo_counter(e, ls, 3, vm->inhibit_set[r]));
			if (vm->inhibit_clear[r])
				EXPO_TRY(expo_counter(e, lc, 3, vm->inhibit_clear[r]));
		}
	return 0;
}

#define COUNTS_FIELD(f) offsetof(struct ipiv_counts, f)

static uint64_t counts_at(const struct ipiv_counts *c, size_t offset, unsigned i)
{
	return ((const uint64_t *)((const char *)c + offset))[i];
}

/* A counter family with a series per VM and label value that counted: the values of the
 * uint64_t array at offset in struct ipiv_counts, from index first to n-1, named by
 * value_name; ns arrays are written in seconds. */
static int write_by_label(struct expo *e, const struct ipiv_snapshot *s, const char *const *names,
			  const char *label, size_t offset, unsigned first, unsigned n,
			  const char *(*value_name)(uint32_t), bool ns)
{
	for (size_t i = 0; i < s->n_vms; i++)
		for (unsigned k = first; k < n; k++) {
			uint64_t v = counts_at(&s->vms[i].c, offset, k);
			struct expo_label l[] = {EXPO_LABEL("vm", names[i]),
						 EXPO_LABEL(label, value_name(k))};

			if (v)
				EXPO_TRY(ns ? expo_counter_f(e, l, 2, v / 1e9)
					    : expo_counter(e, l, 2, v));
		}
	return 0;
}

/* A counter family split in two by label: label=yes counts the field at yes_off, label=no
 * the one at no_off, or (no_off_is_total) what the total there leaves; both series for a
 * VM that counted either. */
static int write_split(struct expo *e, const struct ipiv_snapshot *s, const char *const *names,
		       const char *label, const char *yes, const char *no, size_t yes_off,
		       size_t no_off, bool no_off_is_total)
{
	for (size_t i = 0; i < s->n_vms; i++) {
		uint64_t a = counts_at(&s->vms[i].c, yes_off, 0);
		uint64_t b = counts_at(&s->vms[i].c, no_off, 0);
		struct expo_label ly[] = {EXPO_LABEL("vm", names[i]), EXPO_LABEL(label, yes)};
		struct expo_label ln[] = {EXPO_LABEL("vm", names[i]), EXPO_LABEL(label, no)};

		if (no_off_is_total)
			b -= a;
		if (a || b) {
			EXPO_TRY(expo_counter(e, ly, 2, a));
			EXPO_TRY(expo_counter(e, ln, 2, b));
		}
	}
	return 0;
}

/* Families of the tracepoints kernel-patches/ adds; series only where they counted, so a
 * stock kernel shows none (ipiv_probe_attached says whether each probe is there). */
static int write_patched(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	EXPO_TRY(expo_begin(e, "ipiv_icr_write_traps", EXPO_COUNTER,
			    "ICR writes the CPU did not virtualize (APIC-write VM exit), by why "
			    "(kvm_icr_write_trap, patched kernels)."));
	EXPO_TRY(write_by_label(e, s, names, "reason", COUNTS_FIELD(icr_traps), 0, IPIV_TRAP_COUNT,
				ipiv_icr_trap_name, false));

	EXPO_TRY(expo_begin(e, "ipiv_x2apic_icr_fastpath", EXPO_COUNTER,
			    "Intercepted x2APIC ICR writes by whether the exit fastpath sent them "
			    "(kvm_x2apic_icr_fastpath on patched kernels, else fexit on KVM's "
			    "WRMSR fastpath where the kernel permits fexit)."));
	EXPO_TRY(write_split(e, s, names, "handled", "true", "false",
			     COUNTS_FIELD(fastpath_handled), COUNTS_FIELD(fastpath_missed), false));

	EXPO_TRY(expo_begin(e, "ipiv_posted_interrupt_wakeups", EXPO_COUNTER,
			    "Blocked vCPUs woken by a posted interrupt (kvm_pi_wakeup, patched "
			    "kernels); vector=\"ipi\" when the PIR held a Linux IPI vector, the "
			    "exit-free IPIs to halted targets the host can count."));
	EXPO_TRY(write_split(e, s, names, "vector", "ipi", "other", COUNTS_FIELD(pi_wakeups_ipi),
			     COUNTS_FIELD(pi_wakeups), true));

	EXPO_TRY(expo_begin(
		e, "ipiv_posted_interrupt_descriptor_updates", EXPO_COUNTER,
		"Posted-interrupt descriptor changes by trigger (kvm_pi_desc_update, "
		"patched kernels); trigger=\"migrate\" counts vCPU moves between CPUs."));
	EXPO_TRY(write_by_label(e, s, names, "trigger", COUNTS_FIELD(pi_desc_updates), 0,
				IPIV_PI_TRIGGER_COUNT, ipiv_pi_trigger_name, false));

	EXPO_TRY(expo_begin(e, "ipiv_vcpu_state_seconds", EXPO_COUNTER,
			    "Time vCPUs could not take an accelerated IPI directly, summed over "
			    "vCPUs: blocked or preempted (Intel posted-interrupt descriptor), "
			    "preempted or not_running (AMD AVIC IsRunning); patched kernels."));
	EXPO_TRY(write_by_label(e, s, names, "state", COUNTS_FIELD(state_ns),
				IPIV_VSTATE_RUNNING + 1, IPIV_VSTATE_COUNT, ipiv_vcpu_state_name,
				true));

	EXPO_TRY(expo_begin(e, "ipiv_avic_running_changes", EXPO_COUNTER,
			    "AMD AVIC IsRunning changes of vCPUs' physical APIC ID entries "
			    "(kvm_avic_physid_update, patched kernels)."));
	return write_split(e, s, names, "running", "true", "false", COUNTS_FIELD(avic_running_set),
			   COUNTS_FIELD(avic_running_cleared), false);
}

/* One histogram family per latency kind, VM-wide (merged over vCPUs), one series per sub.
 * Only the buckets from the first to the last non-empty one are written (+Inf always). */
static int write_latency(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	static const struct {
		uint16_t kind;
		const char *name, *help;
	} fam[] = {
		{IPIV_LAT_SEND_ACCEPT, "ipiv_ipi_send_to_accept_seconds",
		 "From the sender's ICR write (kvm_apic_ipi) to each target's accept: KVM's "
		 "delivery work."},
		{IPIV_LAT_ACCEPT_RUN, "ipiv_ipi_accept_to_running_seconds",
		 "From an accepted IPI to its target running again: woken from halt "
		 "(target=\"halted\") or re-entering the guest (target=\"running\")."},
		{IPIV_LAT_SEND_EOI, "ipiv_ipi_send_to_eoi_seconds",
		 "From the ICR write to the target's EOI of that vector: the host-side round "
		 "trip, where EOIs trap."},
		{IPIV_LAT_EXIT, "ipiv_ipi_sender_exit_seconds",
		 "The sender's VM exit that sent an IPI, kvm_exit to kvm_entry, by path."},
		{IPIV_LAT_HALT, "ipiv_vcpu_halt_duration_seconds",
		 "How long vCPUs stayed in halt (kvm_vcpu_wakeup)."},
	};
	const double *le = latency_le_seconds();

	for (unsigned f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		EXPO_TRY(expo_begin(e, fam[f].name, EXPO_HISTOGRAM, fam[f].help));
		for (size_t i = 0; i < s->n_vms; i++) {
			const struct ipiv_vm_stats *vm = &s->vms[i];

			for (size_t j = 0; j < vm->n_lat; j++) {
				struct latency_hist h;
				uint64_t counts[HIST_BUCKETS];
				unsigned first = 0, n = 0;
				const char *label;
				const char *value;

				/* vm->lat is sorted by (kind, sub, vcpu): take each sub once */
				if (vm->lat[j].kind != fam[f].kind ||
				    (j && vm->lat[j - 1].kind == vm->lat[j].kind &&
				     vm->lat[j - 1].sub == vm->lat[j].sub))
					continue;
				vm_latency(vm, vm->lat[j].kind, vm->lat[j].sub, &h);
				value = ipiv_lat_sub_label(vm->lat[j].kind, vm->lat[j].sub, &label);
				if (latency_export_range(&h, &first, &n))
					memcpy(counts, h.buckets + first, n * sizeof(counts[0]));
				counts[n] = h.buckets[HIST_BUCKETS - 1];
				struct expo_histogram eh = {
					.le = le + first,
					.counts = counts,
					.n_buckets = n,
					.sum = h.sum_ns / 1e9,
				};
				struct expo_label l[] = {EXPO_LABEL("vm", names[i]),
							 EXPO_LABEL(label, value)};

				EXPO_TRY(expo_histogram(e, l, 2, &eh));
			}
		}
	}

	EXPO_TRY(expo_begin(
		e, "ipiv_ipi_latency_unmatched", EXPO_COUNTER,
		"Deliveries whose latency could not be measured, by reason: coalesced (a "
		"second IPI of the vector before the EOI), no_eoi_delivery_mode (NMI/INIT/"
		"SIPI), eoi_without_ipi (device interrupts), stale (EOI after 1 s), "
		"target_run_unseen (no kvm_entry/wakeup of the target within 1 s), "
		"target_map_full, vector_slots_full (4 other vectors awaiting EOIs), "
		"eoi_virtualized (APICv/AVIC: the EOI does not exit), delivered_in_guest "
		"(APICv/AVIC posted it to a running target: no exit to time)."));
	for (size_t i = 0; i < s->n_vms; i++)
		for (unsigned r = 0; r < IPIV_UNM_COUNT; r++) {
			struct expo_label l[] = {EXPO_LABEL("vm", names[i]),
						 EXPO_LABEL("reason", ipiv_lat_unmatched_name(r))};

			if (s->vms[i].lat_unmatched[r])
				EXPO_TRY(expo_counter(e, l, 2, s->vms[i].lat_unmatched[r]));
		}
	return 0;
}

static int write_vms(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	EXPO_TRY(expo_begin(e, "ipiv_vm", EXPO_INFO, "A VM ipivd watches, by name."));
	for (size_t i = 0; i < s->n_vms; i++) {
		struct expo_label l[] = {EXPO_LABEL("vm", names[i])};

		EXPO_TRY(expo_info(e, l, 1));
	}
	EXPO_TRY(expo_begin(e, "ipiv_vm_exited", EXPO_GAUGE,
			    "1 for a VM that exited: its series are its final counts, kept for "
			    "--collector.exited-retention."));
	for (size_t i = 0; i < s->n_vms; i++) {
		struct expo_label l[] = {EXPO_LABEL("vm", names[i])};

		if (s->vms[i].exited)
			EXPO_TRY(expo_gauge(e, l, 1, 1));
	}
	EXPO_TRY(expo_begin(e, "ipiv_vm_vcpus", EXPO_GAUGE, "vCPUs of the VM seen so far."));
	for (size_t i = 0; i < s->n_vms; i++) {
		struct expo_label l[] = {EXPO_LABEL("vm", names[i])};

		EXPO_TRY(expo_gauge(e, l, 1, s->vms[i].vcpu_count));
	}
	return 0;
}

static int write_per_vcpu(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	static const struct {
		const char *name, *help;
	} fam[] = {
		{"ipiv_vcpu_ipis_sent", "IPIs the vCPU sent through KVM."},
		{"ipiv_vcpu_interrupts_accepted", "Interrupts accepted for the vCPU."},
		{"ipiv_vcpu_halt_wakeups", "Halts of the vCPU that ended."},
	};

	for (unsigned f = 0; f < 3; f++) {
		EXPO_TRY(expo_begin(e, fam[f].name, EXPO_COUNTER, fam[f].help));
		for (size_t i = 0; i < s->n_vms; i++)
			for (size_t j = 0; j < s->vms[i].n_vcpus; j++) {
				const struct ipiv_vcpu_stats *v = &s->vms[i].vcpus[j];
				char id[16];
				struct expo_label l[] = {EXPO_LABEL("vm", names[i]),
							 EXPO_LABEL("vcpu", id)};
				uint64_t val = f == 0	? v->c.sent_total
					       : f == 1 ? v->c.received_total
							: v->c.wakeups;

				if (v->vcpu_id == IPIV_VCPU_NONE)
					snprintf(id, sizeof(id), "none");
				else
					snprintf(id, sizeof(id), "%u", v->vcpu_id);
				EXPO_TRY(expo_counter(e, l, 2, val));
			}
	}

	EXPO_TRY(
		expo_begin(e, "ipiv_ipi_matrix", EXPO_COUNTER,
			   "Interrupts accepted, by sending vCPU (\"none\": not a vCPU thread) and "
			   "target vCPU."));
	for (size_t i = 0; i < s->n_vms; i++)
		for (size_t j = 0; j < s->vms[i].n_matrix; j++) {
			const struct ipiv_matrix_cell *m = &s->vms[i].matrix[j];
			char src[16], dst[16];
			struct expo_label l[] = {EXPO_LABEL("vm", names[i]), EXPO_LABEL("src", src),
						 EXPO_LABEL("dst", dst)};

			if (m->src_vcpu == IPIV_VCPU_NONE)
				snprintf(src, sizeof(src), "none");
			else
				snprintf(src, sizeof(src), "%u", m->src_vcpu);
			snprintf(dst, sizeof(dst), "%u", m->dst_vcpu);
			EXPO_TRY(expo_counter(e, l, 3, m->count));
		}
	return 0;
}

static int write_self(struct expo *e, const struct ipiv_snapshot *s,
		      const struct metrics_opts *opts, double scrape_seconds)
{
	const struct ipiv_self_stats *self = &s->self;
	bool degraded = false;

	EXPO_TRY(expo_begin(e, "ipiv_build", EXPO_INFO, "ipivd's version."));
	{
		struct expo_label l[] = {
			EXPO_LABEL("version", opts->version ? opts->version : "unknown")};

		EXPO_TRY(expo_info(e, l, 1));
	}

	EXPO_TRY(expo_begin(e, "ipiv_probe_attached", EXPO_GAUGE,
			    "1 if the tracepoint program is attached, 0 if it is missing on this "
			    "kernel or failed to attach."));
	for (size_t i = 0; i < self->n_probes; i++) {
		const struct ipiv_probe *p = &self->probes[i];
		struct expo_label l[] = {EXPO_LABEL("probe", p->name),
					 EXPO_LABEL("optional", p->optional ? "true" : "false")};

		EXPO_TRY(expo_gauge(e, l, 2, p->attached));
		if (!p->attached && !p->optional)
			degraded = true;
	}

	EXPO_TRY(
		expo_begin(e, "ipiv_degraded", EXPO_GAUGE,
			   "1 when a required probe is not attached, so some counts are missing."));
	EXPO_TRY(expo_gauge(e, NULL, 0, degraded));

	EXPO_TRY(expo_begin(e, "ipiv_bpf_program_runs", EXPO_COUNTER,
			    "Times each BPF program ran (needs kernel.bpf_stats_enabled)."));
	for (size_t i = 0; i < self->n_progs; i++) {
		struct expo_label l[] = {EXPO_LABEL("program", self->progs[i].name)};

		EXPO_TRY(expo_counter(e, l, 1, self->progs[i].run_cnt));
	}
	EXPO_TRY(expo_begin(e, "ipiv_bpf_program_run_seconds", EXPO_COUNTER,
			    "Time spent in each BPF program (needs kernel.bpf_stats_enabled)."));
	for (size_t i = 0; i < self->n_progs; i++) {
		struct expo_label l[] = {EXPO_LABEL("program", self->progs[i].name)};

		EXPO_TRY(expo_counter_f(e, l, 1, self->progs[i].run_time_ns / 1e9));
	}
	EXPO_TRY(expo_begin(e, "ipiv_bpf_stats_enabled", EXPO_GAUGE,
			    "1 if BPF run-time statistics are being collected."));
	EXPO_TRY(expo_gauge(e, NULL, 0, self->bpf_stats_enabled));

	EXPO_TRY(
		expo_begin(e, "ipiv_events_dropped", EXPO_COUNTER,
			   "Events not counted, by reason (a full map loses counts; duplicate EOIs "
			   "are filtered on purpose)."));
	for (unsigned r = 0; r < IPIV_DROP_COUNT; r++) {
		struct expo_label l[] = {EXPO_LABEL("reason", ipiv_drop_name(r))};

		EXPO_TRY(expo_counter(e, l, 1, self->drops[r]));
	}

	size_t live = 0;

	for (size_t i = 0; i < s->n_vms; i++)
		live += !s->vms[i].exited;
	EXPO_TRY(expo_begin(e, "ipiv_vms", EXPO_GAUGE, "VMs currently watched (not exited)."));
	EXPO_TRY(expo_gauge(e, NULL, 0, live));
	EXPO_TRY(expo_begin(e, "ipiv_vms_discovered", EXPO_COUNTER,
			    "VMs found by the discovery iterator."));
	EXPO_TRY(expo_counter(e, NULL, 0, self->vms_discovered));
	EXPO_TRY(expo_begin(e, "ipiv_vms_reclaimed", EXPO_COUNTER,
			    "VMs whose state was freed after they exited."));
	EXPO_TRY(expo_counter(e, NULL, 0, self->vms_reclaimed));
	EXPO_TRY(expo_begin(e, "ipiv_discovery_polls", EXPO_COUNTER, "VM discovery passes."));
	EXPO_TRY(expo_counter(e, NULL, 0, self->polls));
	EXPO_TRY(expo_begin(e, "ipiv_scrape_duration_seconds", EXPO_GAUGE,
			    "Time the previous scrape of this endpoint took, whole: reading the "
			    "BPF maps, naming the VMs and rendering."));
	if (opts->have_last_scrape)
		EXPO_TRY(expo_gauge(e, NULL, 0, scrape_seconds));
	EXPO_TRY(expo_begin(e, "ipiv_scrape_bytes", EXPO_GAUGE,
			    "Size of the previous scrape's response body."));
	if (opts->have_last_scrape)
		EXPO_TRY(expo_gauge(e, NULL, 0, (double)opts->last_scrape_bytes));
	return 0;
}

/* Totals over every VM since ipivd started, exited ones too: monotonic, with no vm label. */
static int write_host(struct expo *e, const struct ipiv_snapshot *s)
{
	EXPO_TRY(expo_begin(e, "ipiv_host_ipis_sent", EXPO_COUNTER,
			    "IPIs every VM asked KVM to send since ipivd started, exited VMs "
			    "included, by path."));
	for (uint32_t p = 0; p < IPIV_PATH_COUNT; p++) {
		struct expo_label l[] = {EXPO_LABEL("path", ipiv_path_name(p))};

		EXPO_TRY(expo_counter(e, l, 1, s->host.sent_by_path[p]));
	}
	EXPO_TRY(expo_begin(e, "ipiv_host_interrupts_accepted", EXPO_COUNTER,
			    "Interrupts KVM accepted for every VM's vCPUs since ipivd started, "
			    "exited VMs included."));
	EXPO_TRY(expo_counter(e, NULL, 0, s->host.received_total));
	EXPO_TRY(
		expo_begin(e, "ipiv_host_eois", EXPO_COUNTER,
			   "EOIs KVM saw from every VM since ipivd started, exited VMs included."));
	EXPO_TRY(expo_counter(e, NULL, 0, s->host.eois));
	EXPO_TRY(expo_begin(e, "ipiv_host_vm_exits", EXPO_COUNTER,
			    "VM exits of every VM since ipivd started, exited VMs included "
			    "(where kvm_exit fires)."));
	EXPO_TRY(expo_counter(e, NULL, 0, s->host.exits_total));
	EXPO_TRY(expo_begin(e, "ipiv_host_vcpu_wakeups", EXPO_COUNTER,
			    "Halts that ended, of every VM since ipivd started, exited VMs "
			    "included."));
	EXPO_TRY(expo_counter(e, NULL, 0, s->host.wakeups));
	return 0;
}

int metrics_write(struct expo *e, const struct ipiv_snapshot *snap, const char *const *names,
		  const struct metrics_opts *opts, double scrape_seconds)
{
	EXPO_TRY(write_host(e, snap));
	EXPO_TRY(write_vms(e, snap, names));
	EXPO_TRY(write_sends(e, snap, names));
	EXPO_TRY(write_receives(e, snap, names));
	EXPO_TRY(write_halts(e, snap, names));
	EXPO_TRY(write_accel(e, snap, names));
	EXPO_TRY(write_patched(e, snap, names));
	EXPO_TRY(write_latency(e, snap, names));
	if (opts->per_vcpu)
		EXPO_TRY(write_per_vcpu(e, snap, names));
	return write_self(e, snap, opts, scrape_seconds);
}
