/* SPDX-License-Identifier: GPL-2.0 */
/* The collector's state, shared by its parts: collector.c (owns it: open, close),
 * probes.c (probe, load, attach), discovery.c (discovery, retire, reclaim) and snapshot.c
 * (maps to snapshot). Not for use outside them. */
#ifndef IPIV_COLLECTOR_PRIV_H
#define IPIV_COLLECTOR_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"

struct bpf_link;

/* A VM the collector knows from the maps, with how many polls it has been missing. */
struct vm_seen {
	uint64_t vm;
	unsigned int missing;
};

/* What the last discovery walk saw of one VM. */
struct vm_found {
	uint64_t vm;
	uint32_t tgid;	/* a process holding its VM file with the VM's mm */
	uint32_t vcpus; /* distinct kvm-vcpu:N files */
};

/* What the last discovery walk read of one vCPU (from its kvm-vcpu:N file). */
struct vcpu_found {
	uint64_t vm;
	uint32_t vcpu_id;
	uint32_t tid;	   /* its last KVM_RUN thread, 0 if none yet */
	uint8_t apicv;	   /* enum ipiv_apicv */
	uint8_t apic_mode; /* enum ipiv_apic_mode */
};

/* The keys retired VMs are shown under: a VM key (IPIV_VM_KEY) has the top bit only after
 * 32768 VMs at one address, each a generation of the last. */
#define IPIV_RETIRED_KEY (1ull << 63)

/* A reclaimed VM's final counts and when they stop being shown (CLOCK_MONOTONIC ns). */
struct retired_vm {
	struct ipiv_vm_stats stats;
	uint64_t until_ns;
};

struct collector {
	struct ipiv_bpf *skel;
	struct collector_opts opts;
	/* one of each per entry of probe_defs[] (probes.c), the last the discovery iterator */
	struct ipiv_probe *probes;
	struct bpf_link **links;
	size_t n_probes;
	struct bpf_link *threads_iter; /* ipiv_dump_threads: each vCPU thread and its cache */
	struct bpf_link *prune_iter;   /* ipiv_prune_threads: storage of reclaimed VMs' threads */
	int stats_fd;
	int ncpus;
	struct vm_seen *seen;
	size_t n_seen;
	struct vm_found *found; /* sorted by vm */
	size_t n_found;
	struct vcpu_found *found_vcpus; /* sorted by (vm, vcpu_id) */
	size_t n_found_vcpus;
	uint64_t vms_discovered;
	uint64_t vms_reclaimed;
	struct ipiv_counts gone; /* totals of every reclaimed VM */
	/* The host totals last given out, and what they keep of counts the maps lost since
	 * (host_totals_of) */
	struct ipiv_counts host_last, host_kept;
	struct retired_vm *retired; /* reclaimed VMs' final counts, oldest first */
	size_t n_retired;
	uint64_t n_retired_ever;
	/* the reclaimed VMs' host-wide histograms (ipiv_snapshot.host_lat) */
	struct ipiv_lat_hist *gone_lat;
	size_t n_gone_lat;
	uint64_t polls;
	int last_poll_err;
	/* the running kernel's inhibit reason names, copied into every snapshot */
	struct ipiv_inhibit_names inhibit_names;
};

/* probes.c */
/* Opens the object, probes what this kernel has (filling c->probes and c->inhibit_names)
 * and loads it, without the fexit programs if the kernel refuses them. Prints one line
 * naming what is missing when it fails. */
int collector_load(struct collector *c);
/* Attaches every probe that loaded (prints which failed); a required one failing fails. */
int collector_attach(struct collector *c);
/* Sends libbpf's messages to ipivd's log (log.h), at debug level. */
void collector_libbpf_log(void);

/* discovery.c */
/* The row of vm in rows (n of size bytes, sorted by a leading uint64_t vm), or NULL. */
void *find_by_vm(const void *rows, size_t n, size_t size, uint64_t vm);
uint64_t collector_now_ns(void);
/* The VMs that have state in any map or in a vCPU thread's cache (recs), sorted. */
int vms_in_maps(struct collector *c, const struct ipiv_thread_rec *recs, size_t n_recs,
		uint64_t **out, size_t *n_out);
/* Every vCPU thread with its identity and counter cache (task storage, via the iterator). */
int read_threads(struct collector *c, struct ipiv_thread_rec **recs, size_t *n);
struct vm_seen *seen_find(const struct collector *c, uint64_t vm);
const struct vm_found *found_find(const struct collector *c, uint64_t vm);

#endif /* IPIV_COLLECTOR_PRIV_H */
