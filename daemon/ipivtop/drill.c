/* ipivtop's VM drill-down: vCPU rows, heat matrix, inhibits, latency and findings panes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill.h"
#include "findings.h"
#include "format.h"
#include "latency_pane.h"
#include "table.h"

/* Matrix columns shown at most, and source rows; the rest is summarised in one line. */
#define DRILL_MATRIX_CELL 6
#define DRILL_MATRIX_ROWS 16

void top_detail_init(struct top_detail *d, uint64_t key)
{
	memset(d, 0, sizeof(*d));
	d->key = key;
	d->stage = IPIV_LAT_SEND_EOI;			  /* what the table's P50/P99 show */
	d->lat_recorded = (1u << IPIV_LAT_UNMATCHED) - 1; /* until a sample says otherwise */
}

static void vm_free(struct ipiv_vm_stats *vm)
{
	free(vm->vcpus);
	free(vm->matrix);
	free(vm->lat);
	memset(vm, 0, sizeof(*vm));
}

/* base takes cur's histograms (nothing else of it is read). */
static int take_base(struct top_detail *d)
{
	struct ipiv_lat_hist *lat = calloc(d->cur.n_lat + 1, sizeof(*lat));

	if (!lat)
		return -ENOMEM;
	if (d->cur.n_lat)
		memcpy(lat, d->cur.lat, d->cur.n_lat * sizeof(*lat));
	free(d->base.lat);
	d->base.lat = lat;
	d->base.n_lat = d->cur.n_lat;
	memcpy(d->base.lat_unmatched, d->cur.lat_unmatched, sizeof(d->base.lat_unmatched));
	d->base_ns = d->cur_ns;
	d->has_base = true;
	return 0;
}

int top_detail_reset(struct top_detail *d)
{
	d->since_reset = true;
	d->has_base = false;
	return d->has_cur ? take_base(d) : 0;
}

static const struct ipiv_lat_hist *lat_row(const struct ipiv_vm_stats *vm,
					   const struct ipiv_lat_hist *like)
{
	for (size_t i = 0; i < vm->n_lat; i++)
		if (vm->lat[i].kind == like->kind && vm->lat[i].sub == like->sub &&
		    vm->lat[i].vcpu == like->vcpu)
			return &vm->lat[i];
	return NULL;
}

int top_lat_since(const struct ipiv_vm_stats *cur, const struct ipiv_vm_stats *base,
		  struct ipiv_vm_stats *out)
{
	*out = *cur;
	out->lat = calloc(cur->n_lat + 1, sizeof(*out->lat));
	out->n_lat = 0;
	if (!out->lat)
		return -ENOMEM;
	for (size_t i = 0; i < cur->n_lat; i++) {
		const struct ipiv_lat_hist *then = lat_row(base, &cur->lat[i]);
		struct ipiv_lat_hist *row = &out->lat[out->n_lat];

		*row = cur->lat[i];
		if (then)
			top_hist_delta(&then->h, &cur->lat[i].h, &row->h);
		out->n_lat += row->h.count > 0;
	}
	for (unsigned r = 0; r < IPIV_UNM_COUNT; r++)
		out->lat_unmatched[r] = cur->lat_unmatched[r] >= base->lat_unmatched[r]
						? cur->lat_unmatched[r] - base->lat_unmatched[r]
						: cur->lat_unmatched[r];
	return 0;
}

static int vm_copy(struct ipiv_vm_stats *dst, const struct ipiv_vm_stats *src)
{
	*dst = *src;
	dst->send_cells = NULL;
	dst->n_send_cells = 0;
	dst->exits = NULL;
	dst->n_exits = 0;
	dst->vcpus = calloc(src->n_vcpus + 1, sizeof(*dst->vcpus));
	dst->matrix = calloc(src->n_matrix + 1, sizeof(*dst->matrix));
	dst->lat = calloc(src->n_lat + 1, sizeof(*dst->lat));
	if (!dst->vcpus || !dst->matrix || !dst->lat) {
		vm_free(dst);
		return -ENOMEM;
	}
	if (src->n_vcpus) /* NULL arrays when empty, and memcpy from NULL is undefined */
		memcpy(dst->vcpus, src->vcpus, src->n_vcpus * sizeof(*dst->vcpus));
	if (src->n_matrix)
		memcpy(dst->matrix, src->matrix, src->n_matrix * sizeof(*dst->matrix));
	if (src->n_lat)
		memcpy(dst->lat, src->lat, src->n_lat * sizeof(*dst->lat));
	return 0;
}

