/* ipivtop's batch output: text tables, CSV rows and JSON lines of rates and totals per VM. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "batch.h"
#include "format.h"
#include "table.h"

void top_csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* The row's findings as rule ids ("logical_dest_mode targets_halted"), "none" when there are
 * none, "" when not evaluated. */
static void finding_list(const struct top_vm_row *row, char *out, size_t size)
{
	size_t at = 0;

	out[0] = '\0';
	if (!row->has_findings)
		return;
	for (unsigned r = 0; r < DIAG_RULE_COUNT && at < size; r++)
		if (row->finding_rules & (1u << r))
			at += snprintf(out + at, size - at, "%s%s", at ? " " : "",
				       diag_rule_name(r));
	if (!at)
		snprintf(out, size, "none");
}

/* A row the record shows: through the filters, and with -z not idle over the interval. */
static bool shown(const struct top_model *m, const struct top_vm_row *row,
		  const struct top_batch_opts *o)
{
	return top_model_visible(m, row) && !(o->skip_zero && top_row_idle(row));
}

static void print_text(FILE *f, const struct top_batch_opts *o, unsigned iteration, double t,
		       const struct top_model *m)
{
	static const enum top_col cols[] = {TOP_COL_VCPUS,    TOP_COL_SENT,	TOP_COL_RECEIVED,
					    TOP_COL_ELIGIBLE, TOP_COL_FALLBACK, TOP_COL_PV,
					    TOP_COL_EXITS,    TOP_COL_HALTED,	TOP_COL_P50,
					    TOP_COL_P99,      TOP_COL_INHIBIT,	TOP_COL_FINDINGS};
	char cell[VM_NAME_MAX * 2], fitted[VM_NAME_MAX * 4];
	int name_w = TOP_NAME_MIN;

	for (size_t i = 0; i < m->n_rows; i++) {
		int w = top_display_width(m->rows[i].name);

		if (shown(m, &m->rows[i], o) && w > name_w)
			name_w = w < TOP_NAME_MAX ? w : TOP_NAME_MAX;
	}
	fprintf(f, "iteration %u at %.1fs", iteration, t);
	if (o->timestamp[0])
		fprintf(f, " (%s)", o->timestamp);
	fputc('\n', f);
	top_fit("VM", name_w, TOP_LEFT, fitted, sizeof(fitted));
	fputs(fitted, f);
	for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
		top_fit(top_columns[cols[c]].header, top_columns[cols[c]].width,
			top_columns[cols[c]].align, fitted, sizeof(fitted));
		fprintf(f, " %s", fitted);
	}
	fprintf(f, " %12s %12s\n", "SENT", "RECV");
	for (size_t i = 0; i < m->n_rows; i++) {
		const struct top_vm_row *row = &m->rows[i];

		if (!shown(m, row, o))
			continue;
		top_sanitize(row->name, cell, sizeof(cell));
		top_fit(cell, name_w, TOP_LEFT, fitted, sizeof(fitted));
		fputs(fitted, f);
		for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
			top_table_cell(row, cols[c], cell, sizeof(cell));
			if (row->gone && cols[c] == TOP_COL_INHIBIT)
				snprintf(cell, sizeof(cell), "gone");
			top_fit(cell, top_columns[cols[c]].width, top_columns[cols[c]].align,
				fitted, sizeof(fitted));
			fprintf(f, " %s", fitted);
		}
		fprintf(f, " %12llu %12llu\n", (unsigned long long)row->total.sent,
			(unsigned long long)row->total.received);
	}
	fputc('\n', f);
}

static void csv_num(FILE *f, bool valid, double v)
{
	if (valid)
		fprintf(f, ",%.6g", v);
	else
		fputc(',', f);
}

