/* Diagnosis rules over a window of one VM's counters (current minus previous snapshot), the
 * host's acceleration state and optional latency figures. Pure: no I/O, no allocation. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static const char *const rule_names[DIAG_RULE_COUNT] = {
	[DIAG_RULE_ACCEL_DISABLED_IN_MODULE] = "accel_disabled_in_module",
	[DIAG_RULE_ACCEL_UNAVAILABLE] = "accel_unavailable",
	[DIAG_RULE_APICV_INHIBITED] = "apicv_inhibited",
	[DIAG_RULE_LOGICAL_DEST_MODE] = "logical_dest_mode",
	[DIAG_RULE_SHORTHAND_BROADCAST] = "shorthand_broadcast",
	[DIAG_RULE_TARGETS_HALTED] = "targets_halted",
	[DIAG_RULE_TARGETS_PREEMPTED] = "targets_preempted",
	[DIAG_RULE_AVIC_INCOMPLETE] = "avic_incomplete",
	[DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH] = "fallback_slower_than_fastpath",
	[DIAG_RULE_SPECIAL_DELIVERY] = "special_delivery",
	[DIAG_RULE_ELIGIBLE_IPIS_EXITING] = "eligible_ipis_exiting",
};

const char *diag_rule_name(enum diag_rule_id rule)
{
	return (unsigned)rule < DIAG_RULE_COUNT ? rule_names[rule] : "invalid";
}

const char *diag_severity_name(enum diag_severity s)
{
	return s == DIAG_CRITICAL ? "critical" : s == DIAG_WARNING ? "warning" : "info";
}

/* ---- thresholds ---- */

#define TH(n, t, field, d, h)                                                                \
	{                                                                                    \
		.name = (n), .type = (t), .offset = offsetof(struct diag_thresholds, field), \
		.def = (d), .help = (h)                                                      \
	}

const struct diag_threshold_def diag_threshold_defs[] = {
	TH("min-ipis", DIAG_TH_COUNT, min_ipis, "100",
	   "IPIs a VM must send in the window before share rules speak"),
	TH("logical-share", DIAG_TH_SHARE, logical_share, "0.2",
	   "share of sent IPIs in logical destination mode that is reported"),
	TH("shorthand-share", DIAG_TH_SHARE, shorthand_share, "0.2",
	   "share of sent IPIs with a shorthand or broadcast destination that is reported"),
	TH("min-received", DIAG_TH_COUNT, min_received, "200",
	   "interrupts a VM must accept in the window before the halted-targets rule speaks"),
	TH("halted-wakeup-ratio", DIAG_TH_SHARE, halted_wakeup_ratio, "0.5",
	   "wakeups from a real halt per accepted interrupt that is reported"),
	TH("min-latency-samples", DIAG_TH_COUNT, min_latency_samples, "100",
	   "observations a latency figure needs before rules use it"),
	TH("preempted-share", DIAG_TH_SHARE, preempted_share, "0.1",
	   "share of IPIs whose target was preempted that is a warning"),
	TH("preempted-share-critical", DIAG_TH_SHARE, preempted_share_critical, "0.3",
	   "share of IPIs whose target was preempted that is critical"),
	TH("min-avic-incomplete", DIAG_TH_COUNT, min_avic_incomplete, "100",
	   "AVIC incomplete-IPI exits in the window before that rule speaks"),
	TH("avic-incomplete-share", DIAG_TH_SHARE, avic_incomplete_share, "0.2",
	   "share of sent IPIs that ended in an AVIC incomplete-IPI exit that is reported"),
	TH("fallback-slowdown", DIAG_TH_FACTOR, fallback_slowdown, "1.1",
	   "APIC-write exit cost over x2APIC MSR fastpath cost that is reported"),
	TH("min-special", DIAG_TH_COUNT, min_special, "20",
	   "NMI/INIT/SIPI/SMI/lowest-priority IPIs in the window before that rule speaks"),
	TH("special-share", DIAG_TH_SHARE, special_share, "0.05",
	   "share of sent IPIs with those delivery modes that is reported"),
	TH("eligible-exiting-share", DIAG_TH_SHARE, eligible_exiting_share, "0.5",
	   "share of sent IPIs that IPIv could deliver yet exited, reported when IPIv is on"),
};

const size_t diag_n_thresholds = sizeof(diag_threshold_defs) / sizeof(diag_threshold_defs[0]);

static int parse_value(const struct diag_threshold_def *d, const char *value, void *field,
		       char *err, size_t errlen)
{
	char *end;

	if (!value || !*value) {
		snprintf(err, errlen, "--diag.%s: empty value", d->name);
		return -EINVAL;
	}
	errno = 0;
	if (d->type == DIAG_TH_COUNT) {
		unsigned long long v;

		if (value[0] == '-' || value[0] == '+') {
			snprintf(err, errlen, "--diag.%s: \"%.32s\" is not a count >= 1", d->name,
				 value);
			return -EINVAL;
		}
		v = strtoull(value, &end, 10);
		if (errno || *end || end == value || v < 1) {
			snprintf(err, errlen, "--diag.%s: \"%.32s\" is not a count >= 1", d->name,
				 value);
			return -EINVAL;
		}
		*(uint64_t *)field = v;
		return 0;
	}
	double v = strtod(value, &end);

	if (errno || *end || end == value || !isfinite(v)) {
		snprintf(err, errlen, "--diag.%s: \"%.32s\" is not a number", d->name, value);
		return -EINVAL;
	}
	if (d->type == DIAG_TH_SHARE && !(v > 0 && v <= 1)) {
		snprintf(err, errlen, "--diag.%s: %.32s is not a share in (0, 1]", d->name, value);
		return -EINVAL;
	}
	if (d->type == DIAG_TH_FACTOR && !(v >= 1 && v <= 1000)) {
		snprintf(err, errlen, "--diag.%s: %.32s is not a factor in [1, 1000]", d->name,
			 value);
		return -EINVAL;
	}
	*(double *)field = v;
	return 0;
}

