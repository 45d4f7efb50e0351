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

/* One VM in detail (classes, exits, vCPUs, matrix, inhibits), found by name or id;
 * NULL when no VM matches. */
json_t *api_vm_detail(const struct ipiv_snapshot *snap, const char *const *names, uint64_t id_key,
		      const char *name_or_id);

/* {"version", "degraded", "probes": [...], "programs": [...], "drops": {...}, ...} */
json_t *api_status(const struct ipiv_snapshot *snap, const char *version);

#endif
