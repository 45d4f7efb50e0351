/* ipivtop's latency pane: a stage's histogram as bars, quantiles with error, unmatched. */
#include <stdio.h>
#include <string.h>

#include "drill.h"
#include "findings.h"
#include "format.h"
#include "latency_pane.h"

const char *top_lat_stage_name(unsigned kind)
{
	/* by enum ipiv_lat_kind */
	static const char *const utf8[] = {
		"send\u2192accept", "accept\u2192running", "send\u2192EOI", "exit", "halt",
		"fast exit"};
	static const char *const ascii[] = {"send->accept", "accept->running", "send->EOI", "exit",
					    "halt",	    "fast exit"};

	if (kind >= IPIV_LAT_UNMATCHED)
		return "?";
	return top_format_utf8() ? utf8[kind] : ascii[kind];
}

unsigned top_lat_next_stage(unsigned kind)
{
	return kind + 1 < IPIV_LAT_UNMATCHED ? kind + 1 : 0;
}

size_t top_hist_rows(const struct latency_hist *h, size_t max_rows, struct top_hist_row *out)
{
	unsigned first = HIST_BUCKETS, last = 0, nonempty = 0, run;
	size_t n = 0;

	if (!max_rows)
		return 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		if (h->buckets[b]) {
			if (first == HIST_BUCKETS)
				first = b;
			last = b;
			nonempty++;
		}
	if (!nonempty)
		return 0;
	run = nonempty <= max_rows ? 1 : (last - first + (unsigned)max_rows) / (unsigned)max_rows;
	for (unsigned b = first; b <= last && n < max_rows; b += run) {
		unsigned end = b + run - 1 < last ? b + run - 1 : last;
		struct top_hist_row row = {.lo = hist_bucket_lo(b), .hi = hist_bucket_hi(end)};

		for (unsigned i = b; i <= end; i++)
			row.count += h->buckets[i];
		row.overflow = end == HIST_BUCKETS - 1;
		if (row.count)
			out[n++] = row;
	}
	return n;
}

static void title(struct top_canvas *c, const char *text)
{
	top_canvas_line(c);
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_TITLE, text);
	top_canvas_fill(c, TOP_A_TITLE);
}

/* "p50 14.6µs ±0.4µs" (">17.2s" in the overflow bucket). */
static void quantile(struct top_canvas *c, const char *name, const struct latency_quantile *q)
{
	char v[TOP_NUM_MAX], e[TOP_NUM_MAX];

	top_canvas_printf(c, TOP_A_NORMAL, "  %s ", name);
	if (!q->valid) {
		top_canvas_put(c, TOP_A_DIM, TOP_NONE);
		return;
	}
	if (q->overflow) {
		top_duration((double)hist_bucket_lo(HIST_BUCKETS - 1), v);
		top_canvas_printf(c, TOP_A_WARN, ">%s", v);
		return;
	}
	top_duration(q->value_ns, v);
	top_duration(q->error_ns, e);
	top_canvas_printf(c, TOP_A_NORMAL, "%s %s%s", v, top_format_utf8() ? "\u00b1" : "+-", e);
}

static void stage_line(struct top_canvas *c, unsigned stage)
{
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_NORMAL, "stage:");
	for (unsigned k = 0; k < IPIV_LAT_UNMATCHED; k++) {
		top_canvas_put(c, TOP_A_NORMAL, " ");
		if (k == stage)
			top_canvas_printf(c, TOP_A_SORTED, "[%s]", top_lat_stage_name(k));
		else
			top_canvas_put(c, TOP_A_DIM, top_lat_stage_name(k));
	}
	top_canvas_put(c, TOP_A_DIM, "  (l: next stage)");
}

/* The stage's figures per path, case or halted flag: count, p50, p99. */
static void subs_line(struct top_canvas *c, const struct ipiv_vm_stats *vm, unsigned stage)
{
	bool any = false;

	for (size_t i = 0; i < vm->n_lat; i++) {
		const char *label, *value;
		struct latency_hist h;
		struct latency_quantile p50, p99;
		char a[TOP_NUM_MAX], b[TOP_NUM_MAX];

		if (vm->lat[i].kind != stage ||
		    (i && vm->lat[i - 1].kind == stage && vm->lat[i - 1].sub == vm->lat[i].sub))
			continue;
		if (!vm_latency(vm, stage, vm->lat[i].sub, &h))
			continue;
		value = ipiv_lat_sub_label(stage, vm->lat[i].sub, &label);
		p50 = latency_quantile(&h, 0.5);
		p99 = latency_quantile(&h, 0.99);
		top_duration(p50.valid ? p50.value_ns : -1, a);
		top_duration(p99.valid ? p99.value_ns : -1, b);
		top_canvas_line(c);
		top_canvas_printf(c, TOP_A_NORMAL, "  %s=%s: %llu, p50 ~%s, p99 ~%s", label, value,
				  (unsigned long long)h.count, a, b);
		any = true;
	}
	if (!any) {
		top_canvas_line(c);
		top_canvas_put(c, TOP_A_DIM, "  nothing observed in this stage yet");
	}
}

