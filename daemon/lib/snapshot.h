/* SPDX-License-Identifier: GPL-2.0 */
/* The snapshot: what the collector read from the BPF maps at one instant, as plain C (per
 * VM, per vCPU, host totals, the collector's own health), and the queries on it. Everything
 * past the collector (exposition, API, ipivtop, diagnosis) reads only this; tests build
 * snapshots by hand. No libbpf here. */
#ifndef IPIV_SNAPSHOT_H
#define IPIV_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "icr.h"
#include "ipiv.h"
#include "labels.h"
#include "latency.h"

/* One BPF attachment point and its fate. */
struct ipiv_probe {
	const char *name; /* tracepoint name, e.g. "kvm_apic_ipi"; static storage */
	const char *prog; /* BPF program name */
	bool optional;	  /* missing here is not an error (e.g. AVIC on Intel) */
	bool attached;
	int err; /* negative errno when not attached; -ENOENT: no such tracepoint */
};

/* Per BPF program, from bpf_prog_info (run counts need opts.bpf_stats). */
struct ipiv_prog_stats {
	char name[64]; /* the name in the object; the kernel keeps only 15 characters */
	uint64_t run_cnt;
	uint64_t run_time_ns;
};

/* The collector's own health. */
struct ipiv_self_stats {
	struct ipiv_probe *probes; /* all known probes, attached or not */
	size_t n_probes;
	size_t n_attached;
	struct ipiv_prog_stats *progs;
	size_t n_progs;
	bool bpf_stats_enabled;
	/* bit k: the BPF side records histograms of enum ipiv_lat_kind k (none with
	 * --no-latency; send->accept only when asked for, as it costs a clock read) */
	uint32_t lat_kinds_recorded;
	uint64_t drops[IPIV_DROP_COUNT]; /* summed over CPUs, by enum ipiv_drop_reason */
	uint64_t vms_discovered;	 /* VMs first seen by the discovery iterator */
	uint64_t vms_reclaimed;		 /* VMs whose map entries were deleted after they exited */
	uint64_t polls;
	int last_poll_err; /* 0 or the negative errno of the last collector_poll */
};

/* Sends of one (path, class) pair; only non-zero cells are listed. */
struct ipiv_send_cell {
	uint32_t path;	/* enum ipiv_path */
	uint32_t class; /* ICR class, decode with icr_class_*() */
	uint64_t count;
};

struct ipiv_exit_cell {
	uint32_t isa;	 /* enum ipiv_isa */
	uint32_t reason; /* VMX basic exit reason or SVM exit code */
	uint64_t count;
};

struct ipiv_matrix_cell {
	uint32_t src_vcpu; /* IPIV_VCPU_NONE: device or VMM thread */
	uint32_t dst_vcpu; /* target APIC ID, which KVM makes equal to the vCPU id */
	uint64_t count;
};

/*
 * Counters shared by a VM total and a vCPU row: the fields include/ipiv_counters.h declares,
 * in its order, all uint64_t and named as the JSON API names them (sent, sent_by_path[path],
 * wakeups_halted, halt_ns, ...). Sends are by sender, receives/EOIs/wakeups by the vCPU
 * that got them. The kernel-patches/ kinds are all 0 on kernels without those tracepoints.
 */
struct ipiv_counts {
#define CNT_TOTAL(field)		uint64_t field;
#define CNT_TOTAL_NS(stem)		uint64_t stem##_ns;
#define CNT_BY_SUB(field, n)		uint64_t field[n];
#define CNT_BY_SUB_NS(stem, n)		uint64_t stem##_ns[n];
#define CNT_WHEN(field)			uint64_t field;
#define CNT_UNLESS(field)		uint64_t field;
#define IPIV_COUNTER(kind, fields, ...) fields
#include "ipiv_counters.h"
};

struct ipiv_vcpu_stats {
	uint32_t vcpu_id;
	uint32_t tid;	      /* vCPU thread if known, else 0 */
	uint8_t apic_mode;    /* enum ipiv_apic_mode as last seen by the BPF side */
	uint8_t apicv_active; /* enum ipiv_apicv, likewise */
	struct ipiv_counts counts;
};

/* One latency histogram (kinds and subs in include/hist.h). */
struct ipiv_lat_hist {
	uint16_t kind; /* enum ipiv_lat_kind */
	uint16_t sub;  /* path, ipiv_lat_case or halted flag, by kind */
	uint32_t vcpu; /* IPIV_LAT_VM_WIDE unless per-vCPU latency is on */
	struct latency_hist h;
};

