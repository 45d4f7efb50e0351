// SPDX-License-Identifier: GPL-2.0
/* The collector: probes which KVM tracepoints this kernel has, loads and attaches
 * bpf/ipiv.bpf.c, discovers and reclaims VMs, and reads the maps into a snapshot. */
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "counters.h"
#include "ipiv.skel.h"

#define TRACEFS_DEFAULT "/sys/kernel/tracing"

/* Every attachment point the object has. Required ones make collector_open fail. */
struct probe_def {
	const char *tracepoint;
	const char *prog;
	bool optional;
};

static const struct probe_def probe_defs[] = {
	{"kvm_apic_ipi", "ipiv_apic_ipi", false},
	{"kvm_apic_accept_irq", "ipiv_apic_accept_irq", false},
	{"kvm_eoi", "ipiv_eoi", true},
	{"kvm_vcpu_wakeup", "ipiv_vcpu_wakeup", true},
	{"kvm_msr", "ipiv_msr", true},
	{"kvm_mmio", "ipiv_mmio", true},
	{"kvm_hypercall", "ipiv_hypercall", true},
	{"kvm_hv_send_ipi", "ipiv_hv_send_ipi", true},
	{"kvm_hv_send_ipi_ex", "ipiv_hv_send_ipi_ex", true},
	{"kvm_avic_incomplete_ipi", "ipiv_avic_incomplete_ipi", true},
	{"kvm_apicv_inhibit_changed", "ipiv_apicv_inhibit_changed", true},
	{"kvm_exit", "ipiv_exit", true},
	{"kvm_entry", "ipiv_entry", true},
	/* added by kernel-patches/ (IPIv/AVIC visibility); absent on stock kernels */
	{"kvm_pi_wakeup", "ipiv_pi_wakeup", true},
	{"kvm_pi_desc_update", "ipiv_pi_desc_update", true},
	{"kvm_icr_write_trap", "ipiv_icr_write_trap", true},
	{"kvm_x2apic_icr_fastpath", "ipiv_x2apic_icr_fastpath", true},
	{"kvm_avic_physid_update", "ipiv_avic_physid_update", true},
	/* fexit on stock kernels that permit it: what kvm_x2apic_icr_fastpath says, derived from
     * the return of KVM's WRMSR exit fastpath (the function of each kernel that has one) */
	{"fexit/handle_fastpath_set_msr_irqoff", "ipiv_fastpath_set_msr", true},
	{"fexit/handle_fastpath_wrmsr", "ipiv_fastpath_wrmsr", true},
	{"fexit/handle_fastpath_wrmsr_imm", "ipiv_fastpath_wrmsr_imm", true},
	/* moves an exiting vCPU thread's cached counts to the maps */
	{"sched_process_exit", "ipiv_thread_exit", true},
	/* not a tracepoint: VM discovery; without it only VMs that send are seen */
	{"iter/task_file", "ipiv_discover", true},
};

#define N_PROBES (sizeof(probe_defs) / sizeof(probe_defs[0]))

static const char *const test_progs[] = {"ipiv_test_exit", "ipiv_test_entry", "ipiv_test_pi_wakeup",
					 "ipiv_test_avic_physid"};

/* A VM the collector knows from the maps, with how many polls it has been missing. */
struct vm_seen {
	uint64_t vm;
	unsigned int missing;
};

/* What the last discovery walk saw of one VM. */
struct vm_found {
	uint64_t vm;
	uint32_t tgid;	/* a process holding its VM file with the VM's mm */
	uint32_t vcpus; /* distinct kvm-vcpu:N files */
};

/* What the last discovery walk read of one vCPU (from its kvm-vcpu:N file). */
struct vcpu_found {
	uint64_t vm;
	uint32_t vcpu_id;
	uint32_t tid;	   /* its last KVM_RUN thread, 0 if none yet */
	uint8_t apicv;	   /* enum ipiv_apicv */
	uint8_t apic_mode; /* enum ipiv_apic_mode */
};

/* The keys retired VMs are shown under: a VM key (IPIV_VM_KEY) has the top bit only after
 * 32768 VMs at one address, each a generation of the last. */
#define IPIV_RETIRED_KEY (1ull << 63)

/* A reclaimed VM's final counts and when they stop being shown (CLOCK_MONOTONIC ns). */
struct retired_vm {
	struct ipiv_vm_stats stats;
	uint64_t until_ns;
};

struct collector {
	struct ipiv_bpf *skel;
	struct collector_opts opts;
	struct ipiv_probe probes[N_PROBES];
	struct bpf_link *links[N_PROBES];
	struct bpf_link *threads_iter; /* ipiv_dump_threads: each vCPU thread and its cache */
	struct bpf_link *prune_iter;   /* ipiv_prune_threads: storage of reclaimed VMs' threads */
	int stats_fd;
	int ncpus;
	struct vm_seen *seen;
	size_t n_seen;
	struct vm_found *found; /* sorted by vm */
	size_t n_found;
	struct vcpu_found *found_vcpus; /* sorted by (vm, vcpu_id) */
	size_t n_found_vcpus;
	uint64_t vms_discovered;
	uint64_t vms_reclaimed;
	struct ipiv_counts gone;    /* totals of every reclaimed VM */
	struct retired_vm *retired; /* reclaimed VMs' final counts, oldest first */
	size_t n_retired;
	uint64_t n_retired_ever;
	uint64_t polls;
	int last_poll_err;
};

static void vm_stats_free(struct ipiv_vm_stats *vm);

/* ---- names ---- */

static const char *const path_names[IPIV_PATH_COUNT] = {
	[IPIV_PATH_UNKNOWN] = "unknown",       [IPIV_PATH_X2APIC_MSR] = "x2apic_msr",
	[IPIV_PATH_XAPIC_MMIO] = "xapic_mmio", [IPIV_PATH_APIC_WRITE] = "apic_write_trap",
	[IPIV_PATH_AVIC] = "avic_incomplete",  [IPIV_PATH_PV_KVM] = "pv_kvm",
	[IPIV_PATH_PV_HYPERV] = "pv_hyperv",
};

static const char *const drop_names[IPIV_DROP_COUNT] = {
	[IPIV_DROP_THREADS_FULL] = "threads_map_full",
	[IPIV_DROP_MMS_FULL] = "mms_map_full",
	[IPIV_DROP_VMS_FULL] = "vms_map_full",
	[IPIV_DROP_COUNTERS_FULL] = "counters_map_full",
	[IPIV_DROP_MATRIX_FULL] = "matrix_map_full",
	[IPIV_DROP_NO_IDENTITY] = "no_identity",
	[IPIV_DROP_EOI_DUPLICATE] = "eoi_duplicate",
	[IPIV_DROP_LAT_FULL] = "latency_map_full",
	[IPIV_DROP_VCPU_STATES_FULL] = "vcpu_states_map_full",
};

static const char *const avic_cause_names[IPIV_AVIC_CAUSE_COUNT] = {
	[IPIV_AVIC_INVALID_INT_TYPE] = "invalid_int_type",
	[IPIV_AVIC_TARGET_NOT_RUNNING] = "target_not_running",
	[IPIV_AVIC_INVALID_TARGET] = "invalid_target",
	[IPIV_AVIC_INVALID_BACKING_PAGE] = "invalid_backing_page",
	[IPIV_AVIC_INVALID_IPI_VECTOR] = "invalid_ipi_vector",
	[IPIV_AVIC_CAUSE_OTHER] = "other",
};

/* Inhibit reason names of the running kernel, from enum kvm_apicv_inhibit in its BTF (the
 * numbering changes between kernels); filled by collector_open, "" where BTF has none. */
static char btf_inhibit_names[IPIV_INHIBIT_COUNT][IPIV_INHIBIT_NAME_MAX];
static const char *inhibit_names_source = "builtin";

/* Without BTF: asm/kvm_host.h enum kvm_apicv_inhibit of 6.18 (12 is new there). */
static const char *const inhibit_names[IPIV_INHIBIT_COUNT] = {
	"disabled",
	"hyperv",
	"absent",
	"blockirq",
	"physical_id_aliased",
	"apic_id_modified",
	"apic_base_modified",
	"nested",
	"irqwin",
	"pit_reinj",
	"sev",
	"logical_id_aliased",
	"physical_id_too_big",
	"reason_13",
	"reason_14",
	"reason_15",
};

static const char *const pi_trigger_names[IPIV_PI_TRIGGER_COUNT] = {
	[IPIV_PI_LOAD] = "load",
	[IPIV_PI_MIGRATE] = "migrate",
	[IPIV_PI_BLOCK] = "block",
	[IPIV_PI_PREEMPT] = "preempt",
};

static const char *const icr_trap_names[IPIV_TRAP_COUNT] = {
	[IPIV_TRAP_IPIV_INACTIVE] = "ipiv_inactive",
	[IPIV_TRAP_SHORTHAND] = "shorthand",
	[IPIV_TRAP_LOGICAL] = "logical",
	[IPIV_TRAP_DELIVERY_MODE] = "delivery_mode",
	[IPIV_TRAP_DEST_RANGE] = "dest_range",
	[IPIV_TRAP_OTHER] = "other",
};

