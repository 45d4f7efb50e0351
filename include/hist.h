/* SPDX-License-Identifier: GPL-2.0 */
/* Log-linear latency histogram buckets shared by BPF and user space: bucket arithmetic
 * only (the maps that hold histograms are in latency_maps.h). 16 sub-buckets per power of
 * two from 64 ns to 2^34 ns (~17 s), so a bucket is at most 1/16 (6.25 %) of its lower edge
 * wide. Values are integer nanoseconds; bucket b holds [lo(b), hi(b)], both inclusive, so
 * Prometheus' le of bucket b is hi(b) and a value equal to le lands in b. */
#ifndef IPIV_HIST_H
#define IPIV_HIST_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HIST_SUB_BITS  4
#define HIST_SUB       (1u << HIST_SUB_BITS) /* sub-buckets per power of two */
#define HIST_MIN_SHIFT 6		     /* 64 ns: everything below shares bucket 0 */
#define HIST_MAX_SHIFT 34 /* 2^34 ns ~ 17.2 s: everything at or above, last bucket */
/* bucket 0: [0, 63]; then 16 per octave for octaves 6..33; then one overflow bucket */
#define HIST_BUCKETS   (1 + (HIST_MAX_SHIFT - HIST_MIN_SHIFT) * HIST_SUB + 1)

/* Index of the highest set bit of v (v != 0), without loops: BPF has no bit-scan. */
static inline __u32 hist_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

static inline __u32 hist_bucket(__u64 ns)
{
	__u32 e, sub;

	if (ns < (1ull << HIST_MIN_SHIFT))
		return 0;
	if (ns >= (1ull << HIST_MAX_SHIFT))
		return HIST_BUCKETS - 1;
	e = hist_log2(ns);
	sub = (ns >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return 1 + (e - HIST_MIN_SHIFT) * HIST_SUB + sub;
}

/* Smallest and largest value of bucket b (hi of the last bucket is ~0). */
static inline __u64 hist_bucket_lo(__u32 b)
{
	__u32 e, sub;

	if (b == 0)
		return 0;
	if (b >= HIST_BUCKETS - 1)
		return 1ull << HIST_MAX_SHIFT;
	e = (b - 1) / HIST_SUB + HIST_MIN_SHIFT;
	sub = (b - 1) % HIST_SUB;
	return (1ull << e) + ((__u64)sub << (e - HIST_SUB_BITS));
}

static inline __u64 hist_bucket_hi(__u32 b)
{
	if (b >= HIST_BUCKETS - 1)
		return ~0ull;
	return hist_bucket_lo(b + 1) - 1;
}

#endif /* IPIV_HIST_H */
