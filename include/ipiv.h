/* SPDX-License-Identifier: GPL-2.0 */
/* Types shared by bpf/ipiv.bpf.c and user space: map keys and values, enums, bounds.
 * Plain fixed-width types only, so the layout is the same on both sides. */
#ifndef IPIV_H
#define IPIV_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "latency_maps.h"

/* Map bounds. Every map is bounded; a failed insert is counted in the drops map. */
#define IPIV_MAX_VMS	  1024
#define IPIV_MAX_VCPUS	  16384 /* vCPU state machines (kernel-patches/ tracepoints) */
#define IPIV_MAX_COUNTERS 32768
#define IPIV_MAX_MATRIX	  16384

/* vcpu_id of an event raised by a VMM thread that is not a vCPU (I/O thread, vhost). */
#define IPIV_VCPU_NONE 0xffffffffu

#define IPIV_STATS_ID_LEN 48 /* KVM_STATS_NAME_SIZE */

/* How a guest asked for an IPI; decides whether it can be accelerated. */
enum ipiv_path {
	IPIV_PATH_UNKNOWN = 0, /* no exit context and APIC mode not known */
	IPIV_PATH_X2APIC_MSR,  /* WRMSR to the x2APIC ICR (0x830) */
	IPIV_PATH_XAPIC_MMIO,  /* xAPIC ICR write emulated through MMIO */
	IPIV_PATH_APIC_WRITE,  /* VMX trap-like APIC_WRITE exit (56): APICv/IPIv fallback */
	IPIV_PATH_AVIC,	       /* SVM AVIC_INCOMPLETE_IPI (0x401) */
	IPIV_PATH_PV_KVM,      /* KVM_HC_SEND_IPI hypercall */
	IPIV_PATH_PV_HYPERV,   /* Hyper-V HvCallSendSyntheticClusterIpi(Ex) */
	IPIV_PATH_COUNT,
};

/* Guest APIC mode as last seen for a vCPU. */
enum ipiv_apic_mode {
	IPIV_APIC_UNKNOWN = 0,
	IPIV_APIC_XAPIC,
	IPIV_APIC_X2APIC,
};

/* Whether APICv (Intel) or AVIC (AMD) is active on a vCPU (kvm_lapic.apicv_active). */
enum ipiv_apicv {
	IPIV_APICV_UNKNOWN = 0,
	IPIV_APICV_INACTIVE,
	IPIV_APICV_ACTIVE,
};

/* ISA reported by kvm_exit (KVM_ISA_VMX / KVM_ISA_SVM). */
enum ipiv_isa {
	IPIV_ISA_VMX = 1,
	IPIV_ISA_SVM = 2,
};

/* AVIC incomplete-IPI failure causes (avic_ipi_failure_cause); anything above is clamped. */
enum ipiv_avic_cause {
	IPIV_AVIC_INVALID_INT_TYPE = 0,
	IPIV_AVIC_TARGET_NOT_RUNNING,
	IPIV_AVIC_INVALID_TARGET,
	IPIV_AVIC_INVALID_BACKING_PAGE,
	IPIV_AVIC_INVALID_IPI_VECTOR,
	IPIV_AVIC_CAUSE_OTHER,
	IPIV_AVIC_CAUSE_COUNT,
};

/* APICv inhibit reasons are bits 0..IPIV_INHIBIT_COUNT-1 (asm/kvm_host.h); 6.18 has 13. */
#define IPIV_INHIBIT_COUNT 16

/* Why an event was not counted. Map-full drops are per map; others are filtered events. */
enum ipiv_drop_reason {
	IPIV_DROP_THREADS_FULL = 0, /* thread storage could not be allocated */
	IPIV_DROP_MMS_FULL,	    /* mm -> VM map full */
	IPIV_DROP_VMS_FULL,	    /* VM map full */
	IPIV_DROP_COUNTERS_FULL,    /* counter map full */
	IPIV_DROP_MATRIX_FULL,	    /* source -> target matrix full */
	IPIV_DROP_NO_IDENTITY,	    /* event in a thread that belongs to no known VM */
	IPIV_DROP_EOI_DUPLICATE,    /* second kvm_eoi with vector -1 (filtered, not lost) */
	IPIV_DROP_LAT_FULL,	    /* latency histogram map full */
	IPIV_DROP_VCPU_STATES_FULL, /* vCPU state map full (kernel-patches/ tracepoints) */
	IPIV_DROP_TARGETS_FULL,	    /* latency target records full: a delivery not timed */
	IPIV_DROP_COUNT,
};