static void print_csv(FILE *f, const struct top_batch_opts *o, unsigned iteration, double t,
		      const struct top_model *m)
{
	char inh[256], rules[512];

	if (o->header && o->timestamp[0])
		fputs("timestamp,", f);
	if (o->header)
		fputs("iteration,time_s,vm,pid,vcpus,state,interval_s,sent_per_s,received_per_s,"
		      "wakeups_per_s,exits_per_s,eois_per_s,eligible_share,fallback_share,pv_share,"
		      "halted_share,sent_total,received_total,sent_eligible_total,wakeups_total,"
		      "exits_total,eois_total,inhibits,latency_p50_s,latency_p99_s,findings\n",
		      f);
	for (size_t i = 0; i < m->n_rows; i++) {
		const struct top_vm_row *row = &m->rows[i];
		const struct top_rates *r = &row->rate;
		double halted = top_halted_share(r);

		if (!shown(m, row, o))
			continue;
		if (o->timestamp[0])
			fprintf(f, "%s,", o->timestamp);
		fprintf(f, "%u,%.3f,", iteration, t);
		top_csv_field(f, row->name);
		fprintf(f, ",%d,%u,%s", row->pid, row->vcpus, row->gone ? "gone" : "running");
		csv_num(f, r->valid, r->seconds);
		csv_num(f, r->valid, r->sent);
		csv_num(f, r->valid, r->received);
		csv_num(f, r->valid, r->wakeups);
		csv_num(f, r->valid, r->exits);
		csv_num(f, r->valid, r->eois);
		csv_num(f, r->valid && r->sent_eligible >= 0, r->sent_eligible);
		csv_num(f, r->valid && r->sent_fallback >= 0, r->sent_fallback);
		csv_num(f, r->valid && r->sent_pv >= 0, r->sent_pv);
		csv_num(f, halted >= 0, halted);
		fprintf(f, ",%llu,%llu,%llu,%llu,%llu,%llu,", (unsigned long long)row->total.sent,
			(unsigned long long)row->total.received,
			(unsigned long long)row->total.sent_accel_eligible,
			(unsigned long long)row->total.wakeups,
			(unsigned long long)row->total.exits, (unsigned long long)row->total.eois);
		if (row->inhibits_known) {
			ipiv_inhibit_list(row->inhibit_names, row->inhibits, " ", inh, sizeof(inh));
			top_csv_field(f, inh[0] ? inh : "none");
		}
		csv_num(f, row->latency.p50.valid, row->latency.p50.value_ns / 1e9);
		csv_num(f, row->latency.p99.valid, row->latency.p99.value_ns / 1e9);
		fputc(',', f);
		finding_list(row, rules, sizeof(rules));
		top_csv_field(f, rules);
		fputc('\n', f);
	}
}

static json_t *num_or_null(bool valid, double v)
{
	return valid ? json_real(v) : json_null();
}

static json_t *quantile_json(const struct latency_quantile *q)
{
	if (!q->valid)
		return json_null();
	if (q->overflow)
		return json_pack("{s:f, s:n, s:b}", "value_ns", q->value_ns, "error_ns", "overflow",
				 1);
	return json_pack("{s:f, s:f}", "value_ns", q->value_ns, "error_ns", q->error_ns);
}

/* {"send_to_eoi": {"count", "mean_ns", "p50", "p99"}}, null without observations. */
static json_t *latency_json(const struct api_latency *l)
{
	if (!l->known)
		return json_null();
	return json_pack("{s:{s:I, s:f, s:o, s:o}}", "send_to_eoi", "count", (json_int_t)l->count,
			 "mean_ns", l->mean_ns, "p50", quantile_json(&l->p50), "p99",
			 quantile_json(&l->p99));
}

/* Rule ids of the active findings, null when not evaluated. */
static json_t *findings_json(const struct top_vm_row *row)
{
	json_t *arr;

	if (!row->has_findings)
		return json_null();
	arr = json_array();
	for (unsigned r = 0; r < DIAG_RULE_COUNT; r++)
		if (row->finding_rules & (1u << r))
			json_array_append_new(arr, json_string(diag_rule_name(r)));
	return arr;
}

