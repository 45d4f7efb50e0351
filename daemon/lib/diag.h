/* Diagnosis rules: pure functions of the host's acceleration state, one VM's counters over a
 * window (two snapshots) and optional latency figures, giving findings with evidence and a
 * remedy. Thresholds are a named table settable from --diag.<name>=value flags. */
#ifndef IPIV_DIAG_H
#define IPIV_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "accel.h"
#include "collector.h"

enum diag_severity {
	DIAG_INFO = 0,
	DIAG_WARNING,
	DIAG_CRITICAL,
};

/* Rules by stable id. Host rules look at the host only; the others at one VM, but
 * apicv_inhibited is also the host's, for the reasons every VM shares. */
enum diag_rule_id {
	DIAG_RULE_ACCEL_DISABLED_IN_MODULE, /* host: the CPU can, the module does not */
	DIAG_RULE_ACCEL_UNAVAILABLE,	    /* host: no IPIv/AVIC in this CPU or backend */
	DIAG_HOST_RULE_COUNT,
	DIAG_RULE_APICV_INHIBITED = DIAG_HOST_RULE_COUNT,
	DIAG_RULE_LOGICAL_DEST_MODE,
	DIAG_RULE_SHORTHAND_BROADCAST,
	DIAG_RULE_TARGETS_HALTED,
	DIAG_RULE_TARGETS_PREEMPTED,
	DIAG_RULE_AVIC_INCOMPLETE,
	DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH,
	DIAG_RULE_SPECIAL_DELIVERY,
	DIAG_RULE_ELIGIBLE_IPIS_EXITING,
	DIAG_RULE_COUNT,
};

/* One number (or word) a rule used. */
struct diag_evidence {
	char name[32];
	char text[96];	/* as shown: "0.42", "1234", "x2apic_phys" */
	bool is_number; /* JSON writes value, not text */
	double value;
};

#define DIAG_MAX_EVIDENCE 14

struct diag_finding {
	enum diag_rule_id rule;
	enum diag_severity severity;
	char title[200];
	struct diag_evidence evidence[DIAG_MAX_EVIDENCE];
	size_t n_evidence;
	char remedy[640];
	uint64_t since_ns; /* taken_ns of the first evaluation that had it (0: not tracked) */
};

/* A rule that could not be evaluated and what it needs. */
struct diag_skip {
	enum diag_rule_id rule;
	const char *needs; /* static */
};

/* Everything rules said about one subject (the host or one VM); no allocation. */
struct diag_result {
	struct diag_finding findings[DIAG_RULE_COUNT];
	size_t n_findings;
	struct diag_skip skipped[DIAG_RULE_COUNT];
	size_t n_skipped;
	/* What the VM's window held, so that a rule that stayed silent can be told from one
	 * that had too little to go on (the thresholds' minimums apply to these). */
	uint64_t window_ipis_sent, window_received;
};

/*
 * Latency figures from the latency work (issue 5), each optional. Medians in nanoseconds over
 * the same window as the counters; samples is how many observations the median is from.
 */
struct diag_figure {
	bool known;
	double value;
	uint64_t samples;
};

struct diag_latency {
	/* Sender's exit cost (kvm_exit to kvm_entry) of IPIs that went through each path. For
	 * the fallback rule, X2APIC_MSR may be a host-wide figure of the software fastpath
	 * (another VM's, or ipivbench's) when this VM takes no MSR exits. */
	struct diag_figure exit_ns[IPIV_PATH_COUNT];
	/* Those of X2APIC_MSR that KVM's exit fastpath sent (where its fexit attaches): the
	 * fallback rule's reference when known, as it is what an eligible IPI costs without
	 * IPIv. */
	struct diag_figure exit_fastpath_ns;
	struct diag_figure delivery_ns;	       /* ICR write to interrupt injection on the target */
	struct diag_figure halt_ns;	       /* how long a target had been halted when woken */
	struct diag_figure wakeup_ns;	       /* kick/wake to the target running again */
	struct diag_figure preempted_share;    /* IPIs whose target was runnable, not running */
	struct diag_figure preempted_delay_ns; /* their wait until the target ran */
};