/* What a counter counts: one kind per entry of ipiv_counters.h, which says how sub and sub2
 * index it. All counters live in one per-CPU hash keyed by ipiv_counter_key, so a new kind
 * (a histogram bucket, a new tracepoint) needs no new map. */
enum ipiv_counter_kind {
	IPIV_CNT_NONE = 0, /* no key has it */
#define IPIV_COUNTER(kind, ...) IPIV_CNT_##kind,
#include "ipiv_counters.h"
	IPIV_CNT_KIND_COUNT,
};

/* What changed in a vCPU's posted-interrupt descriptor, as fexit on vmx_vcpu_pi_load() and
 * vmx_vcpu_pi_put() finds it (IPIV_CNT_PI_DESC). */
enum ipiv_pi_trigger {
	IPIV_PI_LOAD = 0, /* NV restored or SN cleared on the same pCPU */
	IPIV_PI_MIGRATE,  /* loaded on another pCPU (NDST changed) */
	IPIV_PI_BLOCK,	  /* NV set to the wakeup vector: the vCPU blocks */
	IPIV_PI_PREEMPT,  /* SN set: the vCPU was preempted */
	IPIV_PI_TRIGGER_COUNT,
};

/* Why the CPU did not virtualize an ICR write: an APIC-write VM exit followed by kvm_apic_ipi
 * on the same thread, the reason derived from the ICR and the vCPU's IPIv control
 * (IPIV_CNT_ICR_TRAP). */
enum ipiv_icr_trap {
	IPIV_TRAP_IPIV_INACTIVE = 0, /* IPIv not enabled on the vCPU, or APICv inhibited */
	IPIV_TRAP_SHORTHAND,	     /* self, all, all-but-self */
	IPIV_TRAP_LOGICAL,	     /* logical destination mode */
	IPIV_TRAP_DELIVERY_MODE,     /* not fixed: NMI, INIT, SIPI, lowest priority, SMI */
	IPIV_TRAP_DEST_RANGE,	     /* broadcast destination or beyond the PID table */
	IPIV_TRAP_OTHER,	     /* IPIv on and the ICR eligible (reserved bits, a race) */
	IPIV_TRAP_COUNT,
};

/* Where a vCPU that is not in guest mode is, as the posted-interrupt descriptor (Intel) or
 * the AVIC physical APIC ID entry (AMD) says; time in each is IPIV_CNT_STATE_NS. */
enum ipiv_vcpu_state {
	IPIV_VSTATE_RUNNING = 0, /* loaded: an accelerated IPI reaches it directly */
	IPIV_VSTATE_BLOCKED,	 /* PI: NV is the wakeup vector (halted) */
	IPIV_VSTATE_PREEMPTED,	 /* PI: SN set; AVIC: IsRunning 0 with vcpu->preempted */
	IPIV_VSTATE_NOT_RUNNING, /* AVIC: IsRunning 0, not preempted (halted or in user space) */
	IPIV_VSTATE_COUNT,
};

/* The vCPU state machine kept for IPIV_CNT_STATE_NS, keyed by struct kvm_vcpu *. */
struct ipiv_vcpu_state_rec {
	__u64 vm;
	__u64 since; /* ktime of the last change */
	__u32 vcpu_id;
	__u32 state; /* enum ipiv_vcpu_state */
	__u32 dest;  /* Intel: the descriptor's NDST, to tell a migration */
	__u32 pad;
};

/* kvm_pi_wakeup vectors counted as IPIs: Linux guests' call-function-single (0xfb),
 * call-function (0xfc) and reschedule (0xfd) vectors, as bits of PIR word 3 (0xc0-0xff). */
