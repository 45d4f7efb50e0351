/* SPDX-License-Identifier: GPL-2.0 */
/* The maps of latency (bpf/latency.bpf.h) as BPF and the collector share them: what a
 * histogram measures, its hash key, the dense per-VM slots of the common case, and the
 * record kept per target vCPU. The bucket arithmetic itself is hist.h's. */
#ifndef IPIV_LATENCY_MAPS_H
#define IPIV_LATENCY_MAPS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "hist.h"

/* What a histogram measures. */
enum ipiv_lat_kind {
	IPIV_LAT_SEND_ACCEPT = 0, /* sub = path: the sender's ICR write (kvm_apic_ipi) to each
				   * target's kvm_apic_accept_irq: KVM's delivery work */
	IPIV_LAT_ACCEPT_RUN,	  /* sub = ipiv_lat_case: accept to the target running again */
	IPIV_LAT_SEND_EOI,	  /* sub = path: ICR write to the target's EOI of that vector */
	IPIV_LAT_EXIT,		  /* sub = path: the sender's kvm_exit to its next kvm_entry, for
				   * exits that sent an IPI */
	IPIV_LAT_HALT,		  /* sub = 1 blocked / 0 polled: kvm_vcpu_wakeup's halt time */
	IPIV_LAT_EXIT_FASTPATH,	  /* sub = path: IPIV_LAT_EXIT's exits whose ICR write KVM's exit
				   * fastpath sent (fexit on its WRMSR fastpath said handled).
				   * The BPF side records each exit once, here or in
				   * IPIV_LAT_EXIT; the collector adds these back into
				   * IPIV_LAT_EXIT, which thus has every sending exit */
	IPIV_LAT_UNMATCHED,	  /* not a histogram: sub = ipiv_lat_unmatched, bucket 0 counts */
	IPIV_LAT_KIND_COUNT,
};

/* Not a histogram either: the key of a VM's binding to its dense slot (see below). */
#define IPIV_LAT_BINDING 0xfffe

/* How a target got from accept to running. */
enum ipiv_lat_case {
	IPIV_LAT_CASE_HALTED = 0, /* it was halted: woken (kvm_vcpu_wakeup) */
	IPIV_LAT_CASE_RUNNING,	  /* it was running or preempted: its next kvm_entry */
	IPIV_LAT_CASE_POSTED,	  /* woken by a posted interrupt (kvm_pi_wakeup, patched
				   * kernels): that wakeup to the vCPU's next kvm_entry */
	IPIV_LAT_CASE_COUNT,
};

/* Deliveries that cannot be matched, counted rather than dropped silently. */
enum ipiv_lat_unmatched {
	IPIV_UNM_OVERWRITTEN = 0, /* a second IPI to the same target and vector before its EOI */
	IPIV_UNM_NMI,		  /* NMI/INIT/SIPI/SMI: no EOI ever follows */
	IPIV_UNM_EOI_UNSENT,	  /* an EOI with no IPI pending: device interrupt or older IPI */
	IPIV_UNM_STALE,		  /* a delivery whose EOI came after the stale limit */
	IPIV_UNM_WAKE_UNSEEN,	  /* a target never seen running again within the stale limit
				   * (a running target on a host where kvm_entry does not fire) */
	IPIV_UNM_PENDING_FULL,	  /* the map of targets was full */
	IPIV_UNM_SLOTS_FULL,	  /* a target had IPIV_TARGET_IRQS other vectors waiting for EOIs */
	IPIV_UNM_EOI_VIRTUALIZED, /* APICv/AVIC active: the guest's EOI of an IPI does not exit */
	IPIV_UNM_IN_GUEST, /* APICv/AVIC posted it to a target in the guest: no exit to time */
	IPIV_UNM_COUNT,
};

/* ---- the hash maps: every VM, every vCPU ---- */

/* One bucket of one histogram: its value (struct ipiv_lat_value) holds how many observations
 * fell in it and their sum, so one map update records an observation and the histogram's
 * sum stays exact (the sum of its buckets' sums). vcpu is the vCPU the latency belongs to
 * with per-vCPU latency on (the sender for send->accept and exits, the target for
 * send->EOI, accept->running and halts), else IPIV_LAT_VM_WIDE. */
