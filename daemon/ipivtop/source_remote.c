/* ipivtop --connect: samples a running ipivd over its JSON API (/api/v1/status, /api/v1/vms,
 * /api/v1/vms/<id> for the VM in detail, /api/v1/findings) and parses them back into the
 * snapshot model and a diagnosis report. The table's send->EOI histograms come from one
 * request per shown VM when they are few, else from /api/v1/vms?histograms=send_to_eoi. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_parse.h"
#include "http.h"
#include "source.h"

struct remote_source {
	struct top_source base;
	struct top_url url;
	double timeout_s;
	/* the last sample showed more than TOP_REMOTE_HIST_MAX_VMS VMs: this one asks the VM
	 * list for its histograms straight away */
	bool list_hists;
};

/* GETs path and parses it as JSON. */
static int get_json(struct remote_source *rs, const char *path, json_t **doc, char *err,
		    size_t err_size)
{
	char perr[200];
	char *body;
	size_t len;
	int r;

	r = top_http_get(&rs->url, path, rs->timeout_s, &body, &len, err, err_size);
	if (r)
		return r;
	r = api_parse_text(body, len, doc, perr, sizeof(perr));
	free(body);
	if (r)
		snprintf(err, err_size, "GET %s: not JSON: %s", path, perr);
	return r;
}

/* ipivd's latest findings into the frame. Not fatal when missing: the rest of the screen
 * stands, and the findings column says why it is empty. */
static void get_findings(struct remote_source *rs, uint64_t taken_ns, struct top_frame *out)
{
	struct api_findings *af;
	char err[200], perr[200];
	json_t *doc;
	int r;

	r = get_json(rs, "/api/v1/findings", &doc, err, sizeof(err));
	if (r) {
		/* 503 until ipivd's first --diag.window has passed */
		if (strstr(err, "status 503"))
			snprintf(out->findings_note, sizeof(out->findings_note),
				 "ipivd has not evaluated them yet");
		else
			snprintf(out->findings_note, sizeof(out->findings_note), "%.150s", err);
		return;
	}
	r = api_parse_findings(doc, taken_ns, &af, perr, sizeof(perr));
	json_decref(doc);
	if (r) {
		snprintf(out->findings_note, sizeof(out->findings_note),
			 "GET /api/v1/findings: %.120s", perr);
		return;
	}
	out->held = af;
	out->findings = &af->report;
}

/* One VM in detail (its vCPU rows, matrix and histograms); -ENOENT if it exited since the
 * list was read. */
static int get_detail(struct remote_source *rs, uint64_t key, struct ipiv_vm_stats *vm, char *err,
		      size_t err_size)
{
	char path[64], id[17], name[VM_NAME_MAX], perr[200];
	json_t *doc;
	int r;

	api_vm_key_str(key, id);
	snprintf(path, sizeof(path), "/api/v1/vms/%s", id);
	r = get_json(rs, path, &doc, err, err_size);
	if (r)
		return r;
	memset(vm, 0, sizeof(*vm));
	r = api_parse_vm_detail(doc, vm, name, perr, sizeof(perr));
	json_decref(doc);
	if (r)
		snprintf(err, err_size, "GET %s: %s", path, perr);
	return r;
}

/* How many of the listed VMs the filters show. */
static size_t count_shown(const struct remote_source *rs, const struct top_frame *out)
{
	const struct ipiv_snapshot *snap = out->snap;
	size_t shown = 0;

	for (size_t i = 0; i < snap->n_vms; i++)
		shown += !rs->base.shown ||
			 top_model_visible_vm(rs->base.shown, out->names[i], snap->vms[i].pid);
	return shown;
}

/* The VM list into snap, out->names and out->latency, with each VM's send->EOI buckets in
 * *hists when with_hists (else *hists is NULL). */
static int get_list(struct remote_source *rs, bool with_hists, struct ipiv_snapshot *snap,
		    struct top_frame *out, struct api_hist **hists, char *err, size_t err_size)
{
	const char *path = with_hists ? "/api/v1/vms?histograms=send_to_eoi" : "/api/v1/vms";
	char perr[200];
	struct timespec ts;
	json_t *vms;
	int r;

	*hists = NULL;
	r = get_json(rs, path, &vms, err, err_size);
	if (r)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snap->taken_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	r = api_parse_vms_hists(vms, snap, &out->names, &out->latency, with_hists ? hists : NULL,
				perr, sizeof(perr));
	json_decref(vms);
	if (r)
		snprintf(err, err_size, "GET %s: %s", path, perr);
	return r;
}

/* Drops what get_list filled in, for a second reading. */
static void drop_list(struct ipiv_snapshot *snap, struct top_frame *out, struct api_hist **hists)
{
	for (size_t i = 0; i < snap->n_vms; i++)
		api_parse_vm_free(&snap->vms[i]);
	free(snap->vms);
	snap->vms = NULL;
	snap->n_vms = 0;
	free(out->names);
	free(out->latency);
	free(*hists);
	out->names = NULL;
	out->latency = NULL;
	*hists = NULL;
}

/* The list's histograms as the table's, when the ipivd wrote them: a VM with send->EOI
 * figures but no buckets means an ipivd that ignored ?histograms= (older than it), and then
 * the table keeps the figures since ipivd started. A VM without figures has an empty
 * histogram. */
