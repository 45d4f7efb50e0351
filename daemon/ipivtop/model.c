/* ipivtop's view model: rates between samples, totals since a baseline, gone VMs, sort, filter. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static uint64_t delta_u64(uint64_t prev, uint64_t cur)
{
	return cur >= prev ? cur - prev : cur;
}

void top_counts_delta(const struct ipiv_counts *prev, const struct ipiv_counts *cur,
		      struct ipiv_counts *d)
{
	for (unsigned i = 0; i < IPIV_PATH_COUNT; i++)
		d->sent_by_path[i] = delta_u64(prev->sent_by_path[i], cur->sent_by_path[i]);
	for (unsigned i = 0; i < ICR_DM_COUNT; i++)
		d->received_by_delivery[i] =
			delta_u64(prev->received_by_delivery[i], cur->received_by_delivery[i]);
	for (unsigned i = 0; i < IPIV_AVIC_CAUSE_COUNT; i++)
		d->avic_incomplete[i] =
			delta_u64(prev->avic_incomplete[i], cur->avic_incomplete[i]);
	d->sent = delta_u64(prev->sent, cur->sent);
	d->sent_accel_eligible = delta_u64(prev->sent_accel_eligible, cur->sent_accel_eligible);
	d->received = delta_u64(prev->received, cur->received);
	d->eois = delta_u64(prev->eois, cur->eois);
	d->wakeups = delta_u64(prev->wakeups, cur->wakeups);
	d->wakeups_halted = delta_u64(prev->wakeups_halted, cur->wakeups_halted);
	d->halt_ns = delta_u64(prev->halt_ns, cur->halt_ns);
	d->exits = delta_u64(prev->exits, cur->exits);
}

uint64_t top_counts_fallback(const struct ipiv_counts *c)
{
	return c->sent_by_path[IPIV_PATH_APIC_WRITE] + c->sent_by_path[IPIV_PATH_AVIC];
}

uint64_t top_counts_pv(const struct ipiv_counts *c)
{
	return c->sent_by_path[IPIV_PATH_PV_KVM] + c->sent_by_path[IPIV_PATH_PV_HYPERV];
}

void top_rates_compute(const struct ipiv_counts *prev, const struct ipiv_counts *cur,
		       double seconds, struct top_rates *r)
{
	struct ipiv_counts *d = &r->delta;
	double sent;

	memset(r, 0, sizeof(*r));
	if (!(seconds > 0))
		return;
	top_counts_delta(prev, cur, d);
	r->valid = true;
	r->seconds = seconds;
	r->sent = d->sent / seconds;
	r->received = d->received / seconds;
	r->eois = d->eois / seconds;
	r->wakeups = d->wakeups / seconds;
	r->exits = d->exits / seconds;
	sent = (double)d->sent;
	r->sent_eligible = sent ? d->sent_accel_eligible / sent : -1;
	r->sent_fallback = sent ? top_counts_fallback(d) / sent : -1;
	r->sent_pv = sent ? top_counts_pv(d) / sent : -1;
}

void top_hist_delta(const struct latency_hist *prev, const struct latency_hist *cur,
		    struct latency_hist *out)
{
	bool restarted = cur->count < prev->count || cur->sum_ns < prev->sum_ns;

	for (unsigned i = 0; i < HIST_BUCKETS && !restarted; i++)
		restarted = cur->buckets[i] < prev->buckets[i];
	if (restarted) {
		*out = *cur;
		return;
	}
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		out->buckets[i] = cur->buckets[i] - prev->buckets[i];
	out->count = cur->count - prev->count;
	out->sum_ns = cur->sum_ns - prev->sum_ns;
}

double top_halted_share(const struct top_rates *r)
{
	if (!r->valid || !r->delta.received)
		return -1;
	return (double)r->delta.wakeups / r->delta.received;
}

void top_model_init(struct top_model *m)
{
	memset(m, 0, sizeof(*m));
	m->sort = TOP_SORT_SENT;
}

void top_model_free(struct top_model *m)
{
	for (size_t i = 0; i < m->n_rows; i++)
		free(m->rows[i].lat_last);
	free(m->rows);
	if (m->has_filter)
		regfree(&m->filter);
	memset(m, 0, sizeof(*m));
}

static struct top_vm_row *find_row(struct top_model *m, uint64_t key)
{
	for (size_t i = 0; i < m->n_rows; i++)
		if (m->rows[i].key == key)
			return &m->rows[i];
	return NULL;
}

const struct top_vm_row *top_model_find(const struct top_model *m, uint64_t key)
{
	return find_row((struct top_model *)m, key);
}

const struct diag_vm_report *top_findings_for(const struct diag_report *r, const char *name)
{
	for (size_t i = 0; r && i < r->n_vms; i++)
		if (!strcmp(r->vms[i].name, name))
			return &r->vms[i];
	return NULL;
}

static void fill_findings(struct top_vm_row *row, const struct diag_report *findings)
{
	const struct diag_vm_report *vr = top_findings_for(findings, row->name);

	row->has_findings = vr != NULL;
	row->findings = 0;
	row->worst = DIAG_INFO;
	row->finding_rules = 0;
	for (size_t i = 0; vr && i < vr->result.n_findings; i++) {
		const struct diag_finding *f = &vr->result.findings[i];

		row->findings++;
		row->finding_rules |= 1u << f->rule;
		if (f->severity > row->worst)
			row->worst = f->severity;
	}
}

/* The table's latency: the interval's when this sample and the row's last one both have a
 * histogram, the figures since the collector started when the source has none. */