int top_detail_update(struct top_detail *d, const struct ipiv_vm_stats *vm, uint64_t taken_ns)
{
	struct ipiv_vm_stats copy;
	int r;

	if (!vm) {
		d->gone = d->has_cur;
		return 0;
	}
	r = vm_copy(&copy, vm);
	if (r)
		return r;
	vm_free(&d->prev);
	d->prev = d->cur;
	d->prev_ns = d->cur_ns;
	d->has_prev = d->has_cur && !d->gone;
	d->cur = copy;
	d->cur_ns = taken_ns;
	d->has_cur = true;
	d->gone = false;
	return d->since_reset && !d->has_base ? take_base(d) : 0;
}

void top_detail_free(struct top_detail *d)
{
	vm_free(&d->prev);
	vm_free(&d->cur);
	vm_free(&d->base);
	d->has_prev = d->has_cur = d->has_base = false;
}

static double interval(const struct top_detail *d)
{
	return d->has_prev && !d->gone ? (double)(d->cur_ns - d->prev_ns) / 1e9 : 0;
}

bool top_detail_vcpu_rates(const struct top_detail *d, uint32_t vcpu_id, struct top_rates *out)
{
	const struct ipiv_vcpu_stats *cur, *prev;

	memset(out, 0, sizeof(*out));
	if (!d->has_cur || !(cur = vm_find_vcpu(&d->cur, vcpu_id)))
		return false;
	if (!d->has_prev || !(prev = vm_find_vcpu(&d->prev, vcpu_id)))
		return false;
	top_rates_compute(&prev->counts, &cur->counts, interval(d), out);
	return out->valid;
}

static uint64_t matrix_count(const struct ipiv_vm_stats *vm, uint32_t src, uint32_t dst)
{
	for (size_t i = 0; i < vm->n_matrix; i++)
		if (vm->matrix[i].src_vcpu == src && vm->matrix[i].dst_vcpu == dst)
			return vm->matrix[i].count;
	return 0;
}

double top_detail_matrix_rate(const struct top_detail *d, uint32_t src, uint32_t dst)
{
	double s = interval(d);
	uint64_t prev, cur;

	if (!(s > 0))
		return -1;
	prev = matrix_count(&d->prev, src, dst);
	cur = matrix_count(&d->cur, src, dst);
	return (cur >= prev ? cur - prev : cur) / s;
}

enum top_attr top_heat_attr(double value, double max)
{
	double f;

	if (!(value > 0) || !(max > 0))
		return TOP_A_DIM;
	f = value / max;
	return f > 0.75	  ? TOP_A_HEAT4
	       : f > 0.5  ? TOP_A_HEAT3
	       : f > 0.25 ? TOP_A_HEAT2
			  : TOP_A_HEAT1;
}

static void num(struct top_canvas *c, enum top_attr attr, double v, int width)
{
	char s[TOP_NUM_MAX];

	top_humanize(v, s);
	top_canvas_put(c, attr, " ");
	top_canvas_fit(c, v < 0 ? TOP_A_DIM : attr, s, width, TOP_RIGHT);
}

/* The span of the drill-down's cumulative latency: since the collector started, or since
 * "r" when a baseline was taken. */
static bool lat_since_reset(const struct top_detail *d)
{
	return d->since_reset && d->has_base;
}

static void lat_span(const struct top_detail *d, char *out, size_t size)
{
	if (lat_since_reset(d))
		snprintf(out, size, "since reset %.0fs ago",
			 (double)(d->cur_ns - d->base_ns) / 1e9);
	else
		snprintf(out, size, "since the collector started");
}

/* send->EOI of the IPIs vcpu received, over the span of the latency pane below (the
 * table's P50/P99 are the interval's), when the collector keeps per-vCPU histograms. */
