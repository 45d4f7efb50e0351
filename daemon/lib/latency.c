/* Latency histograms in user space: merging, Prometheus edges and bucket-based quantiles. */
#include <math.h>
#include <pthread.h>

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

bool latency_export_range(const struct latency_hist *h, unsigned *first, unsigned *n)
{
	int lo = -1, hi = -1;

	for (unsigned b = 0; b < HIST_BUCKETS - 1; b++)
		if (h->buckets[b]) {
			if (lo < 0)
				lo = b;
			hi = b;
		}
	if (lo < 0)
		return false;
	*first = lo;
	*n = hi - lo + 1;
	return true;
}