struct ipiv_vm_stats {
	uint64_t vm;			  /* struct kvm * as an opaque, stable key */
	int32_t pid;			  /* VMM process, 0 if not known yet (naming uses it) */
	char stats_id[IPIV_STATS_ID_LEN]; /* KVM's "kvm-<pid>", "" if not known */
	/* the start of the VMM's command line when the VM showed up (naming.h) */
	char cmdline[IPIV_CMDLINE_LEN];
	uint32_t cmdline_len;
	bool cmdline_cut;
	/* who runs it, for joins with the VMM's inventory: naming fills them with the name
	 * (vm_names_for_snapshot), from the same command line */
	uint8_t vmm;		   /* enum vm_vmm (naming.h) */
	char uuid[37];		   /* canonical, lower case; "" if the VMM was given none */
	bool alive;		   /* seen by the last discovery (false: awaiting reclaim) */
	bool exited;		   /* reclaimed: its final counts, kept for a while */
	uint32_t vcpu_count;	   /* vCPUs seen by discovery or in events */
	struct ipiv_counts counts; /* totals over vCPUs and non-vCPU threads */
	/* sends by (path, class), in that order; vm_sent() looks one up. Sparse: a VM uses a
	 * few of the 7 x 256 pairs, and a dense table cost 14 KiB per VM and snapshot. */
	struct ipiv_send_cell *send_cells;
	size_t n_send_cells;
	bool inhibits_known;
	uint64_t inhibits; /* current APICv inhibit bitmap */
	uint64_t inhibit_set[IPIV_INHIBIT_COUNT];
	uint64_t inhibit_clear[IPIV_INHIBIT_COUNT];
	/* the last inhibit changes, oldest first (ts is CLOCK_MONOTONIC ns, like taken_ns) */
	struct ipiv_inhibit_change timeline[IPIV_TIMELINE];
	size_t n_timeline;
	struct ipiv_exit_cell *exits; /* sorted by (isa, reason) */
	size_t n_exits;
	struct ipiv_vcpu_stats *vcpus; /* sorted by vcpu_id; NONE row last if any */
	size_t n_vcpus;
	struct ipiv_matrix_cell *matrix; /* sorted by (src, dst) */
	size_t n_matrix;
	struct ipiv_lat_hist *lat; /* sorted by (kind, sub, vcpu); only non-empty ones */
	size_t n_lat;
	uint64_t lat_unmatched[IPIV_UNM_COUNT]; /* by enum ipiv_lat_unmatched */
	bool latency_enabled;
};

struct ipiv_snapshot {
	uint64_t taken_ns;	   /* CLOCK_MONOTONIC */
	struct ipiv_vm_stats *vms; /* sorted by pid, then vm; exited ones too */
	size_t n_vms;
	/* every VM since the collector opened, exited ones too: monotonic */
	struct ipiv_counts host;
	/* the same for the latency kinds exported host-wide (ipiv_lat_host_wide): every VM's
	 * VM-wide histogram of (kind, sub) merged, vcpu IPIV_LAT_VM_WIDE; sorted, non-empty */
	struct ipiv_lat_hist *host_lat;
	size_t n_host_lat;
	struct ipiv_self_stats self;
	/* the kernel's APICv inhibit reason names, for ipiv_inhibit_name (zero: built-in) */
	struct ipiv_inhibit_names inhibit_names;
};

/* Whether histograms of latency kind are kept host-wide too (ipiv_snapshot.host_lat): the
 * sender's exit cost, all and the fastpath's, which /metrics has with no vm label. */
static inline bool ipiv_lat_host_wide(uint16_t kind)
{
	return kind == IPIV_LAT_EXIT || kind == IPIV_LAT_EXIT_FASTPATH;
}

/* Adds vm's histograms of the host-wide kinds, merged over its vCPUs, to the rows *rows
 * (*n of them, kept sorted by ipiv_lat_hist_cmp); 0 or -ENOMEM. */
int host_latency_add(struct ipiv_lat_hist **rows, size_t *n, const struct ipiv_vm_stats *vm);
/* The host-wide histogram of (kind, sub) in snap, or NULL. */
const struct latency_hist *host_latency(const struct ipiv_snapshot *snap, uint16_t kind,
					uint16_t sub);

/* Frees a snapshot and everything it holds (collector_snapshot's or a hand-made one whose
 * arrays are malloc'd). NULL is fine. */
void collector_snapshot_free(struct ipiv_snapshot *snap);
/* Frees a VM row's arrays (not the row), leaving it without any. */
void vm_stats_free(struct ipiv_vm_stats *vm);
/* A deep copy of src into dst; returns 0 or -ENOMEM, and then dst owns nothing. */
int vm_stats_copy(struct ipiv_vm_stats *dst, const struct ipiv_vm_stats *src);
/* dst += src, field by field. */
void counts_add(struct ipiv_counts *dst, const struct ipiv_counts *src);

const struct ipiv_vm_stats *snapshot_find_vm(const struct ipiv_snapshot *snap, uint64_t vm);
const struct ipiv_vcpu_stats *vm_find_vcpu(const struct ipiv_vm_stats *vm, uint32_t vcpu_id);
/* qsort order of ipiv_vm_stats.send_cells: (path, class). */
int ipiv_send_cell_cmp(const void *a, const void *b);
/* The sends of one (path, class) cell, 0 if it has none (send_cells must be sorted). */
uint64_t vm_sent(const struct ipiv_vm_stats *vm, unsigned path, unsigned icr_class);
/* The VM-wide histogram of (kind, sub), merged over vCPUs into *out; false if empty.
 * sub = IPIV_LAT_ANY_SUB merges every sub as well. */
#define IPIV_LAT_ANY_SUB 0xffff
/* qsort order of ipiv_vm_stats.lat: (kind, sub, vcpu). */
int ipiv_lat_hist_cmp(const void *a, const void *b);
bool vm_latency(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub,
		struct latency_hist *out);
/* The same over the rows of one vCPU only (per-vCPU latency on). */
bool vm_vcpu_latency(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub, uint32_t vcpu,
		     struct latency_hist *out);
/* Whether the collector keyed vm's histograms by vCPU (some row names a vCPU). */
bool vm_latency_per_vcpu(const struct ipiv_vm_stats *vm);

#endif /* IPIV_SNAPSHOT_H */
