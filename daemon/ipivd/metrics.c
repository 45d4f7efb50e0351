/* ipivd's metric set: every family under the ipiv_ namespace, written from one collector
 * snapshot. Labels come from closed sets (path, delivery, reason...) plus the VM name. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <asm/kvm.h> /* the *_VECTOR numbers SVM_EXIT_REASONS uses */
#include <asm/svm.h>
#include <asm/vmx.h>

#include "api.h"
#include "counters.h"
#include "metrics.h"
#include "metrics_native.h"
#include "naming.h"
#include "process.h"
#include "sources.h"

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

/* Sends by path and ICR class: the VM-wide cells of IPIV_CNT_SEND (sub2 is the class). */
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
	return 0;
}

/* Exits by reason and inhibit changes (the VM-wide cells of IPIV_CNT_EXIT and INHIBIT), the
 * inhibits set now and APICv by vCPU. */
static int write_exits_and_apicv(struct expo *e, const struct ipiv_snapshot *s,
				 const char *const *names)
{
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
					EXPO_LABEL("reason",
						   ipiv_inhibit_name(&s->inhibit_names, r))};

				EXPO_TRY(expo_gauge(e, l, 2, 1));
			}
	}

	/* One series, not one per state: the vCPUs without APICv/AVIC are ipiv_vm_vcpus minus
	 * these (a vCPU whose state could not be read counts among them; /api/v1 says which),
	 * and a second series would cost every VM one of its 60 (docs/metrics.md). */
	EXPO_TRY(expo_begin(
		e, "ipiv_vm_vcpus_apicv_active", EXPO_GAUGE,
		"vCPUs of the VM on which APICv/AVIC is active (kvm_lapic.apicv_active, read "
		"from each vCPU at every discovery poll); ipiv_vm_vcpus minus this are the "
		"vCPUs without it. Not written while no vCPU's state is known."));
	for (size_t i = 0; i < s->n_vms; i++) {
		const struct ipiv_vm_stats *vm = &s->vms[i];
		uint64_t active = 0;
		bool known = false;
		struct expo_label l[] = {EXPO_LABEL("vm", names[i])};

		for (size_t j = 0; j < vm->n_vcpus; j++) {
			active += vm->vcpus[j].apicv_active == IPIV_APICV_ACTIVE;
			known |= vm->vcpus[j].apicv_active != IPIV_APICV_UNKNOWN;
		}
		if (known)
			EXPO_TRY(expo_gauge(e, l, 1, active));
	}

	EXPO_TRY(expo_begin(e, "ipiv_apicv_inhibit_changes", EXPO_COUNTER,
			    "APICv/AVIC inhibit reasons set or cleared on the VM."));
	for (size_t i = 0; i < s->n_vms; i++)
		for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++) {
			const struct ipiv_vm_stats *vm = &s->vms[i];
			struct expo_label ls[] = {
				EXPO_LABEL("vm", names[i]),
				EXPO_LABEL("reason", ipiv_inhibit_name(&s->inhibit_names, r)),
				EXPO_LABEL("action", "set")};
			struct expo_label lc[] = {
				EXPO_LABEL("vm", names[i]),
				EXPO_LABEL("reason", ipiv_inhibit_name(&s->inhibit_names, r)),
				EXPO_LABEL("action", "clear")};

			if (vm->inhibit_set[r])
				EXPO_TRY(expo_counter(e, ls, 3, vm->inhibit_set[r]));
			if (vm->inhibit_clear[r])
				EXPO_TRY(expo_counter(e, lc, 3, vm->inhibit_clear[r]));
		}
	return 0;
}

/* The vcpu label of a vCPU id: "none" for non-vCPU threads. */
static const char *vcpu_label(uint32_t vcpu, char buf[16])
{
	if (vcpu == IPIV_VCPU_NONE)
		return "none";
	snprintf(buf, 16, "%u", vcpu);
	return buf;
}