#define IPIV_LAT_VM_WIDE 0xffffffffu
struct ipiv_lat_key {
	__u64 vm;
	__u32 vcpu;
	__u16 kind;
	__u16 sub;
	__u32 bucket;
	__u32 pad;
};

struct ipiv_lat_value {
	__u64 count;
	__u64 sum_ns;
};

/*
 * What latency keeps per target vCPU: since when it has an interrupt it has not run for,
 * since when a posted interrupt woke it, and the deliveries waiting for its EOI, one slot per
 * vector. Senders on other CPUs and the target itself update one record, so every field
 * changes by compare-and-swap or exchange: an accept claims a free slot (state 0 ->
 * FILLING|vector), fills it and publishes it (VALID|vector); the EOI of that vector takes it
 * back (VALID|vector -> 0). In its VM's dense slot (struct ipiv_lat_targets) when it has
 * one, else in the targets hash by (VM, target vCPU), made at its first IPI; freed either
 * way when its VM is reclaimed.
 */
struct ipiv_target_key {
	__u64 vm;
	__u32 vcpu;
	__u32 pad;
};

#define IPIV_TARGET_IRQS 4 /* distinct vectors waiting for one target's EOIs */
#define IPIV_IRQ_VECTOR	 0xffu
#define IPIV_IRQ_FILLING 0x100u
#define IPIV_IRQ_VALID	 0x200u

struct ipiv_target_irq {
	__u64 send_ts; /* the ICR write */
	__u32 state;   /* 0 free, else IPIV_IRQ_FILLING or IPIV_IRQ_VALID | vector */
	__u32 path;    /* enum ipiv_path */
};

/* Two whole cache lines, so that in a dense slot (struct ipiv_lat_targets) the waits and the
 * first three vector slots, all that an accept or an EOI usually touches, share one line:
 * the sender's and the target's CPUs take that line in turn. */
struct ipiv_target {
	__u64 wake_since; /* ICR write (posted: accept) time of the first interrupt not run since */
	__u64 pi_since;	  /* time of a posted-interrupt wakeup not run since, 0: none */
	struct ipiv_target_irq irq[IPIV_TARGET_IRQS];
	__u64 pad[6];
};

#define IPIV_MAX_LAT		      262144 /* per-vCPU histogram buckets in use, all VMs */
#define IPIV_MAX_LAT_PREALLOC	      65536  /* the same before Linux 6.1, preallocated */
#define IPIV_MAX_LAT_HSERIES	      8192   /* VM-wide histograms outside the slots: ~1500 VMs */
#define IPIV_MAX_LAT_HSERIES_PREALLOC 1024   /* the same before Linux 6.1 (4.3 MiB) */
#define IPIV_MAX_TARGETS	      65536  /* vCPUs that received an IPI, all VMs */
#define IPIV_MAX_TARGETS_PREALLOC     16384  /* the same before Linux 6.1, preallocated */
/* A delivery pending for longer than this is not this IPI's any more (1 s). */
#define IPIV_LAT_STALE_NS	      1000000000ull

/* ---- dense slots: the common case without hashing ---- */

/*
 * The first IPIV_LAT_SLOTS VMs seen active (an accept, EOI, wakeup or entry of theirs) get a
 * slot, for their life: their VM-wide histograms, unmatched counts and the target records of
 * vCPUs below IPIV_LAT_SLOT_VCPUS live in arrays indexed by slot (and series or vCPU), which
 * a program reaches with no hash operation. Everything else (more VMs, higher vCPU ids,
 * per-vCPU histograms) uses the hash maps above; the collector sums both. A VM's binding to
 * its slot is a key of the lat hash, kind IPIV_LAT_BINDING (count = slot + 1, or
 * IPIV_LAT_NO_SLOT), so the reclaim that deletes a dead VM's latency keys unbinds it too;
 * the slot is then zeroed and freed by the thread-pruning iterator that runs after every
 * reclaim.
 */