#define IPIV_PI_IPI_VECTORS \
	((1ull << (0xfb - 0xc0)) | (1ull << (0xfc - 0xc0)) | (1ull << (0xfd - 0xc0)))
#define IPIV_POSTED_INTR_WAKEUP_VECTOR 0xf1

struct ipiv_counter_key {
	__u64 vm;   /* VM key (IPIV_VM_KEY) */
	__u32 vcpu; /* vCPU id or IPIV_VCPU_NONE */
	__u16 kind; /* enum ipiv_counter_kind */
	__u16 sub;
	__u32 sub2;
	__u32 pad; /* zero: keys are compared bytewise */
};

struct ipiv_matrix_key {
	__u64 vm;
	__u32 src_vcpu; /* IPIV_VCPU_NONE: raised by a non-vCPU thread (devices, VMM) */
	__u32 dst_vcpu;
};

/* A thread's own counters: the first IPIV_THREAD_CACHE counter keys a thread counts keep
 * their value in the thread's storage (no map lookup on the hot path); later keys go to
 * the counters hash. Matrix cells use kind IPIV_CNT_MATRIX_CELL, vcpu = target, sub2 =
 * source. Claimed entries keep their key for the thread's life; at thread exit they move
 * to the hashes between flush_begin/flush_end increments, which the collector checks. */
#define IPIV_THREAD_CACHE    8
#define IPIV_CNT_MATRIX_CELL 0x7fff

/* An entry is claimed with a compare-and-swap of state, filled, then published: a program
 * that runs nested in the same thread (a tracepoint in a hard IRQ that interrupted one)
 * never writes an entry another is filling; counts are added atomically. */
enum ipiv_cache_state {
	IPIV_CACHE_FREE = 0,
	IPIV_CACHE_FILLING,
	IPIV_CACHE_VALID,
};

struct ipiv_cache_entry {
	struct ipiv_counter_key key;
	__u64 n;
	__u32 state; /* enum ipiv_cache_state; the iterator reports only valid entries */
	__u32 pad;
};

/* Task storage of a vCPU thread: who it is, plus the sender context of its vCPU and its
 * counter cache. Only the thread itself writes it, so plain stores are race free. */
struct ipiv_thread {
	__u64 vm;	/* VM key (see struct ipiv_vm_key), 0: not a vCPU (yet) */
	__u64 vcpu_ptr; /* struct kvm_vcpu *, 0 if not known (VMM thread, test) */
	__u64 apic_ptr; /* its struct kvm_lapic * (fixed for the vCPU's life), 0 if not known */
	__u32 vcpu_id;	/* or IPIV_VCPU_NONE */
	__u32 tgid;
	/* last kvm_exit, valid while in_exit (cleared at kvm_entry) */
	__u32 exit_isa;
	__u32 exit_reason;
	__u64 exit_info1;
	__u8 in_exit;
	__u8 apic_mode;	   /* enum ipiv_apic_mode, from apic_base or ICR MSR/MMIO hints */
	__u8 avic_pending; /* AVIC incomplete IPI counted; the next kvm_apic_ipi is its echo */
	/* latency (bpf/latency.bpf.h): the last ICR write and the current exit */
	__u8 ipi_path; /* enum ipiv_path of the last ICR write */
	__u8 ipi_vector;
	__u8 exit_path;	   /* path of the IPI this exit sent */
	__u8 exit_sent;	   /* this exit sent an IPI */
	__u8 exit_fast;	   /* KVM's exit fastpath sent it (fexit on its WRMSR fastpath) */
	__u8 exited;	   /* the cache was flushed (thread exit) or is being flushed (a switch
			    * to another VM's vCPU): count into the maps */
	__u8 apicv;	   /* enum ipiv_apicv of this vCPU at its last ICR write (latency) */
	__u8 apicv_off;	   /* 1: its VM has APICv disabled for good, apicv stays INACTIVE */
	__u16 lat_slot;	   /* its VM's dense latency slot + 1, IPIV_LAT_NO_SLOT, 0: not known yet */
	__u32 ipi_jiffies; /* jiffies (low half) at the last ICR write: its send window */
	__u32 mode_jiffies; /* jiffies (low half) when apic_mode was last read from apic_base */
	__u64 ipi_ts;	    /* ktime of the last ICR write, 0 when consumed */
	__u64 exit_ts;	    /* ktime of the last kvm_exit */
	struct ipiv_cache_entry cache[IPIV_THREAD_CACHE];
};

