/* The diagnosis of a whole host: host acceleration state plus every VM's findings over a window,
 * as a human-readable report, as JSON, and as Prometheus series. One entry point per use. */
#ifndef IPIV_DIAG_REPORT_H
#define IPIV_DIAG_REPORT_H

#include <stdio.h>
#include <jansson.h>

#include "accel.h"
#include "collector.h"
#include "diag.h"
#include "expo.h"
#include "naming.h"

struct diag_vm_report {
	uint64_t vm;		/* ipiv_vm_stats.vm: the key findings' "since" is tracked by */
	char name[VM_NAME_MAX]; /* sanitized */
	double window_seconds;	/* 0: no previous snapshot had the VM; counts since first seen */
	/* The VM's APICv inhibit state at the snapshot, shown beside the findings: the bitmap
	 * (valid when inhibits_known), the last changes oldest first (ts CLOCK_MONOTONIC ns, like
	 * diag_report.taken_ns), and how many changes the counters saw in all. */
	bool inhibits_known;
	uint64_t inhibits;
	struct ipiv_inhibit_change timeline[IPIV_TIMELINE];
	size_t n_timeline;
	uint64_t inhibit_changes;
	struct diag_result result;
};

struct diag_report {
	uint64_t taken_ns; /* of the current snapshot */
	bool host_known;
	struct accel_state host;
	struct diag_result host_result;
	struct diag_vm_report *vms; /* in snapshot order */
	size_t n_vms;
	struct ipiv_inhibit_names inhibit_names; /* the current snapshot's */
};

/* The latency figures the rules use, for every VM of cur, from the histograms' growth since
 * prev (the whole life when prev lacks the VM): medians of the sender's exit per path, of
 * send to accept, of halt times and of a halted target's wakeup. NULL entries for VMs
 * without latency. One allocation: free() it. NULL when out of memory. */
struct diag_latency **diag_latency_inputs(const struct ipiv_snapshot *prev,
					  const struct ipiv_snapshot *cur);

/*
 * Evaluates the host rules and every VM of cur over the window since prev (NULL: counts since
 * ipivd first saw each VM). names[i] is the name of cur->vms[i]. latency NULL: the figures
 * are derived from the two snapshots (diag_latency_inputs), as ipivd and ipivtop both do;
 * otherwise an array parallel to cur->vms whose entries may be NULL (tests give figures no
 * snapshot holds). host NULL means unknown. previous is the report of the last evaluation
 * (or NULL): findings still active keep their since_ns.
 * Returns 0 or -ENOMEM/-EINVAL; free *out with diag_report_free.
 */
int diag_evaluate_snapshot(const struct accel_state *host, const struct ipiv_snapshot *prev,
			   const struct ipiv_snapshot *cur, const char *const *names,
			   const struct diag_latency *const *latency,
			   const struct diag_thresholds *th, const struct diag_report *previous,
			   struct diag_report **out);
void diag_report_free(struct diag_report *r);

/* `ipivd diagnose`: the host section, then each VM (only the one named vm, if not NULL) with
 * its APICv inhibits and their timeline, findings, evidence, remedy and "not evaluated" notes.
 * Returns 0, -ENOENT when vm names no VM (nothing printed), or -EIO on a write error. */
int diag_report_print(FILE *f, const struct diag_report *r, const char *vm);

/* The same as JSON ({"host": {...}, "vms": [...]}; each VM has apicv_inhibits {known, bitmap,
 * reasons} and apicv_inhibit_timeline [{ago_seconds, reason, set}], oldest first); NULL when vm
 * names no VM. */
json_t *diag_report_json(const struct diag_report *r, const char *vm);

/* ipiv_host_accel_info, ipiv_host_accel_fact_info, ipiv_host_finding{rule,severity},
 * ipiv_finding{vm,rule,severity} (one series per active finding) and
 * ipiv_diag_rule_not_evaluated{rule}. Returns 0 or the writer's negative errno. */
int diag_metrics_write(struct expo *e, const struct diag_report *r);

#endif /* IPIV_DIAG_REPORT_H */
