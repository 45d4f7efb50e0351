/* ipivd's metric set: turns a collector snapshot and the VMs' names into Prometheus
 * families (names, units, labels). Pure: no kernel, no I/O. */
#ifndef IPIV_METRICS_H
#define IPIV_METRICS_H

#include <stdbool.h>
#include "collector.h"
#include "expo.h"
#include "latency.h"

/* --collector.vm-histograms: which latency histogram families a VM's series carry. The
 * same in every exposition format; the JSON API and diagnosis keep every family. */
enum metrics_vm_histograms {
	/* ipiv_ipi_send_to_eoi_seconds only, per VM and path (the end-to-end figure) */
	METRICS_VM_HISTOGRAMS_EOI,
	METRICS_VM_HISTOGRAMS_ALL, /* the five families; --collector.per-vcpu implies it */
};

/* "eoi" or "all": 0, or -EINVAL for anything else. */
int metrics_vm_histograms_parse(const char *name, enum metrics_vm_histograms *out);

struct metrics_opts {
	bool per_vcpu; /* per-vCPU series and the source->target matrix */
	/* which histogram families a VM's series carry; per_vcpu implies ALL */
	enum metrics_vm_histograms vm_histograms;
	const char *version; /* for ipiv_build_info */
	/* the histograms' buckets: the same complete set on every series (default coarse) */
	enum latency_layout buckets;
	/* The previous scrape of the endpoint, whole: reading the maps, naming, rendering.
	 * This one cannot be timed or sized while it is being written. */
	bool have_last_scrape;
	uint64_t last_scrape_bytes;
	/* the key of the VMs' ids (api_vm_id): ipiv_vm_info's vm_id is the API's "id" */
	uint64_t id_key;
};

/* Writes every family. names[i] is the (unique, sanitized) name of snap->vms[i].
 * scrape_seconds is how long the previous scrape took, whole (opts->have_last_scrape).
 * Returns 0 or a negative errno from the writer. */
int metrics_write(struct expo *e, const struct ipiv_snapshot *snap, const char *const *names,
		  const struct metrics_opts *opts, double scrape_seconds);

/* Room for any exit reason label: the longest name in the kernel's tables, or a number. */
#define METRICS_EXIT_REASON_LEN 32

/* Label value for an exit reason: the kernel's name for it (<asm/vmx.h>, <asm/svm.h>: what
 * kvm_stat and perf print) in lower case, else the number. Written into buf, which must hold
 * METRICS_EXIT_REASON_LEN bytes; returns buf. */
const char *metrics_exit_reason(uint32_t isa, uint32_t reason, char *buf, size_t len);

#endif
