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

/* The bucket layouts /metrics offers. Every series of a histogram family has every bucket
 * of the layout, so histograms sum across VMs, paths and hosts (sum by (le)). */
enum latency_layout {
	LATENCY_LAYOUT_COARSE, /* every power of 4 from 1 us to 268 ms, then +Inf: 10 bounds */
	LATENCY_LAYOUT_OCTAVE, /* every power of 2 from 64 ns to 17 s: 29 bounds */
	LATENCY_LAYOUT_FINE,   /* every bucket of hist.h: 449 bounds (6.25 % wide) */
	LATENCY_LAYOUT_COUNT,
};

/* "coarse", "octave" or "fine"; -EINVAL for anything else. */
int latency_layout_parse(const char *name, enum latency_layout *out);
const char *latency_layout_name(enum latency_layout layout);

/* The layout's upper bounds in seconds (le), ascending, and how many; +Inf is not among
 * them. Each is the upper edge of one hist.h bucket, so folding loses no observation. */
size_t latency_layout_bounds(enum latency_layout layout, const double **le);

/* h's observations per bucket of the layout: counts[i] in (le[i-1], le[i]] and
 * counts[n] above the last bound, for n = latency_layout_bounds(layout). */
void latency_fold(const struct latency_hist *h, enum latency_layout layout, uint64_t *counts);

/* Mean in ns, 0 when empty. */
double latency_mean_ns(const struct latency_hist *h);

#endif
