/* Names for every VM of a snapshot: read once per VMM process, made unique across VMs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmnames.h"

/*
 * The name of the VMM process pid, read from /proc once; vm (NULL: none) is the snapshot
 * row of its VM. When /proc named nothing (the process exited before discovery read it: a
 * VM that lived less than a poll interval), the command line the BPF side kept when the VM
 * appeared names it, as it would have.
 */
static const char *cached_name(struct vm_name_cache *cache, const char *proc_root, int pid,
			       const struct ipiv_vm_stats *vm)
{
	struct vm_name_claim *e = NULL;
	char pid_name[VM_NAME_MAX], name[VM_NAME_MAX];

	for (size_t i = 0; i < cache->n && !e; i++)
		if (cache->entries[i].pid == pid)
			e = &cache->entries[i];
	if (!e) {
		if (cache->n == cache->cap) {
			size_t cap = cache->cap ? cache->cap * 2 : 16;

			e = realloc(cache->entries, cap * sizeof(*e));
			if (!e)
				return NULL;
			cache->entries = e;
			cache->cap = cap;
		}
		e = &cache->entries[cache->n++];
		e->pid = pid;
		/* A VMM's command line does not change: read it once per process. */
		vm_name_from_proc(proc_root, pid, e->name);
	}
	snprintf(pid_name, sizeof(pid_name), "pid-%d", pid);
	if (vm && vm->cmdline_len && strcmp(e->name, pid_name) == 0 &&
	    vm_name_from_cmdline(vm->cmdline, vm->cmdline_len, vm->cmdline_cut, pid, name) !=
		    VM_NAME_PID)
		memcpy(e->name, name, sizeof(name));
	return e->name;
}

int vm_names_for_snapshot(struct vm_name_cache *cache, const char *proc_root,
			  const struct ipiv_snapshot *snap, char (**out)[VM_NAME_MAX])
{
	size_t n = snap->n_vms, n_claims = 0;
	struct vm_name_claim *claims = calloc(n + 1, sizeof(*claims));
	char(*names)[VM_NAME_MAX] = calloc(n + 1, sizeof(*names));
	size_t *claim_of = calloc(n + 1, sizeof(*claim_of));

	if (!claims || !names || !claim_of) {
		free(claims);
		free(names);
		free(claim_of);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct ipiv_vm_stats *vm = &snap->vms[i];
		const char *base = vm->pid > 0 ? cached_name(cache, proc_root, vm->pid, vm) : NULL;
		bool pid_taken = false;

		claim_of[i] = SIZE_MAX;
		for (size_t j = 0; j < i && vm->pid > 0; j++)
			if (snap->vms[j].pid == vm->pid)
				pid_taken = true;
		if (!base)
			snprintf(names[i], VM_NAME_MAX, "vm-%zu", i);
		else if (pid_taken) /* a second VM in the same process */
			snprintf(names[i], VM_NAME_MAX, "%.40s-vm%zu", base, i);
		else
			snprintf(names[i], VM_NAME_MAX, "%s", base);
		if (vm->pid > 0 && !pid_taken) {
			claims[n_claims].pid = vm->pid;
			memcpy(claims[n_claims].name, names[i], VM_NAME_MAX);
			claim_of[i] = n_claims++;
		}
	}
	vm_names_make_unique(claims, n_claims);
	for (size_t i = 0; i < n; i++)
		if (claim_of[i] != SIZE_MAX)
			memcpy(names[i], claims[claim_of[i]].name, VM_NAME_MAX);
	/* Forget processes that are gone: a new process may reuse the pid. */
	for (size_t i = 0; i < cache->n;) {
		bool live = false;

		for (size_t j = 0; j < n && !live; j++)
			live = snap->vms[j].pid == cache->entries[i].pid;
		if (!live)
			cache->entries[i] = cache->entries[--cache->n];
		else
			i++;
	}
	free(claims);
	free(claim_of);
	*out = names;
	return 0;
}

void vm_name_cache_prefetch(struct vm_name_cache *cache, const char *proc_root, int pid)
{
	if (pid > 0)
		cached_name(cache, proc_root, pid, NULL);
}

void vm_name_cache_free(struct vm_name_cache *cache)
{
	free(cache->entries);
	cache->entries = NULL;
	cache->n = cache->cap = 0;
}