static void bars(struct top_canvas *c, const struct latency_hist *h)
{
	struct top_hist_row rows[TOP_HIST_ROWS];
	size_t n = top_hist_rows(h, TOP_HIST_ROWS, rows);
	uint64_t max = 0;
	int width = c->width - 34;

	if (width > 60)
		width = 60;
	if (width < 4)
		width = 4;
	for (size_t i = 0; i < n; i++)
		if (rows[i].count > max)
			max = rows[i].count;
	for (size_t i = 0; i < n; i++) {
		char edge[TOP_NUM_MAX], label[32], bar[60 * 4 + 1];
		int drawn;

		if (rows[i].overflow) {
			top_duration((double)rows[i].lo, edge);
			snprintf(label, sizeof(label), "%s %s",
				 top_format_utf8() ? "\u2265" : ">=", edge);
		} else {
			top_duration((double)rows[i].hi, edge);
			snprintf(label, sizeof(label), "%s %s",
				 top_format_utf8() ? "\u2264" : "<=", edge);
		}
		drawn = top_bar(rows[i].count, max, width, bar, sizeof(bar));
		top_canvas_line(c);
		top_canvas_put(c, TOP_A_NORMAL, "  ");
		top_canvas_fit(c, TOP_A_HEADER, label, 10, TOP_RIGHT);
		top_canvas_put(c, TOP_A_NORMAL, " ");
		top_canvas_put(c, top_heat_attr((double)rows[i].count, (double)max), bar);
		top_canvas_printf(c, TOP_A_NORMAL, "%*s %10llu %5.1f%%", width - drawn, "",
				  (unsigned long long)rows[i].count,
				  100.0 * rows[i].count / h->count);
	}
}

void top_latency_draw(struct top_canvas *c, const struct ipiv_vm_stats *vm, unsigned stage,
		      uint32_t recorded, const char *span)
{
	struct latency_hist h;
	char head[160], mean[TOP_NUM_MAX], unmatched[IPIV_UNM_COUNT * 48];
	size_t len = 0;
	bool any = false;

	snprintf(head, sizeof(head), "IPI latency histogram: %s (%s)", top_lat_stage_name(stage),
		 span);
	title(c, head);
	if (!vm->latency_enabled) {
		top_canvas_line(c);
		top_canvas_put(c, TOP_A_DIM,
			       "n/a: latency collection is off (ipivd --no-latency) or not in this "
			       "ipivd");
		return;
	}
	if (stage < 32 && !(recorded & (1u << stage))) {
		top_canvas_line(c);
		top_canvas_put(c, TOP_A_DIM,
			       "n/a: this ipivd does not record this stage (it costs a clock read "
			       "per accept: ipivd --collector.vm-histograms=all records it)");
		return;
	}
	stage_line(c, stage);
	if (vm_latency(vm, stage, IPIV_LAT_ANY_SUB, &h)) {
		struct latency_quantile q50 = latency_quantile(&h, 0.5),
					q90 = latency_quantile(&h, 0.9),
					q99 = latency_quantile(&h, 0.99);

		top_duration(latency_mean_ns(&h), mean);
		top_canvas_line(c);
		top_canvas_printf(c, TOP_A_NORMAL, "n %llu  mean %s", (unsigned long long)h.count,
				  mean);
		quantile(c, "p50", &q50);
		quantile(c, "p90", &q90);
		quantile(c, "p99", &q99);
		subs_line(c, vm, stage);
		bars(c, &h);
	} else {
		subs_line(c, vm, stage);
	}
	/* the reasons that happened; the others (there are IPIV_UNM_COUNT) are 0 */
	for (unsigned r = 0; r < IPIV_UNM_COUNT; r++) {
		if (!vm->lat_unmatched[r])
			continue;
		len += snprintf(unmatched + len, sizeof(unmatched) - len, "%s%s %llu",
				any ? ", " : "", ipiv_lat_unmatched_name(r),
				(unsigned long long)vm->lat_unmatched[r]);
		any = true;
	}
	top_wrapped(c, any ? TOP_A_NORMAL : TOP_A_DIM, "unmatched: ", 4,
		    any ? unmatched : "none (every delivery matched)");
}
