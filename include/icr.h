/* SPDX-License-Identifier: GPL-2.0 */
/* ICR classification, shared by BPF and C: what kind of IPI a guest asked for, and whether
 * IPIv / AVIC could have delivered it without an exit. Pure static inline functions. */
#ifndef IPIV_ICR_H
#define IPIV_ICR_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#include <stdio.h>
#endif

/* ICR low word (SDM Vol. 3, 11.6.1) */
#define ICR_VECTOR_MASK	    0xffu
#define ICR_DELIVERY_SHIFT  8
#define ICR_DELIVERY_MASK   0x7u
#define ICR_DEST_LOGICAL    (1u << 11)
#define ICR_SHORTHAND_SHIFT 18
#define ICR_SHORTHAND_MASK  0x3u

#define ICR_XAPIC_BROADCAST  0xffu
#define ICR_X2APIC_BROADCAST 0xffffffffu

enum icr_delivery {
	ICR_DM_FIXED = 0,
	ICR_DM_LOWEST_PRIO = 1,
	ICR_DM_SMI = 2,
	ICR_DM_RESERVED3 = 3, /* in an ICR; accepted, it is KVM's PV kick (ICR_DM_PV_KICK) */
	ICR_DM_PV_KICK = 3,
	ICR_DM_NMI = 4,
	ICR_DM_INIT = 5,
	ICR_DM_SIPI = 6,
	ICR_DM_EXTINT = 7,
	ICR_DM_COUNT = 8,
};

enum icr_shorthand {
	ICR_SH_NONE = 0,
	ICR_SH_SELF = 1,
	ICR_SH_ALL = 2,
	ICR_SH_ALL_BUT_SELF = 3,
	ICR_SH_COUNT = 4,
};

/* A class packs the fields that decide acceleration into 8 bits:
 *   bits 0-2 delivery mode, bit 3 logical destination, bits 4-5 shorthand,
 *   bit 6 broadcast destination, bit 7 logical multicast (more than one bit in the mask). */
#define ICR_CLASS_LOGICAL   (1u << 3)
#define ICR_CLASS_SH_SHIFT  4
#define ICR_CLASS_BROADCAST (1u << 6)
#define ICR_CLASS_MULTICAST (1u << 7)
#define ICR_CLASS_COUNT	    256

/* APIC mode as known to the caller: 0 unknown, 1 xAPIC, 2 x2APIC (enum ipiv_apic_mode). */
#define ICR_MODE_UNKNOWN 0
#define ICR_MODE_XAPIC	 1
#define ICR_MODE_X2APIC	 2

static inline __u32 icr_delivery(__u32 icr_low)
{
	return (icr_low >> ICR_DELIVERY_SHIFT) & ICR_DELIVERY_MASK;
}

static inline __u32 icr_shorthand(__u32 icr_low)
{
	return (icr_low >> ICR_SHORTHAND_SHIFT) & ICR_SHORTHAND_MASK;
}

static inline int icr_is_logical(__u32 icr_low)
{
	return (icr_low & ICR_DEST_LOGICAL) != 0;
}

/*
 * dest_id is what kvm_apic_ipi reports: the full ICR high word in x2APIC mode, bits 31:24
 * of it in xAPIC mode. 0xff is a valid unicast x2APIC ID, so it means broadcast only when
 * the vCPU is not known to be in x2APIC mode.
 */
static inline int icr_is_broadcast(__u32 dest_id, int apic_mode)
{
	if (dest_id == ICR_X2APIC_BROADCAST)
		return 1;
	return apic_mode != ICR_MODE_X2APIC && dest_id == ICR_XAPIC_BROADCAST;
}

