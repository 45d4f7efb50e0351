/* ipivtop's VM table: one row per VM, columns that drop by rank on narrow terminals. */
#include <stdio.h>
#include <string.h>

#include "table.h"

const struct top_column top_columns[TOP_COL_COUNT] = {
	[TOP_COL_NAME] = {"VM", "VM name (sanitised)", TOP_NAME_MIN, TOP_LEFT, TOP_SORT_NAME, 'N',
			  0},
	[TOP_COL_VCPUS] = {"VCPU", "vCPUs", 4, TOP_RIGHT, TOP_SORT_VCPUS, 'C', 9},
	[TOP_COL_SENT] = {"SENT/s", "IPIs sent per second (that reached KVM)", 6, TOP_RIGHT,
			  TOP_SORT_SENT, 'S', 0},
	[TOP_COL_RECEIVED] = {"RECV/s", "interrupts accepted per second", 6, TOP_RIGHT,
			      TOP_SORT_RECEIVED, 'R', 1},
	[TOP_COL_ELIGIBLE] = {"ELIG%", "share of sent IPIs IPIv/AVIC could deliver exit-free", 5,
			      TOP_RIGHT, TOP_SORT_ELIGIBLE, 'E', 5},
	[TOP_COL_FALLBACK] = {"FALLB%", "share sent by the APIC-write / AVIC-incomplete fallback",
			      6, TOP_RIGHT, TOP_SORT_FALLBACK, 'F', 7},
	[TOP_COL_PV] = {"PV%", "share sent by PV hypercall", 4, TOP_RIGHT, TOP_SORT_PV, 'P', 10},
	[TOP_COL_EXITS] = {"EXIT/s", "VM exits per second (where kvm_exit fires)", 6, TOP_RIGHT,
			   TOP_SORT_EXITS, 'X', 11},
	[TOP_COL_P50] = {"P50",
			 "send->EOI latency median over the refresh interval, all paths "
			 "(~: a bucket midpoint; -: none in it; n/a: latency off)",
			 7, TOP_RIGHT, TOP_SORT_P50, 'L', 4},
	[TOP_COL_P99] = {"P99", "send->EOI latency 99th percentile (the drill-down has the error)",
			 7, TOP_RIGHT, TOP_SORT_P99, 'T', 6},
	[TOP_COL_HALTED] = {"HALT%", "halt wakeups per IPI received (targets that were halted)", 5,
			    TOP_RIGHT, TOP_SORT_HALTED, 'H', 2},
	[TOP_COL_INHIBIT] = {"INHIBIT", "APICv/AVIC inhibit reasons now (-: none seen)", 9,
			     TOP_LEFT, -1, 0, 8},
	[TOP_COL_FINDINGS] = {"FIND",
			      "active diagnosis findings, coloured by the worst "
			      "(-: not evaluated yet)",
			      4, TOP_RIGHT, TOP_SORT_FINDINGS, 'D', 3},
};

void top_table_layout(int width, struct top_layout *l)
{
	int used = TOP_NAME_MIN;

	memset(l, 0, sizeof(*l));
	for (int i = 0; i < TOP_COL_COUNT; i++) {
		l->shown[i] = true;
		if (i != TOP_COL_NAME)
			used += 1 + top_columns[i].width;
	}
	/* Drop the highest rank until the rest fits. */
	while (used > width) {
		int worst = -1;

		for (int i = 1; i < TOP_COL_COUNT; i++)
			if (l->shown[i] &&
			    (worst < 0 || top_columns[i].drop > top_columns[worst].drop))
				worst = i;
		if (worst < 0)
			break;
		l->shown[worst] = false;
		used -= 1 + top_columns[worst].width;
	}
	l->name_width = TOP_NAME_MIN;
	if (width > used)
		l->name_width += width - used < TOP_NAME_MAX - TOP_NAME_MIN
					 ? width - used
					 : TOP_NAME_MAX - TOP_NAME_MIN;
	if (width < used) /* not even the name and the sent rate: shrink the name */
		l->name_width =
			width - (used - TOP_NAME_MIN) > 1 ? width - (used - TOP_NAME_MIN) : 1;
	l->width = used - TOP_NAME_MIN + l->name_width;
}

