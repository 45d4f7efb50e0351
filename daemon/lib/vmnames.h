/* Names for every VM of a collector snapshot, the way users know them (VMM command line via
 * naming.c) and unique across VMs, with a per-process cache. Shared by ipivd and ipivtop. */
#ifndef IPIV_VMNAMES_H
#define IPIV_VMNAMES_H

#include "collector.h"
#include "naming.h"

/* Names already read, by VMM pid; entries of processes gone from a snapshot are dropped
 * (a new process may reuse the pid). Zero-initialise; free with vm_name_cache_free. */
struct vm_name_cache {
	struct vm_name_claim *entries;
	size_t n, cap;
};

/* names[i] is the name of snap->vms[i]; *names is one allocation (free() it). A second VM
 * of one process is "<name>-vm<i>"; a VM with no known process "vm-<i>". */
int vm_names_for_snapshot(struct vm_name_cache *cache, const char *proc_root,
			  const struct ipiv_snapshot *snap, char (**names)[VM_NAME_MAX]);

/* Reads the name of pid now if the cache does not have it, so a VM whose process exits
 * before its first snapshot keeps its name until it is reclaimed. */
void vm_name_cache_prefetch(struct vm_name_cache *cache, const char *proc_root, int pid);

void vm_name_cache_free(struct vm_name_cache *cache);

#endif
