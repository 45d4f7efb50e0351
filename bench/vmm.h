/* ipivbench's VMM: creates a KVM VM with an in-kernel irqchip, runs the IPI guest on
 * N vCPU threads under a watchdog, and returns what the guest measured and counted. */
#ifndef IPIV_BENCH_VMM_H
#define IPIV_BENCH_VMM_H

#include <stddef.h>
#include "result.h"

struct vmm_opts {
	bool wait_for_go;    /* create the VM, then wait for SIGUSR2 before running it */
	double hold_seconds; /* keep the VM (idle) for this long after the runs; <0: until signalled */
	/* Called once the results are complete, before the hold: lets the caller print
	 * them while the VM still exists (tests scrape ipivd then). */
	void (*on_result)(const struct bench_result *res, void *arg);
	void *on_result_arg;
};

/* Run the benchmark described by res->config; fills the rest of *res (host facts are
 * expected to be filled by the caller, the VMM adds what only KVM can tell).
 * Returns 0, or a negative errno with a one-line explanation in err. */
int vmm_run(struct bench_result *res, const struct vmm_opts *opts, char *err, size_t errlen);

/* Host capabilities KVM reports (x2APIC, PV send-IPI, max vCPUs, TSC kHz), for --check
 * and for refusing a pattern before a VM is created. */
int vmm_probe(struct bench_host *host, unsigned *max_vcpus, char *err, size_t errlen);

#endif