static void vcpu_latency(const struct top_detail *d, uint32_t vcpu, char *p50, char *p99,
			 size_t size)
{
	struct latency_hist h, then;
	struct latency_quantile q50, q99;

	vm_vcpu_latency(&d->cur, IPIV_LAT_SEND_EOI, IPIV_LAT_ANY_SUB, vcpu, &h);
	if (!vm_latency_per_vcpu(&d->cur)) {
		snprintf(p50, size, TOP_NA);
		snprintf(p99, size, TOP_NA);
		return;
	}
	if (lat_since_reset(d)) {
		vm_vcpu_latency(&d->base, IPIV_LAT_SEND_EOI, IPIV_LAT_ANY_SUB, vcpu, &then);
		top_hist_delta(&then, &h, &h);
	}
	q50 = latency_quantile(&h, 0.5);
	q99 = latency_quantile(&h, 0.99);
	top_quantile_cell(&q50, p50, size);
	top_quantile_cell(&q99, p99, size);
}

static void vcpu_rows(struct top_canvas *c, const struct top_detail *d)
{
	static const char *const hdr[] = {"SENT/s", "RECV/s", "WAKE/s", "EOI/s", "HALT%"};
	const struct ipiv_vm_stats *vm = &d->cur;
	char span[64];

	top_canvas_line(c);
	top_canvas_fit(c, TOP_A_HEADER, "VCPU", 5, TOP_RIGHT);
	top_canvas_fit(c, TOP_A_HEADER, "TID", 9, TOP_RIGHT);
	top_canvas_put(c, TOP_A_HEADER, " ");
	top_canvas_fit(c, TOP_A_HEADER, "APICv", 5, TOP_RIGHT);
	for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
		top_canvas_put(c, TOP_A_HEADER, " ");
		top_canvas_fit(c, TOP_A_HEADER, hdr[i], 6, TOP_RIGHT);
	}
	top_canvas_put(c, TOP_A_HEADER, " ");
	top_canvas_fit(c, TOP_A_HEADER, "P50", 7, TOP_RIGHT);
	top_canvas_put(c, TOP_A_HEADER, " ");
	top_canvas_fit(c, TOP_A_HEADER, "P99", 7, TOP_RIGHT);
	lat_span(d, span, sizeof(span));
	top_canvas_printf(c, TOP_A_HEADER, "  P50/P99 %s", span);
	top_canvas_fill(c, TOP_A_HEADER);
	for (size_t i = 0; i < vm->n_vcpus; i++) {
		const struct ipiv_vcpu_stats *v = &vm->vcpus[i];
		struct top_rates r;
		char pct[TOP_NUM_MAX], p50[TOP_NUM_MAX], p99[TOP_NUM_MAX];
		bool ok = top_detail_vcpu_rates(d, v->vcpu_id, &r) && !d->gone;

		top_canvas_line(c);
		if (v->vcpu_id == IPIV_VCPU_NONE)
			top_canvas_fit(c, TOP_A_NORMAL, "none", 5, TOP_RIGHT);
		else
			top_canvas_printf(c, TOP_A_NORMAL, "%5u", v->vcpu_id);
		if (v->tid)
			top_canvas_printf(c, TOP_A_NORMAL, " %8u", v->tid);
		else
			top_canvas_printf(c, TOP_A_DIM, " %8s", TOP_NONE);
		/* APICv/AVIC active on the vCPU: "off" on a host that has it is worth a look */
		top_canvas_put(c, TOP_A_NORMAL, " ");
		if (v->apicv_active == IPIV_APICV_UNKNOWN)
			top_canvas_fit(c, TOP_A_DIM, v->vcpu_id == IPIV_VCPU_NONE ? "" : TOP_NONE,
				       5, TOP_RIGHT);
		else
			top_canvas_fit(c, TOP_A_NORMAL,
				       v->apicv_active == IPIV_APICV_ACTIVE ? "on" : "off", 5,
				       TOP_RIGHT);
		num(c, TOP_A_NORMAL, ok ? r.sent : -1, 6);
		num(c, TOP_A_NORMAL, ok ? r.received : -1, 6);
		num(c, TOP_A_NORMAL, ok ? r.wakeups : -1, 6);
		num(c, TOP_A_NORMAL, ok ? r.eois : -1, 6);
		if (ok)
			top_percent(r.delta.wakeups, r.delta.received, pct);
		else
			snprintf(pct, sizeof(pct), TOP_NONE);
		top_canvas_put(c, TOP_A_NORMAL, " ");
		top_canvas_fit(c, strcmp(pct, TOP_NONE) ? TOP_A_NORMAL : TOP_A_DIM, pct, 6,
			       TOP_RIGHT);
		vcpu_latency(d, v->vcpu_id, p50, p99, sizeof(p50));
		top_canvas_put(c, TOP_A_NORMAL, " ");
		top_canvas_fit(c, strcmp(p50, TOP_NA) ? TOP_A_NORMAL : TOP_A_DIM, p50, 7,
			       TOP_RIGHT);
		top_canvas_put(c, TOP_A_NORMAL, " ");
		top_canvas_fit(c, strcmp(p99, TOP_NA) ? TOP_A_NORMAL : TOP_A_DIM, p99, 7,
			       TOP_RIGHT);
		if (v->vcpu_id == IPIV_VCPU_NONE)
			top_canvas_put(c, TOP_A_DIM, "  VMM and device threads");
	}
}