#define IPIV_LAT_SLOTS	     64	 /* VMs with dense latency state */
#define IPIV_LAT_SLOT_VCPUS  256 /* target records per slot: vCPU ids below this */
#define IPIV_LAT_NO_SLOT     0xffff
#define IPIV_LAT_PATHS	     7 /* subs of the path-keyed kinds: enum ipiv_path's count */
#define IPIV_LAT_HALT_WAYS   2 /* subs of IPIV_LAT_HALT: polled, blocked */
/* A slot claimed this recently is not freed: its binding may be being written. */
#define IPIV_LAT_CLAIM_GRACE IPIV_LAT_STALE_NS

/* IPIV_LAT_EXIT_FASTPATH has a dense series for one path only, IPIV_PATH_X2APIC_MSR (ipiv.h,
 * which includes this file): KVM's exit fastpath sends x2APIC ICR writes (WRMSR) alone. Another
 * sub would go to the lat hash. */
#define IPIV_LAT_FASTPATH_PATH 1

/* The histogram series of one slot: (kind, sub) of every VM-wide histogram in one index. */
#define IPIV_LAT_SERIES_SEND_ACCEPT 0
#define IPIV_LAT_SERIES_ACCEPT_RUN  (IPIV_LAT_SERIES_SEND_ACCEPT + IPIV_LAT_PATHS)
#define IPIV_LAT_SERIES_SEND_EOI    (IPIV_LAT_SERIES_ACCEPT_RUN + IPIV_LAT_CASE_COUNT)
#define IPIV_LAT_SERIES_EXIT	    (IPIV_LAT_SERIES_SEND_EOI + IPIV_LAT_PATHS)
#define IPIV_LAT_SERIES_HALT	    (IPIV_LAT_SERIES_EXIT + IPIV_LAT_PATHS)
#define IPIV_LAT_SERIES_FASTPATH    (IPIV_LAT_SERIES_HALT + IPIV_LAT_HALT_WAYS)
#define IPIV_LAT_SERIES		    (IPIV_LAT_SERIES_FASTPATH + 1) /* 27 */

/* Slot header, one per slot. */
struct ipiv_lat_slot {
	__u64 vm;	   /* the VM key owning it, 0: free */
	__u64 claimed_ns;  /* when it was claimed */
	__u64 series_used; /* bit s: series s has observations (the collector reads only those) */
	__u64 unmatched[IPIV_UNM_COUNT];
};

/*
 * One VM-wide histogram, element slot * IPIV_LAT_SERIES + series of the series array. Its
 * buckets come in groups of IPIV_LAT_GROUP that share a 64-byte cache line with the sum of
 * their observations, so that an observation writes one line, not a bucket's and a sum's:
 * the vCPUs of a VM record into the same series from different CPUs, and every line they
 * share moves between those CPUs' caches. The histogram's sum is the sum of the groups'.
 * An array's values start 8 bytes before a line on x86-64 Linux 6.x (struct bpf_array is
 * 312 bytes) and a series is a whole number of lines, so `lead` puts every group on a line
 * of its own; where the kernel's layout differs a group may straddle two lines, which costs
 * time only.
 */
#define IPIV_LAT_GROUP	7 /* buckets per group, with their sum: 64 bytes */
#define IPIV_LAT_GROUPS ((HIST_BUCKETS + IPIV_LAT_GROUP - 1) / IPIV_LAT_GROUP) /* 65 */

struct ipiv_lat_group {
	__u64 sum_ns;		       /* of the observations in these buckets */
	__u64 buckets[IPIV_LAT_GROUP]; /* observations per bucket; their sum is the count */
};

struct ipiv_lat_series {
	__u64 lead; /* not used: see above */
	struct ipiv_lat_group group[IPIV_LAT_GROUPS];
	__u64 pad[7]; /* a whole number of lines */
};

/* Observations in bucket b (< HIST_BUCKETS) of series s. */
static inline __u64 ipiv_lat_series_bucket(const struct ipiv_lat_series *s, __u32 b)
{
	return s->group[b / IPIV_LAT_GROUP].buckets[b % IPIV_LAT_GROUP];
}

