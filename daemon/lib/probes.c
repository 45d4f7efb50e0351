// SPDX-License-Identifier: GPL-2.0
/* The collector's probing and attaching: which KVM tracepoints and functions this kernel
 * has (BTF, tracefs), map sizes for this host and kernel, loading bpf/ipiv.bpf.c with what
 * it lacks left out, and attaching what loaded. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "btf_names.h"
#include "collector_priv.h"
#include "ipiv.skel.h"
#include "log.h"

#define VMLINUX_BTF	"/sys/kernel/btf/vmlinux"
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
	/* added by kernel-patches/ (posted-interrupt wakeups); absent on stock kernels. Each
	 * quantity's sources, in order of preference, are in daemon/lib/sources.c. */
	{"kvm_pi_wakeup", "ipiv_pi_wakeup", true},
	/* fexit where the kernel permits it: the x2APIC fastpath's outcome from the return of
	 * KVM's WRMSR exit fastpath (the function of each kernel that has one), and the vCPU
	 * states from the posted-interrupt descriptor (Intel) or AVIC entry (AMD) after load/put */
	{"fexit/handle_fastpath_set_msr_irqoff", "ipiv_fastpath_set_msr", true},
	{"fexit/handle_fastpath_wrmsr", "ipiv_fastpath_wrmsr", true},
	{"fexit/handle_fastpath_wrmsr_imm", "ipiv_fastpath_wrmsr_imm", true},
	{"fexit/vmx_vcpu_pi_load", "ipiv_pi_load", true},
	{"fexit/vmx_vcpu_pi_put", "ipiv_pi_put", true},
	{"fexit/avic_vcpu_load", "ipiv_avic_load", true},
	{"fexit/avic_vcpu_put", "ipiv_avic_put", true},
	{"fexit/avic_vcpu_blocking", "ipiv_avic_blocking", true},
	{"fexit/avic_vcpu_unblocking", "ipiv_avic_unblocking", true},
	/* moves an exiting vCPU thread's cached counts to the maps */
	{"sched_process_exit", "ipiv_thread_exit", true},
	/* not a tracepoint: VM discovery; without it only VMs that send are seen */
	{"iter/task_file", "ipiv_discover", true},
};

#define N_PROBES (sizeof(probe_defs) / sizeof(probe_defs[0]))

static const char *const test_progs[] = {"ipiv_test_exit",	"ipiv_test_entry",
					 "ipiv_test_pi_wakeup", "ipiv_test_avic_physid",
					 "ipiv_test_pi_desc",	"ipiv_test_fastpath"};

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

/* libbpf's own lines (why a load or an attach failed, in its words) are detail: ipivd's log
 * at debug level has them; the collector says what is missing in one line of its own. */
static int libbpf_to_log(enum libbpf_print_level level, const char *fmt, va_list args)
{
	static const char prefix[] = "libbpf: "; /* the component says so already */

	if (!ipiv_log_enabled(IPIV_LOG_DEBUG))
		return 0;
	if (!strncmp(fmt, prefix, sizeof(prefix) - 1))
		fmt += sizeof(prefix) - 1;
	ipiv_vlog(IPIV_LOG_DEBUG, "libbpf", fmt, args);
	return 0;
}

void collector_libbpf_log(void)
{
	libbpf_set_print(libbpf_to_log);
}

#define FEXIT "fexit/"

/*
 * Whether the fexit program on KVM function fn can load: the function is in BTF, and
 * tracing programs load here at all (refused: the error of a load that had them, e.g. EPERM
 * on kvm_pvm; tests feed only tracepoint programs).
 */
static bool btf_has_func(const struct btf *btf, const char *fn)
{
	return btf && btf__find_by_name_kind(btf, fn, BTF_KIND_FUNC) > 0;
}

static int fexit_usable(const struct collector *c, const struct btf *vmlinux,
			const struct btf *kvm_btf, const struct btf *vendor_btf, const char *fn,
			int refused)
{
	if (c->opts.no_tracepoints)
		return -ECANCELED;
	if (!btf_has_func(vmlinux, fn) && !btf_has_func(kvm_btf, fn) &&
	    !btf_has_func(vendor_btf, fn))
		return -ENOENT;
	return refused;
}

