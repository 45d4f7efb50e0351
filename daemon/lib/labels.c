// SPDX-License-Identifier: GPL-2.0
/* Label values for the enums of include/ipiv.h (labels.h). Plain C: no libbpf, no maps. */
#include <stdint.h>
#include <stdio.h>

#include "labels.h"

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
	[IPIV_DROP_TARGETS_FULL] = "targets_map_full",
};

static const char *const avic_cause_names[IPIV_AVIC_CAUSE_COUNT] = {
	[IPIV_AVIC_INVALID_INT_TYPE] = "invalid_int_type",
	[IPIV_AVIC_TARGET_NOT_RUNNING] = "target_not_running",
	[IPIV_AVIC_INVALID_TARGET] = "invalid_target",
	[IPIV_AVIC_INVALID_BACKING_PAGE] = "invalid_backing_page",
	[IPIV_AVIC_INVALID_IPI_VECTOR] = "invalid_ipi_vector",
	[IPIV_AVIC_CAUSE_OTHER] = "other",
};
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
	[IPIV_LAT_EXIT_FASTPATH] = "sender_exit_fastpath",
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

/* Each enum's name function: its table's entry, "invalid" past the table. */
#define LABEL_OF(fn, table)                                                                    \
	const char *fn(uint32_t value)                                                         \
	{                                                                                      \
		return value < sizeof(table) / sizeof(table[0]) && table[value] ? table[value] \
										: "invalid";   \
	}

LABEL_OF(ipiv_path_name, path_names)
LABEL_OF(ipiv_drop_name, drop_names)
LABEL_OF(ipiv_avic_cause_name, avic_cause_names)
LABEL_OF(ipiv_pi_trigger_name, pi_trigger_names)
LABEL_OF(ipiv_icr_trap_name, icr_trap_names)
LABEL_OF(ipiv_vcpu_state_name, vcpu_state_names)
LABEL_OF(ipiv_lat_kind_name, lat_kind_names)
LABEL_OF(ipiv_lat_unmatched_name, lat_unmatched_names)

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

const char *ipiv_inhibit_name(const struct ipiv_inhibit_names *names, uint32_t reason)
{
	if (reason >= IPIV_INHIBIT_COUNT)
		return "invalid";
	return names && names->name[reason][0] ? names->name[reason] : inhibit_names[reason];
}

const char *ipiv_inhibit_names_source(const struct ipiv_inhibit_names *names)
{
	return names && names->source[0] ? names->source : "builtin";
}

size_t ipiv_inhibit_list(const struct ipiv_inhibit_names *names, uint64_t inhibits, const char *sep,
			 char *buf, size_t size)
{
	size_t len = 0;

	if (size)
		buf[0] = '\0';
	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		if (inhibits & (1ull << r))
			len += snprintf(buf + len, len < size ? size - len : 0, "%s%s",
					len ? sep : "", ipiv_inhibit_name(names, r));
	return len;
}
