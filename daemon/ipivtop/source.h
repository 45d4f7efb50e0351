/* Where ipivtop's numbers come from: the collector in this process (standalone, as root) or a
 * running ipivd's JSON API (--connect). Both hand out the collector's snapshot model. */
#ifndef IPIV_TOP_SOURCE_H
#define IPIV_TOP_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "api_parse.h"
#include "collector.h"
#include "diag_report.h"
#include "model.h"
#include "naming.h"

/* One sample: a snapshot, the names of its VMs, and in detail the VM asked for. */
struct top_frame {
	struct ipiv_snapshot *snap;
	char (*names)[VM_NAME_MAX]; /* one per snap->vms[i], sanitised and unique */
	/* The VM asked for with its vCPU rows, classes, exits and matrix, or NULL (gone). It
	 * points into snap->vms. */
	const struct ipiv_vm_stats *detail;
	bool degraded;	  /* a required probe is missing */
	char version[64]; /* of the program that collected: ipivtop or the ipivd */
	/* send->EOI over every path since the collector started, one per snap->vms[i] */
	struct api_latency *latency;
	/* The same as histograms, one per snap->vms[i], or NULL when the source has none (an
	 * ipivd older than /api/v1/vms?histograms=): the table's P50/P99 are taken over the
	 * refresh interval from these, and only fall back to latency without them. */
	struct top_lat_sample *send_eoi;
	/* The findings (standalone: evaluated over the interval since the previous frame;
	 * --connect: ipivd's latest), or NULL with the reason in findings_note. */
	const struct diag_report *findings;
	char findings_note[160];
	void *held; /* what the source keeps alive for this frame (its frame_free knows) */
};

struct top_source;

struct top_source_ops {
	/* Takes a sample; detail_key (when has_detail) names the VM wanted in detail.
	 * Returns 0 or a negative errno with one line in err. */
	int (*sample)(struct top_source *s, bool has_detail, uint64_t detail_key,
		      struct top_frame *out, char *err, size_t err_size);
	void (*frame_free)(struct top_source *s, struct top_frame *f);
	void (*close)(struct top_source *s);
};

struct top_source {
	const struct top_source_ops *ops;
	char what[192]; /* "standalone" or "ipivd at http://..." for the header */
	bool remote;	/* the numbers describe another host, perhaps */
	/* Standalone: findings are evaluated over windows at least this long (the refresh
	 * delay), so a sample taken early (Enter) does not judge a few milliseconds. */
	double diag_window_s;
	/* --connect: the filters, so that only the VMs they show have their histograms
	 * fetched (NULL: every VM). */
	const struct top_model *shown;
};

/* --connect fetches the histograms of at most this many shown VMs per sample, one request
 * each; with more, all of them in one, /api/v1/vms?histograms=send_to_eoi (an ipivd older
 * than that parameter: P50/P99 are ipivd's since it started). */
#define TOP_REMOTE_HIST_MAX_VMS 32

/* The collector in this process; proc_root is where VM names are read (NULL: /proc), th the
 * diagnosis thresholds (copied). Needs root (BPF); collector_open's one-line error is printed
 * on failure. */
int top_source_local_open(struct top_source **out, const char *proc_root,
			  const struct diag_thresholds *th);

/* A running ipivd, e.g. "http://127.0.0.1:9712". Checks the URL and that ipivd answers
 * /api/v1/status; returns 0 or a negative errno with one line in err. */
int top_source_remote_open(struct top_source **out, const char *url, double timeout_s, char *err,
			   size_t err_size);

static inline int top_source_sample(struct top_source *s, bool has_detail, uint64_t key,
				    struct top_frame *out, char *err, size_t err_size)
{
	return s->ops->sample(s, has_detail, key, out, err, err_size);
}

static inline void top_frame_free(struct top_source *s, struct top_frame *f)
{
	if (f->snap)
		s->ops->frame_free(s, f);
	f->snap = NULL;
	f->names = NULL;
	f->detail = NULL;
	f->latency = NULL;
	f->send_eoi = NULL;
	f->findings = NULL;
	f->held = NULL;
}

static inline void top_source_close(struct top_source *s)
{
	if (s)
		s->ops->close(s);
}

#endif