static int probe_tracepoints(struct collector *c, int fexit_refused)
{
	const char *tracefs = c->opts.tracefs ? c->opts.tracefs : TRACEFS_DEFAULT;
	struct btf *vmlinux, *kvm_btf = NULL, *vendor_btf = NULL;
	int err;

	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux) {
		err = errno ? -errno : -EINVAL;
		/* libbpf's errno for a kernel without BTF is ESRCH ("No such process") */
		if (access(VMLINUX_BTF, F_OK))
			log_error("collector",
				  "kernel BTF %s missing: CO-RE needs a kernel built with "
				  "CONFIG_DEBUG_INFO_BTF=y",
				  VMLINUX_BTF);
		else
			log_error("collector", "kernel BTF %s not readable: %s", VMLINUX_BTF,
				  strerror(-err));
		return err;
	}
	if (access("/sys/kernel/btf/kvm", R_OK) == 0)
		kvm_btf = btf__load_module_btf("kvm", vmlinux);
	/* the functions of kvm_intel or kvm_amd that fexit programs watch (vCPU load/put) */
	if (access("/sys/kernel/btf/kvm_intel", R_OK) == 0)
		vendor_btf = btf__load_module_btf("kvm_intel", vmlinux);
	else if (access("/sys/kernel/btf/kvm_amd", R_OK) == 0)
		vendor_btf = btf__load_module_btf("kvm_amd", vmlinux);
	ipiv_inhibit_names_load(vmlinux, kvm_btf, &c->inhibit_names);

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
			log_error("collector", "BPF program %s missing from the object", def->prog);
			goto cleanup;
		}
		if (!strncmp(def->tracepoint, FEXIT, strlen(FEXIT))) {
			p->err = fexit_usable(c, vmlinux, kvm_btf, vendor_btf,
					      def->tracepoint + strlen(FEXIT), fexit_refused);
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
				log_error("collector",
					  "tracepoint kvm:%s missing (not in BTF nor "
					  "%s/events/kvm): is KVM loaded?",
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
	btf__free(vendor_btf);
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
int collector_attach(struct collector *c)
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
			ipiv_log(p->optional ? IPIV_LOG_WARN : IPIV_LOG_ERROR, "collector",
				 "attaching %s failed: %s", p->name, strerror(-p->err));
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
	bpf_map__set_map_flags(c->skel->maps.lat_hseries,
			       bpf_map__map_flags(c->skel->maps.lat_hseries) & ~BPF_F_NO_PREALLOC);
	bpf_map__set_max_entries(c->skel->maps.lat_hseries, IPIV_MAX_LAT_HSERIES_PREALLOC);
	bpf_map__set_map_flags(c->skel->maps.targets,
			       bpf_map__map_flags(c->skel->maps.targets) & ~BPF_F_NO_PREALLOC);
	bpf_map__set_max_entries(c->skel->maps.targets, IPIV_MAX_TARGETS_PREALLOC);
}

/* Opens the object, settles what this kernel has and loads it; fexit_refused (a negative
 * errno) leaves the fexit programs out. *loading says whether the kernel was asked to load
 * it (else what failed has been said). */
static int load_object(struct collector *c, int fexit_refused, bool *loading)
{
	int err;

	*loading = false;
	c->skel = ipiv_bpf__open();
	if (!c->skel) {
		err = -errno;
		log_error("collector", "opening the BPF object failed: %s", strerror(-err));
		return err;
	}
	err = probe_tracepoints(c, fexit_refused);
	if (err)
		return err;
	size_per_cpu_maps(c);
	size_latency_maps(c);
	c->skel->rodata->lat_enabled = !c->opts.no_latency;
	c->skel->rodata->lat_per_vcpu = c->opts.per_vcpu_latency;
	c->skel->rodata->lat_send_accept = c->opts.send_accept_latency;
	c->skel->rodata->have_pi_wakeup =
		c->opts.no_tracepoints || collector_has_probe(c, "kvm_pi_wakeup");
	*loading = true;
	return ipiv_bpf__load(c->skel);
}

/* Whether the last load_object tried any fexit program. */
static bool tracing_wanted(const struct collector *c)
{
	for (size_t i = 0; i < N_PROBES; i++)
		if (c->probes[i].name && !strncmp(c->probes[i].name, FEXIT, strlen(FEXIT)) &&
		    !c->probes[i].err)
			return true;
	return false;
}

int collector_load(struct collector *c)
{
	bool loading;
	int err;

	c->probes = calloc(N_PROBES, sizeof(*c->probes));
	c->links = calloc(N_PROBES, sizeof(*c->links));
	if (!c->probes || !c->links)
		return -ENOMEM;
	c->n_probes = N_PROBES;
	err = load_object(c, 0, &loading);

	if (err && loading && tracing_wanted(c)) {
		/* fentry/fexit refused (kvm_pvm says EPERM): the rest loads without them, and
		 * each fexit probe keeps the error, as a missing optional tracepoint does */
		ipiv_bpf__destroy(c->skel);
		c->skel = NULL;
		err = load_object(c, err, &loading);
	}
	if (!err || !loading)
		return err;
	if (err == -EPERM || err == -EACCES)
		log_error("collector",
			  "loading BPF programs failed: %s: needs CAP_BPF, CAP_PERFMON and "
			  "CAP_SYS_ADMIN (run as root)",
			  strerror(-err));
	else
		log_error("collector",
			  "loading BPF programs failed: %s (libbpf's reason is logged at "
			  "debug level)",
			  strerror(-err));
	return err;
}
