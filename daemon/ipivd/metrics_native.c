/* hist.h's log-linear buckets into native histogram buckets of schema 4: the mapping and
 * its error are described in metrics_native.h. */
#include <math.h>

#include "metrics_native.h"

int32_t metrics_native_index(uint32_t b)
{
	/* the last bucket has no upper edge: its lower edge stands for it */
	double mid_ns = b >= HIST_BUCKETS - 1
				? (double)hist_bucket_lo(b)
				: ((double)hist_bucket_lo(b) + (double)hist_bucket_hi(b)) / 2;

	/* bucket i holds (2^((i-1)/16), 2^(i/16)]; a midpoint (x.5 ns) is never on an edge */
	return (int32_t)ceil(log2(mid_ns / 1e9) * (1 << METRICS_NATIVE_SCHEMA));
}

void metrics_native_from_hist(const struct latency_hist *h, struct metrics_native *out)
{
	size_t n = 0;

	out->native = (struct expo_native){
		.schema = METRICS_NATIVE_SCHEMA,
		.zero_threshold = hist_bucket_hi(0) / 1e9,
		.zero_count = h->buckets[0],
		.index = out->index,
		.count = out->count,
	};
	for (uint32_t b = 1; b < HIST_BUCKETS; b++) {
		int32_t i;

		if (!h->buckets[b])
			continue;
		i = metrics_native_index(b);
		/* the mapping ascends: two hist.h buckets in one native bucket are neighbours */
		if (n && out->index[n - 1] == i) {
			out->count[n - 1] += h->buckets[b];
			continue;
		}
		out->index[n] = i;
		out->count[n++] = h->buckets[b];
	}
	out->native.n = n;
}
