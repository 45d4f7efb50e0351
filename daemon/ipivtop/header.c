/* ipivtop's host header: who collects, what the host accelerates, probes and totals. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "accel.h"
#include "findings.h"
#include "format.h"
#include "header.h"

void top_host_read(const char *root, struct top_host *h)
{
	struct accel_state st;
	struct utsname u;

	memset(h, 0, sizeof(*h));
	h->known = true;
	if (uname(&u) == 0)
		snprintf(h->kernel, sizeof(h->kernel), "%s", u.release);
	if (accel_read(root, &st)) {
		snprintf(h->cpu, sizeof(h->cpu), "unknown");
		snprintf(h->backend, sizeof(h->backend), "unknown");
		snprintf(h->mechanism, sizeof(h->mechanism), "unknown");
		snprintf(h->effective, sizeof(h->effective), "unknown");
		return;
	}
	top_sanitize(st.model_name[0]  ? st.model_name
		     : st.vendor_id[0] ? st.vendor_id
				       : "unknown",
		     h->cpu, sizeof(h->cpu));
	snprintf(h->backend, sizeof(h->backend), "%s", accel_backend_name(st.backend));
	snprintf(h->mechanism, sizeof(h->mechanism), "%s", st.mechanism ? st.mechanism : "none");
	snprintf(h->effective, sizeof(h->effective), "%s", accel_state_name(st.ipiv_effective));
	snprintf(h->why, sizeof(h->why), "%s", st.why ? st.why : "");
}

static void host_line(struct top_canvas *c, const struct top_host *host)
{
	top_canvas_line(c);
	if (!host || !host->known) {
		top_canvas_put(c, TOP_A_NORMAL, "host: ");
		top_canvas_put(c, TOP_A_DIM, "n/a (numbers come from a remote ipivd)");
		return;
	}
	top_canvas_printf(c, TOP_A_NORMAL, "host: %s | kernel %s | %s | accel %s: ", host->cpu,
			  host->kernel, host->backend, host->mechanism);
	top_canvas_put(c, !strcmp(host->effective, "yes") ? TOP_A_GOOD : TOP_A_WARN,
		       !strcmp(host->effective, "yes") ? "in effect" : host->effective);
	if (host->why[0])
		top_canvas_printf(c, TOP_A_DIM, " (%s)", host->why);
}

/* "findings 3 (worst critical) on 2 VMs, host 1", or why there are none. */
static void findings_part(struct top_canvas *c, const struct top_frame *f)
{
	const struct diag_report *r = f->findings;
	size_t n = 0, vms = 0;
	int worst = -1;

	top_canvas_put(c, TOP_A_NORMAL, " | findings ");
	if (!r) {
		top_canvas_printf(c, TOP_A_DIM, "not evaluated%s%s",
				  f->findings_note[0] ? ": " : "", f->findings_note);
		return;
	}
	for (size_t i = 0; i < r->n_vms; i++) {
		vms += r->vms[i].result.n_findings > 0;
		for (size_t j = 0; j < r->vms[i].result.n_findings; j++) {
			n++;
			if ((int)r->vms[i].result.findings[j].severity > worst)
				worst = r->vms[i].result.findings[j].severity;
		}
	}
	if (!n)
		top_canvas_put(c, TOP_A_GOOD, "none");
	else
		top_canvas_printf(c, top_severity_attr(worst), "%zu (worst %s) on %zu VM%s", n,
				  diag_severity_name(worst), vms, vms == 1 ? "" : "s");
	if (r->host_result.n_findings)
		top_canvas_printf(c, TOP_A_WARN, ", host %zu", r->host_result.n_findings);
}

static void probes_line(struct top_canvas *c, const struct top_frame *f)
{
	const struct ipiv_self_stats *self = &f->snap->self;
	uint64_t lost = 0;

	size_t absent = 0;

	top_canvas_line(c);
	top_canvas_printf(c, TOP_A_NORMAL, "probes: %zu/%zu attached", self->n_attached,
			  self->n_probes);
	/* optional tracepoints this kernel lacks (another vendor's, kernel-patches/ ones) are
	 * normal, not a fault */
	for (size_t i = 0; i < self->n_probes; i++)
		absent += !self->probes[i].attached && self->probes[i].optional &&
			  self->probes[i].err == -ENOENT;
	if (absent)
		top_canvas_printf(c, TOP_A_DIM, " (%zu optional not in this kernel)", absent);
	if (f->degraded) {
		top_canvas_put(c, TOP_A_NORMAL, " ");
		top_canvas_put(c, TOP_A_WARN, "DEGRADED:");
		for (size_t i = 0; i < self->n_probes; i++)
			if (!self->probes[i].attached && !self->probes[i].optional)
				top_canvas_printf(c, TOP_A_WARN, " %s", self->probes[i].name);
	}
	for (unsigned r = 0; r < IPIV_DROP_COUNT; r++)
		if (r != IPIV_DROP_EOI_DUPLICATE && r != IPIV_DROP_NO_IDENTITY)
			lost += self->drops[r];
	top_canvas_printf(c, lost ? TOP_A_WARN : TOP_A_NORMAL, " | events lost %llu",
			  (unsigned long long)lost);
	findings_part(c, f);
}