/* Targets: the vCPUs of the VM; sources: the same plus "none" when devices sent. */
static void matrix(struct top_canvas *c, const struct top_detail *d)
{
	const struct ipiv_vm_stats *vm = &d->cur;
	uint32_t ids[256];
	size_t n_ids = 0, n_cols, n_rows;
	double max = 0;
	bool none_src = false;

	for (size_t i = 0; i < vm->n_vcpus && n_ids < 256; i++)
		if (vm->vcpus[i].vcpu_id != IPIV_VCPU_NONE)
			ids[n_ids++] = vm->vcpus[i].vcpu_id;
	for (size_t i = 0; i < vm->n_matrix; i++)
		if (vm->matrix[i].src_vcpu == IPIV_VCPU_NONE)
			none_src = true;
	top_canvas_line(c);
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_TITLE, "Source -> target vCPU (interrupts accepted/s)");
	top_canvas_fill(c, TOP_A_TITLE);
	if (!n_ids) {
		top_canvas_line(c);
		top_canvas_put(c, TOP_A_DIM, "no vCPUs seen yet");
		return;
	}
	n_cols = c->width > 10 ? (size_t)(c->width - 10) / DRILL_MATRIX_CELL : 1;
	if (n_cols > n_ids)
		n_cols = n_ids;
	if (!n_cols)
		n_cols = 1;
	n_rows = n_ids < DRILL_MATRIX_ROWS ? n_ids : DRILL_MATRIX_ROWS;
	for (size_t s = 0; s < n_rows + none_src; s++)
		for (size_t t = 0; t < n_cols; t++) {
			double v = top_detail_matrix_rate(d, s < n_rows ? ids[s] : IPIV_VCPU_NONE,
							  ids[t]);

			if (v > max)
				max = v;
		}
	top_canvas_line(c);
	top_canvas_fit(c, TOP_A_HEADER, "src\\dst", 9, TOP_RIGHT);
	for (size_t t = 0; t < n_cols; t++) {
		char id[16];

		snprintf(id, sizeof(id), "%u", ids[t]);
		top_canvas_put(c, TOP_A_HEADER, " ");
		top_canvas_fit(c, TOP_A_HEADER, id, DRILL_MATRIX_CELL - 1, TOP_RIGHT);
	}
	if (n_cols < n_ids)
		top_canvas_printf(c, TOP_A_DIM, " (+%zu)", n_ids - n_cols);
	for (size_t s = 0; s < n_rows + none_src; s++) {
		uint32_t src = s < n_rows ? ids[s] : IPIV_VCPU_NONE;

		top_canvas_line(c);
		if (src == IPIV_VCPU_NONE)
			top_canvas_fit(c, TOP_A_HEADER, "none", 9, TOP_RIGHT);
		else
			top_canvas_printf(c, TOP_A_HEADER, "%9u", src);
		for (size_t t = 0; t < n_cols; t++) {
			double v = top_detail_matrix_rate(d, src, ids[t]);
			char cell[TOP_NUM_MAX];

			if (v == 0)
				snprintf(cell, sizeof(cell), ".");
			else
				top_humanize(v, cell);
			top_canvas_put(c, TOP_A_NORMAL, " ");
			top_canvas_fit(c, top_heat_attr(v, max), cell, DRILL_MATRIX_CELL - 1,
				       TOP_RIGHT);
		}
	}
	if (n_rows < n_ids) {
		top_canvas_line(c);
		top_canvas_printf(c, TOP_A_DIM, "(+%zu more sources)", n_ids - n_rows);
	}
}

