/* SPDX-License-Identifier: GPL-2.0 */
/* Log-linear latency histogram buckets shared by BPF and user space: 16 sub-buckets per
 * power of two from 64 ns to 2^34 ns (~17 s), so a bucket is at most 1/16 (6.25 %) of its
 * lower edge wide. Values are integer nanoseconds; bucket b holds [lo(b), hi(b)], both
 * inclusive, so Prometheus' le of bucket b is hi(b) and a value equal to le lands in b. */
#ifndef IPIV_HIST_H
#define IPIV_HIST_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HIST_SUB_BITS  4
#define HIST_SUB       (1u << HIST_SUB_BITS) /* sub-buckets per power of two */
#define HIST_MIN_SHIFT 6		     /* 64 ns: everything below shares bucket 0 */
#define HIST_MAX_SHIFT 34 /* 2^34 ns ~ 17.2 s: everything at or above, last bucket */
/* bucket 0: [0, 63]; then 16 per octave for octaves 6..33; then one overflow bucket */
#define HIST_BUCKETS   (1 + (HIST_MAX_SHIFT - HIST_MIN_SHIFT) * HIST_SUB + 1)

/* Index of the highest set bit of v (v != 0), without loops: BPF has no bit-scan. */
static inline __u32 hist_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

static inline __u32 hist_bucket(__u64 ns)
{
	__u32 e, sub;

	if (ns < (1ull << HIST_MIN_SHIFT))
		return 0;
	if (ns >= (1ull << HIST_MAX_SHIFT))
		return HIST_BUCKETS - 1;
	e = hist_log2(ns);
	sub = (ns >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return 1 + (e - HIST_MIN_SHIFT) * HIST_SUB + sub;
}

/* Smallest and largest value of bucket b (hi of the last bucket is ~0). */
static inline __u64 hist_bucket_lo(__u32 b)
{
	__u32 e, sub;

	if (b == 0)
		return 0;
	if (b >= HIST_BUCKETS - 1)
		return 1ull << HIST_MAX_SHIFT;
	e = (b - 1) / HIST_SUB + HIST_MIN_SHIFT;
	sub = (b - 1) % HIST_SUB;
	return (1ull << e) + ((__u64)sub << (e - HIST_SUB_BITS));
}

static inline __u64 hist_bucket_hi(__u32 b)
{
	if (b >= HIST_BUCKETS - 1)
		return ~0ull;
	return hist_bucket_lo(b + 1) - 1;
}

/* ---- latency histograms kept by bpf/latency.bpf.h ---- */

/* What a histogram measures. */
enum ipiv_lat_kind {
	IPIV_LAT_SEND_ACCEPT = 0, /* sub = path: the sender's ICR write (kvm_apic_ipi) to each
				   * target's kvm_apic_accept_irq: KVM's delivery work */
	IPIV_LAT_ACCEPT_RUN,	  /* sub = ipiv_lat_case: accept to the target running again */
	IPIV_LAT_SEND_EOI,	  /* sub = path: ICR write to the target's EOI of that vector */
	IPIV_LAT_EXIT,		  /* sub = path: the sender's kvm_exit to its next kvm_entry, for
				   * exits that sent an IPI */
	IPIV_LAT_HALT,		  /* sub = 1 blocked / 0 polled: kvm_vcpu_wakeup's halt time */
	IPIV_LAT_UNMATCHED,	  /* not a histogram: sub = ipiv_lat_unmatched, bucket 0 counts */
	IPIV_LAT_KIND_COUNT,
};

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
 * What latency keeps per target vCPU, by (VM, target vCPU): since when it has an interrupt
 * it has not run for, since when a posted interrupt woke it, and the deliveries waiting for
 * its EOI, one slot per vector. Senders on other CPUs and the target itself update one
 * record, so every field changes by compare-and-swap or exchange: an accept claims a free
 * slot (state 0 -> FILLING|vector), fills it and publishes it (VALID|vector); the EOI of
 * that vector takes it back (VALID|vector -> 0). Created at a target's first IPI, freed
 * when its VM is reclaimed.
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

struct ipiv_target {
	__u64 wake_since; /* accept time of the first interrupt not run since, 0: none */
	__u64 pi_since;	  /* time of a posted-interrupt wakeup not run since, 0: none */
	struct ipiv_target_irq irq[IPIV_TARGET_IRQS];
};

#define IPIV_MAX_LAT		  262144 /* histogram buckets in use, all VMs: ~1000 busy VMs */
#define IPIV_MAX_LAT_PREALLOC	  65536	 /* the same before Linux 6.1, preallocated */
#define IPIV_MAX_TARGETS	  65536	 /* vCPUs that received an IPI, all VMs */
#define IPIV_MAX_TARGETS_PREALLOC 16384	 /* the same before Linux 6.1, preallocated */
/* A delivery pending for longer than this is not this IPI's any more (1 s). */
#define IPIV_LAT_STALE_NS	  1000000000ull

#endif /* IPIV_HIST_H */