static json_t *vm_json(const struct top_vm_row *row)
{
	const struct top_rates *r = &row->rate;
	double halted = top_halted_share(r);
	json_t *o = json_object(), *rates = json_null(), *inh = json_null();

	if (r->valid) {
		rates = json_object();
		json_object_set_new(rates, "interval_seconds", json_real(r->seconds));
		json_object_set_new(rates, "sent", json_real(r->sent));
		json_object_set_new(rates, "received", json_real(r->received));
		json_object_set_new(rates, "wakeups", json_real(r->wakeups));
		json_object_set_new(rates, "exits", json_real(r->exits));
		json_object_set_new(rates, "eois", json_real(r->eois));
		json_object_set_new(rates, "eligible_share",
				    num_or_null(r->sent_eligible >= 0, r->sent_eligible));
		json_object_set_new(rates, "fallback_share",
				    num_or_null(r->sent_fallback >= 0, r->sent_fallback));
		json_object_set_new(rates, "pv_share", num_or_null(r->sent_pv >= 0, r->sent_pv));
		json_object_set_new(rates, "halted_share", num_or_null(halted >= 0, halted));
	}
	if (row->inhibits_known) {
		inh = json_array();
		for (unsigned b = 0; b < IPIV_INHIBIT_COUNT; b++)
			if (row->inhibits & (1ull << b))
				json_array_append_new(
					inh, json_string(ipiv_inhibit_name(row->inhibit_names, b)));
	}
	json_object_set_new(o, "name", json_string(row->name));
	json_object_set_new(o, "pid", json_integer(row->pid));
	json_object_set_new(o, "vcpus", json_integer(row->vcpus));
	json_object_set_new(o, "gone", json_boolean(row->gone));
	json_object_set_new(o, "rates", rates);
	json_object_set_new(
		o, "totals",
		json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "sent",
			  (json_int_t)row->total.sent, "received", (json_int_t)row->total.received,
			  "sent_accel_eligible", (json_int_t)row->total.sent_accel_eligible,
			  "sent_fallback", (json_int_t)top_counts_fallback(&row->total), "sent_pv",
			  (json_int_t)top_counts_pv(&row->total), "wakeups",
			  (json_int_t)row->total.wakeups, "exits", (json_int_t)row->total.exits));
	json_object_set_new(o, "apicv_inhibits", inh);
	json_object_set_new(o, "latency", latency_json(&row->latency));
	json_object_set_new(o, "findings", findings_json(row));
	return o;
}

static int print_json(FILE *f, const struct top_batch_opts *o, unsigned iteration, double t,
		      const struct top_model *m)
{
	json_t *vms = json_array(), *doc;
	int r;

	for (size_t i = 0; i < m->n_rows; i++)
		if (shown(m, &m->rows[i], o))
			json_array_append_new(vms, vm_json(&m->rows[i]));
	doc = json_pack("{s:I, s:f, s:o}", "iteration", (json_int_t)iteration, "time_seconds", t,
			"vms", vms);
	if (!doc)
		return -ENOMEM;
	if (o->timestamp[0])
		json_object_set_new(doc, "timestamp", json_string(o->timestamp));
	r = json_dumpf(doc, f, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
	json_decref(doc);
	fputc('\n', f);
	return r ? -EIO : 0;
}

bool top_row_idle(const struct top_vm_row *row)
{
	const struct ipiv_counts *d = &row->rate.delta;

	if (row->gone)
		return true;
	return row->rate.valid && !d->sent && !d->received && !d->eois && !d->wakeups && !d->exits;
}

int top_batch_print(FILE *f, enum top_batch_format fmt, unsigned iteration, double t,
		    const struct top_model *m)
{
	struct top_batch_opts o = {.header = iteration == 1};

	return top_batch_write(f, fmt, &o, iteration, t, m);
}

int top_batch_write(FILE *f, enum top_batch_format fmt, const struct top_batch_opts *o,
		    unsigned iteration, double t, const struct top_model *m)
{
	int r = 0;

	switch (fmt) {
	case TOP_BATCH_TEXT: print_text(f, o, iteration, t, m); break;
	case TOP_BATCH_CSV: print_csv(f, o, iteration, t, m); break;
	case TOP_BATCH_JSON: r = print_json(f, o, iteration, t, m); break;
	}
	if (fflush(f) || ferror(f))
		return -EIO;
	return r;
}