static void inhibits(struct top_canvas *c, const struct top_detail *d,
		     const struct ipiv_inhibit_names *names)
{
	const struct ipiv_vm_stats *vm = &d->cur;
	bool any = false;

	top_canvas_line(c);
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_TITLE, "APICv/AVIC inhibits");
	top_canvas_fill(c, TOP_A_TITLE);
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_NORMAL, "now: ");
	if (!vm->inhibits_known) {
		top_canvas_put(c, TOP_A_DIM,
			       "- (no inhibit change seen since the collector started)");
	} else if (!vm->inhibits) {
		top_canvas_put(c, TOP_A_GOOD, "none");
	} else {
		for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
			if (vm->inhibits & (1ull << r))
				top_canvas_printf(c, TOP_A_WARN, "%s ",
						  ipiv_inhibit_name(names, r));
	}
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_NORMAL, "changes:");
	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		if (vm->inhibit_set[r] || vm->inhibit_clear[r]) {
			top_canvas_printf(c, TOP_A_NORMAL, " %s set %llu cleared %llu;",
					  ipiv_inhibit_name(names, r),
					  (unsigned long long)vm->inhibit_set[r],
					  (unsigned long long)vm->inhibit_clear[r]);
			any = true;
		}
	if (!any)
		top_canvas_put(c, TOP_A_DIM, " none recorded");
	/* the timeline, newest last, timed from the newest change (clocks of a remote ipivd
	 * are not ours, so no "ago") */
	for (size_t k = 0; k < vm->n_timeline; k++) {
		const struct ipiv_inhibit_change *ch = &vm->timeline[k];
		double before = (double)(vm->timeline[vm->n_timeline - 1].ts - ch->ts) / 1e9;

		top_canvas_line(c);
		top_canvas_printf(c, ch->set ? TOP_A_WARN : TOP_A_GOOD, "  %s%10.3f s  %s %s",
				  k == 0 ? "timeline " : "         ", -before,
				  ipiv_inhibit_name(names, ch->reason),
				  ch->set ? "set" : "cleared");
	}
}

/* The stage's histograms since the collector started, or since "r". */
static void latency(struct top_canvas *c, const struct top_detail *d)
{
	struct ipiv_vm_stats since;
	char span[64];

	if (!lat_since_reset(d) || top_lat_since(&d->cur, &d->base, &since)) {
		top_latency_draw(c, &d->cur, d->stage, d->lat_recorded,
				 "since the collector started");
		return;
	}
	lat_span(d, span, sizeof(span));
	top_latency_draw(c, &since, d->stage, d->lat_recorded, span);
	free(since.lat);
}

void top_drill_draw(struct top_canvas *c, const struct top_detail *d, const struct top_vm_row *row,
		    const struct diag_report *findings, const char *findings_note)
{
	char name[VM_NAME_MAX * 2];

	top_sanitize(row ? row->name : "?", name, sizeof(name));
	top_canvas_line(c);
	top_canvas_printf(c, TOP_A_TITLE, "VM %s", name);
	if (d->has_cur)
		top_canvas_printf(c, TOP_A_TITLE, " (pid %d, %u vCPUs)", d->cur.pid,
				  d->cur.vcpu_count);
	top_canvas_put(c, TOP_A_TITLE, " - Esc: back, arrows/PgUp/PgDn: scroll, l: latency stage");
	top_canvas_fill(c, TOP_A_TITLE);
	if (d->gone || (row && row->gone)) {
		top_canvas_line(c);
		top_canvas_put(c, TOP_A_WARN,
			       "VM is gone: it exited; the last numbers seen stay below");
	}
	if (!d->has_cur) {
		top_canvas_line(c);
		top_canvas_put(c, TOP_A_DIM, "waiting for the VM's detail...");
		return;
	}
	vcpu_rows(c, d);
	matrix(c, d);
	latency(c, d);
	inhibits(c, d, row ? row->inhibit_names : NULL);
	top_findings_draw(c, findings, row ? row->name : "", findings_note);
}
