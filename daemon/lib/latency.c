/* Latency histograms in user space: merging, Prometheus edges and bucket-based quantiles. */
#include <math.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "latency.h"

void latency_add(struct latency_hist *h, uint64_t ns)
{
	h->buckets[hist_bucket(ns)]++;
	h->count++;
	h->sum_ns += ns;
}

void latency_merge(struct latency_hist *a, const struct latency_hist *b)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		a->buckets[i] += b->buckets[i];
	a->count += b->count;
	a->sum_ns += b->sum_ns;
}

struct latency_quantile latency_quantile(const struct latency_hist *h, double q)
{
	struct latency_quantile r = {.q = q};
	uint64_t rank, seen = 0;

	if (!h->count || !(q > 0) || q > 1)
		return r;
	/* nearest rank: the smallest value with at least ceil(q * n) observations <= it */
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank == 0)
		rank = 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen < rank)
			continue;
		r.valid = true;
		if (b == HIST_BUCKETS - 1) {
			r.overflow = true;
			r.value_ns = (double)hist_bucket_lo(b);
			r.error_ns = INFINITY;
		} else {
			double lo = (double)hist_bucket_lo(b), hi = (double)hist_bucket_hi(b);

			r.value_ns = (lo + hi) / 2;
			r.error_ns = (hi - lo) / 2;
		}
		break;
	}
	return r;
}

static double le_seconds[HIST_BUCKETS - 1];
static pthread_once_t le_once = PTHREAD_ONCE_INIT;

static void le_init(void)
{
	for (unsigned b = 0; b < HIST_BUCKETS - 1; b++)
		le_seconds[b] = (double)hist_bucket_hi(b) / 1e9;
}

const double *latency_le_seconds(void)
{
	pthread_once(&le_once, le_init);
	return le_seconds;
}

double latency_mean_ns(const struct latency_hist *h)
{
	return h->count ? (double)h->sum_ns / (double)h->count : 0;
}

static const char *const layout_names[LATENCY_LAYOUT_COUNT] = {"coarse", "octave", "fine"};

int latency_layout_parse(const char *name, enum latency_layout *out)
{
	for (unsigned i = 0; i < LATENCY_LAYOUT_COUNT; i++) {
		if (name && !strcmp(name, layout_names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *latency_layout_name(enum latency_layout layout)
{
	return layout < LATENCY_LAYOUT_COUNT ? layout_names[layout] : "invalid";
}

/* Per layout: the hist.h bucket whose upper edge is each bound. */
static unsigned layout_bucket[LATENCY_LAYOUT_COUNT][HIST_BUCKETS - 1];
static double layout_le[LATENCY_LAYOUT_COUNT][HIST_BUCKETS - 1];
static size_t layout_n[LATENCY_LAYOUT_COUNT];
static pthread_once_t layout_once = PTHREAD_ONCE_INIT;

/* The bucket that ends an octave: its upper edge is 2^shift - 1 ns. */
static unsigned octave_end(unsigned shift)
{
	return shift == HIST_MIN_SHIFT ? 0 : (shift - HIST_MIN_SHIFT) * HIST_SUB;
}

static void layout_add(enum latency_layout l, unsigned b)
{
	layout_bucket[l][layout_n[l]] = b;
	layout_le[l][layout_n[l]++] = (double)hist_bucket_hi(b) / 1e9;
}

/* The coarse layout's last bound, 2^28 ns (268 ms): an IPI that takes longer is pathological
 * whatever the exact figure, so it goes to +Inf, and each classic histogram costs 3 series
 * fewer than with bounds up to 2^34 ns (the series budget, docs/metrics.md). octave and fine
 * keep the whole range, and native histograms full resolution. */
#define COARSE_MAX_SHIFT 28

static void layout_init(void)
{
	for (unsigned b = 0; b < HIST_BUCKETS - 1; b++)
		layout_add(LATENCY_LAYOUT_FINE, b);
	for (unsigned shift = HIST_MIN_SHIFT; shift <= HIST_MAX_SHIFT; shift++) {
		layout_add(LATENCY_LAYOUT_OCTAVE, octave_end(shift));
		if (shift >= 10 && shift <= COARSE_MAX_SHIFT && shift % 2 == 0)
			layout_add(LATENCY_LAYOUT_COARSE, octave_end(shift));
	}
}

size_t latency_layout_bounds(enum latency_layout layout, const double **le)
{
	pthread_once(&layout_once, layout_init);
	if (layout >= LATENCY_LAYOUT_COUNT)
		layout = LATENCY_LAYOUT_COARSE;
	*le = layout_le[layout];
	return layout_n[layout];
}

void latency_fold(const struct latency_hist *h, enum latency_layout layout, uint64_t *counts)
{
	const double *le;
	size_t n = latency_layout_bounds(layout, &le), i = 0;

	if (layout >= LATENCY_LAYOUT_COUNT)
		layout = LATENCY_LAYOUT_COARSE;
	memset(counts, 0, (n + 1) * sizeof(*counts));
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		while (i < n && b > layout_bucket[layout][i])
			i++;
		counts[i] += h->buckets[b];
	}
}