/* What the thread iterator (iter/task) writes for each thread with storage. */
struct ipiv_thread_rec {
	__u32 tid;
	__u32 tgid;
	struct ipiv_thread t;
};

/*
 * VMs are keyed by their struct kvm pointer with a generation in the top 16 bits (kernel
 * pointers have all-ones there): when a VM exits and a new VM of another process gets the
 * same address before the old VM's state is reclaimed, the new one gets the next
 * generation and so its own counters. Value of the vm_keys map, keyed by the pointer.
 * A VM freed and recreated at the same address by the same process is not told apart.
 */
struct ipiv_vm_key {
	__u64 key;
	__u64 mm; /* the owning process' mm: another mm means another VM */
	__u32 gen;
	__u32 tgid; /* the VMM process, 0 if not known yet: another one means another VM
			 * (the mm_struct is recycled as readily as the struct kvm) */
};

#define IPIV_VM_KEY(ptr, gen) (((ptr)&0x0000ffffffffffffull) | ((__u64)((gen)&0xffff) << 48))

/* Value of the VM map. */
/* One APICv inhibit change, for the per-VM timeline. */
struct ipiv_inhibit_change {
	__u64 ts;     /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u32 reason; /* inhibit reason bit */
	__u32 set;    /* 1 set, 0 cleared */
};

#define IPIV_TIMELINE	 8   /* the last changes kept per VM (a power of two) */
#define IPIV_CMDLINE_LEN 256 /* bytes of the VMM's command line kept per VM (a power of two) */

struct ipiv_vm {
	__u64 mm;			  /* struct mm_struct * of the VMM */
	__u32 tgid;			  /* VMM process */
	__u32 inhibits_known;		  /* 1 once kvm_apicv_inhibit_changed was seen */
	__u64 inhibits;			  /* current APICv inhibit bitmap */
	char stats_id[IPIV_STATS_ID_LEN]; /* "kvm-<pid>" */
	/* inhibit changes: a ring of the last IPIV_TIMELINE, n_changes ever seen. Changes are
	 * rare (VM setup, nested entry, IRQ windows); each takes its own slot, but a reader
	 * may see one being written; the counters are exact. */
	__u32 n_changes;
	__u32 pad;
	struct ipiv_inhibit_change changes[IPIV_TIMELINE];
	/* The start of the VMM's command line, NUL-separated as in /proc/<pid>/cmdline, taken
	 * at registration: it names a VM whose process is gone before discovery reads /proc. */
	__u32 cmdline_len;
	__u32 cmdline_cut; /* 1: the command line was longer */
	char cmdline[IPIV_CMDLINE_LEN];
};

/* Record written by the iter/task_file discovery program for each KVM file. */
enum ipiv_file_kind {
	IPIV_FILE_VM = 1,
	IPIV_FILE_VCPU,
};

struct ipiv_discovery_rec {
	__u32 tgid;
	__u32 pid; /* task the iterator visited */
	__u32 fd;
	__u32 kind;	    /* enum ipiv_file_kind */
	__u64 vm;	    /* VM key (IPIV_VM_KEY) */
	__u64 vcpu_ptr;	    /* vCPU files: struct kvm_vcpu * */
	__u64 mm;	    /* the owning task's mm */
	__u32 vcpu_id;	    /* vCPU files */
	__u32 vcpu_tid;	    /* vCPU files: thread that last ran KVM_RUN, 0 if none yet */
	__u32 apicv_active; /* vCPU files: enum ipiv_apicv, read now */
	__u32 apic_mode;    /* vCPU files: enum ipiv_apic_mode, read now */
	char stats_id[IPIV_STATS_ID_LEN];
};

#endif /* IPIV_H */
