/* ipivtop's standalone source: the BPF collector in this process, VMs named from /proc the
 * way ipivd names them, and the diagnosis rules run here over each refresh window. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "source.h"
#include "naming.h"

/* A snapshot shared by the frames that show it and the diagnosis window that starts at it. */
struct shared_snap {
	struct ipiv_snapshot *snap;
	unsigned refs;
};

struct local_source {
	struct top_source base;
	struct collector *collector;
	const char *proc_root;
	struct vm_name_cache names;
	struct diag_thresholds th;
	struct shared_snap *window_start; /* the snapshot the current diagnosis window began at */
	struct diag_report *report;	  /* the latest evaluation; frames get copies */
};

static void shared_put(struct shared_snap *s)
{
	if (s && !--s->refs) {
		collector_snapshot_free(s->snap);
		free(s);
	}
}

static struct diag_report *report_copy(const struct diag_report *r)
{
	struct diag_report *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	*c = *r;
	c->vms = calloc(r->n_vms + 1, sizeof(*c->vms));
	if (!c->vms) {
		free(c);
		return NULL;
	}
	memcpy(c->vms, r->vms, r->n_vms * sizeof(*c->vms));
	return c;
}

/* Evaluates the rules over the window since window_start once it is long enough; otherwise
 * the last evaluation stands. The frame gets a copy of the report that holds. */
static int diagnose(struct local_source *ls, struct shared_snap *cur, struct top_frame *out)
{
	const struct ipiv_snapshot *start = ls->window_start ? ls->window_start->snap : NULL;
	double window = start ? (cur->snap->taken_ns - start->taken_ns) / 1e9 : 0;
	struct diag_report *report = NULL;
	struct accel_state *host;
	const char **names;
	int r;

	if (ls->report && window < 0.9 * ls->base.diag_window_s)
		goto copy;
	host = calloc(1, sizeof(*host));
	names = calloc(cur->snap->n_vms + 1, sizeof(*names));
	if (!host || !names) {
		free(host);
		free(names);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cur->snap->n_vms; i++)
		names[i] = out->names[i];
	/* accel_read never fails on what it cannot read: those facts are unknown */
	r = accel_read("", host);
	r = diag_evaluate_snapshot(r ? NULL : host, start, cur->snap, names, NULL, &ls->th,
				   ls->report, &report);
	free(host);
	free(names);
	if (r)
		return r;
	diag_report_free(ls->report);
	ls->report = report;
	shared_put(ls->window_start);
	ls->window_start = cur;
	cur->refs++;
copy:
	out->findings = report_copy(ls->report);
	return out->findings ? 0 : -ENOMEM;
}

static int local_sample(struct top_source *s, bool has_detail, uint64_t key, struct top_frame *out,
			char *err, size_t err_size)
{
	struct local_source *ls = (struct local_source *)s;
	struct shared_snap *shared = calloc(1, sizeof(*shared));
	int r;

	memset(out, 0, sizeof(*out));
	if (!shared)
		return -ENOMEM;
	r = collector_poll(ls->collector);
	if (r) /* discovery failing is not fatal: events still name their VMs */
		snprintf(err, err_size, "VM discovery failed: %s", strerror(-r));
	r = collector_snapshot(ls->collector, &shared->snap);
	if (r) {
		free(shared);
		snprintf(err, err_size, "cannot read the BPF maps: %s", strerror(-r));
		return r;
	}
	shared->refs = 1;
	out->held = shared;
	out->snap = shared->snap;
	r = vm_names_for_snapshot(&ls->names, ls->proc_root, out->snap, &out->names);
	if (!r) {
		out->latency = calloc(out->snap->n_vms + 1, sizeof(*out->latency));
		out->send_eoi = calloc(out->snap->n_vms + 1, sizeof(*out->send_eoi));
		r = out->latency && out->send_eoi ? 0 : -ENOMEM;
	}
	for (size_t i = 0; !r && i < out->snap->n_vms; i++) {
		struct latency_hist *h = &out->send_eoi[i].hist;

		vm_latency(&out->snap->vms[i], IPIV_LAT_SEND_EOI, IPIV_LAT_ANY_SUB, h);
		out->send_eoi[i].known = true;
		api_latency_from_hist(h, &out->latency[i]);
	}
	if (!r)
		r = diagnose(ls, shared, out);
	if (r) {
		top_frame_free(s, out);
		snprintf(err, err_size, "%s", r == -ENOMEM ? "out of memory" : strerror(-r));
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
	shared_put(f->held);
	free(f->names);
	free(f->latency);
	free(f->send_eoi);
	diag_report_free((struct diag_report *)f->findings);
}

static void local_close(struct top_source *s)
{
	struct local_source *ls = (struct local_source *)s;

	collector_close(ls->collector);
	vm_name_cache_free(&ls->names);
	shared_put(ls->window_start);
	diag_report_free(ls->report);
	free(ls);
}

static const struct top_source_ops local_ops = {
	.sample = local_sample,
	.frame_free = local_frame_free,
	.close = local_close,
};

int top_source_local_open(struct top_source **out, const char *proc_root,
			  const struct diag_thresholds *th)
{
	/* per-vCPU histograms: the drill-down shows each vCPU's send->EOI */
	struct collector_opts co = {
		.bpf_stats = false, .per_vcpu_latency = true, .send_accept_latency = true};
	struct local_source *ls = calloc(1, sizeof(*ls));
	int r;

	if (!ls)
		return -ENOMEM;
	ls->base.ops = &local_ops;
	snprintf(ls->base.what, sizeof(ls->base.what), "standalone");
	ls->proc_root = proc_root ? proc_root : "/proc";
	ls->th = *th;
	r = collector_open(&ls->collector, &co);
	if (r) {
		free(ls);
		return r;
	}
	*out = &ls->base;
	return 0;
}