static const char *const vcpu_state_names[IPIV_VSTATE_COUNT] = {
	[IPIV_VSTATE_RUNNING] = "running",
	[IPIV_VSTATE_BLOCKED] = "blocked",
	[IPIV_VSTATE_PREEMPTED] = "preempted",
	[IPIV_VSTATE_NOT_RUNNING] = "not_running",
};

static const char *const lat_kind_names[IPIV_LAT_KIND_COUNT] = {
	[IPIV_LAT_SEND_ACCEPT] = "send_to_accept",
	[IPIV_LAT_ACCEPT_RUN] = "accept_to_running",
	[IPIV_LAT_SEND_EOI] = "send_to_eoi",
	[IPIV_LAT_EXIT] = "sender_exit",
	[IPIV_LAT_HALT] = "halt",
	[IPIV_LAT_UNMATCHED] = "unmatched",
};

static const char *const lat_unmatched_names[IPIV_UNM_COUNT] = {
	[IPIV_UNM_OVERWRITTEN] = "coalesced",
	[IPIV_UNM_NMI] = "no_eoi_delivery_mode",
	[IPIV_UNM_EOI_UNSENT] = "eoi_without_ipi",
	[IPIV_UNM_STALE] = "stale",
	[IPIV_UNM_WAKE_UNSEEN] = "target_run_unseen",
	[IPIV_UNM_PENDING_FULL] = "target_map_full",
	[IPIV_UNM_SLOTS_FULL] = "vector_slots_full",
	[IPIV_UNM_EOI_VIRTUALIZED] = "eoi_virtualized",
	[IPIV_UNM_IN_GUEST] = "delivered_in_guest",
};

const char *ipiv_apic_mode_name(uint32_t mode)
{
	return mode == IPIV_APIC_X2APIC ? "x2apic" : mode == IPIV_APIC_XAPIC ? "xapic" : "unknown";
}

const char *ipiv_lat_kind_name(uint32_t kind)
{
	return kind < IPIV_LAT_KIND_COUNT ? lat_kind_names[kind] : "invalid";
}

const char *ipiv_lat_unmatched_name(uint32_t reason)
{
	return reason < IPIV_UNM_COUNT ? lat_unmatched_names[reason] : "invalid";
}

const char *ipiv_lat_sub_label(uint32_t kind, uint32_t sub, const char **label)
{
	switch (kind) {
	case IPIV_LAT_ACCEPT_RUN:
		*label = "target";
		return sub == IPIV_LAT_CASE_HALTED   ? "halted"
		       : sub == IPIV_LAT_CASE_POSTED ? "posted_wakeup"
						     : "running";
	case IPIV_LAT_HALT: *label = "halted"; return sub ? "true" : "false";
	default: *label = "path"; return ipiv_path_name(sub);
	}
}

const char *ipiv_pi_trigger_name(uint32_t trigger)
{
	return trigger < IPIV_PI_TRIGGER_COUNT ? pi_trigger_names[trigger] : "invalid";
}

const char *ipiv_icr_trap_name(uint32_t reason)
{
	return reason < IPIV_TRAP_COUNT ? icr_trap_names[reason] : "invalid";
}

const char *ipiv_vcpu_state_name(uint32_t state)
{
	return state < IPIV_VSTATE_COUNT ? vcpu_state_names[state] : "invalid";
}

const char *ipiv_path_name(uint32_t path)
{
	return path < IPIV_PATH_COUNT ? path_names[path] : "invalid";
}

const char *ipiv_drop_name(uint32_t reason)
{
	return reason < IPIV_DROP_COUNT ? drop_names[reason] : "invalid";
}

const char *ipiv_avic_cause_name(uint32_t cause)
{
	return cause < IPIV_AVIC_CAUSE_COUNT ? avic_cause_names[cause] : "invalid";
}

const char *ipiv_inhibit_name(uint32_t reason)
{
	if (reason >= IPIV_INHIBIT_COUNT)
		return "invalid";
	return btf_inhibit_names[reason][0] ? btf_inhibit_names[reason] : inhibit_names[reason];
}

const char *ipiv_inhibit_names_source(void)
{
	return inhibit_names_source;
}

int ipiv_inhibit_names_from_btf(const struct btf *btf, char (*names)[IPIV_INHIBIT_NAME_MAX])
{
	static const char prefix[] = "APICV_INHIBIT_REASON_";
	const struct btf_type *t;
	const struct btf_enum *e;
	int id, found = 0;

	id = btf ? btf__find_by_name_kind(btf, "kvm_apicv_inhibit", BTF_KIND_ENUM) : -ENOENT;
	if (id < 0)
		return -ENOENT;
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, e++) {
		const char *name = btf__name_by_offset(btf, e->name_off);
		size_t j;

		/* NR_APICV_INHIBIT_REASONS and anything not a reason bit is skipped */
		if (!name || strncmp(name, prefix, sizeof(prefix) - 1) || e->val < 0 ||
		    e->val >= IPIV_INHIBIT_COUNT)
			continue;
		name += sizeof(prefix) - 1;
		for (j = 0; name[j] && j < IPIV_INHIBIT_NAME_MAX - 1; j++)
			names[e->val][j] = isalnum((unsigned char)name[j])
						   ? tolower((unsigned char)name[j])
						   : '_';
		names[e->val][j] = '\0';
		found++;
	}
	return found ? found : -ENOENT;
}

/* ---- open, probe, attach ---- */

static bool tracefs_has(const char *tracefs, const char *tracepoint)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/events/kvm/%s", tracefs, tracepoint);
	return stat(path, &st) == 0;
}

/* A tracepoint exists if BTF has its btf_trace_ typedef (vmlinux, or the kvm module when
 * KVM is modular) or tracefs lists it. */
static bool tracepoint_exists(const struct btf *vmlinux, const struct btf *kvm_btf,
			      const char *tracefs, const char *tracepoint)
{
	char name[128];

	snprintf(name, sizeof(name), "btf_trace_%s", tracepoint);
	if (btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) > 0)
		return true;
	if (kvm_btf && btf__find_by_name_kind(kvm_btf, name, BTF_KIND_TYPEDEF) > 0)
		return true;
	return tracefs_has(tracefs, tracepoint);
}

/* Whether tracepoint exists on this kernel (after probe_tracepoints). */
static bool collector_has_probe(const struct collector *c, const char *tracepoint)
{
	for (size_t i = 0; i < N_PROBES; i++)
		if (!strcmp(c->probes[i].name, tracepoint))
			return c->probes[i].err != -ENOENT;
	return false;
}

static bool libbpf_silent;

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG || libbpf_silent || getenv("IPIV_LIBBPF_QUIET"))
		return 0;
	return vfprintf(stderr, fmt, args);
}

#define FEXIT "fexit/"

/*
 * Whether the fexit program on KVM function fn can load: the function is in BTF, the
 * patched tracepoint that gives the same answer is absent (a write is counted once), and
 * tracing programs load here at all (refused: the error of a load that had them, e.g. EPERM
 * on kvm_pvm; tests feed only tracepoint programs).
 */
static int fexit_usable(const struct collector *c, const struct btf *vmlinux,
			const struct btf *kvm_btf, const char *fn, int refused)
{
	if (c->opts.no_tracepoints)
		return -ECANCELED;
	if (btf__find_by_name_kind(vmlinux, fn, BTF_KIND_FUNC) <= 0 &&
	    (!kvm_btf || btf__find_by_name_kind(kvm_btf, fn, BTF_KIND_FUNC) <= 0))
		return -ENOENT;
	if (collector_has_probe(c, "kvm_x2apic_icr_fastpath"))
		return -EALREADY;
	return refused;
}

