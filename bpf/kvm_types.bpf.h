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

/* 6.18: the exit reason moved into struct vcpu_vt, shared with TDX */
struct vcpu_vt___ipiv {
	union vmx_exit_reason___ipiv exit_reason;
} __attribute__((preserve_access_index));

struct vcpu_vmx___ipiv {
	struct kvm_vcpu___ipiv vcpu;
	struct vcpu_vt___ipiv vt;
} __attribute__((preserve_access_index));

/* up to 6.17 */
struct vcpu_vmx___ipiv_612 {
	struct kvm_vcpu___ipiv vcpu;
	union vmx_exit_reason___ipiv exit_reason;
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

#endif /* IPIV_KVM_TYPES_BPF_H */