static void inhibit_cell(const struct top_vm_row *row, char *out, size_t size)
{
	int first = -1, n = 0;

	if (!row->inhibits_known) {
		snprintf(out, size, TOP_NONE);
		return;
	}
	for (int r = 0; r < IPIV_INHIBIT_COUNT; r++)
		if (row->inhibits & (1ull << r)) {
			if (first < 0)
				first = r;
			n++;
		}
	if (!n)
		snprintf(out, size, "none");
	else if (n == 1)
		snprintf(out, size, "%s", ipiv_inhibit_name(row->inhibit_names, first));
	else
		snprintf(out, size, "%s+%d", ipiv_inhibit_name(row->inhibit_names, first), n - 1);
}

void top_quantile_cell(const struct latency_quantile *q, char *out, size_t size)
{
	char d[TOP_NUM_MAX];

	if (!q->valid) {
		snprintf(out, size, TOP_NONE);
		return;
	}
	/* the open-ended last bucket: the quantile is beyond its lower edge */
	top_duration(q->overflow ? (double)hist_bucket_lo(HIST_BUCKETS - 1) : q->value_ns, d);
	snprintf(out, size, "%s%s", q->overflow ? ">" : "~", d);
}

enum top_attr top_findings_attr(const struct top_vm_row *row)
{
	if (!row->has_findings)
		return TOP_A_DIM;
	if (!row->findings)
		return TOP_A_GOOD;
	switch (row->worst) {
	case DIAG_CRITICAL: return TOP_A_WARN;
	case DIAG_WARNING: return TOP_A_CAUTION;
	default: return TOP_A_NORMAL;
	}
}

void top_table_cell(const struct top_vm_row *row, enum top_col col, char *out, size_t size)
{
	const struct top_rates *r = &row->rate;
	char num[TOP_NUM_MAX];

	snprintf(out, size, TOP_NONE);
	switch (col) {
	case TOP_COL_NAME: snprintf(out, size, "%s", row->name); return;
	case TOP_COL_VCPUS: snprintf(out, size, "%u", row->vcpus); return;
	case TOP_COL_INHIBIT: inhibit_cell(row, out, size); return;
	case TOP_COL_P50:
	case TOP_COL_P99:
		top_quantile_cell(col == TOP_COL_P50 ? &row->latency.p50 : &row->latency.p99, out,
				  size);
		return;
	case TOP_COL_FINDINGS:
		if (row->has_findings)
			snprintf(out, size, "%u", row->findings);
		return;
	default: break;
	}
	if (!r->valid)
		return;
	switch (col) {
	case TOP_COL_SENT: top_humanize(r->sent, num); break;
	case TOP_COL_RECEIVED: top_humanize(r->received, num); break;
	case TOP_COL_EXITS: top_humanize(r->exits, num); break;
	case TOP_COL_ELIGIBLE: top_percent(r->delta.sent_accel_eligible, r->delta.sent, num); break;
	case TOP_COL_FALLBACK:
		top_percent(top_counts_fallback(&r->delta), r->delta.sent, num);
		break;
	case TOP_COL_PV: top_percent(top_counts_pv(&r->delta), r->delta.sent, num); break;
	case TOP_COL_HALTED: top_percent(r->delta.wakeups, r->delta.received, num); break;
	default: return;
	}
	snprintf(out, size, "%s", num);
}

int top_table_sort_for_key(int key)
{
	for (int i = 0; i < TOP_COL_COUNT; i++)
		if (top_columns[i].key && top_columns[i].key == key)
			return top_columns[i].sort;
	return -1;
}

