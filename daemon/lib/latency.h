/* Latency histograms in user space: the log-linear buckets of include/hist.h summed from
 * BPF, their Prometheus edges, and percentiles with the error the bucket width allows. */
#ifndef IPIV_LATENCY_H
#define IPIV_LATENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

struct latency_hist {
	uint64_t buckets[HIST_BUCKETS]; /* per bucket, not cumulative */
	uint64_t count;			/* sum of buckets */
	uint64_t sum_ns;		/* exact sum of the observed values */
};

struct latency_quantile {
	double q;	 /* 0.5, 0.9, 0.99 */
	bool valid;	 /* false when the histogram is empty */
	double value_ns; /* midpoint of the bucket holding the q-th observation */
	double error_ns; /* half the bucket width: the true quantile is within +- this */
	bool overflow;	 /* the quantile lies in the open-ended last bucket */
};

/* Adds one observation (for tests and user-space merges). */
void latency_add(struct latency_hist *h, uint64_t ns);

/* Adds b into a (bucket by bucket). */
void latency_merge(struct latency_hist *a, const struct latency_hist *b);

/* The q-quantile (0 < q <= 1) by the nearest-rank method over buckets. */
struct latency_quantile latency_quantile(const struct latency_hist *h, double q);

/* Upper bucket edges in seconds for Prometheus (le), HIST_BUCKETS - 1 finite edges: the
 * last bucket is +Inf. A value equal to an edge belongs to that bucket. */
const double *latency_le_seconds(void);

/* The buckets worth exporting: from the first to the last non-empty finite bucket. Counts
 * only grow, so this range only widens over time and Prometheus keeps seeing the same le
 * series; the buckets outside it hold nothing that the ones inside and +Inf do not say.
 * Returns false when no finite bucket has an observation. */
bool latency_export_range(const struct latency_hist *h, unsigned *first, unsigned *n);

/* Mean in ns, 0 when empty. */
double latency_mean_ns(const struct latency_hist *h);

#endif
