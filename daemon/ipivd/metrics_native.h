/* The BPF latency histograms (include/hist.h) as Prometheus native histograms, for the
 * protobuf exposition. Pure: no kernel, no I/O. */
#ifndef IPIV_METRICS_NATIVE_H
#define IPIV_METRICS_NATIVE_H

#include <stdint.h>

#include "expo.h"
#include "latency.h"

/*
 * Schema 4: 16 buckets per power of two, the resolution of hist.h. hist.h's buckets cannot
 * map exactly onto any native schema: theirs are linear within a power of two of
 * nanoseconds, native boundaries are powers of 2^(1/16) of seconds, and 1 ns is no power of
 * two of a second, so not even the powers of two line up. Each hist.h bucket [lo, hi] goes
 * whole into the native bucket holding its midpoint, which keeps every count integer and
 * bounds the error: a native quantile is within a factor METRICS_NATIVE_MAX_RATIO of the
 * true one (docs/metrics.md). Bucket 0 ([0, 63] ns) is the zero bucket; the open-ended
 * last bucket (>= 2^34 ns) goes where its lower edge maps, so like le="+Inf" it says only
 * "at least 17.2 s".
 */
#define METRICS_NATIVE_SCHEMA	 4
/* The largest ratio between a value of a hist.h bucket and a value of the native bucket it
 * goes into, over every bucket (test_metrics computes it): 1.0722, rounded up. At most
 * 2^(1/16) * 33/32 = 1.0769 by construction: a native bucket's ratio, times a midpoint
 * over its bucket's edge (a hist.h bucket is at most 1/16 of its lower edge wide). */
#define METRICS_NATIVE_MAX_RATIO 1.0723

struct metrics_native {
	int32_t index[HIST_BUCKETS];
	uint64_t count[HIST_BUCKETS];
	struct expo_native native; /* points into index and count */
};

/* The native bucket (of METRICS_NATIVE_SCHEMA) that hist.h bucket b (1 <= b < HIST_BUCKETS)
 * goes into. */
int32_t metrics_native_index(uint32_t b);

/* h's observations as native buckets, in out->native. */
void metrics_native_from_hist(const struct latency_hist *h, struct metrics_native *out);

#endif