static inline int icr_popcount32(__u32 v)
{
	v = v - ((v >> 1) & 0x55555555u);
	v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
	return (int)((((v + (v >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24);
}

/*
 * Logical destinations address a set. x2APIC: cluster in bits 31:16, member mask in 15:0.
 * xAPIC: an 8-bit mask in the flat model; in the cluster model (DFR) the low nibble is the
 * mask, which the 8-bit count also gets right unless the cluster nibble has two bits set.
 */
static inline int icr_is_multicast(__u32 icr_low, __u32 dest_id, int apic_mode)
{
	__u32 mask;

	if (!icr_is_logical(icr_low) || icr_is_broadcast(dest_id, apic_mode))
		return 0;
	mask = apic_mode == ICR_MODE_X2APIC ? dest_id & 0xffffu : dest_id & 0xffu;
	return icr_popcount32(mask) > 1;
}

static inline __u32 icr_classify(__u32 icr_low, __u32 dest_id, int apic_mode)
{
	__u32 class = icr_delivery(icr_low);

	if (icr_is_logical(icr_low))
		class |= ICR_CLASS_LOGICAL;
	class |= icr_shorthand(icr_low) << ICR_CLASS_SH_SHIFT;
	if (icr_is_broadcast(dest_id, apic_mode))
		class |= ICR_CLASS_BROADCAST;
	if (icr_is_multicast(icr_low, dest_id, apic_mode))
		class |= ICR_CLASS_MULTICAST;
	return class;
}

static inline __u32 icr_class_delivery(__u32 class)
{
	return class & ICR_DELIVERY_MASK;
}

static inline __u32 icr_class_shorthand(__u32 class)
{
	return (class >> ICR_CLASS_SH_SHIFT) & ICR_SHORTHAND_MASK;
}

static inline int icr_class_is_logical(__u32 class)
{
	return (class & ICR_CLASS_LOGICAL) != 0;
}

static inline int icr_class_is_broadcast(__u32 class)
{
	return (class & ICR_CLASS_BROADCAST) != 0;
}

static inline int icr_class_is_multicast(__u32 class)
{
	return (class & ICR_CLASS_MULTICAST) != 0;
}

/*
 * What IPIv and AVIC virtualize without an exit: fixed delivery, physical destination,
 * no shorthand, one destination (not broadcast). Everything else traps on both.
 */
static inline int icr_class_accel_eligible(__u32 class)
{
	return icr_class_delivery(class) == ICR_DM_FIXED && !icr_class_is_logical(class) &&
	       icr_class_shorthand(class) == ICR_SH_NONE && !icr_class_is_broadcast(class);
}

/* Label tables (Prometheus label values: lower case, no spaces). User space only. */
#ifndef __VMLINUX_H__
static const char *const icr_delivery_names[ICR_DM_COUNT] = {
	[ICR_DM_FIXED] = "fixed", [ICR_DM_LOWEST_PRIO] = "lowest_prio",
	[ICR_DM_SMI] = "smi",	  [ICR_DM_RESERVED3] = "reserved3",
	[ICR_DM_NMI] = "nmi",	  [ICR_DM_INIT] = "init",
	[ICR_DM_SIPI] = "sipi",	  [ICR_DM_EXTINT] = "extint",
};

/*
 * An accepted interrupt's (kvm_apic_accept_irq) delivery mode is KVM's, not a guest ICR's:
 * KVM's PV unhalt kick (KVM_HC_KICK_CPU, kvm_pv_kick_cpu_op: a Linux guest's PV spinlocks)
 * is accepted with APIC_DM_REMRD (3), which __apic_accept_irq handles by setting
 * pv_unhalted and kicking the vCPU; an ICR write of that reserved mode does the same.
 */
static inline const char *icr_accept_delivery_name(__u32 dm)
{
	dm &= ICR_DELIVERY_MASK;
	return dm == ICR_DM_PV_KICK ? "pv_kick" : icr_delivery_names[dm];
}

static const char *const icr_shorthand_names[ICR_SH_COUNT] = {
	[ICR_SH_NONE] = "none",
	[ICR_SH_SELF] = "self",
	[ICR_SH_ALL] = "all",
	[ICR_SH_ALL_BUT_SELF] = "all_but_self",
};

static const char *const icr_dest_mode_names[2] = {"physical", "logical"};

/* "fixed/physical/none", with "/broadcast" or "/multicast" appended when set. Returns the
 * snprintf length. */
static inline int icr_class_format(__u32 class, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/%s/%s%s%s", icr_delivery_names[icr_class_delivery(class)],
			icr_dest_mode_names[icr_class_is_logical(class)],
			icr_shorthand_names[icr_class_shorthand(class)],
			icr_class_is_broadcast(class) ? "/broadcast" : "",
			icr_class_is_multicast(class) ? "/multicast" : "");
}
#endif

#endif /* IPIV_ICR_H */
