// SPDX-License-Identifier: GPL-2.0
/* Per-VM, per-vCPU IPI accounting from KVM's tracepoints (and fexit on KVM functions where
 * the kernel permits it): sends by path and ICR class, receives, EOIs, wakeups, exits, APICv
 * inhibits, vCPU states; plus an iterator that discovers VMs.
 * Who a thread is lives here; counting (count.bpf.h), latency (latency.bpf.h) and the KVM
 * types (kvm_types.bpf.h) each stand in a header of their own. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "count.bpf.h"
#include "icr.h"
#include "ipiv.h"
#include "kvm_types.bpf.h"
#include "latency.bpf.h"
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define MSR_IA32_APICBASE	0x1b
#define MSR_X2APIC_ICR		0x830
#define APIC_BASE_X2APIC_ENABLE (1ull << 10)
#define APIC_BASE_ENABLE	(1ull << 11)
#define APIC_BASE_ADDR_MASK	(~0xfffull)
#define APIC_DEFAULT_BASE	0xfee00000ull
#define APIC_ICR_OFFSET		0x300
#define KVM_TRACE_MMIO_WRITE	2
#define KVM_HC_SEND_IPI		10
#define HV_GENERIC_SET_ALL	1

#define VMX_EXIT_MSR_WRITE	     32
#define VMX_EXIT_APIC_ACCESS	     44
#define VMX_EXIT_EPT_VIOLATION	     48
#define VMX_EXIT_EPT_MISCONFIG	     49
#define VMX_EXIT_APIC_WRITE	     56
#define VMX_EXIT_MSR_WRITE_IMM	     85
#define SVM_EXIT_MSR		     0x7c
#define SVM_EXIT_NPF		     0x400
#define SVM_EXIT_AVIC_INCOMPLETE_IPI 0x401

/* Configuration, set by the collector between open and load. */
const volatile bool track_matrix = true;
const volatile bool count_exits = true;
/* PIR vectors 0xc0-0xff (bits of PIR word 3) that kvm_pi_wakeup counts as IPIs */
const volatile __u64 pi_ipi_vectors = IPIV_PI_IPI_VECTORS;

#define AVIC_IS_RUNNING (1ull << 62) /* AVIC physical APIC ID entry: IsRunning */
#define PI_SN_BIT	1	     /* posted-interrupt descriptor control: suppress */

/* ---- maps ---- */

/* Who each vCPU thread is, and its counter cache: task local storage, freed with the
 * task, so a reused tid never inherits an identity. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ipiv_thread);
} threads SEC(".maps");

/* Room for the thread iterator's record, which does not fit the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ipiv_thread_rec);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPIV_MAX_VMS);
	__type(key, u64);   /* struct mm_struct * */
	__type(value, u64); /* VM key */
} mms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPIV_MAX_VMS);
	__type(key, u64); /* VM key */
	__type(value, struct ipiv_vm);
} vms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPIV_MAX_VMS);
	__type(key, u64); /* struct kvm * */
	__type(value, struct ipiv_vm_key);
} vm_keys SEC(".maps");

/* The state machine behind IPIV_CNT_STATE_NS (patched kernels), by struct kvm_vcpu *. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPIV_MAX_VCPUS);
	__type(key, u64);
	__type(value, struct ipiv_vcpu_state_rec);
} vcpu_states SEC(".maps");

/* ---- identity ---- */

static __always_inline u8 apic_mode_of_base(u64 apic_base)
{
	if (apic_base & APIC_BASE_X2APIC_ENABLE)
		return IPIV_APIC_X2APIC;
	if (apic_base & APIC_BASE_ENABLE)
		return IPIV_APIC_XAPIC;
	return IPIV_APIC_UNKNOWN;
}

/* Reads the vCPU's APIC mode; keeps the last known mode when the pointer is not known. */
static __always_inline void refresh_apic_mode(struct ipiv_thread *t)
{
	struct kvm_vcpu___ipiv *vcpu = (void *)t->vcpu_ptr;
	u64 apic_base = 0;

	if (!vcpu)
		return;
	if (bpf_core_read(&apic_base, sizeof(apic_base), &vcpu->arch.apic_base))
		return;
	t->apic_mode = apic_mode_of_base(apic_base);
}

/* A new VM's entry as inserted, filled in place (it does not fit the 512-byte stack). */
static const struct ipiv_vm vm_zero;

/*
 * Fills the entry of a VM just registered (key) at kvm pointer kvm of process tgid with
 * mm mm_ptr: its inhibits now, its stats id, and the start of its VMM's command line (the
 * argv area, never the environment after it), which names the VM if the process is gone
 * before discovery reads /proc. The command line is read only in a thread of that process
 * (a vCPU or VMM thread): registrations by discovery, which runs in ipivd, or in an IRQ
 * that interrupted another process keep none, and a page not in memory leaves it empty.
 */
static __noinline void fill_vm(u64 *key, struct kvm___ipiv *kvm, u64 mm_ptr, u32 tgid)
{
	struct task_struct___ipiv *task = (void *)bpf_get_current_task();
	struct mm_struct___ipiv *mm = (void *)mm_ptr;
	struct ipiv_vm *v = bpf_map_lookup_elem(&vms, key);
	unsigned long start, end;
	u32 len;

	if (!v)
		return;
	v->mm = mm_ptr;
	v->tgid = tgid;
	if (!v->n_changes) /* else a change traced since the insert is newer than this read */
		v->inhibits = BPF_CORE_READ(kvm, arch.apicv_inhibit_reasons);
	v->inhibits_known = 1;
	bpf_core_read_str(v->stats_id, sizeof(v->stats_id), &kvm->stats_id);
	if (!mm || (u64)BPF_CORE_READ(task, mm) != mm_ptr)
		return;
	start = BPF_CORE_READ(mm, arg_start);
	end = BPF_CORE_READ(mm, arg_end);
	if (end <= start)
		return;
	v->cmdline_cut = end - start > IPIV_CMDLINE_LEN;
	len = end - start > IPIV_CMDLINE_LEN ? IPIV_CMDLINE_LEN : end - start;
	asm volatile("" : "+r"(len)); /* bound the register the call gets, not a copy */
	if (len > IPIV_CMDLINE_LEN)
		return;
	if (!bpf_probe_read_user(v->cmdline, len, (void *)start))
		v->cmdline_len = len;
}

