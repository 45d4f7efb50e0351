/* The way back from ipivd's JSON API (api.h) to the collector's snapshot model, for clients
 * such as ipivtop --connect. Pure: the caller fetches the text. */
#ifndef IPIV_API_PARSE_H
#define IPIV_API_PARSE_H

#include <jansson.h>
#include <stddef.h>

#include "collector.h"
#include "diag_report.h"
#include "latency.h"
#include "naming.h"

/*
 * What the API does not carry, and what the parsed model holds instead:
 * - vm: the API's opaque id (16 hex digits) as a number, stable while ipivd runs, never the
 *   kernel pointer; stats_id is "".
 * - taken_ns, self.polls and self.last_poll_err: 0.
 * - a probe's err: the errno whose strerror() the API printed (-EIO if none matches).
 * Everything else round-trips exactly (halt time goes through seconds as a double and is
 * rounded back to nanoseconds). A counter the document lacks (an ipivd older than its kind,
 * include/ipiv_counters.h) reads as 0.
 *
 * Errors are -EINVAL (malformed document) or -ENOMEM, with one line in err naming the field,
 * e.g. "vms[2].counts.sent: expected a non-negative integer".
 */

/* Parses JSON text; err gets "line L column C: reason". */
int api_parse_text(const char *text, size_t len, json_t **doc, char *err, size_t err_size);

/* The latency figures of one histogram as the API writes them (count, sum, mean, p50/p90/p99
 * with their bucket error): all a summary carries, since it has no buckets. */
struct api_latency {
	bool known; /* false: no observation (null in the API) */
	uint64_t count;
	uint64_t sum_ns;
	double mean_ns;
	struct latency_quantile p50, p90, p99;
};

/* The same figures from a histogram, as api.c computes them (for the standalone collector). */
void api_latency_from_hist(const struct latency_hist *h, struct api_latency *out);

/* {"vms": [...]} into snap->vms (summaries: no classes, exits, vCPU rows, matrix or
 * histograms) and a names array (one VM_NAME_MAX slot per VM, sanitised; free() it).
 * send_to_eoi, if not NULL, gets each summary's send->EOI figures (one per VM; free() it); a
 * summary without the field (an older ipivd) has known false. snap->self is untouched. */
int api_parse_vms(const json_t *doc, struct ipiv_snapshot *snap, char (**names)[VM_NAME_MAX],
		  struct api_latency **send_to_eoi, char *err, size_t err_size);

/* A summary's send->EOI histogram (over every path) as /api/v1/vms?histograms=send_to_eoi
 * writes it: known when the summary carried "buckets", checked as the detail's are. */
struct api_hist {
	bool known;
	struct latency_hist hist;
};

/* api_parse_vms, and hists (not NULL) gets each summary's send->EOI histogram (one per VM;
 * free() it). A summary without buckets (not asked for, or an older ipivd) has known false. */
int api_parse_vms_hists(const json_t *doc, struct ipiv_snapshot *snap, char (**names)[VM_NAME_MAX],
			struct api_latency **send_to_eoi, struct api_hist **hists, char *err,
			size_t err_size);

/* One VM in detail into *vm (which the caller zeroed) and its name. The detail's latency
 * histograms are VM-wide (merged over vCPUs): they come back as lat rows with vcpu
 * IPIV_LAT_VM_WIDE, each bucket found from its upper edge with hist_bucket(). */
int api_parse_vm_detail(const json_t *doc, struct ipiv_vm_stats *vm, char name[VM_NAME_MAX],
			char *err, size_t err_size);

/* /api/v1/status into snap->self; *degraded and version (sanitised) if not NULL. */
int api_parse_status(const json_t *doc, struct ipiv_snapshot *snap, bool *degraded, char *version,
		     size_t version_size, char *err, size_t err_size);

/*
 * /api/v1/findings (diag_report_json) into a report the diag_report.h types describe, so
 * ipivtop draws ipivd's findings and its own the same way. What the document does not carry:
 * the host's acceleration facts (report.host_known is false; its findings and notes are
 * there), VM keys (diag_vm_report.vm is 0: the document names VMs, and names are unique),
 * evidence text of numbers (written back with %g). since_ns is taken_ns minus the finding's
 * active_seconds. Free with api_findings_free.
 */
struct api_findings {
	struct diag_report report;
	char **strings; /* what report's diag_skip.needs point to */
	size_t n_strings;
};

int api_parse_findings(const json_t *doc, uint64_t taken_ns, struct api_findings **out, char *err,
		       size_t err_size);
void api_findings_free(struct api_findings *f);

/* The API's id string back to the key kept in ipiv_vm_stats.vm, and the other way. */
int api_parse_vm_key(const char *id, uint64_t *key);
void api_vm_key_str(uint64_t key, char out[17]);

/* Frees the arrays of one parsed VM (not the struct). */
void api_parse_vm_free(struct ipiv_vm_stats *vm);
/* Frees a snapshot built by these functions (probe names included). NULL is fine. */
void api_parse_snapshot_free(struct ipiv_snapshot *snap);

#endif