static int col_width(const struct top_layout *l, int col)
{
	return col == TOP_COL_NAME ? l->name_width : top_columns[col].width;
}

void top_table_header(struct top_canvas *c, const struct top_layout *l, enum top_sort_key sort)
{
	top_canvas_line(c);
	for (int i = 0; i < TOP_COL_COUNT; i++) {
		if (!l->shown[i])
			continue;
		if (i)
			top_canvas_put(c, TOP_A_HEADER, " ");
		top_canvas_fit(c, top_columns[i].sort == (int)sort ? TOP_A_SORTED : TOP_A_HEADER,
			       top_columns[i].header, col_width(l, i), top_columns[i].align);
	}
}

void top_table_row(struct top_canvas *c, const struct top_layout *l, const struct top_vm_row *row,
		   bool selected)
{
	enum top_attr attr = selected ? TOP_A_SELECTED : row->gone ? TOP_A_DIM : TOP_A_NORMAL;
	char cell[VM_NAME_MAX * 2];

	top_canvas_line(c);
	top_canvas_fit(c, attr, row->name, l->name_width, TOP_LEFT);
	if (row->gone) {
		/* The row stays a few refreshes so the VM does not just vanish mid-read. */
		top_canvas_put(c, attr, " ");
		top_canvas_fit(c, selected ? attr : TOP_A_WARN, "VM is gone (exited)",
			       l->width - l->name_width - 1, TOP_LEFT);
		return;
	}
	for (int i = 1; i < TOP_COL_COUNT; i++) {
		enum top_attr a = attr;

		if (!l->shown[i])
			continue;
		top_table_cell(row, i, cell, sizeof(cell));
		if (!selected && (!strcmp(cell, TOP_NA) || !strcmp(cell, TOP_NONE)))
			a = TOP_A_DIM;
		else if (!selected && i == TOP_COL_INHIBIT && strcmp(cell, "none"))
			a = TOP_A_WARN;
		else if (!selected && i == TOP_COL_FINDINGS)
			a = top_findings_attr(row);
		top_canvas_put(c, attr, " ");
		top_canvas_fit(c, a, cell, top_columns[i].width, top_columns[i].align);
	}
}

size_t top_table_children(const struct top_vm_row *row, enum ipiv_path *paths)
{
	size_t n = 0;

	if (row->gone || !row->rate.valid)
		return 0;
	for (unsigned p = 0; p < IPIV_PATH_COUNT; p++)
		if (row->rate.delta.sent_by_path[p]) {
			if (paths)
				paths[n] = p;
			n++;
		}
	return n;
}

void top_table_child(struct top_canvas *c, const struct top_layout *l, const struct top_vm_row *row,
		     enum ipiv_path path, bool last)
{
	uint64_t sent = row->rate.delta.sent_by_path[path];
	char label[64], num[TOP_NUM_MAX], share[TOP_NUM_MAX];

	snprintf(label, sizeof(label), " %s %s",
		 top_format_utf8() ? (last ? "\u2514" : "\u251c") : (last ? "`" : "|"),
		 ipiv_path_name(path));
	top_humanize(sent / row->rate.seconds, num);
	top_percent(sent, row->rate.delta.sent, share);
	top_canvas_line(c);
	top_canvas_fit(c, TOP_A_DIM, label, l->name_width, TOP_LEFT);
	for (int i = 1; i < TOP_COL_COUNT; i++) {
		if (!l->shown[i])
			continue;
		top_canvas_put(c, TOP_A_NORMAL, " ");
		top_canvas_fit(c, TOP_A_NORMAL,
			       i == TOP_COL_SENT       ? num
			       : i == TOP_COL_RECEIVED ? share
						       : "",
			       top_columns[i].width, top_columns[i].align);
	}
}

size_t top_table_visible(const struct top_model *m, const struct top_vm_row **out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_rows && n < cap; i++)
		if (top_model_visible(m, &m->rows[i]))
			out[n++] = &m->rows[i];
	return n;
}