/*
 * The key of the VM at kvm pointer ptr, registering it the first time. A pointer known
 * for another process' mm belongs to a VM that has exited: the new VM at that address
 * gets the next generation, so the two never share counters. A known VM keeps its
 * inhibit state. Returns 0 when the maps are full.
 */
static __noinline u64 register_vm(u64 ptr, u32 tgid)
{
	struct kvm___ipiv *kvm = (void *)ptr;
	struct ipiv_vm_key *known, id = {};
	int err; /* not long: see lookup_or_insert */

	if (!ptr)
		return 0;
	id.mm = (u64)BPF_CORE_READ(kvm, mm);
	id.tgid = tgid;
	known = bpf_map_lookup_elem(&vm_keys, &ptr);
	if (known) {
		bool other = known->mm != id.mm || (tgid && known->tgid && known->tgid != tgid);

		if (!other && bpf_map_lookup_elem(&vms, &known->key)) {
			if (!known->tgid)
				known->tgid = tgid;
			return known->key;
		}
		id.gen = other ? known->gen + 1 : known->gen;
		if (!id.tgid)
			id.tgid = known->tgid;
	}
	id.key = IPIV_VM_KEY(ptr, id.gen);
	if (bpf_map_update_elem(&vm_keys, &ptr, &id, BPF_ANY)) {
		drop(IPIV_DROP_VMS_FULL);
		return 0;
	}
	err = bpf_map_update_elem(&vms, &id.key, &vm_zero, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		drop(IPIV_DROP_VMS_FULL);
		return 0;
	}
	if (!err)
		fill_vm(&id.key, kvm, id.mm, tgid);
	if (id.mm && bpf_map_update_elem(&mms, &id.mm, &id.key, BPF_ANY))
		drop(IPIV_DROP_MMS_FULL);
	return id.key;
}

/* The key of an already registered VM from its pointer, 0 if unknown. */
static __always_inline u64 vm_key_of(u64 ptr)
{
	struct ipiv_vm_key *known = bpf_map_lookup_elem(&vm_keys, &ptr);

	return known ? known->key : 0;
}

/* The current thread's storage if it is a known vCPU thread. */
static __always_inline struct ipiv_thread *my_thread(void)
{
	struct ipiv_thread *t = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0, 0);

	return t && t->vm ? t : NULL;
}

/* Makes the current thread vCPU vcpu of the VM at kvm_ptr; NULL if it cannot be stored. */
static __noinline struct ipiv_thread *add_thread(u32 tgid, struct kvm_vcpu___ipiv *vcpu,
						 u64 kvm_ptr)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ipiv_thread *t;
	u64 vm = register_vm(kvm_ptr, tgid);

	if (!vm)
		return NULL;
	t = bpf_task_storage_get(&threads, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		drop(IPIV_DROP_THREADS_FULL);
		return NULL;
	}
	if (t->vm && t->vm != vm) {
		/* it ran another VM's vCPU: its counts stay with that VM; what nests in the
		 * meantime counts into the maps */
		t->exited = 1;
		flush_cache(t);
		t->exited = 0;
	}
	t->vcpu_ptr = (u64)vcpu;
	t->apic_ptr = (u64)BPF_CORE_READ(vcpu, arch.apic);
	/* what reading apicv_active at each send would find, without the read */
	t->apicv_off = t->apic_ptr && apicv_disabled((struct kvm___ipiv *)kvm_ptr);
	if (t->apicv_off)
		t->apicv = IPIV_APICV_INACTIVE;
	t->vcpu_id = BPF_CORE_READ(vcpu, vcpu_id);
	t->tgid = tgid;
	t->apic_mode = apic_mode_of_base(BPF_CORE_READ(vcpu, arch.apic_base));
	t->vm = vm;
	lat_on_thread(t);
	return t;
}

/* Makes the current thread vcpu's, if vcpu's VM is current's: KVM runs a vCPU only in a
 * thread of the process that created the VM. */
static __noinline struct ipiv_thread *identify_thread(struct kvm_vcpu___ipiv *vcpu)
{
	struct task_struct___ipiv *task = (void *)bpf_get_current_task();
	struct kvm___ipiv *kvm = BPF_CORE_READ(vcpu, kvm);

	if (!kvm || BPF_CORE_READ(kvm, mm) != BPF_CORE_READ(task, mm))
		return NULL;
	return add_thread(bpf_get_current_pid_tgid() >> 32, vcpu, (u64)kvm);
}

/*
 * The vCPU the current thread runs, if any. KVM registers vcpu->preempt_notifier on the
 * thread in vcpu_load() and removes it in vcpu_put(), so inside KVM_RUN the first notifier
 * of current is the vCPU's; identify_thread's mm check rejects any other user of preempt
 * notifiers.
 */
static __noinline struct ipiv_thread *identify_current(void)
{
	struct task_struct___ipiv *task = (void *)bpf_get_current_task();
	struct hlist_node *first;

	if (!bpf_core_field_exists(task->preempt_notifiers))
		return NULL;
	first = BPF_CORE_READ(task, preempt_notifiers.first);
	if (!first)
		return NULL;
	return identify_thread((void *)first -
			       bpf_core_field_offset(struct kvm_vcpu___ipiv, preempt_notifier) -
			       bpf_core_field_offset(struct preempt_notifier___ipiv, link));
}

/* The current thread as a vCPU: its storage first, then the preempt notifier. */
static __always_inline struct ipiv_thread *current_vcpu(void)
{
	struct ipiv_thread *t = my_thread();

	if (t)
		return t;
	return identify_current();
}

/* The VM of a thread that may not be a vCPU (I/O thread, vhost worker): by its mm. */
static __always_inline u64 current_vm_by_mm(void)
{
	struct task_struct___ipiv *task = (void *)bpf_get_current_task();
	u64 mm = (u64)BPF_CORE_READ(task, mm);
	u64 *vm;

	if (!mm)
		return 0;
	vm = bpf_map_lookup_elem(&mms, &mm);
	return vm ? *vm : 0;
}

/* ---- sends ---- */