static int probe_tracepoints(struct collector *c, int fexit_refused)
{
	const char *tracefs = c->opts.tracefs ? c->opts.tracefs : TRACEFS_DEFAULT;
	struct btf *vmlinux, *kvm_btf = NULL;
	int err;

	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux) {
		err = -errno;
		fprintf(stderr,
			"ipiv: kernel BTF (/sys/kernel/btf/vmlinux) not readable: %s; "
			"CO-RE needs CONFIG_DEBUG_INFO_BTF=y\n",
			strerror(-err));
		return err;
	}
	if (access("/sys/kernel/btf/kvm", R_OK) == 0)
		kvm_btf = btf__load_module_btf("kvm", vmlinux);
	/* the kernel's own inhibit reason names (KVM types are in kvm's BTF when modular) */
	memset(btf_inhibit_names, 0, sizeof(btf_inhibit_names));
	inhibit_names_source = "builtin";
	if (ipiv_inhibit_names_from_btf(kvm_btf, btf_inhibit_names) > 0)
		inhibit_names_source = "btf:kvm";
	else if (ipiv_inhibit_names_from_btf(vmlinux, btf_inhibit_names) > 0)
		inhibit_names_source = "btf:vmlinux";
	if (strcmp(inhibit_names_source, "builtin"))
		for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
			if (!btf_inhibit_names[r][0]) /* a bit this kernel does not define */
				snprintf(btf_inhibit_names[r], sizeof(btf_inhibit_names[r]),
					 "reason_%u", r);

	for (size_t i = 0; i < N_PROBES; i++) {
		const struct probe_def *def = &probe_defs[i];
		struct ipiv_probe *p = &c->probes[i];
		struct bpf_program *prog;

		p->name = def->tracepoint;
		p->prog = def->prog;
		p->optional = def->optional;
		prog = bpf_object__find_program_by_name(c->skel->obj, def->prog);
		if (!prog) {
			err = -ENOENT;
			fprintf(stderr, "ipiv: BPF program %s missing from the object\n",
				def->prog);
			goto cleanup;
		}
		if (!strncmp(def->tracepoint, FEXIT, strlen(FEXIT))) {
			p->err = fexit_usable(c, vmlinux, kvm_btf, def->tracepoint + strlen(FEXIT),
					      fexit_refused);
			if (p->err)
				bpf_program__set_autoload(prog, false);
			continue;
		}
		if (strchr(def->tracepoint, '/'))
			continue; /* the iterator needs no tracepoint */
		if (!tracepoint_exists(vmlinux, kvm_btf, tracefs, def->tracepoint)) {
			p->err = -ENOENT;
			/* with no_tracepoints nothing is attached and tests feed every program,
			 * those of tracepoints this kernel lacks (kernel-patches/) too */
			if (!c->opts.no_tracepoints)
				bpf_program__set_autoload(prog, false);
			if (!def->optional) {
				err = -ENOENT;
				fprintf(stderr,
					"ipiv: tracepoint kvm:%s missing (not in BTF nor "
					"%s/events/kvm): is KVM loaded?\n",
					def->tracepoint, tracefs);
				goto cleanup;
			}
		}
	}
	for (size_t i = 0; i < sizeof(test_progs) / sizeof(test_progs[0]); i++) {
		struct bpf_program *prog =
			bpf_object__find_program_by_name(c->skel->obj, test_progs[i]);

		if (prog)
			bpf_program__set_autoload(prog, c->opts.test_programs);
	}
	err = 0;
cleanup:
	btf__free(kvm_btf);
	btf__free(vmlinux);
	return err;
}

/*
 * Attaches in reverse table order: what ends an IPI's timing (kvm_eoi, kvm_vcpu_wakeup,
 * kvm_entry) and what gives a send its path (kvm_exit, kvm_msr, kvm_mmio) before what
 * starts it (kvm_apic_accept_irq, then kvm_apic_ipi). The other way round, a delivery
 * accepted in the instant before kvm_eoi was attached waited for an EOI never seen, and
 * the next one of that vector counted as coalesced.
 */
static int attach_probes(struct collector *c)
{
	for (size_t i = N_PROBES; i-- > 0;) {
		struct ipiv_probe *p = &c->probes[i];
		struct bpf_program *prog = bpf_object__find_program_by_name(c->skel->obj, p->prog);
		struct bpf_link *link;

		if (p->err)
			continue;
		if (c->opts.no_tracepoints && !strchr(p->name, '/')) {
			p->err = -ECANCELED;
			continue;
		}
		if (!strncmp(p->name, FEXIT, strlen(FEXIT)))
			link = bpf_program__attach_trace(prog);
		else if (strchr(p->name, '/'))
			link = bpf_program__attach_iter(prog, NULL);
		else
			link = bpf_program__attach_raw_tracepoint(prog, p->name);
		if (!link) {
			p->err = -errno;
			fprintf(stderr, "ipiv: attaching %s failed: %s\n", p->name,
				strerror(-p->err));
			if (!p->optional)
				return p->err;
			continue;
		}
		c->links[i] = link;
		p->attached = true;
	}
	return 0;
}

/* Per-CPU hash maps are preallocated: entries x CPUs x 8 bytes. On large hosts fewer
 * entries keep that within a fixed budget; a full map shows up as drops. */
#define PERCPU_VALUE_BUDGET (64u << 20)

static void size_per_cpu_maps(struct collector *c)
{
	uint32_t fit = PERCPU_VALUE_BUDGET / ((uint32_t)c->ncpus * sizeof(uint64_t));

	if (fit < IPIV_MAX_COUNTERS)
		bpf_map__set_max_entries(c->skel->maps.counters, fit);
	if (fit / 2 < IPIV_MAX_MATRIX)
		bpf_map__set_max_entries(c->skel->maps.matrix, fit / 2);
}

bool ipiv_kernel_at_least(const char *release, int major, int minor)
{
	int maj, min;

	if (!release || sscanf(release, "%d.%d", &maj, &min) != 2)
		return false;
	return maj > major || (maj == major && min >= minor);
}

/*
 * Latency's maps allocate their elements as they fill (BPF_F_NO_PREALLOC), so their bounds
 * can be generous. Tracing programs use such maps cleanly from Linux 6.1, which brought the
 * BPF memory allocator; before, loading them prints a kernel warning with a stack trace
 * (and fails on PREEMPT_RT), so there they are preallocated at the smaller bounds they had
 * when they were.
 */
static void size_latency_maps(struct collector *c)
{
	const char *release = c->opts.kernel_release;
	struct utsname u;

	if (!release && uname(&u) == 0)
		release = u.release;
	if (ipiv_kernel_at_least(release, 6, 1))
		return;
	bpf_map__set_map_flags(c->skel->maps.lat,
			       bpf_map__map_flags(c->skel->maps.lat) & ~BPF_F_NO_PREALLOC);
	bpf_map__set_max_entries(c->skel->maps.lat, IPIV_MAX_LAT_PREALLOC);
	bpf_map__set_map_flags(c->skel->maps.targets,
			       bpf_map__map_flags(c->skel->maps.targets) & ~BPF_F_NO_PREALLOC);
	bpf_map__set_max_entries(c->skel->maps.targets, IPIV_MAX_TARGETS_PREALLOC);
}

/* Opens the object, settles what this kernel has and loads it; fexit_refused (a negative
 * errno) leaves the fexit programs out. */
static int load_object(struct collector *c, int fexit_refused)
{
	int err;

	c->skel = ipiv_bpf__open();
	if (!c->skel) {
		err = -errno;
		fprintf(stderr, "ipiv: opening the BPF object failed: %s\n", strerror(-err));
		return err;
	}
	err = probe_tracepoints(c, fexit_refused);
	if (err)
		return err;
	size_per_cpu_maps(c);
	size_latency_maps(c);
	c->skel->rodata->lat_enabled = !c->opts.no_latency;
	c->skel->rodata->lat_per_vcpu = c->opts.per_vcpu_latency;
	c->skel->rodata->have_pi_wakeup =
		c->opts.no_tracepoints || collector_has_probe(c, "kvm_pi_wakeup");
	return ipiv_bpf__load(c->skel);
}

/* Whether the last load_object tried any fexit program. */
static bool tracing_wanted(const struct collector *c)
{
	for (size_t i = 0; i < N_PROBES; i++)
		if (!strncmp(c->probes[i].name, FEXIT, strlen(FEXIT)) && !c->probes[i].err)
			return true;
	return false;
}

int collector_open(struct collector **out, const struct collector_opts *opts)
{
	struct collector *c;
	int err;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (opts)
		c->opts = *opts;
	if (!c->opts.reclaim_after)
		c->opts.reclaim_after = 2;
	c->stats_fd = -1;
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		err = c->ncpus ? c->ncpus : -EINVAL;
		fprintf(stderr, "ipiv: cannot count possible CPUs: %s\n", strerror(-err));
		goto cleanup;
	}
	libbpf_set_print(libbpf_quiet);

	libbpf_silent = true; /* a refused fexit program is said once, below */
	err = load_object(c, 0);
	libbpf_silent = false;
	if (err && tracing_wanted(c)) {
		/* fentry/fexit refused (kvm_pvm says EPERM): the rest loads without them, and
		 * each fexit probe keeps the error, as a missing optional tracepoint does */
		ipiv_bpf__destroy(c->skel);
		c->skel = NULL;
		err = load_object(c, err);
	}
	if (err) {
		fprintf(stderr,
			"ipiv: loading BPF programs failed: %s (needs CAP_BPF, "
			"CAP_PERFMON and kernel BTF)\n",
			strerror(-err));
		goto cleanup;
	}
	err = attach_probes(c);
	if (err)
		goto cleanup;
	/* vCPU threads live in task storage: these iterators are how user space sees them */
	c->threads_iter = bpf_program__attach_iter(c->skel->progs.ipiv_dump_threads, NULL);
	c->prune_iter = bpf_program__attach_iter(c->skel->progs.ipiv_prune_threads, NULL);
	if (!c->threads_iter || !c->prune_iter) {
		err = -errno;
		fprintf(stderr,
			"ipiv: attaching the task iterators failed: %s (needs iter/task, "
			"Linux 5.8+)\n",
			strerror(-err));
		goto cleanup;
	}
	if (c->opts.bpf_stats) {
		c->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (c->stats_fd < 0)
			fprintf(stderr,
				"ipiv: kernel.bpf_stats_enabled not available: %s; program "
				"run counts stay 0\n",
				strerror(errno));
	}
	*out = c;
	return 0;
