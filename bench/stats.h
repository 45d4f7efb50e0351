/* ipivbench: summary statistics (mean, median, min, max, sample stddev) of the per-run
 * cycles, as the seed's table reports them. Pure: no I/O. */
#ifndef IPIV_BENCH_STATS_H
#define IPIV_BENCH_STATS_H

#include "result.h"

/* Summarises v[0..n-1] into *out without modifying v. The median of an even count is the
 * mean of the two middle values; stddev is the sample (n - 1) deviation, 0 for n == 1.
 * Returns 0, -EINVAL for n == 0 or a non-finite value, -ENOMEM. */
int bench_stats_compute(const double *v, unsigned n, struct bench_stats *out);

#endif
