/* ipivtop's standalone source: the BPF collector in this process, VMs named from /proc the
 * way ipivd names them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top_source.h"
#include "vmnames.h"

struct local_source {
	struct top_source base;
	struct collector *collector;
	const char *proc_root;
	struct vm_name_cache names;
};

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
	r = vm_names_for_snapshot(&ls->names, ls->proc_root, out->snap, &out->names);
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
	vm_name_cache_free(&ls->names);
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