cleanup:
	collector_close(c);
	return err;
}

void collector_close(struct collector *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < N_PROBES; i++)
		bpf_link__destroy(c->links[i]);
	bpf_link__destroy(c->threads_iter);
	bpf_link__destroy(c->prune_iter);
	if (c->stats_fd >= 0)
		close(c->stats_fd);
	ipiv_bpf__destroy(c->skel);
	for (size_t i = 0; i < c->n_retired; i++)
		vm_stats_free(&c->retired[i].stats);
	free(c->retired);
	free(c->seen);
	free(c->found);
	free(c->found_vcpus);
	free(c);
}

struct ipiv_bpf *collector_skel(struct collector *c)
{
	return c->skel;
}

/* ---- discovery and reclaim ---- */

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool sorted_has(const uint64_t *keys, size_t n, uint64_t key)
{
	return n && bsearch(&key, keys, n, sizeof(*keys), u64_cmp);
}

/* Collects the distinct VMs that have state in any map or thread (recs), sorted. */
static int vms_in_maps(struct collector *c, const struct ipiv_thread_rec *recs, size_t n_recs,
		       uint64_t **out, size_t *n_out)
{
	size_t n = 0, cap = 64;
	uint64_t *vms = malloc(cap * sizeof(*vms));
	struct ipiv_counter_key ckey, *cprev = NULL;
	uint64_t vkey, *vprev = NULL;

#define ADD_VM(v)                                                               \
	do {                                                                    \
		if (n == cap) {                                                 \
			uint64_t *grown = realloc(vms, 2 * cap * sizeof(*vms)); \
			if (!grown)                                             \
				goto nomem;                                     \
			vms = grown;                                            \
			cap *= 2;                                               \
		}                                                               \
		vms[n++] = (v);                                                 \
	} while (0)

	if (!vms)
		return -ENOMEM;
	while (!bpf_map_get_next_key(bpf_map__fd(c->skel->maps.vms), vprev, &vkey)) {
		ADD_VM(vkey);
		vprev = &vkey;
	}
	while (!bpf_map_get_next_key(bpf_map__fd(c->skel->maps.counters), cprev, &ckey)) {
		ADD_VM(ckey.vm);
		cprev = &ckey;
	}
	for (size_t i = 0; i < n_recs; i++) {
		if (recs[i].t.vm)
			ADD_VM(recs[i].t.vm);
		for (int k = 0; k < IPIV_THREAD_CACHE; k++)
			if (recs[i].t.cache[k].state == IPIV_CACHE_VALID &&
			    recs[i].t.cache[k].key.vm)
				ADD_VM(recs[i].t.cache[k].key.vm);
	}
#undef ADD_VM
	qsort(vms, n, sizeof(*vms), u64_cmp);
	size_t uniq = 0;
	for (size_t i = 0; i < n; i++)
		if (!uniq || vms[uniq - 1] != vms[i])
			vms[uniq++] = vms[i];
	*out = vms;
	*n_out = uniq;
	return 0;
nomem:
	free(vms);
	return -ENOMEM;
}

/* The VM entry key of map fd names: vm_of(key), or with vm_of NULL the first 8 bytes of its
 * value (0 when it is gone). */
static uint64_t entry_vm(int fd, const void *key, uint64_t (*vm_of)(const void *key),
			 unsigned char *value)
{
	uint64_t vm;

	if (vm_of)
		return vm_of(key);
	if (bpf_map_lookup_elem(fd, key, value))
		return 0;
	memcpy(&vm, value, sizeof(vm));
	return vm;
}

/*
 * Deletes every entry of map fd whose VM is in dead (sorted): vm_of(key) names it, or with
 * vm_of NULL the first 8 bytes of the value (value_size bytes). The keys are gathered in one
 * walk and deleted after it: deleting the walk's cursor would restart it from the first key,
 * which made a reclaim cost entries x deleted key reads. A value is read again before its
 * key goes: a new VM may have taken that mm or struct kvm address in between. Gathering
 * that runs out of memory deletes what it has and walks again.
 */
static void delete_entries_of(int fd, size_t key_size, size_t value_size,
			      uint64_t (*vm_of)(const void *key), const uint64_t *dead,
			      size_t n_dead)
{
	unsigned char key[64], next[64], value[512], *doomed = NULL;
	size_t n = 0, cap = 0;
	bool have_key = false, more = true;

	if (key_size > sizeof(key) || (!vm_of && value_size > sizeof(value)))
		return; /* a build-time mistake; the map then grows until full (drops say so) */
	while (more) {
		more = false;
		while (!bpf_map_get_next_key(fd, have_key ? key : NULL, next)) {
			memcpy(key, next, key_size);
			have_key = true;
			if (!sorted_has(dead, n_dead, entry_vm(fd, key, vm_of, value)))
				continue;
			if (n == cap) {
				size_t grown_cap = cap ? 2 * cap : 256;
				unsigned char *grown = realloc(doomed, grown_cap * key_size);

				if (!grown) {
					more = n > 0; /* delete these, then walk again */
					break;
				}
				doomed = grown;
				cap = grown_cap;
			}
			memcpy(doomed + n++ * key_size, key, key_size);
		}
		for (size_t i = 0; i < n; i++) {
			const void *k = doomed + i * key_size;

			if (vm_of || sorted_has(dead, n_dead, entry_vm(fd, k, vm_of, value)))
				bpf_map_delete_elem(fd, k);
		}
		n = 0;
		have_key = false;
	}
	free(doomed);
}

/* Deletes every key of map whose VM is in dead (sorted). vm_of returns the key's VM. */
static void delete_keys_of(int fd, size_t key_size, uint64_t (*vm_of)(const void *key),
			   const uint64_t *dead, size_t n_dead)
{
	delete_entries_of(fd, key_size, 0, vm_of, dead, n_dead);
}

static uint64_t vm_of_counter(const void *key)
{
	return ((const struct ipiv_counter_key *)key)->vm;
}

static uint64_t vm_of_matrix(const void *key)
{
	return ((const struct ipiv_matrix_key *)key)->vm;
}

static uint64_t vm_of_vm(const void *key)
{
	return *(const uint64_t *)key;
}

/* Deletes every entry of map whose value starts with the key of a VM in dead (sorted): the
 * mm map, the pointer -> key map and the vCPU state map all lead with it. */
static void delete_values_of(const struct bpf_map *map, const uint64_t *dead, size_t n_dead)
{
	delete_entries_of(bpf_map__fd(map), bpf_map__key_size(map), bpf_map__value_size(map), NULL,
			  dead, n_dead);
}

static void run_iter(struct bpf_link *link);

static uint64_t now_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec;
}