/* The series of one counter family, after the labels l[0..n_l) (l has room for the kind's). */
static int write_samples(struct expo *e, const struct counter_kind *k,
			 const struct counter_family *f, const struct ipiv_counts *c,
			 struct expo_label *l, size_t n_l)
{
	struct counter_sample sample[COUNTER_MAX_SAMPLES];
	size_t n = counter_samples(k, f, c, sample);

	for (size_t i = 0; i < n; i++) {
		size_t n_labels = n_l;

		if (sample[i].label_value)
			l[n_labels++] =
				(struct expo_label)EXPO_LABEL(k->label, sample[i].label_value);
		EXPO_TRY(sample[i].ns ? expo_counter_f(e, l, n_labels, sample[i].value / 1e9)
				      : expo_counter(e, l, n_labels, sample[i].value));
	}
	return 0;
}

enum scope {
	SCOPE_HOST, /* every VM since ipivd started, exited ones too: no vm label */
	SCOPE_VM,
	SCOPE_VCPU, /* --collector.per-vcpu */
};

/* The families of the counter table (include/ipiv_counters.h) in one scope. */
static int write_counters(struct expo *e, const struct ipiv_snapshot *s, const char *const *names,
			  enum scope scope)
{
	for (unsigned kind = 0; kind < IPIV_CNT_KIND_COUNT; kind++) {
		const struct counter_kind *k = &counter_kinds[kind];
		const struct counter_family *f = scope == SCOPE_HOST ? &k->host
						 : scope == SCOPE_VM ? &k->vm
								     : &k->vcpu;
		struct expo_label l[3];

		if (!f->name)
			continue;
		EXPO_TRY(expo_begin(e, f->name, EXPO_COUNTER, f->help));
		if (scope == SCOPE_HOST) {
			EXPO_TRY(write_samples(e, k, f, &s->host, l, 0));
			continue;
		}
		for (size_t i = 0; i < s->n_vms; i++) {
			const struct ipiv_vm_stats *vm = &s->vms[i];

			l[0] = (struct expo_label)EXPO_LABEL("vm", names[i]);
			if (scope == SCOPE_VM) {
				EXPO_TRY(write_samples(e, k, f, &vm->counts, l, 1));
				continue;
			}
			for (size_t j = 0; j < vm->n_vcpus; j++) {
				char id[16];

				l[1] = (struct expo_label)EXPO_LABEL(
					"vcpu", vcpu_label(vm->vcpus[j].vcpu_id, id));
				EXPO_TRY(write_samples(e, k, f, &vm->vcpus[j].counts, l, 2));
			}
		}
	}
	return 0;
}

int metrics_vm_histograms_parse(const char *name, enum metrics_vm_histograms *out)
{
	if (name && !strcmp(name, "eoi"))
		*out = METRICS_VM_HISTOGRAMS_EOI;
	else if (name && !strcmp(name, "all"))
		*out = METRICS_VM_HISTOGRAMS_ALL;
	else
		return -EINVAL;
	return 0;
}

/* One histogram series with labels l[0..n_l): every bucket of the layout; in the protobuf
 * format, every hist.h bucket too (metrics_native.h). */
static int write_hist(struct expo *e, const struct expo_label *l, size_t n_l,
		      const struct latency_hist *h, enum latency_layout buckets)
{
	const double *le;
	size_t n_le = latency_layout_bounds(buckets, &le);
	uint64_t counts[HIST_BUCKETS];
	struct metrics_native native;
	struct expo_histogram eh = {
		.le = le,
		.counts = counts,
		.n_buckets = n_le,
		.sum = h->sum_ns / 1e9,
	};

	latency_fold(h, buckets, counts);
	if (expo_wants_native(e)) {
		metrics_native_from_hist(h, &native);
		eh.native = &native.native;
	}
	return expo_histogram(e, l, n_l, &eh);
}

/* all less part, bucket by bucket (part is a subset of all's observations). */
static void hist_less(struct latency_hist *out, const struct latency_hist *all,
		      const struct latency_hist *part)
{
	*out = *all;
	if (!part)
		return;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		out->buckets[b] -=
			part->buckets[b] < all->buckets[b] ? part->buckets[b] : all->buckets[b];
	out->count -= part->count < all->count ? part->count : all->count;
	out->sum_ns -= part->sum_ns < all->sum_ns ? part->sum_ns : all->sum_ns;
}