/* The path of an ICR write that just produced kvm_apic_ipi, from what this vCPU did last. */
static __always_inline u32 send_path(struct ipiv_thread *t)
{
	if (t->in_exit && t->exit_isa == IPIV_ISA_VMX) {
		switch (t->exit_reason) {
		case VMX_EXIT_APIC_WRITE: return IPIV_PATH_APIC_WRITE;
		case VMX_EXIT_MSR_WRITE:
		case VMX_EXIT_MSR_WRITE_IMM: return IPIV_PATH_X2APIC_MSR;
		case VMX_EXIT_APIC_ACCESS:
		case VMX_EXIT_EPT_VIOLATION:
		case VMX_EXIT_EPT_MISCONFIG: return IPIV_PATH_XAPIC_MMIO;
		}
	} else if (t->in_exit && t->exit_isa == IPIV_ISA_SVM) {
		switch (t->exit_reason) {
		case SVM_EXIT_MSR: return IPIV_PATH_X2APIC_MSR;
		case SVM_EXIT_NPF: return IPIV_PATH_XAPIC_MMIO;
		case SVM_EXIT_AVIC_INCOMPLETE_IPI: return IPIV_PATH_AVIC;
		}
	}
	/* No exit context (kvm_exit does not fire on this backend, or an emulated write
	 * inside some other exit): the APIC mode decides, since an x2APIC ICR is only
	 * reachable by WRMSR and an xAPIC ICR only by MMIO. The guest changes the mode by
	 * WRMSR to APIC_BASE, which kvm_msr sees; the VMM (reset, restore) untraced, so
	 * apic_base is read again once a jiffy, not at every send (a read is a helper call). */
	if ((u32)bpf_jiffies64() != t->mode_jiffies) {
		refresh_apic_mode(t);
		t->mode_jiffies = (u32)bpf_jiffies64();
	}
	if (t->apic_mode == IPIV_APIC_X2APIC)
		return IPIV_PATH_X2APIC_MSR;
	if (t->apic_mode == IPIV_APIC_XAPIC)
		return IPIV_PATH_XAPIC_MMIO;
	return IPIV_PATH_UNKNOWN;
}

/*
 * Why the CPU left this ICR write to KVM: an APIC-write VM exit (VMX reason 56, trap-like,
 * taken only for writes the CPU did not virtualize) whose kvm_apic_ipi fires on the same
 * thread before kvm_entry. The reasons follow the SDM's conditions for IPI virtualization in
 * order; an ICR that meets them all was trapped because IPIv is off on the vCPU (read from
 * the VMCS controls KVM shadows where the BTF has them), or, with IPIv on, for a reason the
 * ICR does not show (reserved bits).
 */
static __noinline u32 icr_trap_reason(struct ipiv_thread *t, u32 icr_low, u32 dest_id)
{
	struct kvm_vcpu___ipiv *vcpu = (void *)t->vcpu_ptr;
	int ipiv = vcpu ? vmx_ipiv_on(vcpu) : -1;
	u32 max_ids = 0;

	if (ipiv == 0)
		return IPIV_TRAP_IPIV_INACTIVE;
	if (icr_shorthand(icr_low) != ICR_SH_NONE)
		return IPIV_TRAP_SHORTHAND;
	if (icr_is_logical(icr_low))
		return IPIV_TRAP_LOGICAL;
	if (icr_delivery(icr_low) != ICR_DM_FIXED)
		return IPIV_TRAP_DELIVERY_MODE;
	if (vcpu && bpf_core_field_exists(struct kvm_arch___ipiv, max_vcpu_ids))
		max_ids = BPF_CORE_READ(vcpu, kvm, arch.max_vcpu_ids);
	refresh_apic_mode(t);
	if (icr_is_broadcast(dest_id, t->apic_mode) || (max_ids && dest_id >= max_ids))
		return IPIV_TRAP_DEST_RANGE;
	return ipiv == 1 ? IPIV_TRAP_OTHER : IPIV_TRAP_IPIV_INACTIVE;
}

SEC("raw_tp/kvm_apic_ipi")
int BPF_PROG(ipiv_apic_ipi, u32 icr_low, u32 dest_id)
{
	struct ipiv_thread *t = current_vcpu();
	u32 path;

	if (!t) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	if (t->avic_pending) {
		/* emulation of an AVIC incomplete IPI, already counted there */
		t->avic_pending = 0;
		return 0;
	}
	path = send_path(t);
	count(t, t->vm, t->vcpu_id, IPIV_CNT_SEND, path,
	      icr_classify(icr_low, dest_id, t->apic_mode), 1);
	if (path == IPIV_PATH_APIC_WRITE)
		count(t, t->vm, t->vcpu_id, IPIV_CNT_ICR_TRAP, icr_trap_reason(t, icr_low, dest_id),
		      icr_classify(icr_low, dest_id, t->apic_mode), 1);
	lat_on_send(t, path, icr_low);
	return 0;
}

/* APIC mode hints for vCPUs whose struct kvm_vcpu is not known. */
SEC("raw_tp/kvm_msr")
int BPF_PROG(ipiv_msr, unsigned int write, u32 ecx, u64 data, bool exception)
{
	struct ipiv_thread *t;

	if (!write || exception || (ecx != MSR_X2APIC_ICR && ecx != MSR_IA32_APICBASE))
		return 0;
	t = current_vcpu();
	if (!t)
		return 0;
	if (ecx == MSR_X2APIC_ICR)
		t->apic_mode = IPIV_APIC_X2APIC;
	else
		t->apic_mode = apic_mode_of_base(data);
	return 0;
}

SEC("raw_tp/kvm_mmio")
int BPF_PROG(ipiv_mmio, int type, int len, u64 gpa)
{
	struct ipiv_thread *t;

	if (type != KVM_TRACE_MMIO_WRITE || (gpa & ~APIC_BASE_ADDR_MASK) != APIC_ICR_OFFSET)
		return 0;
	t = current_vcpu();
	if (!t)
		return 0;
	if (t->vcpu_ptr) {
		refresh_apic_mode(t);
		return 0;
	}
	/* no apic_base to compare with: trust only the architectural default base */
	if ((gpa & APIC_BASE_ADDR_MASK) == APIC_DEFAULT_BASE)
		t->apic_mode = IPIV_APIC_XAPIC;
	return 0;
}

/* KVM PV IPI: a0/a1 are the destination bitmap, a3 the ICR; no kvm_apic_ipi follows. */
SEC("raw_tp/kvm_hypercall")
int BPF_PROG(ipiv_hypercall, unsigned long nr, unsigned long a0, unsigned long a1, unsigned long a2,
	     unsigned long a3)
{
	struct ipiv_thread *t;
	u32 class;

	if (nr != KVM_HC_SEND_IPI)
		return 0;
	t = current_vcpu();
	if (!t) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	/* the bitmap is not an APIC destination: classify the ICR bits with no broadcast */
	class = icr_classify((u32)a3, 0, ICR_MODE_X2APIC);
	count(t, t->vm, t->vcpu_id, IPIV_CNT_SEND, IPIV_PATH_PV_KVM, class, 1);
	lat_on_send(t, IPIV_PATH_PV_KVM, (u32)a3);
	return 0;
}