/* dst += src, field by field (struct ipiv_counts is all uint64_t). */
static void counts_add(struct ipiv_counts *dst, const struct ipiv_counts *src)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;

	for (size_t i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

static void vm_stats_free(struct ipiv_vm_stats *vm)
{
	free(vm->send_cells);
	free(vm->exits);
	free(vm->vcpus);
	free(vm->lat);
	free(vm->matrix);
}

static void *dup_array(const void *src, size_t n, size_t size, int *err)
{
	void *p;

	if (!n)
		return NULL;
	p = malloc(n * size);
	if (!p)
		*err = -ENOMEM;
	else
		memcpy(p, src, n * size);
	return p;
}

/* A deep copy of src into dst; on failure dst owns nothing. */
static int vm_stats_copy(struct ipiv_vm_stats *dst, const struct ipiv_vm_stats *src)
{
	int err = 0;

	*dst = *src;
	dst->send_cells =
		dup_array(src->send_cells, src->n_send_cells, sizeof(*src->send_cells), &err);
	dst->exits = dup_array(src->exits, src->n_exits, sizeof(*src->exits), &err);
	dst->vcpus = dup_array(src->vcpus, src->n_vcpus, sizeof(*src->vcpus), &err);
	dst->lat = dup_array(src->lat, src->n_lat, sizeof(*src->lat), &err);
	dst->matrix = dup_array(src->matrix, src->n_matrix, sizeof(*src->matrix), &err);
	if (err)
		vm_stats_free(dst);
	return err;
}

static void expire_retired(struct collector *c, uint64_t now)
{
	size_t keep = 0;

	for (size_t i = 0; i < c->n_retired; i++) {
		if (c->retired[i].until_ns > now)
			c->retired[keep++] = c->retired[i];
		else
			vm_stats_free(&c->retired[i].stats);
	}
	c->n_retired = keep;
}

/*
 * The dead VMs' final counts, read before their map entries go: added to the host totals,
 * and kept for the retention window. A VM whose process ended between two polls is here
 * with every count it made (its threads' caches moved to the maps as they exited).
 */
static int retire(struct collector *c, const uint64_t *dead, size_t n_dead)
{
	struct ipiv_snapshot *snap;
	struct retired_vm *more;
	uint64_t until = now_ns() + c->opts.exited_retention_ns;
	int err = collector_snapshot(c, &snap);

	if (err)
		return err;
	more = realloc(c->retired, (c->n_retired + n_dead) * sizeof(*more));
	if (!more && n_dead) {
		collector_snapshot_free(snap);
		return -ENOMEM;
	}
	c->retired = more;
	for (size_t i = 0; i < snap->n_vms; i++) {
		struct ipiv_vm_stats *vm = &snap->vms[i];

		if (vm->exited || !sorted_has(dead, n_dead, vm->vm))
			continue;
		counts_add(&c->gone, &vm->counts);
		if (!c->opts.exited_retention_ns)
			continue;
		vm->alive = false;
		vm->exited = true;
		/* a key of its own: a new VM at the same address may take the old key */
		vm->vm = IPIV_RETIRED_KEY | c->n_retired_ever++;
		c->retired[c->n_retired].stats = *vm;
		c->retired[c->n_retired++].until_ns = until;
		memset(vm, 0, sizeof(*vm)); /* its arrays belong to the retired entry now */
	}
	collector_snapshot_free(snap);
	return 0;
}

static void reclaim(struct collector *c, const uint64_t *dead, size_t n_dead)
{
	delete_keys_of(bpf_map__fd(c->skel->maps.counters), sizeof(struct ipiv_counter_key),
		       vm_of_counter, dead, n_dead);
	delete_keys_of(bpf_map__fd(c->skel->maps.matrix), sizeof(struct ipiv_matrix_key),
		       vm_of_matrix, dead, n_dead);
	delete_keys_of(bpf_map__fd(c->skel->maps.vms), sizeof(uint64_t), vm_of_vm, dead, n_dead);
	/* latency keys and latency's target records start with the VM key too */
	delete_keys_of(bpf_map__fd(c->skel->maps.lat), sizeof(struct ipiv_lat_key), vm_of_vm, dead,
		       n_dead);
	delete_keys_of(bpf_map__fd(c->skel->maps.targets), sizeof(struct ipiv_target_key), vm_of_vm,
		       dead, n_dead);
	delete_values_of(c->skel->maps.mms, dead, n_dead);
	delete_values_of(c->skel->maps.vcpu_states, dead, n_dead);
	/* the pointer -> key entries of dead VMs: a new VM at that address starts afresh */
	delete_values_of(c->skel->maps.vm_keys, dead, n_dead);
	/* last: the threads of VMs whose vms entry is gone lose their storage */
	run_iter(c->prune_iter);
	c->vms_reclaimed += n_dead;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct ipiv_discovery_rec *x = a, *y = b;

	if (x->vm != y->vm)
		return x->vm < y->vm ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->vcpu_id < y->vcpu_id ? -1 : x->vcpu_id > y->vcpu_id;
}

/* Sums the iterator's records per VM into c->found, sorted by vm. */
static int summarize(struct collector *c, struct ipiv_discovery_rec *recs, size_t n)
{
	struct vm_found *found = calloc(n ? n : 1, sizeof(*found));
	struct vcpu_found *vcpus = calloc(n ? n : 1, sizeof(*vcpus));
	size_t n_found = 0, n_vcpus = 0;

	if (!found || !vcpus) {
		free(found);
		free(vcpus);
		return -ENOMEM;
	}
	qsort(recs, n, sizeof(*recs), rec_cmp);
	for (size_t i = 0; i < n; i++) {
		struct ipiv_discovery_rec *r = &recs[i];
		bool same_vm = i && recs[i - 1].vm == r->vm;

		if (!same_vm)
			found[n_found++].vm = r->vm;
		struct vm_found *f = &found[n_found - 1];

		if (r->kind == IPIV_FILE_VM && !f->tgid)
			f->tgid = r->tgid;
		/* a vCPU fd may be open in several processes or twice in one */
		if (r->kind == IPIV_FILE_VCPU && !(same_vm && recs[i - 1].kind == IPIV_FILE_VCPU &&
						   recs[i - 1].vcpu_id == r->vcpu_id)) {
			f->vcpus++;
			vcpus[n_vcpus++] = (struct vcpu_found){
				.vm = r->vm,
				.vcpu_id = r->vcpu_id,
				.tid = r->vcpu_tid,
				.apicv = (uint8_t)r->apicv_active,
				.apic_mode = (uint8_t)r->apic_mode,
			};
		}
	}
	free(c->found);
	c->found = found;
	c->n_found = n_found;
	free(c->found_vcpus);
	c->found_vcpus = vcpus; /* in rec_cmp order: by (vm, vcpu_id) */
	c->n_found_vcpus = n_vcpus;
	return 0;
}

static const struct vm_found *found_find(const struct collector *c, uint64_t vm)
{
	size_t lo = 0, hi = c->n_found;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->found[mid].vm == vm)
			return &c->found[mid];
		if (c->found[mid].vm < vm)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Reads every record of size rec_size an iterator writes into a new array (*out, *n);
 * records are written whole, but read() may split or join them. */
static int read_iter(struct bpf_link *link, size_t rec_size, void **out, size_t *n_out)
{
	size_t n = 0, cap = 16, got = 0;
	char *recs;
	int fd, err = 0;
	ssize_t len;

	*out = NULL;
	*n_out = 0;
	if (!link)
		return -ENOTSUP;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0)
		return -errno;
	recs = malloc(cap * rec_size);
	if (!recs) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n == cap) {
			char *grown = realloc(recs, 2 * cap * rec_size);

			if (!grown) {
				err = -ENOMEM;
				break;
			}
			recs = grown;
			cap *= 2;
		}
		len = read(fd, recs + n * rec_size + got, rec_size - got);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0) {
			err = -errno;
			break;
		}
		if (len == 0)
			break;
		got += len;
		if (got == rec_size) {
			got = 0;
			n++;
		}
	}
	close(fd);
	if (err) {
		free(recs);
		return err;
	}
	*out = recs;
	*n_out = n;
	return 0;
}

/* Runs an iterator for its side effects. */
static void run_iter(struct bpf_link *link)
{
	void *recs;
	size_t n;

	if (!read_iter(link, 1, &recs, &n))
		free(recs);
}

/* Every vCPU thread with its identity and counter cache (task storage, via the iterator). */
static int read_threads(struct collector *c, struct ipiv_thread_rec **recs, size_t *n)
{
	return read_iter(c->threads_iter, sizeof(**recs), (void **)recs, n);
}

/* Runs the discovery iterator (which also registers VMs in the maps). */
static int discover(struct collector *c)
{
	struct ipiv_discovery_rec *recs;
	size_t n;
	int err;

	err = read_iter(c->links[N_PROBES - 1], sizeof(*recs), (void **)&recs, &n);
	if (err)
		return err;
	err = summarize(c, recs, n);
	free(recs);
	return err;
}

static struct vm_seen *seen_find(struct collector *c, uint64_t vm)
{
	for (size_t i = 0; i < c->n_seen; i++)
		if (c->seen[i].vm == vm)
			return &c->seen[i];
	return NULL;
}

size_t collector_vm_pids(const struct collector *c, int *pids, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_found && n < max; i++)
		if (c->found[i].tgid)
			pids[n++] = (int)c->found[i].tgid;
	return n;
}

uint64_t collector_reclaimed(const struct collector *c)
{
	return c->vms_reclaimed;
}

int collector_poll(struct collector *c)
{
	uint64_t *known = NULL, *dead = NULL;
	size_t n_known = 0, n_dead = 0, n_recs = 0;
	struct ipiv_thread_rec *recs = NULL;
	struct vm_seen *seen = NULL;
	int err;

	c->polls++;
	err = discover(c);
	if (!err)
		err = read_threads(c, &recs, &n_recs);
	if (err)
		goto cleanup;
	err = vms_in_maps(c, recs, n_recs, &known, &n_known);
	if (err)
		goto cleanup;
	seen = calloc(n_known ? n_known : 1, sizeof(*seen));
	dead = calloc(n_known ? n_known : 1, sizeof(*dead));
	if (!seen || !dead) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* a VM is reclaimed only after missing reclaim_after discoveries in a row, so one
	 * created between the walk and the map read is not lost */
	for (size_t i = 0; i < n_known; i++) {
		struct vm_seen *old = seen_find(c, known[i]);

		seen[i].vm = known[i];
		/* found by discovery or only in the maps (it lived less than a poll): seen */
		if (!old)
			c->vms_discovered++;
		if (found_find(c, known[i]))
			continue;
		seen[i].missing = (old ? old->missing : 0) + 1;
		if (seen[i].missing >= c->opts.reclaim_after)
			dead[n_dead++] = known[i];
	}
	expire_retired(c, now_ns());
	/* a VM whose final counts cannot be read now is reclaimed at a later poll */
	if (n_dead) {
		qsort(dead, n_dead, sizeof(*dead), u64_cmp);
		err = retire(c, dead, n_dead);
		if (!err) {
			reclaim(c, dead, n_dead);
			/* forgotten: a new VM at a dead one's address may take its key */
			size_t keep = 0;

			for (size_t i = 0; i < n_known; i++)
				if (!sorted_has(dead, n_dead, seen[i].vm))
					seen[keep++] = seen[i];
			n_known = keep;
		}
	}
	free(c->seen);
	c->seen = seen;
	c->n_seen = n_known;
	seen = NULL;
cleanup:
	free(recs);
	c->last_poll_err = err;
	free(known);
	free(dead);
	free(seen);
	return err;
}

