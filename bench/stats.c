/* ipivbench: summary statistics of the per-run cycles. The input is never reordered:
 * the median is taken from a sorted copy. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

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
	for (i = 0; i < n; i++)
		if (!isfinite(v[i]))
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
