/* ipivbench: summary statistics (mean, median, min, max, sample stddev) of the per-run
 * cycles, as the seed's table reports them, and the rank test that says whether two sets
 * of runs differ. Pure: no I/O. */
#ifndef IPIV_BENCH_STATS_H
#define IPIV_BENCH_STATS_H

#include <stdbool.h>

#include "result.h"

/* The significance level compare uses: a difference with p >= this prints as "~". */
#define BENCH_ALPHA 0.05

/* Samples up to this size on both sides get the exact distribution of the rank sum (ties
 * included); larger ones the normal approximation. Go's benchstat uses 50 without ties. */
#define BENCH_UTEST_EXACT_LIMIT 50

/* Summarises v[0..n-1] into *out without modifying v. The median of an even count is the
 * mean of the two middle values; stddev is the sample (n - 1) deviation, 0 for n == 1.
 * Returns 0, -EINVAL for n == 0 or a non-finite value, -ENOMEM. */
int bench_stats_compute(const double *v, unsigned n, struct bench_stats *out);

/* The two-sided Mann-Whitney U test (Wilcoxon rank-sum test) of two samples. */
struct bench_utest {
	/* U of a: pairs (a[i], b[j]) with a[i] > b[j], plus half the pairs that tie. 0 when
	 * every run of a is below every run of b, na x nb when every one is above. */
	double u;
	/* Two-sided p-value: the chance, if a and b came from the same distribution, of a
	 * rank sum at least this far into either tail (twice the smaller tail, at most 1). */
	double p;
	/* true: the exact permutation distribution of the rank sum, ties counted at their
	 * mid-rank (both sides at most BENCH_UTEST_EXACT_LIMIT); false: the normal
	 * approximation with tie and continuity correction, as Go's benchstat does. */
	bool exact;
};

/* Tests a[0..na-1] against b[0..nb-1]; neither is modified. Samples whose values are all
 * equal give p = 1. Returns 0, -EINVAL for an empty sample or a non-finite value, -ENOMEM. */
int bench_utest(const double *a, unsigned na, const double *b, unsigned nb,
		struct bench_utest *out);

/* The smallest p-value bench_utest can give samples of na and nb distinct values: one
 * sample entirely below the other, 2 / C(na + nb, na), at most 1. Above BENCH_ALPHA, no
 * difference between so few runs can ever be significant (3 + 3 runs: 0.1). */
double bench_utest_min_p(unsigned na, unsigned nb);

#endif