/* Thresholds; see diag_threshold_defs for names, defaults and meaning. */
struct diag_thresholds {
	uint64_t min_ipis;
	double logical_share;
	double shorthand_share;
	uint64_t min_received;
	double halted_wakeup_ratio;
	uint64_t min_latency_samples;
	double preempted_share;
	double preempted_share_critical;
	uint64_t min_avic_incomplete;
	double avic_incomplete_share;
	double fallback_slowdown;
	uint64_t min_special;
	double special_share;
	double eligible_exiting_share;
};

enum diag_threshold_type {
	DIAG_TH_COUNT,	/* integer >= 1 */
	DIAG_TH_SHARE,	/* 0 < x <= 1 */
	DIAG_TH_FACTOR, /* x >= 1 */
};

struct diag_threshold_def {
	const char *name; /* flag: --diag.<name>=value */
	enum diag_threshold_type type;
	size_t offset; /* in struct diag_thresholds */
	const char *def;
	const char *help;
};

extern const struct diag_threshold_def diag_threshold_defs[];
extern const size_t diag_n_thresholds;

void diag_thresholds_default(struct diag_thresholds *th);

/*
 * Sets one threshold from "--diag.NAME=VALUE", "diag.NAME=VALUE" or "NAME=VALUE". Returns 0;
 * -ENOENT for an unknown name, -EINVAL for a malformed or out-of-range value; then err (if
 * not NULL) holds one line saying which and why. th is unchanged on error.
 */
int diag_threshold_parse(struct diag_thresholds *th, const char *arg, char *err, size_t errlen);
/* Same with the name (no prefix) and value apart, for getopt callers. */
int diag_threshold_set(struct diag_thresholds *th, const char *name, const char *value, char *err,
		       size_t errlen);
/* One line per threshold: "  --diag.NAME=VALUE  help (default D)". */
void diag_thresholds_usage(FILE *f);

/* One VM over a window. prev is the same VM in the previous snapshot; NULL means counters
 * since ipivd first saw the VM (a one-shot report). */
struct diag_vm_input {
	const struct ipiv_vm_stats *cur;
	const struct ipiv_vm_stats *prev;
	double window_seconds;		    /* 0: unknown, rates are not shown */
	const struct diag_latency *latency; /* NULL: no latency data */
	/* the kernel's inhibit reason names (the snapshot's); NULL: the built-in ones */
	const struct ipiv_inhibit_names *inhibit_names;
};

/* Host rules. Appends to out (which the caller zeroes). */
void diag_evaluate_host(const struct accel_state *host, const struct diag_thresholds *th,
			struct diag_result *out);
/* VM rules. host may be NULL (unknown). Appends to out (which the caller zeroes). */
void diag_evaluate_vm(const struct accel_state *host, const struct diag_vm_input *in,
		      const struct diag_thresholds *th, struct diag_result *out);

/*
 * The inhibit reasons of a VM's bitmap that hold for every VM of the host: "disabled" (KVM
 * sets it on each VM while APICv is off in the module), and on a host whose CPU has no
 * APICv/AVIC every reason, since nothing a VM lifts would accelerate it. host may be NULL.
 * The VM rule apicv_inhibited speaks of the other reasons only; the host's own
 * apicv_inhibited finding (diag_evaluate_host_inhibits) of these, once for all VMs.
 */
uint64_t diag_host_wide_inhibits(const struct accel_state *host, uint64_t inhibits);

/* The host-wide inhibits of a snapshot's VMs (diag_host_wide_inhibits of each known bitmap). */
struct diag_host_inhibits {
	size_t vms;	  /* VMs with a host-wide reason set */
	uint64_t reasons; /* those reasons, over the VMs */
	/* the kernel's inhibit reason names (the snapshot's); NULL: the built-in ones */
	const struct ipiv_inhibit_names *inhibit_names;
};

/* The host's apicv_inhibited finding: one for every VM that has host-wide reasons (info on a
 * host without APICv/AVIC, a warning when the module turned it off). Appends to out. */
void diag_evaluate_host_inhibits(const struct accel_state *host,
				 const struct diag_host_inhibits *in, struct diag_result *out);

const char *diag_rule_name(enum diag_rule_id rule);   /* "apicv_inhibited", ... */
const char *diag_severity_name(enum diag_severity s); /* "info", "warning", "critical" */

#endif /* IPIV_DIAG_H */