/* ---- snapshot ---- */

static uint64_t sum_percpu(const uint64_t *values, int ncpus)
{
	uint64_t sum = 0;

	for (int i = 0; i < ncpus; i++)
		sum += values[i];
	return sum;
}

static struct ipiv_vm_stats *vm_row(struct ipiv_snapshot *snap, uint64_t vm)
{
	size_t lo = 0, hi = snap->n_vms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (snap->vms[mid].vm == vm)
			return &snap->vms[mid];
		if (snap->vms[mid].vm < vm)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Finds or appends the vCPU row; rows are sorted at the end. */
static struct ipiv_vcpu_stats *vcpu_row(struct ipiv_vm_stats *vm, uint32_t vcpu_id)
{
	struct ipiv_vcpu_stats *grown;

	for (size_t i = 0; i < vm->n_vcpus; i++)
		if (vm->vcpus[i].vcpu_id == vcpu_id)
			return &vm->vcpus[i];
	/* by half again: a realloc per row is quadratic where realloc copies (ASan) */
	grown = vm->vcpus;
	if ((vm->n_vcpus + 1) * sizeof(*grown) > malloc_usable_size(grown))
		grown = realloc(grown, (vm->n_vcpus * 3 / 2 + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	vm->vcpus = grown;
	memset(&grown[vm->n_vcpus], 0, sizeof(*grown));
	grown[vm->n_vcpus].vcpu_id = vcpu_id;
	return &grown[vm->n_vcpus++];
}

static void *append(void *array, size_t *n, size_t size)
{
	char *grown = realloc(array, (*n + 1) * size);

	if (!grown)
		return NULL;
	memset(grown + *n * size, 0, size);
	(*n)++;
	return grown;
}

/* Adds one counter to the VM total and to its vCPU's row (IPIV_VCPU_NONE's for a VMM thread);
 * the per-VM tables of sends by class, exits by reason and inhibit changes as well. */
static int add_counter(struct ipiv_vm_stats *vm, const struct ipiv_counter_key *key, uint64_t value)
{
	struct ipiv_vcpu_stats *row = vcpu_row(vm, key->vcpu);

	if (!row)
		return -ENOMEM;
	counter_add(&vm->counts, key, value);
	counter_add(&row->counts, key, value);

	if (key->kind == IPIV_CNT_SEND && key->sub < IPIV_PATH_COUNT &&
	    key->sub2 < ICR_CLASS_COUNT) {
		vm->sent[key->sub][key->sub2] += value;
	} else if (key->kind == IPIV_CNT_EXIT) {
		struct ipiv_exit_cell *exits;
		size_t i;

		for (i = 0; i < vm->n_exits; i++)
			if (vm->exits[i].isa == key->sub && vm->exits[i].reason == key->sub2)
				break;
		if (i == vm->n_exits) {
			exits = append(vm->exits, &vm->n_exits, sizeof(*exits));
			if (!exits)
				return -ENOMEM;
			vm->exits = exits;
			exits[i].isa = key->sub;
			exits[i].reason = key->sub2;
		}
		vm->exits[i].count += value;
	} else if (key->kind == IPIV_CNT_INHIBIT && key->sub < IPIV_INHIBIT_COUNT) {
		if (key->sub2)
			vm->inhibit_set[key->sub] += value;
		else
			vm->inhibit_clear[key->sub] += value;
	}
	return 0;
}

static int vcpu_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct ipiv_vcpu_stats *)a)->vcpu_id;
	uint32_t y = ((const struct ipiv_vcpu_stats *)b)->vcpu_id;

	return x < y ? -1 : x > y; /* IPIV_VCPU_NONE sorts last */
}

static int exit_cmp(const void *a, const void *b)
{
	const struct ipiv_exit_cell *x = a, *y = b;

	if (x->isa != y->isa)
		return x->isa < y->isa ? -1 : 1;
	return x->reason < y->reason ? -1 : x->reason > y->reason;
}

/* The sparse list of the dense sent[][] table, in (path, class) order. */
static int build_send_cells(struct ipiv_vm_stats *vm)
{
	size_t n = 0;

	for (uint32_t p = 0; p < IPIV_PATH_COUNT; p++)
		for (uint32_t k = 0; k < ICR_CLASS_COUNT; k++)
			n += vm->sent[p][k] != 0;
	if (!n)
		return 0;
	vm->send_cells = calloc(n, sizeof(*vm->send_cells));
	if (!vm->send_cells)
		return -ENOMEM;
	for (uint32_t p = 0; p < IPIV_PATH_COUNT; p++)
		for (uint32_t k = 0; k < ICR_CLASS_COUNT; k++)
			if (vm->sent[p][k])
				vm->send_cells[vm->n_send_cells++] =
					(struct ipiv_send_cell){p, k, vm->sent[p][k]};
	return 0;
}

static int matrix_cmp(const void *a, const void *b)
{
	const struct ipiv_matrix_cell *x = a, *y = b;

	if (x->src_vcpu != y->src_vcpu)
		return x->src_vcpu < y->src_vcpu ? -1 : 1;
	return x->dst_vcpu < y->dst_vcpu ? -1 : x->dst_vcpu > y->dst_vcpu;
}

static int vm_pid_cmp(const void *a, const void *b)
{
	const struct ipiv_vm_stats *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->vm < y->vm ? -1 : x->vm > y->vm;
}

static int read_counters(struct collector *c, struct ipiv_snapshot *snap, uint64_t *percpu)
{
	int fd = bpf_map__fd(c->skel->maps.counters);
	struct ipiv_counter_key key, *prev = NULL;
	int err;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, percpu))
			continue; /* deleted by a concurrent reclaim */
		struct ipiv_vm_stats *vm = vm_row(snap, key.vm);

		if (!vm)
			continue;
		err = add_counter(vm, &key, sum_percpu(percpu, c->ncpus));
		if (err)
			return err;
	}
	return 0;
}

int ipiv_lat_hist_cmp(const void *a, const void *b)
{
	const struct ipiv_lat_hist *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	return x->vcpu < y->vcpu ? -1 : x->vcpu > y->vcpu;
}

static struct ipiv_lat_hist *lat_row(struct ipiv_vm_stats *vm, const struct ipiv_lat_key *key)
{
	struct ipiv_lat_hist *rows;

	for (size_t i = 0; i < vm->n_lat; i++)
		if (vm->lat[i].kind == key->kind && vm->lat[i].sub == key->sub &&
		    vm->lat[i].vcpu == key->vcpu)
			return &vm->lat[i];
	rows = append(vm->lat, &vm->n_lat, sizeof(*rows));
	if (!rows)
		return NULL;
	vm->lat = rows;
	rows[vm->n_lat - 1].kind = key->kind;
	rows[vm->n_lat - 1].sub = key->sub;
	rows[vm->n_lat - 1].vcpu = key->vcpu;
	return &rows[vm->n_lat - 1];
}

/* Adds one histogram bucket (key, value) of the lat map to its VM's row of snap. */
static int add_latency(struct ipiv_snapshot *snap, const struct ipiv_lat_key *key,
		       const struct ipiv_lat_value *value)
{
	struct ipiv_vm_stats *vm = vm_row(snap, key->vm);
	struct ipiv_lat_hist *row;

	if (!vm)
		return 0;
	if (key->kind == IPIV_LAT_UNMATCHED) {
		if (key->sub < IPIV_UNM_COUNT)
			vm->lat_unmatched[key->sub] += value->count;
		return 0;
	}
	/* IPIV_LAT_BINDING keys (a VM's dense slot) are no histogram either */
	if (key->kind >= IPIV_LAT_KIND_COUNT || key->bucket >= HIST_BUCKETS)
		return 0;
	row = lat_row(vm, key);
	if (!row)
		return -ENOMEM;
	row->h.buckets[key->bucket] += value->count;
	row->h.count += value->count;
	row->h.sum_ns += value->sum_ns;
	return 0;
}

/* Adds series s of a VM's dense slot (a VM-wide histogram) to its row of vm. */
static int add_latency_series(struct ipiv_vm_stats *vm, uint32_t s,
			      const struct ipiv_lat_series *series)
{
	struct ipiv_lat_key key = {.vm = vm->vm, .vcpu = IPIV_LAT_VM_WIDE};
	struct ipiv_lat_hist *row;

	ipiv_lat_series_kind(s, &key.kind, &key.sub);
	row = lat_row(vm, &key);
	if (!row)
		return -ENOMEM;
	for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
		row->h.buckets[b] += series->buckets[b];
		row->h.count += series->buckets[b];
	}
	row->h.sum_ns += series->sum_ns;
	return 0;
}