/* Hyper-V synthetic cluster IPIs are fixed-vector, physical; "all" only in the Ex form. */
static __always_inline void hv_send(u32 vector, bool all)
{
	struct ipiv_thread *t = current_vcpu();
	u32 class = ICR_DM_FIXED;

	if (!t) {
		drop(IPIV_DROP_NO_IDENTITY);
		return;
	}
	if (all)
		class |= ICR_CLASS_BROADCAST;
	count(t, t->vm, t->vcpu_id, IPIV_CNT_SEND, IPIV_PATH_PV_HYPERV, class, 1);
	lat_on_send(t, IPIV_PATH_PV_HYPERV, vector);
}

SEC("raw_tp/kvm_hv_send_ipi")
int BPF_PROG(ipiv_hv_send_ipi, u32 vector, u64 processor_mask)
{
	hv_send(vector, false);
	return 0;
}

SEC("raw_tp/kvm_hv_send_ipi_ex")
int BPF_PROG(ipiv_hv_send_ipi_ex, u32 vector, u64 format, u64 valid_bank_mask)
{
	hv_send(vector, format == HV_GENERIC_SET_ALL);
	return 0;
}

/*
 * AVIC could not deliver: counted here for every cause. Causes 0 and 2 are then emulated
 * through kvm_apic_send_ipi, whose kvm_apic_ipi must not count the same IPI again.
 */
SEC("raw_tp/kvm_avic_incomplete_ipi")
int BPF_PROG(ipiv_avic_incomplete_ipi, u32 vcpu_id, u32 icrh, u32 icrl, u32 id, u32 index)
{
	struct ipiv_thread *t = current_vcpu();
	u32 cause = id < IPIV_AVIC_CAUSE_OTHER ? id : IPIV_AVIC_CAUSE_OTHER;
	u32 dest;

	if (!t) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	refresh_apic_mode(t);
	dest = t->apic_mode == IPIV_APIC_X2APIC ? icrh : icrh >> 24;
	count(t, t->vm, t->vcpu_id, IPIV_CNT_AVIC_CAUSE, cause, 0, 1);
	count(t, t->vm, t->vcpu_id, IPIV_CNT_SEND, IPIV_PATH_AVIC,
	      icr_classify(icrl, dest, t->apic_mode), 1);
	lat_on_send(t, IPIV_PATH_AVIC, icrl);
	if (cause == IPIV_AVIC_INVALID_INT_TYPE || cause == IPIV_AVIC_INVALID_TARGET)
		t->avic_pending = 1;
	return 0;
}

/* ---- receives ---- */

/* Once per target; in the sender's thread for IPIs, in any VMM thread for devices. KVM
 * sets a vCPU's APIC ID to its vcpu_id, so apicid names the target vCPU. */
SEC("raw_tp/kvm_apic_accept_irq")
int BPF_PROG(ipiv_apic_accept_irq, u32 apicid, u16 dm, u16 tm, u8 vec)
{
	struct ipiv_thread *t = current_vcpu();
	u32 src = IPIV_VCPU_NONE;
	u64 vm;

	if (t) {
		vm = t->vm;
		src = t->vcpu_id;
	} else {
		vm = current_vm_by_mm();
		if (!vm) {
			drop(IPIV_DROP_NO_IDENTITY);
			return 0;
		}
	}
	count(t, vm, apicid, IPIV_CNT_RECV, (dm >> ICR_DELIVERY_SHIFT) & ICR_DELIVERY_MASK, 0, 1);
	lat_on_accept(t, vm, apicid, (dm >> ICR_DELIVERY_SHIFT) & ICR_DELIVERY_MASK, vec);
	if (track_matrix)
		count_matrix(t, vm, src, apicid);
	return 0;
}

/* Fires in the target's thread; this kernel traces each EOI twice, the echo with -1. A
 * thread not known yet is named by the tracepoint's own apic argument. */
SEC("raw_tp/kvm_eoi")
int BPF_PROG(ipiv_eoi, struct kvm_lapic___ipiv *apic, int vector)
{
	struct ipiv_thread *t;
	struct kvm_vcpu___ipiv *vcpu;
	u64 vm;
	u32 vcpu_id;

	if (vector < 0) {
		drop(IPIV_DROP_EOI_DUPLICATE);
		return 0;
	}
	t = my_thread();
	if (!t) {
		/* a vCPU thread not seen yet (a target that only EOIs): the apic names its
		 * vCPU, which this thread runs, so it becomes known once */
		vcpu = BPF_CORE_READ(apic, vcpu);
		t = vcpu ? identify_thread(vcpu) : NULL;
	}
	if (t) {
		vm = t->vm;
		vcpu_id = t->vcpu_id;
	} else {
		vcpu = BPF_CORE_READ(apic, vcpu);
		vm = vcpu ? vm_key_of((u64)BPF_CORE_READ(vcpu, kvm)) : 0;
		if (!vm) {
			drop(IPIV_DROP_NO_IDENTITY);
			return 0;
		}
		vcpu_id = BPF_CORE_READ(vcpu, vcpu_id);
	}
	count(t, vm, vcpu_id, IPIV_CNT_EOI, 0, 0, 1);
	lat_on_eoi(t, vm, vcpu_id, vector);
	return 0;
}

SEC("raw_tp/kvm_vcpu_wakeup")
int BPF_PROG(ipiv_vcpu_wakeup, u64 ns, bool waited, bool valid)
{
	struct ipiv_thread *t = current_vcpu();

	if (!t) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	count(t, t->vm, t->vcpu_id, IPIV_CNT_WAKEUP, waited, 0, 1);
	count(t, t->vm, t->vcpu_id, IPIV_CNT_HALT_NS, waited, 0, ns);
	lat_on_wakeup(t, ns, waited);
	return 0;
}

/* No vCPU argument: a vCPU thread or a VMM ioctl. Inhibits set at VM creation, before
 * the VM is known, are not counted; register_vm reads the bitmap they left. */
