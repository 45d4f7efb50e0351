// SPDX-License-Identifier: GPL-2.0
/*
 * The map filler of bench/scale.sh: gives the VMs a running ipivd already watches more vCPUs,
 * in that ipivd's own BPF maps, so its real collector and HTTP path serve VMs wider than the
 * ones the host can run. It finds the maps the process PID holds (/proc/PID/fdinfo map ids,
 * then bpf_map_get_fd_by_id and bpf_obj_get_info_by_fd by map name), picks the VMs of its
 * vms map whose VMM was started with `--name PREFIX...` (ipivbench, QEMU -name), and adds,
 * for vCPUs 0..V-1 of each, what an IPI target leaves there: an accepted-interrupt counter
 * (one per vCPU: the vCPU row of the snapshot and of the per-vCPU series), a matrix cell from
 * vCPU 0, and with per-vCPU latency (ipivd --collector.per-vcpu) a few buckets of the
 * send->EOI, accept->running and halt histograms of that vCPU. Keys already there (the real
 * vCPUs' own) are left alone (BPF_NOEXIST). vCPUs are filled in order across all VMs
 * (vCPU 0 of every VM, then vCPU 1, ...), so a map that fills truncates every VM alike; how
 * far each map got is printed.
 *
 * Fake VM keys would not do: ipivd reclaims a VM that is in its maps but has no kvm-vm file
 * in any process (collector_poll: missing from reclaim_after = 2 discoveries in a row), so
 * fake VMs would vanish within two polls and then show as exited for the retention window.
 * The VMs here are real and alive, so nothing filled is reclaimed while they run.
 *
 *   sudo .output/ipiv-scale-fill --pid $(pidof ipivd) --vcpus 64 --match scale-
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "hist.h"
#include "ipiv.h"

#define MAX_FILL_VCPUS 1024

struct map {
	const char *name;
	int fd;
	struct bpf_map_info info;
	long before, added, existed, full; /* entries: at start, added, already there, refused */
	int full_err;
};

enum { M_VMS, M_COUNTERS, M_MATRIX, M_LAT, M_COUNT };

static struct map maps[M_COUNT] = {
	[M_VMS] = {.name = "vms", .fd = -1},
	[M_COUNTERS] = {.name = "counters", .fd = -1},
	[M_MATRIX] = {.name = "matrix", .fd = -1},
	[M_LAT] = {.name = "lat", .fd = -1},
};

struct vm {
	__u64 key;
	__u32 tgid;
	char name[64];
	long suffix; /* the number after the prefix, for a stable order; -1 if none */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ipiv-scale-fill --pid PID [--vcpus V] [--match PREFIX] [--lat MODE] "
		"[--dry-run]\n"
		"  --pid PID        the running ipivd whose maps to fill\n"
		"  --vcpus V        vCPUs 0..V-1 per VM (default 64)\n"
		"  --match PREFIX   VMs whose VMM has --name (or -name) starting with PREFIX "
		"(default scale-)\n"
		"  --lat MODE       per-vcpu, vm (no latency entries: VM-wide histograms do not\n"
		"                   grow with vCPUs) or auto (default: per-vcpu when PID runs\n"
		"                   with --collector.per-vcpu, and not with --no-latency)\n"
		"  --dry-run        find the maps and the VMs, print them, change nothing\n"
		"Needs root (CAP_BPF and CAP_SYS_ADMIN to open another process' maps).\n");
}

/* Reads /proc/pid/cmdline into buf (NUL-separated); returns its length, 0 if unreadable. */
static size_t read_cmdline(int pid, char *buf, size_t size)
{
	char path[64];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

/* Whether the NUL-separated command line holds the argument arg. */
static bool cmdline_has(const char *cmd, size_t len, const char *arg)
{
	for (size_t i = 0; i < len; i += strlen(cmd + i) + 1)
		if (!strcmp(cmd + i, arg))
			return true;
	return false;
}

/* The value of --name/-name (also --name=V) in the NUL-separated command line, or NULL. */
static const char *cmdline_name(const char *cmd, size_t len)
{
	const char *val = NULL;

	for (size_t i = 0; i < len; i += strlen(cmd + i) + 1) {
		const char *a = cmd + i;
		size_t next = i + strlen(a) + 1;

		if ((!strcmp(a, "--name") || !strcmp(a, "-name")) && next < len)
			val = cmd + next;
		else if (!strncmp(a, "--name=", 7))
			val = a + 7;
	}
	if (val && !strncmp(val, "guest=", 6)) /* QEMU's -name guest=NAME,... */
		val += 6;
	return val;
}

/* Opens the maps named in maps[] among those process pid holds. */
static int open_maps(int pid)
{
	char dir[64], path[320], line[128];
	struct dirent *d;
	DIR *fds;

	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", pid);
	fds = opendir(dir);
	if (!fds)
		return -errno;
	while ((d = readdir(fds))) {
		unsigned int id = 0;
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "map_id: %u", &id) == 1)
				break;
		fclose(f);
		if (!id)
			continue;
		int fd = bpf_map_get_fd_by_id(id);
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			close(fd);
			continue;
		}
		bool kept = false;

		for (int m = 0; m < M_COUNT; m++)
			if (maps[m].fd < 0 && !strcmp(info.name, maps[m].name)) {
				maps[m].fd = fd;
				maps[m].info = info;
				kept = true;
				break;
			}
		if (!kept)
			close(fd);
	}
	closedir(fds);
	return 0;
}

