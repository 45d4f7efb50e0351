// SPDX-License-Identifier: GPL-2.0
/* The sources of the quantities v1's patched tracepoints gave, in ipivd's order of
 * preference, and which one this host's probes provide (kernel-patches/README.md says why
 * each is where it is). */
#include <string.h>

#include "sources.h"

struct quantity_def {
	const char *quantity;
	struct {
		const char *probe;
		enum ipiv_source_kind kind;
	} from[3]; /* in order of preference; the rest NULL */
};

static const struct quantity_def quantity_defs[IPIV_N_QUANTITIES] = {
	/* kvm_pi_wakeup: nothing stock says that the wakeup vector woke a vCPU */
	{"posted_wakeups", {{"kvm_pi_wakeup", IPIV_SOURCE_PATCHED}}},
	/* an APIC-write exit (VMX reason 56) followed by kvm_apic_ipi on the same thread */
	{"icr_write_traps", {{"kvm_exit", IPIV_SOURCE_DERIVED}}},
	/* the return of KVM's WRMSR exit fastpath: up to 6.17, then 6.18's for WRMSR and for
	 * the immediate form of WRMSRNS (either may attach alone where the other is inlined) */
	{"x2apic_fastpath",
	 {{"fexit/handle_fastpath_set_msr_irqoff", IPIV_SOURCE_FEXIT},
	  {"fexit/handle_fastpath_wrmsr", IPIV_SOURCE_FEXIT},
	  {"fexit/handle_fastpath_wrmsr_imm", IPIV_SOURCE_FEXIT}}},
	/* the posted-interrupt descriptor after vCPU load/put (Intel) */
	{"pi_descriptor_updates", {{"fexit/vmx_vcpu_pi_load", IPIV_SOURCE_FEXIT}}},
	/* the AVIC physical APIC ID entry after vCPU load/put (AMD) */
	{"avic_running", {{"fexit/avic_vcpu_load", IPIV_SOURCE_FEXIT}}},
};

static const struct ipiv_probe *find_probe(const struct ipiv_probe *probes, size_t n,
					   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (probes[i].name && !strcmp(probes[i].name, name))
			return &probes[i];
	return NULL;
}

void ipiv_quantity_sources(const struct ipiv_probe *probes, size_t n_probes,
			   struct ipiv_quantity_source out[IPIV_N_QUANTITIES])
{
	for (size_t q = 0; q < IPIV_N_QUANTITIES; q++) {
		const struct quantity_def *def = &quantity_defs[q];

		out[q] = (struct ipiv_quantity_source){.quantity = def->quantity};
		for (size_t i = 0; i < sizeof(def->from) / sizeof(def->from[0]); i++) {
			const struct ipiv_probe *p;

			if (!def->from[i].probe)
				break;
			p = find_probe(probes, n_probes, def->from[i].probe);
			if (p && p->attached) {
				out[q].probe = p->name;
				out[q].kind = def->from[i].kind;
				break;
			}
		}
	}
}

bool ipiv_quantity_attached(const struct ipiv_probe *probes, size_t n_probes, const char *quantity)
{
	struct ipiv_quantity_source src[IPIV_N_QUANTITIES];

	ipiv_quantity_sources(probes, n_probes, src);
	for (size_t q = 0; q < IPIV_N_QUANTITIES; q++)
		if (!strcmp(src[q].quantity, quantity))
			return src[q].kind != IPIV_SOURCE_NONE;
	return false;
}

const char *ipiv_source_kind_name(enum ipiv_source_kind kind)
{
	switch (kind) {
	case IPIV_SOURCE_PATCHED: return "patched_tracepoint";
	case IPIV_SOURCE_FEXIT: return "fexit";
	case IPIV_SOURCE_DERIVED: return "derived";
	case IPIV_SOURCE_NONE: break;
	}
	return "none";
}