/* Whether a fexit on KVM's WRMSR exit fastpath attached, so that an x2APIC MSR exit it did
 * not report was the slow path's. */
static bool fastpath_visible(const struct ipiv_self_stats *self)
{
	return ipiv_quantity_attached(self->probes, self->n_probes, "x2apic_fastpath");
}

/*
 * The sender's exit cost of every VM, exited ones too, by path and by whether KVM's exit
 * fastpath sent the IPI: "true", "false" (the slow path, and every path but x2apic_msr, which
 * have no fastpath), or "unknown" for x2apic_msr exits on a host where no fexit on the
 * fastpath attached. Host-wide, with no vm label: per VM it would cost the series budget
 * (docs/metrics.md); the JSON API has it per VM.
 */
static int write_host_latency(struct expo *e, const struct ipiv_snapshot *s,
			      enum latency_layout buckets)
{
	bool visible = fastpath_visible(&s->self);

	EXPO_TRY(expo_begin(
		e, "ipiv_host_ipi_sender_exit_seconds", EXPO_HISTOGRAM,
		"Every VM's exits that sent an IPI, kvm_exit to kvm_entry, by path and by "
		"whether KVM's exit fastpath sent it (fastpath=\"unknown\": no fexit on the "
		"fastpath here)."));
	for (uint16_t path = 0; path < IPIV_PATH_COUNT; path++) {
		const struct latency_hist *all = host_latency(s, IPIV_LAT_EXIT, path);
		const struct latency_hist *fast = host_latency(s, IPIV_LAT_EXIT_FASTPATH, path);
		struct latency_hist slow;
		struct expo_label l[] = {EXPO_LABEL("path", ipiv_path_name(path)),
					 EXPO_LABEL("fastpath", "true")};

		if (!all)
			continue;
		if (fast)
			EXPO_TRY(write_hist(e, l, 2, fast, buckets));
		hist_less(&slow, all, fast);
		if (!slow.count)
			continue;
		l[1].value =
			path == IPIV_PATH_X2APIC_MSR && !visible && !fast ? "unknown" : "false";
		EXPO_TRY(write_hist(e, l, 2, &slow, buckets));
	}
	return 0;
}

/* One histogram family per latency kind, VM-wide (merged over vCPUs), one series per sub,
 * with every bucket of the layout; in the protobuf format, native buckets as well. Without
 * all_families only send_to_eoi: the series budget (docs/metrics.md) holds in every format. */