static int fill_latency(struct top_vm_row *row, const struct api_latency *latency,
			const struct top_lat_sample *hist, bool interval)
{
	struct latency_hist delta;

	memset(&row->latency, 0, sizeof(row->latency));
	if (!hist || !hist->known) {
		free(row->lat_last);
		row->lat_last = NULL;
		if (latency)
			row->latency = *latency;
		return 0;
	}
	if (row->lat_last && interval) {
		top_hist_delta(row->lat_last, &hist->hist, &delta);
		api_latency_from_hist(&delta, &row->latency);
	}
	if (!row->lat_last && !(row->lat_last = malloc(sizeof(*row->lat_last))))
		return -ENOMEM;
	*row->lat_last = hist->hist;
	return 0;
}

static int fill_row(struct top_vm_row *row, const struct ipiv_vm_stats *vm, const char *name,
		    const struct api_latency *latency, const struct top_lat_sample *hist,
		    const struct diag_report *findings)
{
	bool interval = !row->gone;

	row->pid = vm->pid;
	snprintf(row->name, sizeof(row->name), "%s", name);
	row->vcpus = vm->vcpu_count;
	row->inhibits_known = vm->inhibits_known;
	row->inhibits = vm->inhibits;
	row->gone = 0;
	fill_findings(row, findings);
	return fill_latency(row, latency, hist, interval);
}