/* Entries of a hash map now (one walk of its keys). */
static long count_entries(int fd, size_t key_size)
{
	unsigned char key[64], next[64];
	bool have = false;
	long n = 0;

	while (!bpf_map_get_next_key(fd, have ? key : NULL, next)) {
		memcpy(key, next, key_size);
		have = true;
		n++;
	}
	return n;
}

static int vm_cmp(const void *a, const void *b)
{
	const struct vm *x = a, *y = b;

	if (x->suffix != y->suffix)
		return x->suffix < y->suffix ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The VMs of the vms map whose VMM's --name starts with prefix, sorted by name. */
static int find_vms(const char *prefix, struct vm **out, size_t *n_out)
{
	int fd = maps[M_VMS].fd;
	__u64 key, *prev = NULL;
	struct ipiv_vm value;
	static char cmd[128 * 1024];
	size_t n = 0, cap = 0;
	struct vm *vms = NULL;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		const char *name;
		size_t len;

		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &value) || !value.tgid)
			continue;
		len = read_cmdline((int)value.tgid, cmd, sizeof(cmd));
		name = cmdline_name(cmd, len);
		if (!name || strncmp(name, prefix, strlen(prefix)))
			continue;
		if (n == cap) {
			struct vm *grown = realloc(vms, (cap = cap ? 2 * cap : 256) * sizeof(*vms));

			if (!grown) {
				free(vms);
				return -ENOMEM;
			}
			vms = grown;
		}
		vms[n].key = key;
		vms[n].tgid = value.tgid;
		snprintf(vms[n].name, sizeof(vms[n].name), "%s", name);
		const char *s = name + strlen(prefix);

		vms[n].suffix = isdigit((unsigned char)*s) ? strtol(s, NULL, 10) : -1;
		n++;
	}
	if (n)
		qsort(vms, n, sizeof(*vms), vm_cmp);
	*out = vms;
	*n_out = n;
	return 0;
}

