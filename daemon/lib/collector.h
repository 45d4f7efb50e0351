/* SPDX-License-Identifier: GPL-2.0 */
/* The collector: loads and attaches bpf/ipiv.bpf.c (probes.c), discovers and reclaims VMs
 * (discovery.c), and turns the BPF maps into a plain-C snapshot (snapshot.c, the types in
 * snapshot.h). Shared by ipivd and ipivtop; no exposition here. */
#ifndef IPIV_COLLECTOR_H
#define IPIV_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels.h"
#include "snapshot.h"

struct collector;

struct collector_opts {
	/* Keep kernel.bpf_stats_enabled on while the collector lives (per-program run
	 * counts and time in the snapshot). Costs ~20 ns per event. */
	bool bpf_stats;
	/* Where the tracepoint directory is, for probing when BTF lacks btf_trace_*;
	 * NULL means /sys/kernel/tracing. */
	const char *tracefs;
	/* Load the synthetic-event programs that tests drive with BPF_PROG_TEST_RUN. */
	bool test_programs;
	/* Load everything but attach no tracepoint (discovery still works): tests feed
	 * events themselves and need the counts to be theirs alone. */
	bool no_tracepoints;
	/* Polls a VM must be missing from discovery before it is reclaimed (0 means 2). */
	unsigned int reclaim_after;
	/* No latency histograms: counting only (cheaper per event). */
	bool no_latency;
	/* Latency histograms per vCPU as well as per VM. */
	bool per_vcpu_latency;
	/* Also record send->accept (a clock read per accept): for ipivd's
	 * --collector.vm-histograms=all and per-vCPU mode, and ipivtop. */
	bool send_accept_latency;
	/* Map choices as for this kernel release instead of uname's (tests). */
	const char *kernel_release;
	/* How long an exited VM's final counts stay in snapshots after it is reclaimed (0:
	 * none), so the scrapes after it exited still see what it did last. */
	uint64_t exited_retention_ns;
};

/* Opens, probes, loads and attaches. Optional tracepoints that are missing are recorded,
 * not fatal. Returns 0 or a negative errno after printing one line saying what is missing. */
int collector_open(struct collector **out, const struct collector_opts *opts);
/* Runs VM discovery (iter/task_file) and reclaims VMs that are gone. */
int collector_poll(struct collector *c);
/* The VMM pids of the VMs the last discovery found, up to max (cheap: no map reads).
 * Lets a caller read names while the processes still exist. Returns how many. */
size_t collector_vm_pids(const struct collector *c, int *pids, size_t max);
/* VMs reclaimed so far (cheap: no map reads). */
uint64_t collector_reclaimed(const struct collector *c);
/* Reads all maps into a new snapshot; free it with collector_snapshot_free. */
int collector_snapshot(struct collector *c, struct ipiv_snapshot **out);
/* Detaches and frees everything. NULL is fine. */
void collector_close(struct collector *c);

/* For tests: the skeleton (struct ipiv_bpf *), and the inhibit reason names the collector
 * read from the running kernel's BTF at open (the ones its snapshots carry). */
struct ipiv_bpf *collector_skel(struct collector *c);
const struct ipiv_inhibit_names *collector_inhibit_names(const struct collector *c);

/* Whether the kernel release string (uname -r: "6.12.118-amd64") is at least major.minor;
 * false for one that does not start with two numbers. */
bool ipiv_kernel_at_least(const char *release, int major, int minor);

#endif /* IPIV_COLLECTOR_H */