int top_model_update(struct top_model *m, const struct ipiv_snapshot *snap,
		     const char (*names)[VM_NAME_MAX], const struct api_latency *latency,
		     const struct top_lat_sample *hists, const struct diag_report *findings)
{
	double seconds = m->samples ? (double)(snap->taken_ns - m->last_ns) / 1e9 : 0;
	bool *seen;
	size_t i, n_old = m->n_rows;
	int r = 0;

	seen = calloc(n_old + 1, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (i = 0; i < snap->n_vms; i++) {
		const struct ipiv_vm_stats *vm = &snap->vms[i];
		struct top_vm_row *row = find_row(m, vm->vm);

		if (!vm->alive)
			continue; /* exited, awaiting reclaim: treated as gone */
		if (row && (row->pid == vm->pid || !row->pid || !vm->pid)) {
			struct ipiv_counts d;

			seen[row - m->rows] = true;
			/* A counter that went backwards restarted: so does the baseline. */
			top_counts_delta(&row->last, &vm->counts, &d);
			if (vm->counts.sent < row->last.sent ||
			    vm->counts.received < row->last.received)
				memset(&row->base, 0, sizeof(row->base));
			top_rates_compute(&row->last, &vm->counts, row->gone ? 0 : seconds,
					  &row->rate);
			row->last = vm->counts;
			r = fill_row(row, vm, names[i], latency ? &latency[i] : NULL,
				     hists ? &hists[i] : NULL, findings);
		} else {
			if (row) { /* same key, another process: the old VM is gone */
				row->key = ~row->key;
				row->gone = row->gone ? row->gone : 1;
				free(row->lat_last);
				row->lat_last = NULL;
			}
			if (m->n_rows == m->cap_rows) {
				size_t cap = m->cap_rows ? m->cap_rows * 2 : 16;
				struct top_vm_row *rows = realloc(m->rows, cap * sizeof(*rows));

				if (!rows) {
					free(seen);
					return -ENOMEM;
				}
				m->rows = rows;
				m->cap_rows = cap;
			}
			row = &m->rows[m->n_rows++];
			memset(row, 0, sizeof(*row));
			row->key = vm->vm;
			row->last = vm->counts;
			r = fill_row(row, vm, names[i], latency ? &latency[i] : NULL,
				     hists ? &hists[i] : NULL, findings);
		}
		if (r) {
			free(seen);
			return r;
		}
	}
	/* Rows not seen this time are gone; after a few refreshes they go. */
	for (i = 0; i < n_old; i++)
		if (!seen[i]) {
			m->rows[i].gone++;
			memset(&m->rows[i].rate, 0, sizeof(m->rows[i].rate));
		}
	free(seen);
	for (i = 0; i < m->n_rows;)
		if (m->rows[i].gone > TOP_GONE_REFRESHES) {
			free(m->rows[i].lat_last);
			memmove(&m->rows[i], &m->rows[i + 1], (--m->n_rows - i) * sizeof(*m->rows));
		} else {
			i++;
		}
	m->inhibit_names = snap->inhibit_names;
	for (i = 0; i < m->n_rows; i++) {
		top_counts_delta(&m->rows[i].base, &m->rows[i].last, &m->rows[i].total);
		m->rows[i].inhibit_names = &m->inhibit_names;
	}
	m->last_ns = snap->taken_ns;
	m->samples++;
	m->lat_span = hists ? TOP_LAT_INTERVAL : TOP_LAT_LIFETIME;
	return 0;
}

void top_model_reset(struct top_model *m)
{
	m->reset_ns = m->last_ns;
	for (size_t i = 0; i < m->n_rows; i++) {
		m->rows[i].base = m->rows[i].last;
		memset(&m->rows[i].total, 0, sizeof(m->rows[i].total));
	}
}

int top_model_set_filter(struct top_model *m, const char *regex, char *err, size_t err_size)
{
	regex_t re;
	int r;

	if (!regex || !*regex) {
		if (m->has_filter)
			regfree(&m->filter);
		m->has_filter = false;
		m->filter_text[0] = '\0';
		return 0;
	}
	r = regcomp(&re, regex, REG_EXTENDED | REG_NOSUB);
	if (r) {
		regerror(r, &re, err, err_size);
		return -EINVAL;
	}
	if (m->has_filter)
		regfree(&m->filter);
	m->filter = re;
	m->has_filter = true;
	snprintf(m->filter_text, sizeof(m->filter_text), "%s", regex);
	return 0;
}

void top_model_set_pid(struct top_model *m, int32_t pid)
{
	m->filter_pid = pid > 0 ? pid : 0;
}

void top_model_set_guest(struct top_model *m, const char *name)
{
	snprintf(m->filter_guest, sizeof(m->filter_guest), "%s", name ? name : "");
}

void top_model_clear_filters(struct top_model *m)
{
	top_model_set_filter(m, NULL, NULL, 0);
	top_model_set_pid(m, 0);
	top_model_set_guest(m, NULL);
}

bool top_model_has_filters(const struct top_model *m)
{
	return m->has_filter || m->filter_pid || m->filter_guest[0];
}

bool top_model_visible_vm(const struct top_model *m, const char *name, int32_t pid)
{
	if (m->filter_pid && pid != m->filter_pid)
		return false;
	if (m->filter_guest[0] && strcmp(name, m->filter_guest))
		return false;
	return !m->has_filter || regexec(&m->filter, name, 0, NULL, 0) == 0;
}

bool top_model_visible(const struct top_model *m, const struct top_vm_row *row)
{
	return top_model_visible_vm(m, row->name, row->pid);
}

bool top_model_has_pid(const struct top_model *m, int32_t pid)
{
	for (size_t i = 0; i < m->n_rows; i++)
		if (!m->rows[i].gone && m->rows[i].pid == pid)
			return true;
	return false;
}

bool top_model_has_guest(const struct top_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_rows; i++)
		if (!m->rows[i].gone && !strcmp(m->rows[i].name, name))
			return true;
	return false;
}

