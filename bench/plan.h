/* ipivbench: how each IPI pattern is sent (ICR bits, destinations, fan-out) and what every
 * vCPU must therefore receive. Pure logic shared by the VMM and the tests. */
#ifndef IPIV_BENCH_PLAN_H
#define IPIV_BENCH_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include "result.h"

struct bench_plan {
	bool x2apic;	    /* the guest switches every APIC to x2APIC mode */
	bool needs_pv;	    /* needs KVM_FEATURE_PV_SEND_IPI */
	unsigned send_kind; /* SEND_* of bench/guest/layout.h */
	uint32_t icr_low;   /* ICR bits 31:0 */
	unsigned nslots;    /* destinations, sent to round-robin within each run */
	uint32_t dest[BENCH_MAX_VCPUS];
	unsigned fanout; /* deliveries per IPI sent */
	/* For each slot, the set of vCPUs one IPI to it reaches. */
	uint64_t reach[BENCH_MAX_VCPUS];
};

/* Fill *plan for cfg. Returns 0, or -EINVAL with a one-line reason in err (e.g. a
 * pattern that needs more vCPUs than configured). */
int bench_plan_make(const struct bench_config *cfg, struct bench_plan *plan, char *err,
		    size_t errlen);

/* Deliveries each vCPU must have received after total_runs runs of cfg->ipis IPIs. */
void bench_plan_expected(const struct bench_config *cfg, const struct bench_plan *plan,
			 unsigned total_runs, uint64_t expected[BENCH_MAX_VCPUS]);

#endif
