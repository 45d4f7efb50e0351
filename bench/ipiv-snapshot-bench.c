// SPDX-License-Identifier: GPL-2.0
/*
 * What a collector snapshot costs as the latency maps fill: loads ipiv's BPF object
 * (attached to nothing) and gives N/250 fake VMs 250 non-empty histogram buckets each (what
 * a busy VM uses) in 4 VM-wide histograms, two ways, and prints side by side:
 * - as buckets of the lat hash, how VMs without a dense slot kept them before lat_hseries:
 *   reading that map one key at a time (get_next_key + lookup: 2 system calls per bucket,
 *   how the collector read it first), in batches, and the whole collector_snapshot;
 * - as 4 lat_hseries elements per VM, how they keep them now: the whole collector_snapshot.
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
#define SERIES_PER_VM  4

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

/* The fake VMs' buckets: bucket i is VM i / BUCKETS_PER_VM's, in one of SERIES_PER_VM
 * send->EOI histograms (paths 0..3). */
static uint64_t fake_vm(long i)
{
	return 0xffff888000000000ull + (i / BUCKETS_PER_VM) * 0x1000;
}

static int add_vm(struct ipiv_bpf *skel, long i)
{
	struct ipiv_vm vm = {.tgid = 1};
	uint64_t key = fake_vm(i);

	if (i % BUCKETS_PER_VM)
		return 0;
	return bpf_map_update_elem(bpf_map__fd(skel->maps.vms), &key, &vm, BPF_ANY) ? -errno : 0;
}

/* n buckets in the lat hash. */
static int fill_buckets(struct ipiv_bpf *skel, long n)
{
	int fd = bpf_map__fd(skel->maps.lat);

	for (long i = 0; i < n; i++) {
		long b = i % BUCKETS_PER_VM;
		struct ipiv_lat_key k = {
			.vm = fake_vm(i),
			.vcpu = IPIV_LAT_VM_WIDE,
			.kind = IPIV_LAT_SEND_EOI,
			.sub = b % SERIES_PER_VM,
			.bucket = b,
		};
		struct ipiv_lat_value v = {.count = 1, .sum_ns = 1000};

		if (add_vm(skel, i) || bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* The same buckets as SERIES_PER_VM lat_hseries elements per VM. */
static int fill_series(struct ipiv_bpf *skel, long n)
{
	int fd = bpf_map__fd(skel->maps.lat_hseries);
	struct ipiv_lat_series *h = calloc(SERIES_PER_VM, sizeof(*h));
	int err = 0;

	if (!h)
		return -ENOMEM;
	for (long i = 0; i < n && !err; i++) {
		long b = i % BUCKETS_PER_VM;
		struct ipiv_lat_series *s = &h[b % SERIES_PER_VM];

		err = add_vm(skel, i);
		s->group[b / IPIV_LAT_GROUP].buckets[b % IPIV_LAT_GROUP] = 1;
		s->group[b / IPIV_LAT_GROUP].sum_ns += 1000;
		if (b != BUCKETS_PER_VM - 1 && i != n - 1)
			continue;
		for (uint32_t k = 0; k < SERIES_PER_VM && !err; k++) {
			struct ipiv_lat_series_key key = {.vm = fake_vm(i),
							  .series = IPIV_LAT_SERIES_SEND_EOI + k};

			err = bpf_map_update_elem(fd, &key, &h[k], BPF_ANY) ? -errno : 0;
		}
		memset(h, 0, SERIES_PER_VM * sizeof(*h));
	}
	free(h);
	return err;
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
	printf("%10s %8s %12s %12s %14s %14s %8s\n", "buckets", "VMs", "by key, ms", "batch, ms",
	       "snapshot, ms", "series snap ms", "ratio");
	for (int a = 0; a < n_sizes; a++) {
		struct collector_opts opts = {.no_tracepoints = true};
		long n = sizes[a], by_key, by_batch;
		double t_key, t_batch, t_snap, t_series;
		int err, fd;

		for (int layout = 0; layout < 2; layout++) {
			err = collector_open(&bench_col, &opts);
			if (err) {
				fprintf(stderr,
					"ipiv-snapshot-bench: cannot load ipiv's BPF object: %s\n",
					strerror(-err));
				return 1;
			}
			err = layout ? fill_series(collector_skel(bench_col), n)
				     : fill_buckets(collector_skel(bench_col), n);
			if (err) {
				fprintf(stderr, "ipiv-snapshot-bench: filling the %s map: %s\n",
					layout ? "lat_hseries" : "lat", strerror(-err));
				return 1;
			}
			fd = bpf_map__fd(collector_skel(bench_col)->maps.lat);
			if (layout) {
				t_series = median_ms(snapshot_once, fd, &(long){0});
			} else {
				t_key = median_ms(read_by_key, fd, &by_key);
				t_batch = median_ms(read_by_batch, fd, &by_batch);
				t_snap = median_ms(snapshot_once, fd, &(long){0});
				if (by_key != n || by_batch != n) {
					fprintf(stderr,
						"ipiv-snapshot-bench: read %ld and %ld of %ld "
						"buckets\n",
						by_key, by_batch, n);
					return 1;
				}
			}
			collector_close(bench_col);
		}
		printf("%10ld %8ld %12.1f %12.1f %14.1f %14.1f %7.1fx\n", n,
		       (n + BUCKETS_PER_VM - 1) / BUCKETS_PER_VM, t_key, t_batch, t_snap, t_series,
		       t_snap / t_series);
	}
	return 0;
}