/* Adds key to map m unless it is there; counts the outcome. Returns false once m is full. */
static bool add(struct map *m, const void *key, const void *value)
{
	if (m->full)
		return false;
	if (!bpf_map_update_elem(m->fd, key, value, BPF_NOEXIST)) {
		m->added++;
		return true;
	}
	if (errno == EEXIST) {
		m->existed++;
		return true;
	}
	m->full++; /* E2BIG: max_entries reached; ENOMEM: no element could be allocated */
	m->full_err = errno;
	return false;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"vcpus", required_argument, NULL, 'v'},
		{"match", required_argument, NULL, 'm'},
		{"lat", required_argument, NULL, 'l'},
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	const char *prefix = "scale-", *lat_mode = "auto";
	int pid = 0, vcpus = 64, opt, ncpus, err;
	bool dry_run = false, lat_per_vcpu;
	static char cmd[64 * 1024];
	struct vm *vms;
	size_t n_vms, len;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': pid = atoi(optarg); break;
		case 'v': vcpus = atoi(optarg); break;
		case 'm': prefix = optarg; break;
		case 'l': lat_mode = optarg; break;
		case 'n': dry_run = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (pid <= 0 || vcpus < 1 || vcpus > MAX_FILL_VCPUS || optind < argc ||
	    (strcmp(lat_mode, "auto") && strcmp(lat_mode, "per-vcpu") && strcmp(lat_mode, "vm"))) {
		usage(stderr);
		return 2;
	}
	len = read_cmdline(pid, cmd, sizeof(cmd));
	if (!len) {
		fprintf(stderr, "ipiv-scale-fill: no process %d\n", pid);
		return 1;
	}
	if (!strcmp(lat_mode, "auto"))
		lat_per_vcpu = cmdline_has(cmd, len, "--collector.per-vcpu") &&
			       !cmdline_has(cmd, len, "--no-latency");
	else
		lat_per_vcpu = !strcmp(lat_mode, "per-vcpu");

	err = open_maps(pid);
	if (err) {
		fprintf(stderr, "ipiv-scale-fill: cannot read /proc/%d/fdinfo: %s\n", pid,
			strerror(-err));
		return 1;
	}
	for (int m = 0; m < M_COUNT; m++)
		if (maps[m].fd < 0) {
			fprintf(stderr,
				"ipiv-scale-fill: process %d holds no BPF map named %s (not ipivd, "
				"or "
				"not root)\n",
				pid, maps[m].name);
			return 1;
		}
	/* the same layout as this build's include/: another build's maps are not touched */
	if (maps[M_VMS].info.value_size != sizeof(struct ipiv_vm) ||
	    maps[M_COUNTERS].info.key_size != sizeof(struct ipiv_counter_key) ||
	    maps[M_MATRIX].info.key_size != sizeof(struct ipiv_matrix_key) ||
	    maps[M_LAT].info.key_size != sizeof(struct ipiv_lat_key) ||
	    maps[M_LAT].info.value_size != sizeof(struct ipiv_lat_value)) {
		fprintf(stderr,
			"ipiv-scale-fill: the maps of process %d have another layout than "
			"this build's include/ipiv.h and hist.h\n",
			pid);
		return 1;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		fprintf(stderr, "ipiv-scale-fill: cannot count possible CPUs\n");
		return 1;
	}
	err = find_vms(prefix, &vms, &n_vms);
	if (err || !n_vms) {
		fprintf(stderr, "ipiv-scale-fill: %s\n",
			err ? strerror(-err) : "no VM of that ipivd has a name with that prefix");
		return 1;
	}
	maps[M_COUNTERS].before =
		count_entries(maps[M_COUNTERS].fd, sizeof(struct ipiv_counter_key));
	maps[M_MATRIX].before = count_entries(maps[M_MATRIX].fd, sizeof(struct ipiv_matrix_key));
	maps[M_LAT].before = count_entries(maps[M_LAT].fd, sizeof(struct ipiv_lat_key));

	printf("ipiv-scale-fill: ipivd %d, %zu VMs named %s* (%s .. %s), vCPUs 0..%d, latency "
	       "entries %s\n",
	       pid, n_vms, prefix, vms[0].name, vms[n_vms - 1].name, vcpus - 1,
	       lat_per_vcpu ? "per vCPU" : "none (VM-wide histograms)");
	if (dry_run) {
		for (int m = M_COUNTERS; m < M_COUNT; m++)
			printf("  %-9s id %u: %ld of %u entries\n", maps[m].name, maps[m].info.id,
			       maps[m].before, maps[m].info.max_entries);
		return 0;
	}

	/* per-CPU values: the count on CPU 0 */
	__u64 *percpu = calloc(ncpus, sizeof(*percpu));
	long rows_wanted = (long)n_vms * vcpus;

	if (!percpu)
		return 1;
	percpu[0] = 3;
	/* buckets of a ~25 us send->EOI, a ~20 us wakeup and a ~1 ms halt, each two wide */
	const struct {
		__u16 kind, sub;
		__u64 ns;
	} lat_fill[] = {
		{IPIV_LAT_SEND_EOI, IPIV_PATH_X2APIC_MSR, 25000},
		{IPIV_LAT_ACCEPT_RUN, IPIV_LAT_CASE_HALTED, 20000},
		{IPIV_LAT_HALT, 1, 1000000},
	};

	for (int v = 0; v < vcpus; v++)
		for (size_t i = 0; i < n_vms; i++) {
			struct ipiv_counter_key ck = {
				.vm = vms[i].key,
				.vcpu = (__u32)v,
				.kind = IPIV_CNT_RECV,
				.sub = 0, /* fixed delivery */
			};
			struct ipiv_matrix_key mk = {
				.vm = vms[i].key, .src_vcpu = 0, .dst_vcpu = v};

			add(&maps[M_COUNTERS], &ck, percpu);
			if (v)
				add(&maps[M_MATRIX], &mk, percpu);
			if (!lat_per_vcpu)
				continue;
			for (size_t k = 0; k < sizeof(lat_fill) / sizeof(lat_fill[0]); k++)
				for (__u32 b = 0; b < 2; b++) {
					struct ipiv_lat_key lk = {
						.vm = vms[i].key,
						.vcpu = (__u32)v,
						.kind = lat_fill[k].kind,
						.sub = lat_fill[k].sub,
						.bucket = hist_bucket(lat_fill[k].ns) + b,
					};
					struct ipiv_lat_value lv = {.count = 2,
								    .sum_ns = 2 * lat_fill[k].ns};

					add(&maps[M_LAT], &lk, &lv);
				}
		}

	for (int m = M_COUNTERS; m < M_COUNT; m++) {
		long now =
			count_entries(maps[m].fd, m == M_COUNTERS ? sizeof(struct ipiv_counter_key)
						  : m == M_MATRIX ? sizeof(struct ipiv_matrix_key)
								  : sizeof(struct ipiv_lat_key));

		printf("  %-9s %6ld -> %6ld of %6u entries: +%ld, %ld already there%s%s\n",
		       maps[m].name, maps[m].before, now, maps[m].info.max_entries, maps[m].added,
		       maps[m].existed, maps[m].full ? ", FULL: " : "",
		       maps[m].full ? strerror(maps[m].full_err) : "");
	}
	/* vCPU rows: the (vm, vcpu) pairs of the filled VMs with a counter key (each fill key
	 * is one vCPU's; real vCPUs may have several keys, counted once) */
	long rows = maps[M_COUNTERS].added + maps[M_COUNTERS].existed;

	printf("  vCPU rows with a counter (filled or real): %ld of %ld wanted (%zu VMs x %d)%s\n",
	       rows, rows_wanted, n_vms, vcpus,
	       rows < rows_wanted ? ": the counters map is full, the rest have none" : "");
	free(percpu);
	free(vms);
	return 0;
}
