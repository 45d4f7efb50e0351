/* SPDX-License-Identifier: GPL-2.0 */
/* The KVM (and core) types ipiv reads, as CO-RE shadow structs: ___ipiv flavors with
 * preserve_access_index, which libbpf relocates against the kvm module's BTF (distribution
 * kernels build KVM as a module, so vmlinux.h does not hold these types), and the reads of
 * them that more than one program needs. */
#ifndef IPIV_KVM_TYPES_BPF_H
#define IPIV_KVM_TYPES_BPF_H

#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "ipiv.h"

struct preempt_notifier___ipiv {
	struct hlist_node link;
} __attribute__((preserve_access_index));

struct mm_struct___ipiv {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct task_struct___ipiv {
	struct hlist_head preempt_notifiers;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

struct kvm_arch___ipiv {
	unsigned long apicv_inhibit_reasons;
	u32 max_vcpu_ids; /* the size of the IPIv PID table and the AVIC physical ID table */
} __attribute__((preserve_access_index));

struct kvm___ipiv {
	struct mm_struct *mm;
	struct kvm_arch___ipiv arch;
	char stats_id[IPIV_STATS_ID_LEN];
} __attribute__((preserve_access_index));

struct kvm_lapic___ipiv;

struct kvm_vcpu_arch___ipiv {
	unsigned long regs[17]; /* NR_VCPU_REGS: the guest's GPRs as KVM caches them */
	u64 apic_base;
	struct kvm_lapic___ipiv *apic;
} __attribute__((preserve_access_index));

struct upid___ipiv {
	int nr;
} __attribute__((preserve_access_index));

struct pid___ipiv {
	struct upid___ipiv numbers[1];
} __attribute__((preserve_access_index));

struct kvm_vcpu___ipiv {
	struct kvm___ipiv *kvm;
	struct preempt_notifier___ipiv preempt_notifier;
	int vcpu_id;
	bool preempted;
	struct pid___ipiv *pid;
	struct kvm_vcpu_arch___ipiv arch;
} __attribute__((preserve_access_index));

struct kvm_lapic___ipiv {
	struct kvm_vcpu___ipiv *vcpu;
	bool apicv_active;
} __attribute__((preserve_access_index));

union vmx_exit_reason___ipiv {
	u32 full;
} __attribute__((preserve_access_index));

/* The posted-interrupt descriptor: the 256-bit PIR opens it in every kernel (u32[8] up to
 * 6.17, unsigned long[4] from 6.18), then control: ON (bit 0), SN (bit 1), NV (bits 23:16),
 * NDST (bits 63:32). */
struct pi_desc___ipiv {
	u64 control;
} __attribute__((preserve_access_index));

#define PI_DESC_PIR_WORD3 24 /* byte offset of PIR bits 255:192, vectors 0xc0-0xff */

struct vmcs_controls_shadow___ipiv {
	u64 tertiary_exec;
} __attribute__((preserve_access_index));

struct loaded_vmcs___ipiv {
	struct vmcs_controls_shadow___ipiv controls_shadow;
} __attribute__((preserve_access_index));

/* 6.18: the exit reason and the descriptor moved into struct vcpu_vt, shared with TDX */
struct vcpu_vt___ipiv {
	union vmx_exit_reason___ipiv exit_reason;
	struct pi_desc___ipiv pi_desc;
} __attribute__((preserve_access_index));

struct vcpu_vmx___ipiv {
	struct kvm_vcpu___ipiv vcpu;
	struct vcpu_vt___ipiv vt;
	struct loaded_vmcs___ipiv *loaded_vmcs;
} __attribute__((preserve_access_index));

/* up to 6.17 */
struct vcpu_vmx___ipiv_612 {
	struct kvm_vcpu___ipiv vcpu;
	union vmx_exit_reason___ipiv exit_reason;
	struct pi_desc___ipiv pi_desc;
} __attribute__((preserve_access_index));

/* exit_code is u32 up to 6.x and u64 later; the low half is at the same offset (LE) */
struct vmcb_control_area___ipiv {
	u32 exit_code;
	u64 exit_info_1;
} __attribute__((preserve_access_index));

struct vmcb___ipiv {
	struct vmcb_control_area___ipiv control;
} __attribute__((preserve_access_index));

struct vcpu_svm___ipiv {
	struct kvm_vcpu___ipiv vcpu;
	struct vmcb___ipiv *vmcb;
	u64 avic_physical_id_entry; /* 6.18: the vCPU's AVIC entry as KVM keeps it */
} __attribute__((preserve_access_index));

/* up to 6.17: a pointer to the vCPU's entry in the physical APIC ID table */
struct vcpu_svm___ipiv_612 {
	struct kvm_vcpu___ipiv vcpu;
	u64 *avic_physical_id_cache;
} __attribute__((preserve_access_index));

/* The APICv inhibit "disabled": kvm_intel/kvm_amd run without APICv/AVIC. KVM sets it when it
 * creates a VM and never clears it (the module parameter is read-only), so no vCPU of such a
 * VM ever has APICv active. Bit 0 in every kernel so far; by CO-RE where the enum exists. */
enum kvm_apicv_inhibit___ipiv {
	APICV_INHIBIT_REASON_DISABLED___ipiv = 0,
};

static __always_inline bool apicv_disabled(struct kvm___ipiv *kvm)
{
	unsigned long inhibits = BPF_CORE_READ(kvm, arch.apicv_inhibit_reasons);
	int bit = 0;

	if (bpf_core_enum_value_exists(enum kvm_apicv_inhibit___ipiv,
				       APICV_INHIBIT_REASON_DISABLED___ipiv))
		bit = bpf_core_enum_value(enum kvm_apicv_inhibit___ipiv,
					  APICV_INHIBIT_REASON_DISABLED___ipiv);
	return (inhibits >> (bit & 63)) & 1;
}

/* APICv/AVIC on the vCPU of apic as KVM keeps it (apic->apicv_active). */
static __always_inline __u8 apicv_of_apic(struct kvm_lapic___ipiv *apic)
{
	bool active = false;

	if (!apic || bpf_core_read(&active, sizeof(active), &apic->apicv_active))
		return IPIV_APICV_UNKNOWN;
	return active ? IPIV_APICV_ACTIVE : IPIV_APICV_INACTIVE;
}

/* The same from the vCPU (vcpu->arch.apic->apicv_active). */
static __always_inline __u8 apicv_of(struct kvm_vcpu___ipiv *vcpu)
{
	return apicv_of_apic(BPF_CORE_READ(vcpu, arch.apic));
}

/* The address of a VMX vCPU's posted-interrupt descriptor (struct vcpu_vmx embeds the vCPU;
 * 6.18 keeps the descriptor in its struct vcpu_vt), 0 where the BTF has no vcpu_vmx
 * (kvm_intel not loaded). */
static __always_inline u64 vmx_pi_desc(struct kvm_vcpu___ipiv *vcpu)
{
	u64 vmx;

	if (bpf_core_field_exists(struct vcpu_vmx___ipiv, vt) &&
	    bpf_core_field_exists(struct vcpu_vt___ipiv, pi_desc)) {
		vmx = (u64)vcpu - bpf_core_field_offset(struct vcpu_vmx___ipiv, vcpu);
		return vmx + bpf_core_field_offset(struct vcpu_vmx___ipiv, vt) +
		       bpf_core_field_offset(struct vcpu_vt___ipiv, pi_desc);
	}
	if (bpf_core_field_exists(struct vcpu_vmx___ipiv_612, pi_desc)) {
		vmx = (u64)vcpu - bpf_core_field_offset(struct vcpu_vmx___ipiv_612, vcpu);
		return vmx + bpf_core_field_offset(struct vcpu_vmx___ipiv_612, pi_desc);
	}
	return 0;
}

#define TERTIARY_EXEC_IPI_VIRT (1ull << 4)

/* Whether IPI virtualization is on in the VMCS the vCPU runs with (its tertiary controls as
 * KVM shadows them): 1 on, 0 off, -1 unknown (no vcpu_vmx in BTF, or unreadable). A KVM
 * whose controls shadow has no tertiary controls predates its IPIv support (both came in
 * 5.18): off. */
static __always_inline int vmx_ipiv_on(struct kvm_vcpu___ipiv *vcpu)
{
	struct vcpu_vmx___ipiv *vmx;
	struct loaded_vmcs___ipiv *vmcs;
	u64 tertiary;

	if (!bpf_core_field_exists(struct vcpu_vmx___ipiv, loaded_vmcs))
		return -1;
	if (!bpf_core_field_exists(struct vmcs_controls_shadow___ipiv, tertiary_exec))
		return 0;
	vmx = (void *)vcpu - bpf_core_field_offset(struct vcpu_vmx___ipiv, vcpu);
	vmcs = BPF_CORE_READ(vmx, loaded_vmcs);
	if (!vmcs ||
	    bpf_core_read(&tertiary, sizeof(tertiary), &vmcs->controls_shadow.tertiary_exec))
		return -1;
	return (tertiary & TERTIARY_EXEC_IPI_VIRT) != 0;
}

/* The vCPU's AVIC physical APIC ID entry as KVM last wrote it for the vCPU (6.18: the cached
 * entry, which has IsRunning also when kvm_amd.enable_ipiv=0 keeps it out of the table), 0
 * where the BTF has no vcpu_svm. */
static __always_inline u64 svm_avic_entry(struct kvm_vcpu___ipiv *vcpu)
{
	u64 entry = 0, *cache;

	if (bpf_core_field_exists(struct vcpu_svm___ipiv, avic_physical_id_entry)) {
		struct vcpu_svm___ipiv *svm =
			(void *)vcpu - bpf_core_field_offset(struct vcpu_svm___ipiv, vcpu);

		return BPF_CORE_READ(svm, avic_physical_id_entry);
	}
	if (bpf_core_field_exists(struct vcpu_svm___ipiv_612, avic_physical_id_cache)) {
		struct vcpu_svm___ipiv_612 *svm =
			(void *)vcpu - bpf_core_field_offset(struct vcpu_svm___ipiv_612, vcpu);

		cache = BPF_CORE_READ(svm, avic_physical_id_cache);
		if (cache)
			bpf_probe_read_kernel(&entry, sizeof(entry), cache);
	}
	return entry;
}

#endif /* IPIV_KVM_TYPES_BPF_H */
