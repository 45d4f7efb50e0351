/* ipivd's JSON API documents (/api/v1/...), built from a collector snapshot with jansson.
 * Pure: the HTTP layer serialises what these return. */
#ifndef IPIV_API_H
#define IPIV_API_H

#include <jansson.h>
#include "collector.h"

/* Opaque, stable id of a VM for URLs and joins: a keyed hash of the kernel's struct kvm
 * pointer, so the API never reveals a kernel address. */
void api_vm_id(uint64_t vm, uint64_t key, char out[17]);

/* {"vms": [summary...]} : every VM with its totals. */
json_t *api_vms(const struct ipiv_snapshot *snap, const char *const *names, uint64_t id_key);

/* What /api/v1/vms?histograms=send_to_eoi adds: each summary's send_to_eoi gets the "buckets"
 * of the detail's histograms ([[upper edge ns or -1 for overflow, count], ...], non-empty
 * buckets only), so a client takes quantiles over an interval without a request per VM. */
#define API_VMS_HIST_SEND_TO_EOI 1u

/* The value of ?histograms= (NULL: absent) into API_VMS_HIST_* flags; -EINVAL when unknown. */
int api_vms_histograms(const char *value, unsigned *hists);

/* api_vms with the buckets hists asks for. */
json_t *api_vms_with(const struct ipiv_snapshot *snap, const char *const *names, uint64_t id_key,
		     unsigned hists);

/* One VM in detail (classes, exits, vCPUs, matrix, inhibits), found by name or id;
 * NULL when no VM matches. */
json_t *api_vm_detail(const struct ipiv_snapshot *snap, const char *const *names, uint64_t id_key,
		      const char *name_or_id);

/* {"version", "degraded", "probes": [...], "programs": [...], "drops": {...}, ...} */
json_t *api_status(const struct ipiv_snapshot *snap, const char *version);

#endif