static void totals_line(struct top_canvas *c, const struct top_model *m)
{
	char sent[TOP_NUM_MAX], recv[TOP_NUM_MAX], wake[TOP_NUM_MAX], exits[TOP_NUM_MAX];
	char tsent[TOP_NUM_MAX], trecv[TOP_NUM_MAX];
	double rs = 0, rr = 0, rw = 0, rx = 0;
	uint64_t ts = 0, tr = 0;
	size_t live = 0, gone = 0, hidden = 0;
	bool valid = false;

	/* The totals are those of the VMs the filter shows. */
	for (size_t i = 0; i < m->n_rows; i++) {
		const struct top_vm_row *row = &m->rows[i];

		if (!top_model_visible(m, row)) {
			hidden++;
			continue;
		}
		if (row->gone) {
			gone++;
			continue;
		}
		live++;
		ts += row->total.sent;
		tr += row->total.received;
		if (row->rate.valid) {
			valid = true;
			rs += row->rate.sent;
			rr += row->rate.received;
			rw += row->rate.wakeups;
			rx += row->rate.exits;
		}
	}
	top_humanize(valid ? rs : -1, sent);
	top_humanize(valid ? rr : -1, recv);
	top_humanize(valid ? rw : -1, wake);
	top_humanize(valid ? rx : -1, exits);
	top_humanize((double)ts, tsent);
	top_humanize((double)tr, trecv);
	top_canvas_line(c);
	top_canvas_printf(c, TOP_A_NORMAL,
			  "VMs %zu | IPIs/s sent %s recv %s | wakeups/s %s | exits/s %s | "
			  "total sent %s recv %s ",
			  live, sent, recv, wake, exits, tsent, trecv);
	if (m->reset_ns && m->last_ns >= m->reset_ns)
		top_canvas_printf(c, TOP_A_NORMAL, "since reset %.0fs ago",
				  (double)(m->last_ns - m->reset_ns) / 1e9);
	else
		top_canvas_put(c, TOP_A_NORMAL, "since start");
	if (gone)
		top_canvas_printf(c, TOP_A_DIM, " | %zu gone", gone);
	if (hidden)
		top_canvas_printf(c, TOP_A_DIM, " | %zu hidden by the filter", hidden);
}

void top_header_draw(struct top_canvas *c, const struct top_header *h)
{
	top_canvas_line(c);
	top_canvas_printf(c, TOP_A_TITLE, "ipivtop %s - %s - every %.1fs", h->version, h->source,
			  h->delay_s);
	/* which span the table's latency covers: per interval unless the source cannot say */
	top_canvas_put(c, TOP_A_TITLE,
		       h->model->lat_span == TOP_LAT_INTERVAL ? " - P50/P99 per interval"
							      : " - P50/P99 since ipivd start");
	if (h->model->has_filter)
		top_canvas_printf(c, TOP_A_TITLE, " - filter /%s/", h->model->filter_text);
	if (h->model->filter_guest[0]) {
		char guest[VM_NAME_MAX * 2];

		top_sanitize(h->model->filter_guest, guest, sizeof(guest));
		top_canvas_printf(c, TOP_A_TITLE, " - guest %s", guest);
	}
	if (h->model->filter_pid)
		top_canvas_printf(c, TOP_A_TITLE, " - pid %d", h->model->filter_pid);
	top_canvas_fill(c, TOP_A_TITLE);
	host_line(c, h->host);
	if (h->frame && h->frame->snap)
		probes_line(c, h->frame);
	else
		top_canvas_line(c), top_canvas_put(c, TOP_A_DIM, "probes: waiting for a sample");
	totals_line(c, h->model);
	top_canvas_line(c);
	if (h->message)
		top_canvas_put(c, h->message_is_error ? TOP_A_WARN : TOP_A_NORMAL, h->message);
}