int diag_threshold_set(struct diag_thresholds *th, const char *name, const char *value, char *err,
		       size_t errlen)
{
	char scratch[8];

	if (!err) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	if (!th || !name) {
		snprintf(err, errlen, "--diag: no threshold given");
		return -EINVAL;
	}
	for (size_t i = 0; i < diag_n_thresholds; i++) {
		const struct diag_threshold_def *d = &diag_threshold_defs[i];

		if (!strcmp(d->name, name))
			return parse_value(d, value, (char *)th + d->offset, err, errlen);
	}
	snprintf(err, errlen, "--diag.%.40s: no such threshold (see --help)", name);
	return -ENOENT;
}

int diag_threshold_parse(struct diag_thresholds *th, const char *arg, char *err, size_t errlen)
{
	char name[64], scratch[8];
	const char *eq;
	size_t len;

	if (!err) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	if (!arg) {
		snprintf(err, errlen, "--diag: no threshold given");
		return -EINVAL;
	}
	if (!strncmp(arg, "--", 2))
		arg += 2;
	if (!strncmp(arg, "diag.", 5))
		arg += 5;
	eq = strchr(arg, '=');
	if (!eq) {
		snprintf(err, errlen, "--diag.%.40s: expected NAME=VALUE", arg);
		return -EINVAL;
	}
	len = (size_t)(eq - arg);
	if (len == 0 || len >= sizeof(name)) {
		snprintf(err, errlen, "--diag.%.40s: no such threshold (see --help)", arg);
		return -ENOENT;
	}
	memcpy(name, arg, len);
	name[len] = '\0';
	return diag_threshold_set(th, name, eq + 1, err, errlen);
}

void diag_thresholds_default(struct diag_thresholds *th)
{
	char err[128];

	memset(th, 0, sizeof(*th));
	for (size_t i = 0; i < diag_n_thresholds; i++)
		diag_threshold_set(th, diag_threshold_defs[i].name, diag_threshold_defs[i].def, err,
				   sizeof(err));
}

void diag_thresholds_usage(FILE *f)
{
	for (size_t i = 0; i < diag_n_thresholds; i++) {
		const struct diag_threshold_def *d = &diag_threshold_defs[i];
		char flag[64];

		snprintf(flag, sizeof(flag), "--diag.%s=%s", d->name,
			 d->type == DIAG_TH_COUNT ? "N" : "X");
		fprintf(f, "  %-34s %s (default %s)\n", flag, d->help, d->def);
	}
}

/* ---- findings ---- */