/*
 * The dense slots (latency_maps.h) into the snapshot's VM rows: a slot's header, the series
 * it marks as used, then the header again. A slot that changed hands in between (its VM was
 * reclaimed and another took it) is left out of this snapshot.
 */
static int read_dense_latency(struct collector *c, struct ipiv_snapshot *snap)
{
	int slots_fd = bpf_map__fd(c->skel->maps.lat_slots);
	int series_fd = bpf_map__fd(c->skel->maps.lat_series);
	struct ipiv_lat_series *series = malloc(IPIV_LAT_SERIES * sizeof(*series));
	int err = 0;

	if (!series)
		return -ENOMEM;
	for (uint32_t i = 0; i < IPIV_LAT_SLOTS && !err; i++) {
		uint32_t used[IPIV_LAT_SERIES], n_used = 0;
		struct ipiv_lat_slot slot, again;
		struct ipiv_vm_stats *vm;

		if (bpf_map_lookup_elem(slots_fd, &i, &slot) || !slot.vm ||
		    !(vm = vm_row(snap, slot.vm)))
			continue;
		for (uint32_t s = 0; s < IPIV_LAT_SERIES && !err; s++) {
			uint32_t elem = i * IPIV_LAT_SERIES + s;

			if (!(slot.series_used & (1ull << s)))
				continue;
			err = bpf_map_lookup_elem(series_fd, &elem, &series[n_used]);
			used[n_used++] = s;
		}
		if (err || bpf_map_lookup_elem(slots_fd, &i, &again) || again.vm != slot.vm)
			continue;
		for (int r = 0; r < IPIV_UNM_COUNT; r++)
			vm->lat_unmatched[r] += again.unmatched[r];
		for (uint32_t k = 0; k < n_used && !err; k++)
			err = add_latency_series(vm, used[k], &series[k]);
	}
	free(series);
	return err;
}

/* Entries of the lat map read per system call. */
#define LAT_BATCH 4096

/* The lat map into the snapshot's VM rows, LAT_BATCH entries per system call (batch
 * lookups of hash maps: Linux 5.6+; a full map holds IPIV_MAX_LAT entries), and the dense
 * slots of the VMs that have one. */
static int read_latency(struct collector *c, struct ipiv_snapshot *snap)
{
	int fd = bpf_map__fd(c->skel->maps.lat), err = 0;
	struct ipiv_lat_key *keys = malloc(LAT_BATCH * sizeof(*keys));
	struct ipiv_lat_value *values = malloc(LAT_BATCH * sizeof(*values));
	__u64 batch = 0; /* the kernel's cursor (a bucket index for hash maps) */
	bool started = false, done = false;

	for (size_t i = 0; i < snap->n_vms; i++)
		snap->vms[i].latency_enabled = !c->opts.no_latency;
	if (!keys || !values) {
		err = -ENOMEM;
		goto out;
	}
	while (!done && !err) {
		__u32 count = LAT_BATCH;

		err = bpf_map_lookup_batch(fd, started ? &batch : NULL, &batch, keys, values,
					   &count, NULL);
		if (err == -ENOENT) { /* the end; count holds the last entries */
			done = true;
			err = 0;
		} else if (err) {
			break; /* -ENOSPC: one hash bucket holding more than LAT_BATCH entries */
		}
		started = true;
		for (__u32 i = 0; i < count && !err; i++)
			err = add_latency(snap, &keys[i], &values[i]);
	}
	if (!err)
		err = read_dense_latency(c, snap);
	for (size_t i = 0; i < snap->n_vms && !err; i++)
		if (snap->vms[i].n_lat)
			qsort(snap->vms[i].lat, snap->vms[i].n_lat, sizeof(*snap->vms[i].lat),
			      ipiv_lat_hist_cmp);
out:
	free(keys);
	free(values);
	return err;
}

/* The rows of (kind, sub) of vcpu (NULL: every row) merged into *out; false if empty. */
static bool merge_latency(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub,
			  const uint32_t *vcpu, struct latency_hist *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < vm->n_lat; i++)
		if (vm->lat[i].kind == kind && (sub == IPIV_LAT_ANY_SUB || vm->lat[i].sub == sub) &&
		    (!vcpu || vm->lat[i].vcpu == *vcpu))
			latency_merge(out, &vm->lat[i].h);
	return out->count > 0;
}

bool vm_latency(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub,
		struct latency_hist *out)
{
	return merge_latency(vm, kind, sub, NULL, out);
}

bool vm_vcpu_latency(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub, uint32_t vcpu,
		     struct latency_hist *out)
{
	return merge_latency(vm, kind, sub, &vcpu, out);
}

bool vm_latency_per_vcpu(const struct ipiv_vm_stats *vm)
{
	for (size_t i = 0; i < vm->n_lat; i++)
		if (vm->lat[i].vcpu != IPIV_LAT_VM_WIDE)
			return true;
	return false;
}

static int read_matrix(struct collector *c, struct ipiv_snapshot *snap, uint64_t *percpu)
{
	int fd = bpf_map__fd(c->skel->maps.matrix);
	struct ipiv_matrix_key key, *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		struct ipiv_vm_stats *vm = vm_row(snap, key.vm);
		struct ipiv_matrix_cell *cells;

		prev = &key;
		if (!vm || bpf_map_lookup_elem(fd, &key, percpu))
			continue;
		cells = append(vm->matrix, &vm->n_matrix, sizeof(*cells));
		if (!cells)
			return -ENOMEM;
		vm->matrix = cells;
		cells[vm->n_matrix - 1].src_vcpu = key.src_vcpu;
		cells[vm->n_matrix - 1].dst_vcpu = key.dst_vcpu;
		cells[vm->n_matrix - 1].count = sum_percpu(percpu, c->ncpus);
	}
	return 0;
}

static int read_identity(struct collector *c, struct ipiv_snapshot *snap,
			 const struct ipiv_thread_rec *recs, size_t n_recs)
{
	int vms_fd = bpf_map__fd(c->skel->maps.vms);

	for (size_t i = 0; i < snap->n_vms; i++) {
		struct ipiv_vm_stats *vm = &snap->vms[i];
		struct vm_seen *seen = seen_find(c, vm->vm);
		struct ipiv_vm state;

		const struct vm_found *found = found_find(c, vm->vm);

		vm->alive = seen && !seen->missing;
		if (found) {
			vm->vcpu_count = found->vcpus;
			vm->pid = (int32_t)found->tgid;
		}
		if (bpf_map_lookup_elem(vms_fd, &vm->vm, &state))
			continue;
		if (state.tgid)
			vm->pid = (int32_t)state.tgid;
		memcpy(vm->stats_id, state.stats_id, sizeof(vm->stats_id));
		vm->stats_id[sizeof(vm->stats_id) - 1] = '\0';
		vm->cmdline_len = state.cmdline_len <= sizeof(vm->cmdline) ? state.cmdline_len : 0;
		memcpy(vm->cmdline, state.cmdline, vm->cmdline_len);
		vm->cmdline_cut = state.cmdline_cut;
		vm->inhibits_known = state.inhibits_known;
		vm->inhibits = state.inhibits;
		/* the ring's valid slots, oldest first */
		{
			uint32_t n =
				state.n_changes < IPIV_TIMELINE ? state.n_changes : IPIV_TIMELINE;

			for (uint32_t k = 0; k < n; k++)
				vm->timeline[k] = state.changes[(state.n_changes - n + k) &
								(IPIV_TIMELINE - 1)];
			vm->n_timeline = n;
		}
	}
	/* each vCPU as its file showed it at the last discovery: APICv state, APIC mode and
	 * the thread that last ran it, also once that thread has exited */
	for (size_t i = 0; i < c->n_found_vcpus; i++) {
		const struct vcpu_found *f = &c->found_vcpus[i];
		struct ipiv_vm_stats *vm = vm_row(snap, f->vm);
		struct ipiv_vcpu_stats *row;

		if (!vm)
			continue;
		row = vcpu_row(vm, f->vcpu_id);
		if (!row)
			return -ENOMEM;
		row->tid = f->tid;
		row->apicv_active = f->apicv;
		row->apic_mode = f->apic_mode;
	}
	/* the live vCPU threads: their tid and the APIC mode of their last IPI are newer */
	for (size_t i = 0; i < n_recs; i++) {
		const struct ipiv_thread *thread = &recs[i].t;
		struct ipiv_vm_stats *vm = vm_row(snap, thread->vm);
		struct ipiv_vcpu_stats *row;

		if (!vm || thread->vcpu_id == IPIV_VCPU_NONE)
			continue;
		row = vcpu_row(vm, thread->vcpu_id);
		if (!row)
			return -ENOMEM;
		row->tid = recs[i].tid;
		if (thread->apic_mode != IPIV_APIC_UNKNOWN)
			row->apic_mode = thread->apic_mode;
		if (!vm->pid)
			vm->pid = (int32_t)thread->tgid;
	}
	return 0;
}

