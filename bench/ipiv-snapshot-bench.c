// SPDX-License-Identifier: GPL-2.0
/*
 * What a collector snapshot costs as the latency map fills: loads ipiv's BPF object
 * (attached to nothing), fills the lat map with N histogram buckets of N/250 fake VMs (a
 * busy VM uses ~250), and prints, side by side, reading the map one key at a time
 * (get_next_key + lookup: 2 system calls per bucket, how the collector read it before)
 * against batch lookups (how it reads it now), and the whole collector_snapshot.
 *
 *   sudo .output/ipiv-snapshot-bench [N ...]     (default: 12500 50000 200000)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "ipiv.skel.h"

#define ROUNDS	       5
#define BUCKETS_PER_VM 250

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Reads every entry of fd one key at a time; returns how many. */
static long read_by_key(int fd)
{
	struct ipiv_lat_key key, *prev = NULL;
	struct ipiv_lat_value value;
	long n = 0;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		n += !bpf_map_lookup_elem(fd, &key, &value);
	}
	return n;
}

/* Reads every entry of fd in batches of 4096; returns how many, -1 on an error. */
static long read_by_batch(int fd)
{
	static struct ipiv_lat_key keys[4096];
	static struct ipiv_lat_value values[4096];
	__u64 batch = 0;
	bool started = false;
	long n = 0;

	for (;;) {
		__u32 count = 4096;
		int err = bpf_map_lookup_batch(fd, started ? &batch : NULL, &batch, keys, values,
					       &count, NULL);

		n += count;
		if (err == -ENOENT)
			return n;
		if (err)
			return -1;
		started = true;
	}
}

/* Median of ROUNDS timings of f(fd) in ms; *entries gets what the last one read. */
static double median_ms(long (*f)(int), int fd, long *entries)
{
	double t[ROUNDS];

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_ms();

		*entries = f(fd);
		t[r] = now_ms() - t0;
	}
	qsort(t, ROUNDS, sizeof(*t), cmp_double);
	return t[ROUNDS / 2];
}

static struct collector *bench_col;

static long snapshot_once(int unused)
{
	struct ipiv_snapshot *s;

	(void)unused;
	if (collector_snapshot(bench_col, &s))
		return -1;
	collector_snapshot_free(s);
	return 0;
}

static int fill(struct ipiv_bpf *skel, long n)
{
	int fd = bpf_map__fd(skel->maps.lat), vms = bpf_map__fd(skel->maps.vms);

	for (long i = 0; i < n; i++) {
		struct ipiv_lat_key k = {
			.vm = 0xffff888000000000ull + (i / BUCKETS_PER_VM) * 0x1000,
			.vcpu = IPIV_LAT_VM_WIDE,
			.kind = IPIV_LAT_SEND_EOI,
			.sub = 1,
			.bucket = i % BUCKETS_PER_VM,
		};
		struct ipiv_lat_value v = {.count = 1, .sum_ns = 1000};

		if (i % BUCKETS_PER_VM == 0) {
			struct ipiv_vm vm = {.tgid = 1};

			if (bpf_map_update_elem(vms, &k.vm, &vm, BPF_ANY))
				return -errno;
		}
		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			return -errno;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const long defaults[] = {12500, 50000, 200000};
	int n_sizes = argc > 1 ? argc - 1 : 3;

	long sizes[64];

	if (n_sizes > 64) {
		fprintf(stderr, "ipiv-snapshot-bench: at most 64 sizes\n");
		return 2;
	}
	for (int a = 0; a < n_sizes; a++) {
		char *end = NULL;

		sizes[a] = argc > 1 ? strtol(argv[a + 1], &end, 10) : defaults[a];
		if (sizes[a] <= 0 || sizes[a] > IPIV_MAX_LAT || (end && *end)) {
			fprintf(stderr, "ipiv-snapshot-bench: %s: buckets must be 1..%d\n",
				argv[a + 1], IPIV_MAX_LAT);
			return 2;
		}
	}
	printf("%10s %8s %14s %14s %8s %16s\n", "buckets", "VMs", "by key, ms", "batch, ms",
	       "ratio", "snapshot, ms");
	for (int a = 0; a < n_sizes; a++) {
		struct collector_opts opts = {.no_tracepoints = true};
		long n = sizes[a], by_key, by_batch;
		double t_key, t_batch, t_snap;
		int err, fd;

		err = collector_open(&bench_col, &opts);
		if (err) {
			fprintf(stderr, "ipiv-snapshot-bench: cannot load ipiv's BPF object: %s\n",
				strerror(-err));
			return 1;
		}
		err = fill(collector_skel(bench_col), n);
		if (err) {
			fprintf(stderr, "ipiv-snapshot-bench: filling the lat map: %s\n",
				strerror(-err));
			return 1;
		}
		fd = bpf_map__fd(collector_skel(bench_col)->maps.lat);
		t_key = median_ms(read_by_key, fd, &by_key);
		t_batch = median_ms(read_by_batch, fd, &by_batch);
		t_snap = median_ms(snapshot_once, fd, &(long){0});
		if (by_key != n || by_batch != n) {
			fprintf(stderr, "ipiv-snapshot-bench: read %ld and %ld of %ld buckets\n",
				by_key, by_batch, n);
			return 1;
		}
		printf("%10ld %8ld %14.1f %14.1f %7.1fx %16.1f\n", n,
		       (n + BUCKETS_PER_VM - 1) / BUCKETS_PER_VM, t_key, t_batch, t_key / t_batch,
		       t_snap);
		collector_close(bench_col);
	}
	return 0;
}