static int write_latency(struct expo *e, const struct ipiv_snapshot *s, const char *const *names,
			 enum latency_layout buckets, bool all_families)
{
	static const struct {
		uint16_t kind;
		const char *name, *help;
	} fam[] = {
		{IPIV_LAT_SEND_ACCEPT, "ipiv_ipi_send_to_accept_seconds",
		 "From the sender's ICR write (kvm_apic_ipi) to each target's accept: KVM's "
		 "delivery work."},
		{IPIV_LAT_ACCEPT_RUN, "ipiv_ipi_accept_to_running_seconds",
		 "From an accepted IPI (timed from its ICR write; a posted one from its accept) "
		 "to its target running again: woken from halt (target=\"halted\") or "
		 "re-entering the guest (target=\"running\")."},
		{IPIV_LAT_SEND_EOI, "ipiv_ipi_send_to_eoi_seconds",
		 "From the ICR write to the target's EOI of that vector: the host-side round "
		 "trip, where EOIs trap."},
		{IPIV_LAT_EXIT, "ipiv_ipi_sender_exit_seconds",
		 "The sender's VM exit that sent an IPI, kvm_exit to kvm_entry, by path."},
		{IPIV_LAT_HALT, "ipiv_vcpu_halt_duration_seconds",
		 "How long vCPUs stayed in halt (kvm_vcpu_wakeup)."},
	};
	for (unsigned f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		if (!all_families && fam[f].kind != IPIV_LAT_SEND_EOI)
			continue;
		EXPO_TRY(expo_begin(e, fam[f].name, EXPO_HISTOGRAM, fam[f].help));
		for (size_t i = 0; i < s->n_vms; i++) {
			const struct ipiv_vm_stats *vm = &s->vms[i];

			for (size_t j = 0; j < vm->n_lat; j++) {
				struct latency_hist h;
				const char *label;
				const char *value;

				/* vm->lat is sorted by (kind, sub, vcpu): take each sub once */
				if (vm->lat[j].kind != fam[f].kind ||
				    (j && vm->lat[j - 1].kind == vm->lat[j].kind &&
				     vm->lat[j - 1].sub == vm->lat[j].sub))
					continue;
				vm_latency(vm, vm->lat[j].kind, vm->lat[j].sub, &h);
				value = ipiv_lat_sub_label(vm->lat[j].kind, vm->lat[j].sub, &label);
				struct expo_label l[] = {EXPO_LABEL("vm", names[i]),
							 EXPO_LABEL(label, value)};

				EXPO_TRY(write_hist(e, l, 2, &h, buckets));
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

static int write_vms(struct expo *e, const struct ipiv_snapshot *s, const char *const *names,
		     uint64_t id_key)
{
	EXPO_TRY(expo_begin(
		e, "ipiv_vm", EXPO_INFO,
		"A VM ipivd watches, by name: its id in ipivd's API, its VMM, and the "
		"UUID its VMM was given (for joins with libvirt, OpenStack, KubeVirt)."));
	for (size_t i = 0; i < s->n_vms; i++) {
		char id[17];
		/* the UUID, validated by naming, only when there is one: "" would join VMs
		 * without one to each other */
		struct expo_label l[] = {EXPO_LABEL("vm", names[i]), EXPO_LABEL("vm_id", id),
					 EXPO_LABEL("vmm", vm_vmm_name(s->vms[i].vmm)),
					 EXPO_LABEL("uuid", s->vms[i].uuid)};

		api_vm_id(s->vms[i].vm, id_key, id);
		EXPO_TRY(expo_info(e, l, s->vms[i].uuid[0] ? 4 : 3));
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

static int write_matrix(struct expo *e, const struct ipiv_snapshot *s, const char *const *names)
{
	EXPO_TRY(
		expo_begin(e, "ipiv_ipi_matrix", EXPO_COUNTER,
			   "Interrupts accepted, by sending vCPU (\"none\": not a vCPU thread) and "
			   "target vCPU."));
	for (size_t i = 0; i < s->n_vms; i++)
		for (size_t j = 0; j < s->vms[i].n_matrix; j++) {
			const struct ipiv_matrix_cell *m = &s->vms[i].matrix[j];
			char src[16], dst[16];
			struct expo_label l[] = {EXPO_LABEL("vm", names[i]),
						 EXPO_LABEL("src", vcpu_label(m->src_vcpu, src)),
						 EXPO_LABEL("dst", dst)};

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

int metrics_write(struct expo *e, const struct ipiv_snapshot *snap, const char *const *names,
		  const struct metrics_opts *opts, double scrape_seconds)
{
	EXPO_TRY(write_counters(e, snap, names, SCOPE_HOST));
	EXPO_TRY(write_host_latency(e, snap, opts->buckets));
	EXPO_TRY(write_vms(e, snap, names, opts->id_key));
	EXPO_TRY(write_sends(e, snap, names));
	EXPO_TRY(write_counters(e, snap, names, SCOPE_VM));
	EXPO_TRY(write_exits_and_apicv(e, snap, names));
	EXPO_TRY(write_latency(e, snap, names, opts->buckets,
			       opts->per_vcpu || opts->vm_histograms == METRICS_VM_HISTOGRAMS_ALL));
	if (opts->per_vcpu) {
		EXPO_TRY(write_counters(e, snap, names, SCOPE_VCPU));
		EXPO_TRY(write_matrix(e, snap, names));
	}
	EXPO_TRY(write_self(e, snap, opts, scrape_seconds));
	return process_metrics_write(e); /* nothing unless ipivd enabled it */
}