static struct diag_finding *finding_new(struct diag_result *out, enum diag_rule_id rule,
					enum diag_severity sev, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static struct diag_finding *finding_new(struct diag_result *out, enum diag_rule_id rule,
					enum diag_severity sev, const char *fmt, ...)
{
	struct diag_finding *f = &out->findings[out->n_findings++];
	va_list ap;

	memset(f, 0, sizeof(*f));
	f->rule = rule;
	f->severity = sev;
	va_start(ap, fmt);
	vsnprintf(f->title, sizeof(f->title), fmt, ap);
	va_end(ap);
	return f;
}

static void skip(struct diag_result *out, enum diag_rule_id rule, const char *needs)
{
	out->skipped[out->n_skipped++] = (struct diag_skip){rule, needs};
}

static struct diag_evidence *ev_new(struct diag_finding *f, const char *name)
{
	struct diag_evidence *e;

	if (f->n_evidence >= DIAG_MAX_EVIDENCE)
		return NULL;
	e = &f->evidence[f->n_evidence++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	return e;
}

static void ev_num(struct diag_finding *f, const char *name, double v, const char *fmt)
{
	struct diag_evidence *e = ev_new(f, name);

	if (!e)
		return;
	e->is_number = true;
	e->value = v;
	snprintf(e->text, sizeof(e->text), fmt, v);
}

static void ev_u64(struct diag_finding *f, const char *name, uint64_t v)
{
	struct diag_evidence *e = ev_new(f, name);

	if (!e)
		return;
	e->is_number = true;
	e->value = (double)v;
	snprintf(e->text, sizeof(e->text), "%llu", (unsigned long long)v);
}

static void ev_share(struct diag_finding *f, const char *name, double v)
{
	ev_num(f, name, v, "%.3f");
}

static void ev_str(struct diag_finding *f, const char *name, const char *s)
{
	struct diag_evidence *e = ev_new(f, name);

	if (e)
		snprintf(e->text, sizeof(e->text), "%s", s);
}

/* Appends to the remedy, cutting at the buffer's end. */
static void remedy(struct diag_finding *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void remedy(struct diag_finding *f, const char *fmt, ...)
{
	size_t len = strlen(f->remedy);
	va_list ap;

	if (len + 1 >= sizeof(f->remedy))
		return;
	va_start(ap, fmt);
	vsnprintf(f->remedy + len, sizeof(f->remedy) - len, fmt, ap);
	va_end(ap);
}

/* ---- host rules ---- */

static void host_fact_evidence(struct diag_finding *f, const struct accel_state *h,
			       enum accel_fact_id id)
{
	const struct accel_fact *fact = &h->facts[id];
	char text[48];

	if (fact->value[0])
		snprintf(text, sizeof(text), "%s (%s)", accel_state_name(fact->state), fact->value);
	else
		snprintf(text, sizeof(text), "%s", accel_state_name(fact->state));
	ev_str(f, accel_fact_name(id), text);
}

static void rule_disabled_in_module(const struct accel_state *h, struct diag_result *out)
{
	bool intel = h->vendor == ACCEL_VENDOR_INTEL;
	struct diag_finding *f;

	if (h->backend == ACCEL_BACKEND_KVM_PVM || h->backend == ACCEL_BACKEND_NONE)
		return; /* no hardware-virtualization backend to enable it in */
	if (h->ipiv_hw == ACCEL_UNKNOWN || h->ipiv_enabled == ACCEL_UNKNOWN) {
		skip(out, DIAG_RULE_ACCEL_DISABLED_IN_MODULE,
		     "needs the CPU's IPIv/AVIC capability and the KVM module parameters");
		return;
	}
	if (h->ipiv_hw != ACCEL_YES || h->ipiv_enabled != ACCEL_NO)
		return;
	f = finding_new(out, DIAG_RULE_ACCEL_DISABLED_IN_MODULE, DIAG_WARNING,
			"The CPU supports %s but %s: every IPI exits to KVM",
			intel ? "IPI virtualization (IPIv)" : "AVIC", h->why);
	ev_str(f, "vendor", accel_vendor_name(h->vendor));
	if (intel) {
		host_fact_evidence(f, h, ACCEL_MSR_IPI_VIRT);
		host_fact_evidence(f, h, ACCEL_CPU_IPI_VIRT);
		host_fact_evidence(f, h, ACCEL_INTEL_ENABLE_APICV);
		host_fact_evidence(f, h, ACCEL_INTEL_ENABLE_IPIV);
		if (h->facts[ACCEL_INTEL_ENABLE_IPIV].err == -ENOENT)
			remedy(f, "This kernel's KVM predates IPIv (Linux 5.19); run a newer host "
				  "kernel. ");
		else
			remedy(f,
			       "Enable it: put \"options kvm_intel enable_apicv=Y enable_ipiv=Y\" "
			       "in /etc/modprobe.d/kvm.conf and reload kvm_intel (rmmod kvm_intel "
			       "&& modprobe kvm_intel, with no VM running), or set "
			       "kvm_intel.enable_ipiv=Y on the kernel command line. ");
	} else {
		host_fact_evidence(f, h, ACCEL_CPU_AVIC);
		host_fact_evidence(f, h, ACCEL_CPU_X2AVIC);
		host_fact_evidence(f, h, ACCEL_AMD_AVIC);
		host_fact_evidence(f, h, ACCEL_AMD_ENABLE_IPIV);
		remedy(f,
		       "Enable it: put \"options kvm_amd avic=1 enable_ipiv=1\" in "
		       "/etc/modprobe.d/kvm.conf (enable_ipiv exists from 6.17; KVM keeps it off "
		       "on parts with erratum 1235) and reload kvm_amd with no VM running. ");
	}
	remedy(f, "VMs started before the reload keep the old setting until restarted.");
}

static void rule_unavailable(const struct accel_state *h, struct diag_result *out)
{
	struct diag_finding *f;

	if (h->backend == ACCEL_BACKEND_KVM_PVM) {
		f = finding_new(out, DIAG_RULE_ACCEL_UNAVAILABLE, DIAG_INFO,
				"Guests run on the kvm_pvm backend: no IPI is accelerated");
		ev_str(f, "backend", accel_backend_name(h->backend));
		host_fact_evidence(f, h, ACCEL_MOD_KVM_PVM);
		remedy(f, "PVM emulates the APIC for every IPI. Paravirtual IPIs (KVM_HC_SEND_IPI, "
			  "QEMU -cpu ...,kvm-pv-ipi=on) send to many targets with one exit; "
			  "run latency-critical guests on a host with VMX/SVM where possible.");
		return;
	}
	if (h->ipiv_hw == ACCEL_UNKNOWN) {
		skip(out, DIAG_RULE_ACCEL_UNAVAILABLE,
		     "needs the CPU's IPIv/AVIC capability (cpuinfo vmx flags or MSR 0x492)");
		return;
	}
	if (h->ipiv_hw != ACCEL_NO)
		return;
	f = finding_new(out, DIAG_RULE_ACCEL_UNAVAILABLE, DIAG_INFO,
			"This CPU has no %s: every IPI exits to KVM",
			h->vendor == ACCEL_VENDOR_AMD ? "AVIC" : "IPI virtualization");
	ev_str(f, "vendor", accel_vendor_name(h->vendor));
	ev_str(f, "model", h->model_name[0] ? h->model_name : "unknown");
	if (h->vendor == ACCEL_VENDOR_AMD) {
		host_fact_evidence(f, h, ACCEL_CPU_AVIC);
	} else {
		host_fact_evidence(f, h, ACCEL_CPU_IPI_VIRT);
		host_fact_evidence(f, h, ACCEL_MSR_IPI_VIRT);
	}
	remedy(f, "IPIs still take KVM's cheapest path when guests use x2APIC physical "
		  "destination mode (the WRMSR fastpath) and paravirtual IPIs for broadcasts "
		  "(kvm-pv-ipi). IPIv needs Intel Sapphire Rapids or later; AVIC AMD Zen or later "
		  "(x2AVIC Zen 4).");
}

void diag_evaluate_host(const struct accel_state *host, const struct diag_thresholds *th,
			struct diag_result *out)
{
	if (!host) {
		skip(out, DIAG_RULE_ACCEL_DISABLED_IN_MODULE, "needs the host acceleration state");
		skip(out, DIAG_RULE_ACCEL_UNAVAILABLE, "needs the host acceleration state");
		return;
	}
	rule_disabled_in_module(host, out);
	rule_unavailable(host, out);
}

/* ---- the window of one VM ---- */

struct window {
	uint64_t sent;
	uint64_t by_path[IPIV_PATH_COUNT];
	uint64_t logical, multicast;
	uint64_t shorthand[ICR_SH_COUNT];
	uint64_t broadcast;
	uint64_t by_delivery[ICR_DM_COUNT];
	uint64_t eligible_by_path[IPIV_PATH_COUNT];
	uint64_t received, wakeups, wakeups_halted, halt_ns;
	uint64_t avic[IPIV_AVIC_CAUSE_COUNT], avic_total;
	uint64_t inhibit_sets;
	/* from the tracepoints of kernel-patches/ (0 on kernels without them) */
	uint64_t traps[IPIV_TRAP_COUNT], traps_total;
	uint64_t state_ns[IPIV_VSTATE_COUNT];
	uint64_t state_changes; /* descriptor / IsRunning updates: state tracking is live */
};

static uint64_t delta(uint64_t cur, uint64_t prev)
{
	return cur >= prev ? cur - prev : cur; /* a reset counter starts over */
}

static void window_build(const struct ipiv_vm_stats *cur, const struct ipiv_vm_stats *prev,
			 struct window *w)
{
	static const struct ipiv_vm_stats zero;
	const struct ipiv_vm_stats *p = prev ? prev : &zero;

	memset(w, 0, sizeof(*w));
	/* a cell only prev has is a counter reset to 0: no sends in the window, as delta() says */
	for (size_t i = 0; i < cur->n_send_cells; i++) {
		const struct ipiv_send_cell *cell = &cur->send_cells[i];
		unsigned path = cell->path, class = cell->class;
		uint64_t n;

		if (path >= IPIV_PATH_COUNT || class >= ICR_CLASS_COUNT)
			continue;
		n = delta(cell->count, vm_sent(p, path, class));
		if (!n)
			continue;
		w->sent += n;
		w->by_path[path] += n;
		w->by_delivery[icr_class_delivery(class)] += n;
		if (icr_class_shorthand(class) != ICR_SH_NONE)
			w->shorthand[icr_class_shorthand(class)] += n;
		else if (icr_class_is_broadcast(class))
			w->broadcast += n;
		else if (icr_class_is_logical(class))
			w->logical += n;
		if (icr_class_is_multicast(class))
			w->multicast += n;
		if (icr_class_accel_eligible(class))
			w->eligible_by_path[path] += n;
	}
	w->received = delta(cur->counts.received, p->counts.received);
	w->wakeups = delta(cur->counts.wakeups, p->counts.wakeups);
	w->wakeups_halted = delta(cur->counts.wakeups_halted, p->counts.wakeups_halted);
	w->halt_ns = delta(cur->counts.halt_ns, p->counts.halt_ns);
	for (unsigned a = 0; a < IPIV_AVIC_CAUSE_COUNT; a++) {
		w->avic[a] = delta(cur->counts.avic_incomplete[a], p->counts.avic_incomplete[a]);
		w->avic_total += w->avic[a];
	}
	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		w->inhibit_sets += delta(cur->inhibit_set[r], p->inhibit_set[r]);
	for (unsigned r = 0; r < IPIV_TRAP_COUNT; r++) {
		w->traps[r] = delta(cur->counts.icr_write_traps[r], p->counts.icr_write_traps[r]);
		w->traps_total += w->traps[r];
	}
	for (unsigned st = 0; st < IPIV_VSTATE_COUNT; st++)
		w->state_ns[st] = delta(cur->counts.state_ns[st], p->counts.state_ns[st]);
	for (unsigned t = 0; t < IPIV_PI_TRIGGER_COUNT; t++)
		w->state_changes += delta(cur->counts.pi_descriptor_updates[t],
					  p->counts.pi_descriptor_updates[t]);
	w->state_changes += delta(cur->counts.avic_running_set, p->counts.avic_running_set) +
			    delta(cur->counts.avic_running_cleared, p->counts.avic_running_cleared);
}

/* The unvirtualized ICR writes of the window by reason (kvm_icr_write_trap), if traced. */
static void ev_traps(struct diag_finding *f, const struct window *w)
{
	char name[48];

	if (!w->traps_total)
		return;
	for (unsigned r = 0; r < IPIV_TRAP_COUNT; r++)
		if (w->traps[r]) {
			snprintf(name, sizeof(name), "icr_traps_%s", ipiv_icr_trap_name(r));
			ev_u64(f, name, w->traps[r]);
		}
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? (double)part / (double)whole : 0;
}

static void ev_rate(struct diag_finding *f, const char *name, uint64_t n, double seconds)
{
	if (seconds > 0)
		ev_num(f, name, n / seconds, "%.1f");
}

static bool figure_usable(const struct diag_figure *fig, const struct diag_thresholds *th)
{
	return fig->known && fig->samples >= th->min_latency_samples;
}

/* ---- VM rules ---- */

/* What a host engineer can do about each inhibit reason, by the name the running kernel
 * gives it (ipiv_inhibit_name: enum kvm_apicv_inhibit in its BTF, asm/kvm_host.h). */
static const struct {
	const char *reason;
	const char *remedy;
} inhibit_remedies[] = {
	{"disabled", "APICv/AVIC is off in the module (see the host findings)."},
	{"hyperv", "Hyper-V SynIC with AutoEOI; give the guest hv-avic (QEMU hv-avic=on, "
		   "libvirt <hyperv><avic state='on'/>) or drop hv-synic."},
	{"absent", "no in-kernel local APIC; use kernel_irqchip=on or split."},
	{"blockirq", "a debugger set KVM_GUESTDBG_BLOCKIRQ; detach gdb from the VM."},
	{"physical_id_aliased", "two vCPUs share an APIC ID; fix the guest's APIC IDs or the "
				"VMM's topology."},
	{"apic_id_modified", "the guest rewrote an xAPIC ID; boot it in x2APIC mode."},
	{"apic_base_modified", "the guest moved the APIC base; a guest bug or old OS."},
	{"nested", "AVIC is off while L2 guests run; avoid nested VMs in latency-critical "
		   "guests."},
	{"irqwin", "KVM waits for an interrupt window (ExtINT from the legacy PIC); give the "
		   "guest IOAPIC/MSI interrupts (kernel_irqchip=split, no PIC-routed timer)."},
	{"pit_reinj", "the PIT reinjects lost ticks; QEMU -global "
		      "kvm-pit.lost_tick_policy=discard or -machine pit=off."},
	{"sev", "AVIC is inhibited for SEV guests on this kernel."},
	{"logical_id_aliased", "logical APIC IDs alias in AVIC's table; boot the guest with "
			       "x2apic_phys."},
	{"physical_id_too_big", "an APIC ID exceeds AVIC's table (255; 511 with x2AVIC); "
				"fewer vCPUs or an x2AVIC host."},
};

/* Older kernels' names of the same reasons (Linux 6.1: APICV_INHIBIT_REASON_DISABLE). */
static const struct {
	const char *old, *now;
} inhibit_aliases[] = {{"disable", "disabled"}};

static const char *inhibit_remedy(const struct ipiv_inhibit_names *names, uint32_t reason)
{
	const char *name = ipiv_inhibit_name(names, reason);

	for (size_t i = 0; i < sizeof(inhibit_aliases) / sizeof(inhibit_aliases[0]); i++)
		if (!strcmp(inhibit_aliases[i].old, name))
			name = inhibit_aliases[i].now;

	for (size_t i = 0; i < sizeof(inhibit_remedies) / sizeof(inhibit_remedies[0]); i++)
		if (!strcmp(inhibit_remedies[i].reason, name))
			return inhibit_remedies[i].remedy;
	return NULL;
}

uint64_t diag_host_wide_inhibits(const struct accel_state *host, uint64_t inhibits)
{
	/* KVM sets "disabled" (bit 0 on every kernel) on each VM it creates while enable_apicv
	 * is off, for the module as a whole. On a host whose CPU has no APICv/AVIC nothing a VM
	 * changes would accelerate it, so every reason is the host's; Linux 6.1 even stops
	 * clearing them ("absent" stays set though the VM has an in-kernel APIC: seen on
	 * emulated SVM). */
	if (host && host->apicv_hw == ACCEL_NO)
		return inhibits;
	return inhibits & 1;
}

static void rule_inhibited(const struct accel_state *host, const struct diag_vm_input *in,
			   const struct window *w, const struct diag_thresholds *th,
			   struct diag_result *out)
{
	const struct ipiv_vm_stats *vm = in->cur;
	uint64_t host_wide, own;
	/* as long as evidence text: the bitmap beside it has what a long list leaves out */
	char reasons[96], host_reasons[96], bits[24];
	enum diag_severity sev;
	struct diag_finding *f;

	if (!vm->inhibits_known) {
		skip(out, DIAG_RULE_APICV_INHIBITED,
		     "needs the VM's APICv inhibit bitmap (no kvm_apicv_inhibit_changed seen)");
		return;
	}
	/* Host-wide reasons are the host's finding (diag_evaluate_host_inhibits), said once
	 * for every VM; this one is about what this VM does. */
	host_wide = diag_host_wide_inhibits(host, vm->inhibits);
	own = vm->inhibits & ~host_wide;
	if (!own)
		return;
	ipiv_inhibit_list(in->inhibit_names, own, ",", reasons, sizeof(reasons));
	/* While the host keeps APICv off as well, lifting these alone accelerates nothing. */
	sev = host_wide ? DIAG_WARNING : w->sent >= th->min_ipis ? DIAG_CRITICAL : DIAG_WARNING;
	if (host_wide) {
		ipiv_inhibit_list(in->inhibit_names, host_wide, ",", host_reasons,
				  sizeof(host_reasons));
		f = finding_new(out, DIAG_RULE_APICV_INHIBITED, sev,
				"APICv/AVIC is inhibited for this VM (%s), besides the host's "
				"own reasons (%s)",
				reasons, host_reasons);
	} else {
		f = finding_new(out, DIAG_RULE_APICV_INHIBITED, sev,
				"APICv/AVIC is inhibited for this VM (%s): no IPI or interrupt "
				"is accelerated",
				reasons);
	}
	snprintf(bits, sizeof(bits), "0x%llx", (unsigned long long)vm->inhibits);
	ev_str(f, "inhibits", bits);
	ev_str(f, "reasons", reasons);
	if (host_wide)
		ev_str(f, "host_reasons", host_reasons);
	ev_u64(f, "inhibit_sets_in_window", w->inhibit_sets);
	ev_u64(f, "ipis_sent", w->sent);
	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		if (own & (1ull << r)) {
			const char *text = inhibit_remedy(in->inhibit_names, r);

			remedy(f, "%s%s: %s", f->remedy[0] ? " " : "",
			       text ? ipiv_inhibit_name(in->inhibit_names, r) : "unknown reason",
			       text ? text : "see asm/kvm_host.h of the running kernel.");
		}
	if (host_wide)
		remedy(f, " The host's reasons are its own apicv_inhibited finding.");
}

void diag_evaluate_host_inhibits(const struct accel_state *host,
				 const struct diag_host_inhibits *in, struct diag_result *out)
{
	bool no_hw = host && host->apicv_hw == ACCEL_NO;
	bool intel = host && host->vendor == ACCEL_VENDOR_INTEL;
	char reasons[96], bits[24];
	struct diag_finding *f;

	if (!in || !in->vms)
		return;
	ipiv_inhibit_list(in->inhibit_names, in->reasons, ",", reasons, sizeof(reasons));
	if (no_hw)
		f = finding_new(out, DIAG_RULE_APICV_INHIBITED, DIAG_INFO,
				"APICv/AVIC is off for every VM because the host has none (%zu VMs "
				"inhibited: %s)",
				in->vms, reasons);
	else
		f = finding_new(out, DIAG_RULE_APICV_INHIBITED, DIAG_WARNING,
				"APICv/AVIC is off in the KVM module for every VM: no IPI or "
				"interrupt is accelerated (%zu VMs inhibited: %s)",
				in->vms, reasons);
	snprintf(bits, sizeof(bits), "0x%llx", (unsigned long long)in->reasons);
	ev_u64(f, "vms", in->vms);
	ev_str(f, "inhibits", bits);
	ev_str(f, "reasons", reasons);
	if (host) {
		ev_str(f, "apicv_hardware", accel_state_name(host->apicv_hw));
		ev_str(f, "apicv_enabled", accel_state_name(host->apicv_enabled));
	}
	if (no_hw) {
		remedy(f,
		       "Nothing to change per VM: KVM keeps APICv/AVIC off in the module, as the "
		       "CPU or backend has none (the accel_unavailable finding), and marks each "
		       "VM disabled. Latency-critical guests need a host with APICv/AVIC.");
		return;
	}
	if (intel)
		remedy(f, "Turn it on: \"options kvm_intel enable_apicv=Y\" in "
			  "/etc/modprobe.d/kvm.conf and reload kvm_intel with no VM running. ");
	else if (host && host->vendor == ACCEL_VENDOR_AMD)
		remedy(f, "Turn it on: \"options kvm_amd avic=1\" in /etc/modprobe.d/kvm.conf and "
			  "reload kvm_amd with no VM running. ");
	else
		remedy(f,
		       "Turn it on in the KVM module (kvm_intel.enable_apicv=Y or kvm_amd.avic=1) "
		       "and reload it with no VM running. ");
	remedy(f, "VMs started before keep it off until restarted.");
}

static void rule_logical(const struct diag_vm_input *in, const struct window *w,
			 const struct diag_thresholds *th, struct diag_result *out)
{
	double s = share(w->logical, w->sent);
	struct diag_finding *f;

	if (w->sent < th->min_ipis || s < th->logical_share)
		return;
	f = finding_new(
		out, DIAG_RULE_LOGICAL_DEST_MODE, DIAG_WARNING,
		"%.0f%% of IPIs use logical (cluster) destination mode, which IPIv and AVIC "
		"never accelerate",
		s * 100);
	ev_u64(f, "logical", w->logical);
	ev_u64(f, "logical_multicast", w->multicast);
	ev_u64(f, "sent", w->sent);
	ev_share(f, "logical_share", s);
	ev_rate(f, "logical_per_second", w->logical, in->window_seconds);
	ev_traps(f, w);
	remedy(f, "Linux picks x2apic_cluster when interrupt remapping is on, which a vIOMMU with "
		  "intremap brings. Boot the guest with \"x2apic_phys\" on its kernel command "
		  "line, or give it no interrupt remapping (QEMU -device intel-iommu,intremap=off; "
		  "libvirt <iommu model='intel'><driver intremap='off'/>; or no vIOMMU). "
		  "Physical-mode unicast IPIs then go without exits.");
}

static void rule_shorthand(const struct diag_vm_input *in, const struct window *w,
			   const struct diag_thresholds *th, struct diag_result *out)
{
	uint64_t sh = w->shorthand[ICR_SH_SELF] + w->shorthand[ICR_SH_ALL] +
		      w->shorthand[ICR_SH_ALL_BUT_SELF];
	double s = share(sh + w->broadcast, w->sent);
	struct diag_finding *f;

	if (w->sent < th->min_ipis || s < th->shorthand_share)
		return;
	f = finding_new(out, DIAG_RULE_SHORTHAND_BROADCAST, DIAG_WARNING,
			"%.0f%% of IPIs are shorthand or broadcast IPIs, which always exit",
			s * 100);
	ev_u64(f, "all_but_self", w->shorthand[ICR_SH_ALL_BUT_SELF]);
	ev_u64(f, "all", w->shorthand[ICR_SH_ALL]);
	ev_u64(f, "self", w->shorthand[ICR_SH_SELF]);
	ev_u64(f, "broadcast", w->broadcast);
	ev_u64(f, "sent", w->sent);
	ev_share(f, "shorthand_broadcast_share", s);
	ev_rate(f, "shorthand_broadcast_per_second", sh + w->broadcast, in->window_seconds);
	remedy(f,
	       "Linux sends all-but-self when a function call or TLB flush targets every "
	       "online CPU. Paravirtual IPIs reach many targets in one exit (QEMU -cpu "
	       "...,kvm-pv-ipi=on) and PV TLB flush skips preempted vCPUs (kvm-pv-tlb-flush=on); "
	       "also look for what in the guest broadcasts (perf, membarrier, text patching).");
}

static void rule_halted(const struct diag_vm_input *in, const struct window *w,
			const struct diag_thresholds *th, struct diag_result *out)
{
	const struct diag_latency *lat = in->latency;
	double ratio = share(w->wakeups_halted, w->received);
	struct diag_finding *f;

	if (w->received < th->min_received || ratio < th->halted_wakeup_ratio)
		return;
	f = finding_new(out, DIAG_RULE_TARGETS_HALTED, DIAG_WARNING,
			"Targets are mostly halted when interrupts arrive (%.2f wakeups per "
			"interrupt): wakeup dominates latency and acceleration cannot help",
			ratio);
	ev_u64(f, "received", w->received);
	ev_u64(f, "wakeups_halted", w->wakeups_halted);
	ev_u64(f, "wakeups_polled", w->wakeups - w->wakeups_halted);
	ev_share(f, "halted_wakeups_per_received", ratio);
	if (w->wakeups)
		ev_num(f, "mean_halt_us", w->halt_ns / 1e3 / w->wakeups, "%.1f");
	if (lat && figure_usable(&lat->halt_ns, th))
		ev_num(f, "median_halt_us", lat->halt_ns.value / 1e3, "%.1f");
	if (lat && figure_usable(&lat->wakeup_ns, th))
		ev_num(f, "median_wakeup_us", lat->wakeup_ns.value / 1e3, "%.1f");
	remedy(f, "Let targets poll before blocking: raise host halt-polling (kvm.halt_poll_ns, "
		  "per VM with QEMU -accel kvm,halt-poll-ns=N) to cover the halt times above, or "
		  "poll in the guest (cpuidle-haltpoll with guest_halt_poll_ns; idle=poll only on "
		  "dedicated CPUs). Polling spends host CPU; pinned vCPUs can also use "
		  "kvm-hint-dedicated=on.");
}

static const char preempted_remedy[] =
	"Give the vCPUs CPUs of their own: lower overcommit on this host, pin vCPU threads "
	"(libvirt <vcpupin>, cgroup cpusets) away from host work and other VMs, and check host "
	"steal time. Guests can yield to preempted targets with PV sched-yield "
	"(kvm-pv-sched-yield=on).";

/*
 * Targets preempted: from latency tracking (the share of IPIs whose target was runnable but
 * not running), else from the vCPU state tracepoints of kernel-patches/ (the share of the
 * VM's vCPU time spent preempted: an IPI to a preempted vCPU waits for it to run again).
 */
static void rule_preempted(const struct diag_vm_input *in, const struct window *w,
			   const struct diag_thresholds *th, struct diag_result *out)
{
	const struct diag_latency *lat = in->latency;
	enum diag_severity sev;
	struct diag_finding *f;
	double s, vcpu_ns;

	if (lat && lat->preempted_share.known) {
		s = lat->preempted_share.value;
		if (lat->preempted_share.samples < th->min_latency_samples ||
		    s < th->preempted_share)
			return;
		sev = s >= th->preempted_share_critical ? DIAG_CRITICAL : DIAG_WARNING;
		f = finding_new(out, DIAG_RULE_TARGETS_PREEMPTED, sev,
				"%.0f%% of IPIs found their target vCPU preempted (runnable, not "
				"running): host overcommit inflates latency",
				s * 100);
		ev_share(f, "preempted_share", s);
		ev_u64(f, "samples", lat->preempted_share.samples);
		if (figure_usable(&lat->preempted_delay_ns, th))
			ev_num(f, "median_preempted_delay_us", lat->preempted_delay_ns.value / 1e3,
			       "%.1f");
		if (figure_usable(&lat->delivery_ns, th))
			ev_num(f, "median_delivery_us", lat->delivery_ns.value / 1e3, "%.1f");
		remedy(f, preempted_remedy);
		return;
	}
	vcpu_ns = in->window_seconds * 1e9 * in->cur->vcpu_count;
	if (!w->state_changes || vcpu_ns <= 0) {
		skip(out, DIAG_RULE_TARGETS_PREEMPTED,
		     "needs the preempted-target share from latency tracking, or the vCPU states "
		     "from fexit on KVM's vCPU load/put (vmx_vcpu_pi_load/put, "
		     "avic_vcpu_load/put)");
		return;
	}
	s = w->state_ns[IPIV_VSTATE_PREEMPTED] / vcpu_ns;
	if (s < th->preempted_share)
		return;
	sev = s >= th->preempted_share_critical ? DIAG_CRITICAL : DIAG_WARNING;
	f = finding_new(out, DIAG_RULE_TARGETS_PREEMPTED, sev,
			"The VM's vCPUs spent %.0f%% of their time preempted (runnable, not "
			"running): IPIs to them wait for the host scheduler",
			s * 100);
	ev_share(f, "preempted_time_share", s);
	ev_num(f, "preempted_seconds", w->state_ns[IPIV_VSTATE_PREEMPTED] / 1e9, "%.3f");
	ev_num(f, "vcpu_seconds", vcpu_ns / 1e9, "%.1f");
	if (w->state_ns[IPIV_VSTATE_BLOCKED])
		ev_num(f, "blocked_seconds", w->state_ns[IPIV_VSTATE_BLOCKED] / 1e9, "%.3f");
	if (w->state_ns[IPIV_VSTATE_NOT_RUNNING])
		ev_num(f, "not_running_seconds", w->state_ns[IPIV_VSTATE_NOT_RUNNING] / 1e9,
		       "%.3f");
	remedy(f, preempted_remedy);
}

static void rule_avic(const struct accel_state *host, const struct diag_vm_input *in,
		      const struct window *w, const struct diag_thresholds *th,
		      struct diag_result *out)
{
	static const char *const cause_remedy[IPIV_AVIC_CAUSE_COUNT] = {
		[IPIV_AVIC_INVALID_INT_TYPE] = "Most fail on the interrupt type (not fixed "
					       "delivery: NMI, INIT, lowest priority); see the "
					       "special_delivery finding.",
		[IPIV_AVIC_TARGET_NOT_RUNNING] =
			"Most found the target not running (halted or preempted): reduce halts "
			"with halt-polling (kvm.halt_poll_ns, guest cpuidle-haltpoll) and "
			"preemption with pinned, not overcommitted vCPUs.",
		[IPIV_AVIC_INVALID_TARGET] = "Most target an ID AVIC cannot route (logical mode, "
					     "out-of-range IDs); boot the guest with x2apic_phys.",
		[IPIV_AVIC_INVALID_BACKING_PAGE] = "Most hit an invalid backing page, a KVM bug "
						   "(dmesg shows a WARN); report it.",
		[IPIV_AVIC_INVALID_IPI_VECTOR] = "Most carry an invalid vector; a guest bug.",
		[IPIV_AVIC_CAUSE_OTHER] = "Most have a cause this kernel does not name.",
	};
	unsigned top = 0;
	double s;
	struct diag_finding *f;

	s = share(w->avic_total, w->sent > w->avic_total ? w->sent : w->avic_total);
	if (w->avic_total < th->min_avic_incomplete || s < th->avic_incomplete_share)
		return;
	for (unsigned a = 1; a < IPIV_AVIC_CAUSE_COUNT; a++)
		if (w->avic[a] > w->avic[top])
			top = a;
	f = finding_new(out, DIAG_RULE_AVIC_INCOMPLETE, DIAG_WARNING,
			"%.0f%% of IPIs ended in AVIC_INCOMPLETE_IPI exits, mostly %s", s * 100,
			ipiv_avic_cause_name(top));
	for (unsigned a = 0; a < IPIV_AVIC_CAUSE_COUNT; a++)
		if (w->avic[a])
			ev_u64(f, ipiv_avic_cause_name(a), w->avic[a]);
	ev_u64(f, "avic_incomplete", w->avic_total);
	ev_u64(f, "sent", w->sent);
	ev_share(f, "avic_incomplete_share", s);
	ev_rate(f, "avic_incomplete_per_second", w->avic_total, in->window_seconds);
	if (top == IPIV_AVIC_TARGET_NOT_RUNNING && host &&
	    host->facts[ACCEL_AMD_ENABLE_IPIV].state == ACCEL_NO)
		remedy(f, "kvm_amd.enable_ipiv=N: KVM never marks targets running, so every IPI "
			  "exits; set it to 1 unless the CPU has erratum 1235. ");
	remedy(f, "%s", cause_remedy[top]);
}

static void rule_fallback(const struct diag_vm_input *in, const struct window *w,
			  const struct diag_thresholds *th, struct diag_result *out)
{
	const struct diag_latency *lat = in->latency;
	const struct diag_figure *aw, *msr;
	uint64_t n = w->by_path[IPIV_PATH_APIC_WRITE];
	struct diag_finding *f;
	double ratio;
	bool fast;

	if (!lat || !lat->exit_ns[IPIV_PATH_APIC_WRITE].known ||
	    !lat->exit_ns[IPIV_PATH_X2APIC_MSR].known) {
		skip(out, DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH,
		     "needs per-path exit latency (apic_write_trap and the x2apic_msr fastpath)");
		return;
	}
	aw = &lat->exit_ns[IPIV_PATH_APIC_WRITE];
	/* the fastpath's own exits where its fexit says which they were, else every x2APIC
	 * MSR exit (most of them the fastpath's, where the kernel offers it) */
	fast = figure_usable(&lat->exit_fastpath_ns, th);
	msr = fast ? &lat->exit_fastpath_ns : &lat->exit_ns[IPIV_PATH_X2APIC_MSR];
	if (n < th->min_ipis || !figure_usable(aw, th) || !figure_usable(msr, th) ||
	    msr->value <= 0)
		return;
	ratio = aw->value / msr->value;
	if (ratio < th->fallback_slowdown)
		return;
	f = finding_new(out, DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH, DIAG_WARNING,
			"IPIs falling back to APIC-write exits cost %.0f ns, %.2fx the x2APIC "
			"MSR %s %.0f ns",
			aw->value, ratio, fast ? "fastpath's" : "exits'", msr->value);
	ev_num(f, "apic_write_exit_ns", aw->value, "%.0f");
	ev_num(f, fast ? "x2apic_msr_fastpath_exit_ns" : "x2apic_msr_exit_ns", msr->value, "%.0f");
	ev_num(f, "slowdown", ratio, "%.2f");
	ev_u64(f, "apic_write_ipis", n);
	ev_share(f, "apic_write_share", share(n, w->sent));
	ev_u64(f, "apic_write_samples", aw->samples);
	ev_u64(f, fast ? "x2apic_msr_fastpath_samples" : "x2apic_msr_samples", msr->samples);
	remedy(f, "APIC-write exits (IPIv's fallback for logical, shorthand, broadcast and "
		  "non-fixed IPIs) have no fastpath. Make the guest's IPIs eligible (x2apic_phys, "
		  "no interrupt remapping, PV IPIs for broadcasts) so they skip the exit; if most "
		  "IPIs of the host's workloads fall back anyway, kvm_intel.enable_ipiv=N sends "
		  "them through the cheaper MSR fastpath.");
}

static void rule_special(const struct diag_vm_input *in, const struct window *w,
			 const struct diag_thresholds *th, struct diag_result *out)
{
	static const unsigned modes[] = {ICR_DM_NMI, ICR_DM_INIT, ICR_DM_SIPI, ICR_DM_LOWEST_PRIO,
					 ICR_DM_SMI};
	uint64_t n = 0, hot;
	struct diag_finding *f;
	double s;

	for (unsigned i = 0; i < 5; i++)
		n += w->by_delivery[modes[i]];
	s = share(n, w->sent);
	if (n < th->min_special || s < th->special_share)
		return;
	/* INIT/SIPI alone is vCPU bring-up (boot, hotplug): worth knowing, not a problem */
	hot = w->by_delivery[ICR_DM_NMI] + w->by_delivery[ICR_DM_LOWEST_PRIO] +
	      w->by_delivery[ICR_DM_SMI];
	f = finding_new(
		out, DIAG_RULE_SPECIAL_DELIVERY, hot ? DIAG_WARNING : DIAG_INFO,
		"%.0f%% of IPIs use NMI/INIT/SIPI/SMI/lowest-priority delivery, which always "
		"exits",
		s * 100);
	for (unsigned i = 0; i < 5; i++)
		if (w->by_delivery[modes[i]])
			ev_u64(f, icr_delivery_names[modes[i]], w->by_delivery[modes[i]]);
	ev_u64(f, "sent", w->sent);
	ev_share(f, "special_share", s);
	ev_rate(f, "special_per_second", n, in->window_seconds);
	if (w->by_delivery[ICR_DM_NMI])
		remedy(f, "NMIs: the guest's NMI watchdog or perf backtraces; nmi_watchdog=0 in "
			  "the guest, or perf in the guest only when needed. ");
	if (w->by_delivery[ICR_DM_LOWEST_PRIO])
		remedy(f, "Lowest priority: an old or non-Linux guest in logical flat mode; use "
			  "x2APIC physical fixed delivery (x2apic_phys). ");
	if (w->by_delivery[ICR_DM_SMI])
		remedy(f, "SMIs: firmware in the guest (OVMF with SMM) is busy; check what traps "
			  "into SMM. ");
	if (w->by_delivery[ICR_DM_INIT] || w->by_delivery[ICR_DM_SIPI])
		remedy(f, "INIT/SIPI: vCPUs are being started; steady INIT/SIPI means CPU hotplug "
			  "or offline/online cycling in the guest.");
}

static void rule_eligible_exiting(const struct accel_state *host, const struct diag_vm_input *in,
				  const struct window *w, const struct diag_thresholds *th,
				  struct diag_result *out)
{
	uint64_t n = w->eligible_by_path[IPIV_PATH_X2APIC_MSR] +
		     w->eligible_by_path[IPIV_PATH_XAPIC_MMIO];
	double s = share(n, w->sent);
	struct diag_finding *f;

	if (!host || host->ipiv_effective == ACCEL_UNKNOWN) {
		skip(out, DIAG_RULE_ELIGIBLE_IPIS_EXITING, "needs the host's IPIv/AVIC state");
		return;
	}
	/* On AVIC eligible IPIs still exit for halted targets (the avic_incomplete rule) */
	if (host->ipiv_effective != ACCEL_YES || host->vendor != ACCEL_VENDOR_INTEL)
		return;
	if (w->sent < th->min_ipis || s < th->eligible_exiting_share)
		return;
	f = finding_new(out, DIAG_RULE_ELIGIBLE_IPIS_EXITING, DIAG_WARNING,
			"IPIv is on, yet %.0f%% of IPIs are IPIv-eligible and still exit as ICR "
			"writes: APICv is not active for this VM",
			s * 100);
	ev_u64(f, "eligible_x2apic_msr", w->eligible_by_path[IPIV_PATH_X2APIC_MSR]);
	ev_u64(f, "eligible_xapic_mmio", w->eligible_by_path[IPIV_PATH_XAPIC_MMIO]);
	ev_u64(f, "sent", w->sent);
	ev_share(f, "eligible_exiting_share", s);
	ev_str(f, "inhibits_known", in->cur->inhibits_known ? "yes" : "no");
	ev_traps(f, w);
	remedy(f, "Look for an APICv inhibit (the apicv_inhibited finding; a VM started before "
		  "ipivd shows none until one changes), a VMM that turned the in-kernel APIC or "
		  "APICv off for this VM (kernel_irqchip=off, Hyper-V SynIC), and restart VMs "
		  "created before enable_ipiv was turned on.");
}

void diag_evaluate_vm(const struct accel_state *host, const struct diag_vm_input *in,
		      const struct diag_thresholds *th, struct diag_result *out)
{
	struct window w;

	if (!in || !in->cur)
		return;
	window_build(in->cur, in->prev, &w);
	out->window_ipis_sent = w.sent;
	out->window_received = w.received;
	rule_inhibited(host, in, &w, th, out);
	rule_logical(in, &w, th, out);
	rule_shorthand(in, &w, th, out);
	rule_halted(in, &w, th, out);
	rule_preempted(in, &w, th, out);
	rule_avic(host, in, &w, th, out);
	rule_fallback(in, &w, th, out);
	rule_special(in, &w, th, out);
	rule_eligible_exiting(host, in, &w, th, out);
}