/* The value a row sorts by; rows without rates get -1 so they go below zero rates. */
static double sort_value(const struct top_vm_row *r, enum top_sort_key key)
{
	const struct top_rates *rt = &r->rate;

	switch (key) {
	case TOP_SORT_VCPUS: return r->vcpus;
	case TOP_SORT_SENT: return rt->valid ? rt->sent : -1;
	case TOP_SORT_RECEIVED: return rt->valid ? rt->received : -1;
	case TOP_SORT_ELIGIBLE: return rt->valid ? rt->sent_eligible : -1;
	case TOP_SORT_FALLBACK: return rt->valid ? rt->sent_fallback : -1;
	case TOP_SORT_PV: return rt->valid ? rt->sent_pv : -1;
	case TOP_SORT_EXITS: return rt->valid ? rt->exits : -1;
	case TOP_SORT_HALTED: return top_halted_share(rt);
	case TOP_SORT_P50: return r->latency.p50.valid ? r->latency.p50.value_ns : -1;
	case TOP_SORT_P99: return r->latency.p99.valid ? r->latency.p99.value_ns : -1;
	case TOP_SORT_FINDINGS:
		/* the worst severity first, then how many */
		if (!r->has_findings)
			return -1;
		return r->findings ? (r->worst + 1) * 1000.0 + r->findings : 0;
	default: return 0;
	}
}

int top_row_cmp(const struct top_vm_row *a, const struct top_vm_row *b, enum top_sort_key key,
		bool ascending)
{
	int c = 0;

	if (!a->gone != !b->gone)
		return a->gone ? 1 : -1;
	if (key != TOP_SORT_NAME) {
		double va = sort_value(a, key), vb = sort_value(b, key);

		c = va < vb ? -1 : va > vb;
		if (!ascending)
			c = -c;
	} else {
		c = strcmp(a->name, b->name);
		if (!ascending)
			c = -c;
	}
	/* Ties: by name, then key, always in the same direction so rows do not jump. */
	if (!c)
		c = strcmp(a->name, b->name);
	if (!c)
		c = a->key < b->key ? -1 : a->key > b->key;
	return c;
}

static enum top_sort_key qsort_key;
static bool qsort_ascending;

static int qsort_cmp(const void *a, const void *b)
{
	return top_row_cmp(a, b, qsort_key, qsort_ascending);
}

void top_model_sort(struct top_model *m)
{
	qsort_key = m->sort;
	qsort_ascending = m->ascending;
	qsort(m->rows, m->n_rows, sizeof(*m->rows), qsort_cmp);
}
