/* SPDX-License-Identifier: GPL-2.0 */
/* Where each quantity that can come from more than one kind of hook comes from on this host: a
 * tracepoint of kernel-patches/, fexit on a KVM function, or a derivation from stock
 * tracepoints. Read off the probes the collector attached; no kernel access. */
#ifndef IPIV_SOURCES_H
#define IPIV_SOURCES_H

#include <stdbool.h>
#include <stddef.h>

#include "snapshot.h"

enum ipiv_source_kind {
	IPIV_SOURCE_NONE = 0, /* nothing this kernel permits attached: the counts stay 0 */
	IPIV_SOURCE_PATCHED,  /* a tracepoint of kernel-patches/ */
	IPIV_SOURCE_FEXIT,    /* fexit on a KVM function (where tracing programs load) */
	IPIV_SOURCE_DERIVED,  /* stock tracepoints, correlated in BPF */
};

struct ipiv_quantity_source {
	const char *quantity; /* the counts' JSON key it fills, e.g. "icr_write_traps" */
	const char *probe;    /* the probe (ipiv_probe.name) it comes from; NULL with NONE */
	enum ipiv_source_kind kind;
};

#define IPIV_N_QUANTITIES 5

/* Fills out[IPIV_N_QUANTITIES]: for each quantity, the first attached probe in its order of
 * preference (patched tracepoint, then fexit, then derivation). */
void ipiv_quantity_sources(const struct ipiv_probe *probes, size_t n_probes,
			   struct ipiv_quantity_source out[IPIV_N_QUANTITIES]);

/* Whether quantity (ipiv_quantity_source.quantity, e.g. "x2apic_fastpath") has an attached
 * source among probes. */
bool ipiv_quantity_attached(const struct ipiv_probe *probes, size_t n_probes, const char *quantity);

/* "patched_tracepoint", "fexit", "derived", "none" */
const char *ipiv_source_kind_name(enum ipiv_source_kind kind);

#endif /* IPIV_SOURCES_H */