/* Adds n to the (src, dst) cell of vm's matrix. */
static int matrix_add(struct ipiv_vm_stats *vm, uint32_t src, uint32_t dst, uint64_t n)
{
	struct ipiv_matrix_cell *cells;

	for (size_t i = 0; i < vm->n_matrix; i++)
		if (vm->matrix[i].src_vcpu == src && vm->matrix[i].dst_vcpu == dst) {
			vm->matrix[i].count += n;
			return 0;
		}
	cells = append(vm->matrix, &vm->n_matrix, sizeof(*cells));
	if (!cells)
		return -ENOMEM;
	vm->matrix = cells;
	cells[vm->n_matrix - 1] = (struct ipiv_matrix_cell){src, dst, n};
	return 0;
}

/* The counts vCPU threads keep in their own storage (include/ipiv.h, IPIV_THREAD_CACHE),
 * added to what the maps hold. */
static int read_thread_caches(struct ipiv_snapshot *snap, const struct ipiv_thread_rec *recs,
			      size_t n_recs)
{
	for (size_t i = 0; i < n_recs; i++)
		for (int k = 0; k < IPIV_THREAD_CACHE; k++) {
			const struct ipiv_cache_entry *e = &recs[i].t.cache[k];
			struct ipiv_vm_stats *vm;
			int err;

			if (e->state != IPIV_CACHE_VALID || !e->n ||
			    !(vm = vm_row(snap, e->key.vm)))
				continue;
			if (e->key.kind == IPIV_CNT_MATRIX_CELL)
				err = matrix_add(vm, e->key.sub2, e->key.vcpu, e->n);
			else
				err = add_counter(vm, &e->key, e->n);
			if (err)
				return err;
		}
	return 0;
}

static int read_self(struct collector *c, struct ipiv_self_stats *self, uint64_t *percpu)
{
	int drops_fd = bpf_map__fd(c->skel->maps.drops);
	struct bpf_program *prog;
	size_t n = 0;

	self->probes = calloc(N_PROBES, sizeof(*self->probes));
	if (!self->probes)
		return -ENOMEM;
	memcpy(self->probes, c->probes, sizeof(c->probes));
	self->n_probes = N_PROBES;
	for (size_t i = 0; i < N_PROBES; i++)
		self->n_attached += c->probes[i].attached;

	for (uint32_t r = 0; r < IPIV_DROP_COUNT; r++)
		if (!bpf_map_lookup_elem(drops_fd, &r, percpu))
			self->drops[r] = sum_percpu(percpu, c->ncpus);

	bpf_object__for_each_program(prog, c->skel->obj) n++;
	self->progs = calloc(n ? n : 1, sizeof(*self->progs));
	if (!self->progs)
		return -ENOMEM;
	bpf_object__for_each_program(prog, c->skel->obj)
	{
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		struct ipiv_prog_stats *ps = &self->progs[self->n_progs++];

		/* The kernel keeps 15 characters of a name, which makes two of ours equal;
		 * the object knows the whole one. */
		snprintf(ps->name, sizeof(ps->name), "%s", bpf_program__name(prog));
		ps->run_cnt = info.run_cnt;
		ps->run_time_ns = info.run_time_ns;
	}
	self->bpf_stats_enabled = c->stats_fd >= 0;
	self->vms_discovered = c->vms_discovered;
	self->vms_reclaimed = c->vms_reclaimed;
	self->polls = c->polls;
	self->last_poll_err = c->last_poll_err;
	return 0;
}

/* One attempt at a snapshot; -EAGAIN when a thread moved its cached counts to the maps
 * while they were read (each count would then be seen twice or not at all). */
/* Appends copies of the retired VMs' final counts to snap (already in its host totals). */
static int add_retired(const struct collector *c, struct ipiv_snapshot *snap)
{
	struct ipiv_vm_stats *vms;
	int err;

	if (!c->n_retired)
		return 0;
	vms = realloc(snap->vms, (snap->n_vms + c->n_retired) * sizeof(*vms));
	if (!vms)
		return -ENOMEM;
	snap->vms = vms;
	for (size_t i = 0; i < c->n_retired; i++) {
		err = vm_stats_copy(&snap->vms[snap->n_vms], &c->retired[i].stats);
		if (err)
			return err;
		snap->n_vms++;
	}
	return 0;
}

static int snapshot_once(struct collector *c, struct ipiv_snapshot **out, uint64_t *percpu)
{
	uint64_t flushed = __atomic_load_n(&c->skel->bss->flush_end, __ATOMIC_ACQUIRE);
	struct ipiv_snapshot *snap;
	struct ipiv_thread_rec *recs = NULL;
	uint64_t *vms = NULL;
	size_t n_vms = 0, n_recs = 0;
	int err;

	*out = NULL;
	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	snap->taken_ns = now_ns();

	err = read_threads(c, &recs, &n_recs);
	if (!err)
		err = vms_in_maps(c, recs, n_recs, &vms, &n_vms);
	if (err)
		goto cleanup;
	snap->vms = calloc(n_vms ? n_vms : 1, sizeof(*snap->vms));
	if (!snap->vms) {
		err = -ENOMEM;
		goto cleanup;
	}
	snap->n_vms = n_vms;
	for (size_t i = 0; i < n_vms; i++)
		snap->vms[i].vm = vms[i]; /* sorted by vm for vm_row() until the end */

	err = read_identity(c, snap, recs, n_recs);
	if (!err)
		err = read_counters(c, snap, percpu);
	if (!err)
		err = read_matrix(c, snap, percpu);
	if (!err)
		err = read_thread_caches(snap, recs, n_recs);
	if (!err && __atomic_load_n(&c->skel->bss->flush_begin, __ATOMIC_ACQUIRE) != flushed)
		err = -EAGAIN;
	if (!err)
		err = read_latency(c, snap);
	if (!err)
		err = read_self(c, &snap->self, percpu);
	if (err)
		goto cleanup;

	for (size_t i = 0; i < n_vms; i++) {
		struct ipiv_vm_stats *vm = &snap->vms[i];

		err = build_send_cells(vm);
		if (err)
			goto cleanup;
		if (vm->n_vcpus) /* NULL arrays when empty, and qsort(NULL, 0) is undefined */
			qsort(vm->vcpus, vm->n_vcpus, sizeof(*vm->vcpus), vcpu_cmp);
		if (vm->n_exits)
			qsort(vm->exits, vm->n_exits, sizeof(*vm->exits), exit_cmp);
		if (vm->n_matrix)
			qsort(vm->matrix, vm->n_matrix, sizeof(*vm->matrix), matrix_cmp);
		uint32_t rows = 0;

		for (size_t j = 0; j < vm->n_vcpus; j++)
			rows += vm->vcpus[j].vcpu_id != IPIV_VCPU_NONE;
		if (rows > vm->vcpu_count)
			vm->vcpu_count = rows;
	}
	snap->host = c->gone;
	for (size_t i = 0; i < n_vms; i++)
		counts_add(&snap->host, &snap->vms[i].counts);
	err = add_retired(c, snap);
	if (err)
		goto cleanup;
	qsort(snap->vms, snap->n_vms, sizeof(*snap->vms), vm_pid_cmp);
	*out = snap;
	snap = NULL;
cleanup:
	collector_snapshot_free(snap);
	free(vms);
	free(recs);
	return err;
}

int collector_snapshot(struct collector *c, struct ipiv_snapshot **out)
{
	uint64_t *percpu = calloc(c->ncpus, sizeof(*percpu));
	int err = -ENOMEM;

	*out = NULL;
	/* thread exits are rare: a retry almost never meets a second one */
	for (int attempt = 0; percpu && attempt < 8; attempt++) {
		err = snapshot_once(c, out, percpu);
		if (err != -EAGAIN)
			break;
	}
	free(percpu);
	return err;
}

void collector_snapshot_free(struct ipiv_snapshot *snap)
{
	if (!snap)
		return;
	for (size_t i = 0; i < snap->n_vms; i++)
		vm_stats_free(&snap->vms[i]);
	free(snap->vms);
	free(snap->self.probes);
	free(snap->self.progs);
	free(snap);
}

const struct ipiv_vm_stats *snapshot_find_vm(const struct ipiv_snapshot *snap, uint64_t vm)
{
	for (size_t i = 0; i < snap->n_vms; i++)
		if (snap->vms[i].vm == vm)
			return &snap->vms[i];
	return NULL;
}

const struct ipiv_vcpu_stats *vm_find_vcpu(const struct ipiv_vm_stats *vm, uint32_t vcpu_id)
{
	for (size_t i = 0; i < vm->n_vcpus; i++)
		if (vm->vcpus[i].vcpu_id == vcpu_id)
			return &vm->vcpus[i];
	return NULL;
}