SEC("raw_tp/kvm_apicv_inhibit_changed")
int BPF_PROG(ipiv_apicv_inhibit_changed, int reason, bool set, unsigned long inhibits)
{
	struct ipiv_thread *t = my_thread();
	struct ipiv_vm *state;
	u64 vm = t ? t->vm : current_vm_by_mm();

	if (!vm) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	count_in_map(vm, IPIV_VCPU_NONE, IPIV_CNT_INHIBIT, (u16)reason, set, 1);
	state = bpf_map_lookup_elem(&vms, &vm);
	if (state) {
		/* each change takes its own slot, also when two race in one VM */
		u32 slot = __sync_fetch_and_add(&state->n_changes, 1) & (IPIV_TIMELINE - 1);

		state->inhibits = inhibits;
		state->inhibits_known = 1;
		state->changes[slot].ts = bpf_ktime_get_ns();
		state->changes[slot].reason = reason;
		state->changes[slot].set = set;
	}
	return 0;
}

/* ---- exits ---- */

/* Shared by kvm_exit and the synthetic test entry, so the logic runs under test even on
 * hosts where kvm_exit never fires. */
static __noinline int handle_exit(struct ipiv_thread *t, u32 isa, u32 reason, u64 info1)
{
	if (!t)
		return 0;
	if (isa == IPIV_ISA_VMX)
		reason &= 0xffff; /* basic exit reason; the high bits are flags */
	t->exit_isa = isa;
	t->exit_reason = reason;
	t->exit_info1 = info1;
	t->in_exit = 1;
	lat_on_exit(t);
	if (count_exits)
		count(t, t->vm, t->vcpu_id, IPIV_CNT_EXIT, isa, reason, 1);
	return 0;
}

static __noinline int handle_entry(struct ipiv_thread *t)
{
	if (!t)
		return 0;
	t->in_exit = 0;
	t->avic_pending = 0;
	lat_on_entry(t);
	return 0;
}

/*
 * Reads the exit reason that vmx/svm_vcpu_run stored before tracing kvm_exit. VMX info1
 * (exit qualification) is read lazily by KVM and may be stale here, so it is left 0;
 * APIC_WRITE exits followed by kvm_apic_ipi are ICR writes by construction. These reads
 * are proven only on hosts where kvm_exit fires (not on kvm_pvm); the logic after them is
 * tested through ipiv_test_exit.
 */
static __always_inline void read_exit(struct kvm_vcpu___ipiv *vcpu, u32 isa, u32 *reason,
				      u64 *info1)
{
	*reason = 0;
	*info1 = 0;
	if (isa == IPIV_ISA_VMX) {
		if (bpf_core_field_exists(struct vcpu_vmx___ipiv, vt)) {
			struct vcpu_vmx___ipiv *vmx =
				(void *)vcpu - bpf_core_field_offset(struct vcpu_vmx___ipiv, vcpu);

			*reason = BPF_CORE_READ(vmx, vt.exit_reason.full);
		} else if (bpf_core_field_exists(struct vcpu_vmx___ipiv_612, exit_reason)) {
			struct vcpu_vmx___ipiv_612 *vmx =
				(void *)vcpu -
				bpf_core_field_offset(struct vcpu_vmx___ipiv_612, vcpu);

			*reason = BPF_CORE_READ(vmx, exit_reason.full);
		}
	} else if (isa == IPIV_ISA_SVM) {
		if (bpf_core_field_exists(struct vcpu_svm___ipiv, vmcb)) {
			struct vcpu_svm___ipiv *svm =
				(void *)vcpu - bpf_core_field_offset(struct vcpu_svm___ipiv, vcpu);
			struct vmcb___ipiv *vmcb = BPF_CORE_READ(svm, vmcb);

			*reason = BPF_CORE_READ(vmcb, control.exit_code);
			*info1 = BPF_CORE_READ(vmcb, control.exit_info_1);
		}
	}
}

/* The current thread as vCPU vcpu (kvm_exit names it): known, or (re)identified now. */
static __always_inline struct ipiv_thread *thread_of_vcpu(struct kvm_vcpu___ipiv *vcpu)
{
	struct ipiv_thread *t = my_thread();

	if (t && (t->vcpu_ptr == (u64)vcpu || !t->vcpu_ptr)) /* 0: given by a test */
		return t;
	return add_thread(bpf_get_current_pid_tgid() >> 32, vcpu, (u64)BPF_CORE_READ(vcpu, kvm));
}

SEC("raw_tp/kvm_exit")
int BPF_PROG(ipiv_exit, struct kvm_vcpu___ipiv *vcpu, u32 isa)
{
	struct ipiv_thread *t = thread_of_vcpu(vcpu);
	u64 info1;
	u32 reason;

	if (!t)
		return 0;
	read_exit(vcpu, isa, &reason, &info1);
	return handle_exit(t, isa, reason, info1);
}

SEC("raw_tp/kvm_entry")
int BPF_PROG(ipiv_entry, struct kvm_vcpu___ipiv *vcpu)
{
	return handle_entry(my_thread());
}

/* ---- vCPU states and posted interrupts ---- */

/*
 * Moves the vCPU at vcpu_ptr to state (dest: where its descriptor points notifications, 0
 * on AMD), adding the time it spent in its previous state if that was not running. Returns
 * the previous state, IPIV_VSTATE_COUNT when the vCPU is new, or'ed with VSTATE_MOVED when
 * dest changed; the first event of a vCPU only starts the clock.
 */
#define VSTATE_MOVED 0x100

static __noinline u32 vcpu_state_to(u64 vcpu_ptr, u64 vm, u32 vcpu_id, u32 state, u32 dest)
{
	struct ipiv_vcpu_state_rec *rec = bpf_map_lookup_elem(&vcpu_states, &vcpu_ptr);
	struct ipiv_vcpu_state_rec fresh = {
		.vm = vm, .vcpu_id = vcpu_id, .state = state, .dest = dest};
	u64 now = bpf_ktime_get_ns();
	u32 prev;

	if (!rec || rec->vm != vm) {
		/* new, or the address of a vCPU of a VM that has gone */
		fresh.since = now;
		if (bpf_map_update_elem(&vcpu_states, &vcpu_ptr, &fresh, BPF_ANY))
			drop(IPIV_DROP_VCPU_STATES_FULL);
		return IPIV_VSTATE_COUNT;
	}
	prev = rec->state;
	if (rec->dest != dest) {
		rec->dest = dest;
		prev |= VSTATE_MOVED;
	}
	if (rec->state == state)
		return prev;
	if (rec->state != IPIV_VSTATE_RUNNING && rec->state < IPIV_VSTATE_COUNT && now > rec->since)
		count_in_map(vm, vcpu_id, IPIV_CNT_STATE_NS, rec->state, 0, now - rec->since);
	rec->state = state;
	rec->since = now;
	return prev;
}

