/* ipivtop's standalone source: the BPF collector in this process, VMs named from /proc the
 * way ipivd names them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top_source.h"

struct local_source {
	struct top_source base;
	struct collector *collector;
	const char *proc_root;
	struct top_name_cache names;
};

static const char *cached_name(struct top_name_cache *cache, const char *proc_root, int pid)
{
	struct vm_name_claim *e;

	for (size_t i = 0; i < cache->n; i++)
		if (cache->entries[i].pid == pid)
			return cache->entries[i].name;
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
	return e->name;
}

int top_name_vms(struct top_name_cache *cache, const char *proc_root,
		 const struct ipiv_snapshot *snap, char (**out)[VM_NAME_MAX])
{
	size_t n = snap->n_vms, n_claims = 0;
	struct vm_name_claim *claims = calloc(n + 1, sizeof(*claims));
	char (*names)[VM_NAME_MAX] = calloc(n + 1, sizeof(*names));
	size_t *claim_of = calloc(n + 1, sizeof(*claim_of));

	if (!claims || !names || !claim_of) {
		free(claims);
		free(names);
		free(claim_of);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct ipiv_vm_stats *vm = &snap->vms[i];
		const char *base = vm->pid > 0 ? cached_name(cache, proc_root, vm->pid) : NULL;
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

static int local_sample(struct top_source *s, bool has_detail, uint64_t key,
			struct top_frame *out, char *err, size_t err_size)
{
	struct local_source *ls = (struct local_source *)s;
	int r;

	memset(out, 0, sizeof(*out));
	r = collector_poll(ls->collector);
	if (r) /* discovery failing is not fatal: events still name their VMs */
		snprintf(err, err_size, "VM discovery failed: %s", strerror(-r));
	r = collector_snapshot(ls->collector, &out->snap);
	if (r) {
		snprintf(err, err_size, "cannot read the BPF maps: %s", strerror(-r));
		return r;
	}
	r = top_name_vms(&ls->names, ls->proc_root, out->snap, &out->names);
	if (r) {
		collector_snapshot_free(out->snap);
		out->snap = NULL;
		snprintf(err, err_size, "out of memory");
		return r;
	}
	if (has_detail)
		out->detail = snapshot_find_vm(out->snap, key);
	for (size_t i = 0; i < out->snap->self.n_probes; i++)
		if (!out->snap->self.probes[i].attached && !out->snap->self.probes[i].optional)
			out->degraded = true;
	snprintf(out->version, sizeof(out->version), "%s", IPIV_VERSION);
	return 0;
}

static void local_frame_free(struct top_source *s, struct top_frame *f)
{
	collector_snapshot_free(f->snap);
	free(f->names);
}

static void local_close(struct top_source *s)
{
	struct local_source *ls = (struct local_source *)s;

	collector_close(ls->collector);
	free(ls->names.entries);
	free(ls);
}

static const struct top_source_ops local_ops = {
	.sample = local_sample,
	.frame_free = local_frame_free,
	.close = local_close,
};

int top_source_local_open(struct top_source **out, const char *proc_root)
{
	struct collector_opts co = { .bpf_stats = false };
	struct local_source *ls = calloc(1, sizeof(*ls));
	int r;

	if (!ls)
		return -ENOMEM;
	ls->base.ops = &local_ops;
	snprintf(ls->base.what, sizeof(ls->base.what), "standalone");
	ls->proc_root = proc_root ? proc_root : "/proc";
	r = collector_open(&ls->collector, &co);
	if (r) {
		free(ls);
		return r;
	}
	*out = &ls->base;
	return 0;
}
