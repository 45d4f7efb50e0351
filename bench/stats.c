/* ipivbench: summary statistics of the per-run cycles, and the Mann-Whitney U test of two
 * sets of runs. The input is never reordered: both work on sorted copies. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static bool all_finite(const double *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return false;
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int bench_stats_compute(const double *v, unsigned n, struct bench_stats *out)
{
	double *sorted, sum = 0.0, sq = 0.0;
	unsigned i;

	if (!v || !out || n == 0)
		return -EINVAL;
	/* NaN has no place in an order: the median of a sample holding one is undefined. */
	if (!all_finite(v, n))
		return -EINVAL;

	sorted = malloc(sizeof(*sorted) * n);
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, v, sizeof(*sorted) * n);
	qsort(sorted, n, sizeof(*sorted), cmp_double);

	for (i = 0; i < n; i++)
		sum += v[i];
	out->mean = sum / n;
	/* Two passes: summing squared deviations from the mean avoids the cancellation of
	 * sum(x^2) - n*mean^2 on values as large and as close as cycle counts. */
	for (i = 0; i < n; i++)
		sq += (v[i] - out->mean) * (v[i] - out->mean);
	out->stddev = n > 1 ? sqrt(sq / (n - 1)) : 0.0;
	out->min = sorted[0];
	out->max = sorted[n - 1];
	out->median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;

	free(sorted);
	return 0;
}

/* One run of either sample, for ranking the two together. */
struct ranked_run {
	double cycles;
	bool in_a;
};

static int cmp_ranked_run(const void *a, const void *b)
{
	return cmp_double(&((const struct ranked_run *)a)->cycles,
			  &((const struct ranked_run *)b)->cycles);
}

/* C(n, k) in double: exact while it fits in 53 bits, +inf past DBL_MAX. */
static double choose(unsigned n, unsigned k)
{
	double c = 1.0;
	unsigned i;

	if (k > n)
		return 0.0;
	if (k > n - k)
		k = n - k;
	for (i = 1; i <= k; i++)
		c = c * (n - k + i) / i;
	return c;
}

double bench_utest_min_p(unsigned na, unsigned nb)
{
	double p = 2.0 / choose(na + nb, na);

	return p < 1.0 ? p : 1.0;
}

/*
 * The exact null distribution of the rank sum of the m runs of one side among the n runs
 * of both, every C(n, m) choice of which runs are that side's being equally likely. A tie
 * group of t runs at 1-based ranks lo + 1 .. hi gives each the mid-rank (lo + 1 + hi) / 2,
 * so sums are kept doubled to stay integers. ways[j][s] counts the choices of j runs among
 * the groups seen so far whose doubled rank sum is s; a group adds k of its runs in C(t, k)
 * ways. Stores the two tails at the observed doubled sum in *le and *ge.
 */
static int exact_tails(const struct ranked_run *runs, unsigned n, unsigned m,
		       unsigned long observed2, double *le, double *ge)
{
	/* the largest doubled sum: the m top ranks, 2 x (n + ... + n - m + 1) */
	unsigned long max2 = (unsigned long)m * (2 * n - m + 1), s;
	size_t width = max2 + 1;
	unsigned lo, hi, j, k, t;
	double *ways, total, below = 0.0, above = 0.0;

	ways = calloc((size_t)(m + 1) * width, sizeof(*ways));
	if (!ways)
		return -ENOMEM;
	ways[0] = 1.0;
	for (lo = 0; lo < n; lo = hi) {
		unsigned long rank2;

		for (hi = lo + 1; hi < n && runs[hi].cycles == runs[lo].cycles; hi++)
			;
		t = hi - lo;
		rank2 = lo + 1 + hi;
		/* descending j: rows j - k < j still hold the counts before this group */
		for (j = m; j >= 1; j--) {
			double *row = ways + (size_t)j * width;

			for (k = 1; k <= t && k <= j; k++) {
				const double *from = ways + (size_t)(j - k) * width;
				unsigned long shift = k * rank2;
				double c = choose(t, k);

				for (s = shift; s <= max2; s++)
					if (from[s - shift] != 0.0)
						row[s] += from[s - shift] * c;
			}
		}
	}
	total = choose(n, m);
	for (s = 0; s <= max2; s++) {
		double w = ways[(size_t)m * width + s];

		if (s <= observed2)
			below += w;
		if (s >= observed2)
			above += w;
	}
	free(ways);
	*le = below / total;
	*ge = above / total;
	return 0;
}

/* Phi(z), the standard normal distribution function. */
static double normal_cdf(double z)
{
	return 0.5 * erfc(-z / M_SQRT2);
}

int bench_utest(const double *a, unsigned na, const double *b, unsigned nb, struct bench_utest *out)
{
	unsigned n = na + nb, i, lo, hi, m;
	struct ranked_run *runs;
	unsigned long small_sum2 = 0;
	double ties = 0.0, rank_sum_a = 0.0, le, ge;
	bool small_is_a = na <= nb;
	int err = 0;

	if (!a || !b || !out || na == 0 || nb == 0)
		return -EINVAL;
	if (!all_finite(a, na) || !all_finite(b, nb))
		return -EINVAL;

	runs = malloc(sizeof(*runs) * n);
	if (!runs)
		return -ENOMEM;
	for (i = 0; i < na; i++)
		runs[i] = (struct ranked_run){.cycles = a[i], .in_a = true};
	for (i = 0; i < nb; i++)
		runs[na + i] = (struct ranked_run){.cycles = b[i], .in_a = false};
	qsort(runs, n, sizeof(*runs), cmp_ranked_run);

	/* mid-ranks: a tie group at 1-based ranks lo + 1 .. hi shares (lo + 1 + hi) / 2 */
	for (lo = 0; lo < n; lo = hi) {
		double t;

		for (hi = lo + 1; hi < n && runs[hi].cycles == runs[lo].cycles; hi++)
			;
		t = hi - lo;
		ties += t * t * t - t;
		for (i = lo; i < hi; i++) {
			if (runs[i].in_a)
				rank_sum_a += (lo + 1 + hi) / 2.0;
			if (runs[i].in_a == small_is_a)
				small_sum2 += lo + 1 + hi;
		}
	}
	out->u = rank_sum_a - (double)na * (na + 1) / 2.0;

	if (na <= BENCH_UTEST_EXACT_LIMIT && nb <= BENCH_UTEST_EXACT_LIMIT) {
		m = small_is_a ? na : nb;
		err = exact_tails(runs, n, m, small_sum2, &le, &ge);
		if (!err) {
			out->p = 2.0 * (le < ge ? le : ge);
			out->exact = true;
		}
	} else {
		/* Var(U) = na nb / 12 x ((n + 1) - sum(t^3 - t) / (n (n - 1))) */
		double mean = (double)na * nb / 2.0;
		double sd =
			sqrt((double)na * nb / 12.0 * ((n + 1.0) - ties / ((double)n * (n - 1.0))));
		double d = out->u - mean;

		/* continuity correction, towards the mean (none at the mean itself) */
		d -= d > 0 ? 0.5 : d < 0 ? -0.5 : 0.0;
		out->p = sd == 0.0 ? 1.0 : 2.0 * normal_cdf(-fabs(d / sd));
		out->exact = false;
	}
	if (!err && out->p > 1.0)
		out->p = 1.0;
	free(runs);
	return err;
}