/* A vCPU load or put as a fexit program saw it. */
struct vcpu_sample {
	u64 vm;
	u64 vcpu_ptr;
	u64 word; /* Intel: the descriptor's control word; AMD: the AVIC entry */
	u32 vcpu_id;
	bool preempted;
};

/*
 * Intel: the descriptor as vmx_vcpu_pi_load() or vmx_vcpu_pi_put() left it (control: SN
 * bit 1, NV bits 23:16, NDST bits 63:32). Blocked while NV is the wakeup vector, preempted
 * while SN is set; a change of NDST while running is a migration. Counts changes only:
 * KVM leaves the descriptor alone on most loads and puts.
 */
static __noinline int handle_pi_desc(struct ipiv_thread *t, const struct vcpu_sample *vs)
{
	u64 control = vs->word;
	u8 nv = control >> 16;
	u32 state, prev, trigger;

	if (!vs->vm) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	if (nv == IPIV_POSTED_INTR_WAKEUP_VECTOR)
		state = IPIV_VSTATE_BLOCKED;
	else if (control & (1ull << PI_SN_BIT))
		state = IPIV_VSTATE_PREEMPTED;
	else
		state = IPIV_VSTATE_RUNNING;
	prev = vcpu_state_to(vs->vcpu_ptr, vs->vm, vs->vcpu_id, state, control >> 32);
	if (prev == IPIV_VSTATE_COUNT)
		return 0; /* first sight: what it was before is unknown */
	if (state == IPIV_VSTATE_RUNNING && (prev & VSTATE_MOVED))
		trigger = IPIV_PI_MIGRATE;
	else if ((prev & ~VSTATE_MOVED) == state)
		return 0;
	else if (state == IPIV_VSTATE_RUNNING)
		trigger = IPIV_PI_LOAD;
	else
		trigger = state == IPIV_VSTATE_BLOCKED ? IPIV_PI_BLOCK : IPIV_PI_PREEMPT;
	count(t, vs->vm, vs->vcpu_id, IPIV_CNT_PI_DESC, trigger, 0, 1);
	return 0;
}

/*
 * The VM and id of a vCPU being loaded or put, and its thread if this is the vCPU's known
 * thread. A VMM thread that issues an ioctl on the vCPU loads it too, and must not become it.
 */
static __always_inline struct ipiv_thread *loading_thread(struct kvm_vcpu___ipiv *vcpu,
							  struct vcpu_sample *vs)
{
	struct task_struct___ipiv *task = (void *)bpf_get_current_task();
	struct ipiv_thread *t = my_thread();
	struct kvm___ipiv *kvm;

	vs->vcpu_ptr = (u64)vcpu;
	if (t && t->vcpu_ptr == (u64)vcpu) {
		vs->vm = t->vm;
		vs->vcpu_id = t->vcpu_id;
		return t;
	}
	kvm = BPF_CORE_READ(vcpu, kvm);
	vs->vm = vm_key_of((u64)kvm);
	/* A VM is loaded before any IPI of its own registers it (KVM_RUN's first vcpu_load):
	 * in a thread of its process, that is the VM, as an accept or EOI would register it. */
	if (!vs->vm && kvm && BPF_CORE_READ(kvm, mm) == BPF_CORE_READ(task, mm))
		vs->vm = register_vm((u64)kvm, bpf_get_current_pid_tgid() >> 32);
	vs->vcpu_id = BPF_CORE_READ(vcpu, vcpu_id);
	return NULL;
}

static __always_inline int pi_desc_after(struct kvm_vcpu___ipiv *vcpu)
{
	struct pi_desc___ipiv *desc = (void *)vmx_pi_desc(vcpu);
	struct vcpu_sample vs = {};
	struct ipiv_thread *t;

	if (!desc || bpf_core_read(&vs.word, sizeof(vs.word), &desc->control))
		return 0;
	/* KVM keeps the descriptor only where APICv is enabled (kvm_intel.enable_apicv;
	 * inhibited or not): elsewhere its reset state (SN set) says nothing of the vCPU */
	if (apicv_disabled(BPF_CORE_READ(vcpu, kvm)))
		return 0;
	t = loading_thread(vcpu, &vs);
	return handle_pi_desc(t, &vs);
}

/* fexit: the descriptor after the change, in the vCPU's thread (vcpu_load and the preempt
 * notifiers run there); Linux 5.16 and later (IPIv needs 5.18) */
SEC("fexit/vmx_vcpu_pi_load")
int BPF_PROG(ipiv_pi_load, struct kvm_vcpu___ipiv *vcpu, int cpu)
{
	return pi_desc_after(vcpu);
}

SEC("fexit/vmx_vcpu_pi_put")
int BPF_PROG(ipiv_pi_put, struct kvm_vcpu___ipiv *vcpu)
{
	return pi_desc_after(vcpu);
}

/* AMD: IsRunning of the vCPU's AVIC entry; a vCPU not running is preempted or not_running
 * (halted, or in user space). */
static __noinline int handle_avic_entry(struct ipiv_thread *t, const struct vcpu_sample *vs)
{
	bool is = vs->word & AVIC_IS_RUNNING;
	u32 state = is ? IPIV_VSTATE_RUNNING
		       : (vs->preempted ? IPIV_VSTATE_PREEMPTED : IPIV_VSTATE_NOT_RUNNING);
	u32 prev;

	if (!vs->vm) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	prev = vcpu_state_to(vs->vcpu_ptr, vs->vm, vs->vcpu_id, state, 0);
	if (prev != IPIV_VSTATE_COUNT && (prev == IPIV_VSTATE_RUNNING) != is)
		count(t, vs->vm, vs->vcpu_id, IPIV_CNT_AVIC_RUN, is, 0, 1);
	return 0;
}

static __always_inline int avic_after(struct kvm_vcpu___ipiv *vcpu)
{
	struct vcpu_sample vs = {.word = svm_avic_entry(vcpu),
				 .preempted = BPF_CORE_READ(vcpu, preempted)};
	struct ipiv_thread *t = loading_thread(vcpu, &vs);

	return handle_avic_entry(t, &vs);
}

/* load/put, and blocking/unblocking, which 6.12 and 6.18 implement by calls to the load/put
 * code inside avic.c that the compiler may inline */
SEC("fexit/avic_vcpu_load")
int BPF_PROG(ipiv_avic_load, struct kvm_vcpu___ipiv *vcpu, int cpu)
{
	return avic_after(vcpu);
}

