/* ipivtop --connect: samples a running ipivd over its JSON API (/api/v1/status, /api/v1/vms,
 * /api/v1/vms/<id> for the VM in detail, /api/v1/findings) and parses them back into the
 * snapshot model and a diagnosis report. */
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

static int remote_sample(struct top_source *s, bool has_detail, uint64_t key, struct top_frame *out,
			 char *err, size_t err_size)
{
	struct remote_source *rs = (struct remote_source *)s;
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	json_t *status = NULL, *vms = NULL, *detail = NULL;
	char perr[200];
	struct timespec ts;
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
	r = get_json(rs, "/api/v1/vms", &vms, err, err_size);
	if (r)
		goto cleanup;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snap->taken_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	r = api_parse_vms(vms, snap, &out->names, &out->latency, perr, sizeof(perr));
	if (r) {
		snprintf(err, err_size, "GET /api/v1/vms: %s", perr);
		goto cleanup;
	}
	out->snap = snap;
	if (has_detail) {
		char path[64], id[17], name[VM_NAME_MAX];
		struct ipiv_vm_stats vm = {0};

		api_vm_key_str(key, id);
		snprintf(path, sizeof(path), "/api/v1/vms/%s", id);
		r = get_json(rs, path, &detail, err, err_size);
		if (r == -ENOENT) { /* exited between the two requests */
			r = 0;
			goto cleanup;
		}
		if (r)
			goto cleanup;
		r = api_parse_vm_detail(detail, &vm, name, perr, sizeof(perr));
		if (r) {
			snprintf(err, err_size, "GET %s: %s", path, perr);
			goto cleanup;
		}
		for (size_t i = 0; i < snap->n_vms; i++)
			if (snap->vms[i].vm == key) {
				/* The detail is the newer sample of the same VM: it replaces the
				 * summary, so totals and rows agree on the screen. */
				struct latency_hist h;

				snap->vms[i] = vm;
				out->detail = &snap->vms[i];
				vm_latency(&vm, IPIV_LAT_SEND_EOI, IPIV_LAT_ANY_SUB, &h);
				api_latency_from_hist(&h, &out->latency[i]);
				break;
			}
		if (!out->detail)
			api_parse_vm_free(&vm);
	}
	get_findings(rs, snap->taken_ns, out);
cleanup:
	json_decref(status);
	json_decref(vms);
	json_decref(detail);
	if (r) {
		free(out->names);
		free(out->latency);
		out->names = NULL;
		out->latency = NULL;
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