static int take_list_hists(const struct api_hist *hists, struct top_frame *out)
{
	const struct ipiv_snapshot *snap = out->snap;

	for (size_t i = 0; i < snap->n_vms; i++)
		if (out->latency[i].known && !hists[i].known)
			return 0;
	if (!(out->send_eoi = calloc(snap->n_vms + 1, sizeof(*out->send_eoi))))
		return -ENOMEM;
	for (size_t i = 0; i < snap->n_vms; i++) {
		out->send_eoi[i].known = true;
		if (hists[i].known)
			out->send_eoi[i].hist = hists[i].hist;
	}
	return 0;
}

/* The table's histograms, and the drilled VM in detail: the table's P50/P99 are their growth
 * over the interval. They come from the list's buckets (hists, read with
 * ?histograms=send_to_eoi when many VMs are shown), else each shown VM's in detail. The
 * detail is the newer sample of the same VM: it replaces the summary, so totals and rows
 * agree. */
static int get_details(struct remote_source *rs, bool has_detail, uint64_t key,
		       const struct api_hist *hists, struct top_frame *out, char *err,
		       size_t err_size)
{
	struct ipiv_snapshot *snap = out->snap;
	bool all = !hists;
	int r;

	if (hists && (r = take_list_hists(hists, out)))
		return r;
	if (all && !(out->send_eoi = calloc(snap->n_vms + 1, sizeof(*out->send_eoi))))
		return -ENOMEM;
	for (size_t i = 0; i < snap->n_vms; i++) {
		bool drilled = has_detail && snap->vms[i].vm == key;
		struct ipiv_vm_stats vm;
		struct latency_hist h;

		if (!drilled &&
		    !(all && (!rs->base.shown || top_model_visible_vm(rs->base.shown, out->names[i],
								      snap->vms[i].pid))))
			continue;
		r = get_detail(rs, snap->vms[i].vm, &vm, err, err_size);
		if (r == -ENOENT) /* exited between the two requests */
			continue;
		if (r)
			return r;
		api_parse_vm_free(&snap->vms[i]);
		snap->vms[i] = vm;
		vm_latency(&snap->vms[i], IPIV_LAT_SEND_EOI, IPIV_LAT_ANY_SUB, &h);
		api_latency_from_hist(&h, &out->latency[i]);
		if (out->send_eoi) {
			out->send_eoi[i].known = true;
			out->send_eoi[i].hist = h;
		}
		if (drilled)
			out->detail = &snap->vms[i];
	}
	return 0;
}

static int remote_sample(struct top_source *s, bool has_detail, uint64_t key, struct top_frame *out,
			 char *err, size_t err_size)
{
	struct remote_source *rs = (struct remote_source *)s;
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	struct api_hist *hists = NULL;
	json_t *status = NULL;
	bool with_hists = rs->list_hists;
	char perr[200];
	int r;

	memset(out, 0, sizeof(*out));
	if (!snap)
		return -ENOMEM;
	r = get_json(rs, "/api/v1/status", &status, err, err_size);
	if (r)
		goto cleanup;
	r = api_parse_status(status, snap, &out->degraded, out->version, sizeof(out->version), perr,
			     sizeof(perr));
	if (r) {
		snprintf(err, err_size, "GET /api/v1/status: %s", perr);
		goto cleanup;
	}
	r = get_list(rs, with_hists, snap, out, &hists, err, err_size);
	if (r)
		goto cleanup;
	out->snap = snap;
	/* what the next sample asks for; this one reads the list again, with histograms, when
	 * it shows more VMs than the last one did (when fewer, the buckets it has serve) */
	rs->list_hists = count_shown(rs, out) > TOP_REMOTE_HIST_MAX_VMS;
	if (rs->list_hists && !with_hists) {
		drop_list(snap, out, &hists);
		r = get_list(rs, true, snap, out, &hists, err, err_size);
		if (r)
			goto cleanup;
	}
	r = get_details(rs, has_detail, key, hists, out, err, err_size);
	if (r)
		goto cleanup;
	get_findings(rs, snap->taken_ns, out);
cleanup:
	json_decref(status);
	free(hists);
	if (r) {
		free(out->names);
		free(out->latency);
		free(out->send_eoi);
		out->names = NULL;
		out->latency = NULL;
		out->send_eoi = NULL;
		out->snap = NULL;
		api_parse_snapshot_free(snap);
	}
	return r;
}

static void remote_frame_free(struct top_source *s, struct top_frame *f)
{
	api_parse_snapshot_free(f->snap);
	free(f->names);
	free(f->latency);
	free(f->send_eoi);
	api_findings_free(f->held);
}

static void remote_close(struct top_source *s)
{
	free(s);
}

static const struct top_source_ops remote_ops = {
	.sample = remote_sample,
	.frame_free = remote_frame_free,
	.close = remote_close,
};

int top_source_remote_open(struct top_source **out, const char *url, double timeout_s, char *err,
			   size_t err_size)
{
	struct remote_source *rs = calloc(1, sizeof(*rs));
	char *body;
	size_t len;
	int r;

	if (!rs)
		return -ENOMEM;
	rs->base.ops = &remote_ops;
	rs->base.remote = true;
	rs->timeout_s = timeout_s;
	r = top_url_parse(url, &rs->url, err, err_size);
	if (!r)
		r = top_http_get(&rs->url, "/api/v1/status", timeout_s, &body, &len, err, err_size);
	if (r) {
		free(rs);
		return r;
	}
	free(body);
	snprintf(rs->base.what, sizeof(rs->base.what), "ipivd at %.150s", url);
	*out = &rs->base;
	return 0;
}