SEC("fexit/avic_vcpu_put")
int BPF_PROG(ipiv_avic_put, struct kvm_vcpu___ipiv *vcpu)
{
	return avic_after(vcpu);
}

SEC("fexit/avic_vcpu_blocking")
int BPF_PROG(ipiv_avic_blocking, struct kvm_vcpu___ipiv *vcpu)
{
	return avic_after(vcpu);
}

SEC("fexit/avic_vcpu_unblocking")
int BPF_PROG(ipiv_avic_unblocking, struct kvm_vcpu___ipiv *vcpu)
{
	return avic_after(vcpu);
}

/* A posted interrupt woke a blocked vCPU: hard IRQ context, not the vCPU's thread. */
static __noinline int handle_pi_wakeup(u64 vm, u32 vcpu_id, u64 pir3)
{
	count_in_map(vm, vcpu_id, IPIV_CNT_PI_WAKEUP, (pir3 & pi_ipi_vectors) != 0, 0, 1);
	lat_on_pi_wakeup(vm, vcpu_id);
	return 0;
}

/*
 * kvm_pi_wakeup (kernel-patches/: patched kernels only) passes the vCPU alone. Its PIR
 * still holds what was posted: the handler fires the event under the wakeup list lock, which
 * vmx_vcpu_pi_load() takes before the vCPU can run and sync the PIR into its vIRR.
 */
SEC("raw_tp/kvm_pi_wakeup")
int BPF_PROG(ipiv_pi_wakeup, struct kvm_vcpu___ipiv *vcpu)
{
	u64 kvm = (u64)BPF_CORE_READ(vcpu, kvm), desc = vmx_pi_desc(vcpu), pir3 = 0;
	u64 vm = vm_key_of(kvm);

	if (!vm)
		vm = register_vm(kvm, 0); /* current is not the VMM: its pid comes later */
	if (!vm) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	if (desc)
		bpf_probe_read_kernel(&pir3, sizeof(pir3), (void *)(desc + PI_DESC_PIR_WORD3));
	return handle_pi_wakeup(vm, BPF_CORE_READ(vcpu, vcpu_id), pir3);
}

/*
 * Whether the exit fastpath sent an intercepted x2APIC ICR write, where fexit is permitted:
 * the return of KVM's exit fastpath for WRMSR (EXIT_FASTPATH_NONE: declined, the slow path
 * will emulate the write).
 */
#define VCPU_REGS_RAX	   0
#define VCPU_REGS_RCX	   1
#define VCPU_REGS_RDX	   2
#define EXIT_FASTPATH_NONE 0

static __always_inline int fastpath_wrmsr(struct kvm_vcpu___ipiv *vcpu, u32 msr, u64 icr, int ret)
{
	struct ipiv_thread *t;

	if (msr != MSR_X2APIC_ICR)
		return 0;
	t = thread_of_vcpu(vcpu);
	if (!t) {
		drop(IPIV_DROP_NO_IDENTITY);
		return 0;
	}
	t->apic_mode = IPIV_APIC_X2APIC;
	count(t, t->vm, t->vcpu_id, IPIV_CNT_FASTPATH, ret != EXIT_FASTPATH_NONE,
	      icr_classify((u32)icr, icr >> 32, ICR_MODE_X2APIC), 1);
	/* the exit's cost, timed at the next kvm_entry, is the fastpath's */
	if (ret != EXIT_FASTPATH_NONE)
		lat_on_fastpath(t);
	return 0;
}

static __always_inline u64 guest_reg(struct kvm_vcpu___ipiv *vcpu, u32 reg)
{
	return BPF_CORE_READ(vcpu, arch.regs[reg]);
}

static __always_inline u64 guest_edx_eax(struct kvm_vcpu___ipiv *vcpu)
{
	return (guest_reg(vcpu, VCPU_REGS_RDX) << 32) | (u32)guest_reg(vcpu, VCPU_REGS_RAX);
}

/* Linux 5.8 to 6.17 */
SEC("fexit/handle_fastpath_set_msr_irqoff")
int BPF_PROG(ipiv_fastpath_set_msr, struct kvm_vcpu___ipiv *vcpu, int ret)
{
	return fastpath_wrmsr(vcpu, (u32)guest_reg(vcpu, VCPU_REGS_RCX), guest_edx_eax(vcpu), ret);
}

/* Linux 6.18: WRMSR, and the immediate form of WRMSRNS (msr and source register given) */
SEC("fexit/handle_fastpath_wrmsr")
int BPF_PROG(ipiv_fastpath_wrmsr, struct kvm_vcpu___ipiv *vcpu, int ret)
{
	return fastpath_wrmsr(vcpu, (u32)guest_reg(vcpu, VCPU_REGS_RCX), guest_edx_eax(vcpu), ret);
}

SEC("fexit/handle_fastpath_wrmsr_imm")
int BPF_PROG(ipiv_fastpath_wrmsr_imm, struct kvm_vcpu___ipiv *vcpu, u32 msr, int reg, int ret)
{
	return fastpath_wrmsr(vcpu, msr, guest_reg(vcpu, (u32)reg & 15), ret);
}

/* A vCPU thread that exits leaves its cached counts in the maps; its storage goes with
 * the task. Anything it counts after this goes straight to the maps. */
SEC("raw_tp/sched_process_exit")
int BPF_PROG(ipiv_thread_exit, struct task_struct *task)
{
	struct ipiv_thread *t = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0, 0);

	if (!t || t->exited)
		return 0;
	t->exited = 1;
	flush_cache(t);
	return 0;
}

/* Test-only entries (autoload off): drive handle_exit/handle_entry with plain values. */
SEC("?raw_tp/ipiv_synthetic_exit")
int BPF_PROG(ipiv_test_exit, u64 isa, u64 reason, u64 info1)
{
	return handle_exit(current_vcpu(), isa, reason, info1);
}

/* one dummy argument, like kvm_entry's vcpu: BPF_PROG_TEST_RUN wants a context */
SEC("?raw_tp/ipiv_synthetic_entry")
int BPF_PROG(ipiv_test_entry, u64 unused)
{
	return handle_entry(current_vcpu());
}

/* kvm_pi_wakeup's logic with a plain VM key and PIR word (it runs outside the vCPU thread,
 * so a test cannot lend it an identity through its thread's storage). */