/* The sum of all observations of series s. */
static inline __u64 ipiv_lat_series_sum(const struct ipiv_lat_series *s)
{
	__u64 sum = 0;

	for (__u32 g = 0; g < IPIV_LAT_GROUPS; g++)
		sum += s->group[g].sum_ns;
	return sum;
}

/*
 * The VM-wide histograms of VMs without a dense slot: one struct ipiv_lat_series per
 * (VM, series), made at its first observation, in a hash map. A histogram is one element,
 * not one per bucket as in the lat hash, so that a snapshot reads a few thousand elements
 * at 512 VMs, not ~140000 buckets, for the same ~4 KiB of kernel memory a busy histogram
 * took in buckets.
 */
struct ipiv_lat_series_key {
	__u64 vm;
	__u32 series; /* < IPIV_LAT_SERIES */
	__u32 pad;
};

/* The target records of one slot, by vCPU id, each on lines of its own (see struct
 * ipiv_lat_series for lead). */
struct ipiv_lat_targets {
	__u64 lead; /* not used */
	struct ipiv_target vcpu[IPIV_LAT_SLOT_VCPUS];
	__u64 pad[7];
};

/* The series of histogram (kind, sub), or IPIV_LAT_SERIES when it has none. */
static inline __u32 ipiv_lat_series_of(__u32 kind, __u32 sub)
{
	switch (kind) {
	case IPIV_LAT_SEND_ACCEPT:
		return sub < IPIV_LAT_PATHS ? IPIV_LAT_SERIES_SEND_ACCEPT + sub : IPIV_LAT_SERIES;
	case IPIV_LAT_ACCEPT_RUN:
		return sub < IPIV_LAT_CASE_COUNT ? IPIV_LAT_SERIES_ACCEPT_RUN + sub
						 : IPIV_LAT_SERIES;
	case IPIV_LAT_SEND_EOI:
		return sub < IPIV_LAT_PATHS ? IPIV_LAT_SERIES_SEND_EOI + sub : IPIV_LAT_SERIES;
	case IPIV_LAT_EXIT:
		return sub < IPIV_LAT_PATHS ? IPIV_LAT_SERIES_EXIT + sub : IPIV_LAT_SERIES;
	case IPIV_LAT_HALT:
		return sub < IPIV_LAT_HALT_WAYS ? IPIV_LAT_SERIES_HALT + sub : IPIV_LAT_SERIES;
	case IPIV_LAT_EXIT_FASTPATH:
		return sub == IPIV_LAT_FASTPATH_PATH ? IPIV_LAT_SERIES_FASTPATH : IPIV_LAT_SERIES;
	}
	return IPIV_LAT_SERIES;
}

/* The (kind, sub) of series s (< IPIV_LAT_SERIES): the inverse of ipiv_lat_series_of. */
static inline void ipiv_lat_series_kind(__u32 s, __u16 *kind, __u16 *sub)
{
	if (s < IPIV_LAT_SERIES_ACCEPT_RUN) {
		*kind = IPIV_LAT_SEND_ACCEPT;
		*sub = s - IPIV_LAT_SERIES_SEND_ACCEPT;
	} else if (s < IPIV_LAT_SERIES_SEND_EOI) {
		*kind = IPIV_LAT_ACCEPT_RUN;
		*sub = s - IPIV_LAT_SERIES_ACCEPT_RUN;
	} else if (s < IPIV_LAT_SERIES_EXIT) {
		*kind = IPIV_LAT_SEND_EOI;
		*sub = s - IPIV_LAT_SERIES_SEND_EOI;
	} else if (s < IPIV_LAT_SERIES_HALT) {
		*kind = IPIV_LAT_EXIT;
		*sub = s - IPIV_LAT_SERIES_EXIT;
	} else if (s < IPIV_LAT_SERIES_FASTPATH) {
		*kind = IPIV_LAT_HALT;
		*sub = s - IPIV_LAT_SERIES_HALT;
	} else {
		*kind = IPIV_LAT_EXIT_FASTPATH;
		*sub = IPIV_LAT_FASTPATH_PATH;
	}
}

#endif /* IPIV_LATENCY_MAPS_H */
