/* SPDX-License-Identifier: GPL-2.0 */
/* Label values for the enums of include/ipiv.h: the names metrics, the API, ipivtop and
 * diagnosis show. Plain C, no libbpf: the inhibit reason names the running kernel's BTF gives
 * are handed in as a table (struct ipiv_inhibit_names), not kept in a global. */
#ifndef IPIV_LABELS_H
#define IPIV_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "ipiv.h"

/* Static strings; "invalid" for a value past the enum. */
const char *ipiv_path_name(uint32_t path);
const char *ipiv_drop_name(uint32_t reason);
const char *ipiv_avic_cause_name(uint32_t cause);
const char *ipiv_apic_mode_name(uint32_t mode);	      /* "xapic", "x2apic", "unknown" */
const char *ipiv_lat_kind_name(uint32_t kind);	      /* "send_to_eoi", ... */
const char *ipiv_lat_unmatched_name(uint32_t reason); /* "coalesced", ... */
const char *ipiv_pi_trigger_name(uint32_t trigger);   /* "load", "migrate", ... */
const char *ipiv_icr_trap_name(uint32_t reason);      /* "ipiv_inactive", "logical", ... */
const char *ipiv_vcpu_state_name(uint32_t state);     /* "blocked", "preempted", ... */
/* The label a histogram's sub is exported under: ("path", "x2apic_msr"), ("target",
 * "halted"), ("halted", "true"); *label gets the name, the value is returned. */
const char *ipiv_lat_sub_label(uint32_t kind, uint32_t sub, const char **label);

/*
 * APICv inhibit reason names by bit, as one kernel numbers them (enum kvm_apicv_inhibit
 * changes between kernels). The collector fills one from the running kernel's BTF at open
 * (btf_names.c) and every snapshot carries a copy; all zero (a hand-made snapshot, ipivtop
 * --connect) means the built-in list of Linux 6.18.
 */
#define IPIV_INHIBIT_NAME_MAX 40
struct ipiv_inhibit_names {
	char name[IPIV_INHIBIT_COUNT][IPIV_INHIBIT_NAME_MAX]; /* "" : the built-in name */
	char source[16]; /* "btf:kvm", "btf:vmlinux"; "" : "builtin" */
};

/* The name of inhibit bit reason in names (NULL: the built-in list); "reason_<n>" for a bit
 * the kernel does not define, "invalid" past the bitmap. */
const char *ipiv_inhibit_name(const struct ipiv_inhibit_names *names, uint32_t reason);
/* Where names came from: "btf:kvm", "btf:vmlinux" or "builtin" (also for NULL). */
const char *ipiv_inhibit_names_source(const struct ipiv_inhibit_names *names);
/* The reasons set in inhibits, separated by sep, into buf (cut to size, always terminated
 * when size > 0); returns the length the whole list needs, as snprintf does. */
size_t ipiv_inhibit_list(const struct ipiv_inhibit_names *names, uint64_t inhibits, const char *sep,
			 char *buf, size_t size);

#endif /* IPIV_LABELS_H */