SEC("?raw_tp/ipiv_synthetic_pi_wakeup")
int BPF_PROG(ipiv_test_pi_wakeup, u64 vm, u64 vcpu_id, u64 pir3)
{
	return handle_pi_wakeup(vm, vcpu_id, pir3);
}

/* The AVIC fexit programs' logic with the entry and vcpu->preempted given, for the current
 * (test) thread. */
SEC("?raw_tp/ipiv_synthetic_avic_physid")
int BPF_PROG(ipiv_test_avic_physid, u64 vcpu_ptr, u64 entry, u64 preempted)
{
	struct ipiv_thread *t = current_vcpu();
	struct vcpu_sample vs = {.vcpu_ptr = vcpu_ptr, .word = entry, .preempted = preempted};

	if (!t)
		return 0;
	vs.vm = t->vm;
	vs.vcpu_id = t->vcpu_id;
	return handle_avic_entry(t, &vs);
}

/* The posted-interrupt descriptor fexit programs' logic with its control word given. */
SEC("?raw_tp/ipiv_synthetic_pi_desc")
int BPF_PROG(ipiv_test_pi_desc, u64 vcpu_ptr, u64 control)
{
	struct ipiv_thread *t = current_vcpu();
	struct vcpu_sample vs = {.vcpu_ptr = vcpu_ptr, .word = control};

	if (!t)
		return 0;
	vs.vm = t->vm;
	vs.vcpu_id = t->vcpu_id;
	return handle_pi_desc(t, &vs);
}

/* The WRMSR fastpath fexit programs' logic for the current (test) thread, whose storage has
 * no vCPU pointer: the MSR, the value written and the fastpath's return given. */
SEC("?raw_tp/ipiv_synthetic_fastpath")
int BPF_PROG(ipiv_test_fastpath, u64 msr, u64 icr, u64 ret)
{
	return fastpath_wrmsr(NULL, msr, icr, ret);
}

/* ---- discovery ---- */

static __always_inline bool name_is(const char *name, const char *want, int len)
{
	for (int i = 0; i < len; i++)
		if (name[i] != want[i])
			return false;
	return true;
}

/*
 * One record per KVM file of each process: "kvm-vm" files hold the struct kvm, and
 * "kvm-vcpu:N" files the struct kvm_vcpu (anon inode dentry names, set by KVM). It also
 * registers the VM, so VMs that ran before the collector started keep their inhibit state
 * and are attributed from their first event (vCPU threads identify themselves then).
 */
SEC("iter/task_file")
int ipiv_discover(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct ipiv_discovery_rec rec = {};
	struct kvm_vcpu___ipiv *vcpu;
	struct kvm___ipiv *kvm;
	char name[12] = {};
	const unsigned char *dname;

	if (!task || !file)
		return 0;
	dname = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(name, sizeof(name), dname) < 0)
		return 0;
	if (name_is(name, "kvm-vm", 7)) {
		kvm = BPF_CORE_READ(file, private_data);
		rec.kind = IPIV_FILE_VM;
	} else if (name_is(name, "kvm-vcpu:", 9) && name[9] >= '0' && name[9] <= '9') {
		vcpu = BPF_CORE_READ(file, private_data);
		kvm = BPF_CORE_READ(vcpu, kvm);
		rec.kind = IPIV_FILE_VCPU;
		rec.vcpu_ptr = (u64)vcpu;
		rec.vcpu_id = BPF_CORE_READ(vcpu, vcpu_id);
		rec.vcpu_tid = BPF_CORE_READ(vcpu, pid, numbers[0].nr);
		rec.apicv_active = apicv_of(vcpu);
		rec.apic_mode = apic_mode_of_base(BPF_CORE_READ(vcpu, arch.apic_base));
	} else {
		return 0;
	}
	if (!kvm)
		return 0;
	rec.tgid = BPF_CORE_READ(task, tgid);
	rec.pid = BPF_CORE_READ(task, pid);
	rec.fd = ctx->fd;
	rec.mm = (u64)BPF_CORE_READ(task, mm);
	bpf_core_read_str(rec.stats_id, sizeof(rec.stats_id), &kvm->stats_id);
	/* a process holding a VM fd it did not create is not the VMM */
	rec.vm = register_vm((u64)kvm, rec.mm == (u64)BPF_CORE_READ(kvm, mm) ? rec.tgid : 0);
	if (!rec.vm)
		return 0;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

/*
 * One record per thread that has storage: its identity and its valid cached counts, each
 * read with one 8-byte load (a torn count could go backwards). ipiv_prune_threads drops the
 * storage of threads whose VM has been reclaimed.
 */
SEC("iter/task")
int ipiv_dump_threads(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct ipiv_thread_rec *r;
	struct ipiv_thread *t;
	u32 zero = 0;

	if (!task)
		return 0;
	t = bpf_task_storage_get(&threads, task, 0, 0);
	if (!t)
		return 0; /* vm 0 (not a vCPU any more) still has cached counts to report */
	r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return 0;
	r->tid = task->pid;
	r->tgid = task->tgid;
	r->t.vm = t->vm;
	r->t.vcpu_ptr = t->vcpu_ptr;
	r->t.vcpu_id = t->vcpu_id;
	r->t.tgid = t->tgid;
	r->t.apic_mode = t->apic_mode;
	r->t.apicv = t->apicv;
	r->t.exited = t->exited;
#pragma unroll
	for (int i = 0; i < IPIV_THREAD_CACHE; i++) {
		bool valid = t->cache[i].state == IPIV_CACHE_VALID;

		asm volatile("" ::: "memory"); /* the key is whole once the entry is valid */
		r->t.cache[i].key = t->cache[i].key;
		r->t.cache[i].n = valid ? t->cache[i].n : 0;
		r->t.cache[i].state = valid ? IPIV_CACHE_VALID : IPIV_CACHE_FREE;
	}
	bpf_seq_write(ctx->meta->seq, r, sizeof(*r));
	return 0;
}

/* Deletes the storage of threads whose VM the collector has reclaimed (run after a reclaim):
 * a live thread of a new VM is identified afresh at its next event. */
SEC("iter/task")
int ipiv_prune_threads(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct ipiv_thread *t;

	if (!task) {
		/* the walk's end: the dense latency slots of the VMs just reclaimed */
		lat_free_unbound_slots();
		return 0;
	}
	t = bpf_task_storage_get(&threads, task, 0, 0);
	if (t && t->vm && !bpf_map_lookup_elem(&vms, &t->vm))
		bpf_task_storage_delete(&threads, task);
	return 0;
}
