/* ipivtop's view model: one row per VM built from successive snapshots, with rates between
 * the last two, totals since a baseline the user can reset, VMs that exited kept as "gone"
 * for a few refreshes, sorting and filtering. Pure: no terminal, no collector. */
#ifndef IPIV_TOP_MODEL_H
#define IPIV_TOP_MODEL_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api_parse.h"
#include "collector.h"
#include "diag_report.h"
#include "latency.h"
#include "naming.h"

/* Refreshes a VM that exited stays on screen, marked gone, before its row goes. */
#define TOP_GONE_REFRESHES 3

/* Per-second rates of one interval, derived from a delta of counts. */
struct top_rates {
	bool valid; /* false until two samples of the VM exist */
	double seconds;
	double sent, received, eois, wakeups, exits;
	/* Shares of the IPIs sent in the interval (fractions of delta.sent). */
	double sent_eligible, sent_fallback, sent_pv;
	struct ipiv_counts delta;
};

/* Counts that went backwards restarted from zero (ipivd restarted, a VM's entries were
 * reclaimed and the key reused): the delta of such a field is its new value. */
void top_counts_delta(const struct ipiv_counts *prev, const struct ipiv_counts *cur,
		      struct ipiv_counts *delta);
/* prev and cur of the same thing, seconds apart; seconds <= 0 gives invalid rates. */
void top_rates_compute(const struct ipiv_counts *prev, const struct ipiv_counts *cur,
		       double seconds, struct top_rates *out);
/* IPIs that took the exit IPIv/AVIC fall back to (APIC-write trap, AVIC incomplete IPI). */
uint64_t top_counts_fallback(const struct ipiv_counts *c);
/* PV IPIs (KVM and Hyper-V hypercalls). */
uint64_t top_counts_pv(const struct ipiv_counts *c);

/* One VM's send->EOI histogram (every path) in a sample, cumulative since the collector
 * started; known false when the source gave only figures (ipivd's VM list has no buckets). */
struct top_lat_sample {
	bool known;
	struct latency_hist hist;
};

/* What the table's P50/P99 cover. */
enum top_lat_span {
	TOP_LAT_INTERVAL, /* the refresh interval: the histogram's growth between two samples */
	TOP_LAT_LIFETIME, /* the collector's whole life (the source has no histograms) */
};

/* The bucket-wise growth of a histogram from prev to cur; a histogram that shrank restarted
 * (ipivd restarted, the VM's entries were reclaimed) and its growth is cur itself. */
void top_hist_delta(const struct latency_hist *prev, const struct latency_hist *cur,
		    struct latency_hist *out);

struct top_vm_row {
	uint64_t key; /* ipiv_vm_stats.vm */
	int32_t pid;
	char name[VM_NAME_MAX]; /* sanitised */
	uint32_t vcpus;
	unsigned gone;		 /* 0: present; else refreshes since it disappeared */
	struct ipiv_counts last; /* raw counts of the last sample */
	struct ipiv_counts base; /* baseline: totals are last - base */
	struct ipiv_counts total;
	struct top_rates rate;
	bool inhibits_known;
	uint64_t inhibits;
	/* send->EOI over every path, over m->lat_span (known false: no observation in it) */
	struct api_latency latency;
	/* The cumulative histogram of the last sample, from which the next interval's is
	 * taken (NULL: none yet, or the source has no histograms). */
	struct latency_hist *lat_last;
	bool has_findings;	  /* false: not evaluated (yet) for this VM */
	unsigned findings;	  /* active findings */
	enum diag_severity worst; /* of those, when there are any */
	uint32_t finding_rules;	  /* bit per enum diag_rule_id */
	/* the model's inhibit reason names (the last sample's); NULL: the built-in ones */
	const struct ipiv_inhibit_names *inhibit_names;
};

enum top_sort_key {
	TOP_SORT_NAME,
	TOP_SORT_VCPUS,
	TOP_SORT_SENT,
	TOP_SORT_RECEIVED,
	TOP_SORT_ELIGIBLE,
	TOP_SORT_FALLBACK,
	TOP_SORT_PV,
	TOP_SORT_EXITS,
	TOP_SORT_HALTED,
	TOP_SORT_P50,
	TOP_SORT_P99,
	TOP_SORT_FINDINGS,
	TOP_SORT_COUNT,
};

struct top_model {
	struct top_vm_row *rows;
	size_t n_rows, cap_rows;
	uint64_t last_ns;  /* taken_ns of the last sample */
	uint64_t reset_ns; /* taken_ns of the sample totals count from since "r"; 0: none */
	unsigned samples;
	enum top_lat_span lat_span; /* of the last sample */
	enum top_sort_key sort;
	bool ascending;
	/* The filter by VM name (POSIX extended regex); rows it rejects are not listed. */
	bool has_filter;
	regex_t filter;
	char filter_text[128];
	/* kvm_stat's guest filters: one VMM pid (0: any), one exact VM name ("": any). */
	int32_t filter_pid;
	char filter_guest[VM_NAME_MAX];
	/* the kernel's APICv inhibit reason names, as the last sample had them */
	struct ipiv_inhibit_names inhibit_names;
};

void top_model_init(struct top_model *m);
void top_model_free(struct top_model *m);

/*
 * Takes a new sample: snap's VMs with their names (one per VM), at snap->taken_ns (seconds
 * since the previous sample: (taken_ns - last_ns) / 1e9). A VM seen again gets rates; a new
 * one gets a row without rates; one that is missing, or no longer alive, is marked gone and
 * dropped after TOP_GONE_REFRESHES samples. The same key with another pid is a new VM.
 * latency (NULL: none) holds each VM's send->EOI figures since the collector started, hists
 * (NULL: none) its histograms: a VM with a known histogram in this sample and the previous
 * one gets the interval's P50/P99 (lat_span TOP_LAT_INTERVAL), else the figures stand
 * (TOP_LAT_LIFETIME). findings (NULL: no diagnosis) is matched to rows by VM name.
 * Returns 0 or -ENOMEM.
 */
int top_model_update(struct top_model *m, const struct ipiv_snapshot *snap,
		     const char (*names)[VM_NAME_MAX], const struct api_latency *latency,
		     const struct top_lat_sample *hists, const struct diag_report *findings);

/* The findings of the VM named name in r, or NULL. */
const struct diag_vm_report *top_findings_for(const struct diag_report *r, const char *name);

/* Totals restart from the current counts ("r": reset the counters view). */
void top_model_reset(struct top_model *m);

/* Sets the filter; NULL or "" clears it. Returns 0 or -EINVAL with regerror's text in err. */
int top_model_set_filter(struct top_model *m, const char *regex, char *err, size_t err_size);
/* kvm_stat's "g" and "p": only the VM of this VMM pid (0: any), only the VM of this exact
 * name (NULL or "": any). */
void top_model_set_pid(struct top_model *m, int32_t pid);
void top_model_set_guest(struct top_model *m, const char *name);
/* kvm_stat's "c": every filter off. */
void top_model_clear_filters(struct top_model *m);
bool top_model_has_filters(const struct top_model *m);
bool top_model_visible(const struct top_model *m, const struct top_vm_row *row);
/* The same for a VM not in the model yet (the sources ask before fetching its detail). */
bool top_model_visible_vm(const struct top_model *m, const char *name, int32_t pid);
/* Whether a row (gone ones aside) has this pid, or this exact name: g and p refuse a filter
 * that would hide every VM. */
bool top_model_has_pid(const struct top_model *m, int32_t pid);
bool top_model_has_guest(const struct top_model *m, const char *name);

/* Sorts rows by m->sort (descending unless m->ascending), name then key breaking ties;
 * rows without rates sort below those with, gone rows last. */
void top_model_sort(struct top_model *m);
/* Compares two rows as top_model_sort does (<0, 0, >0). */
int top_row_cmp(const struct top_vm_row *a, const struct top_vm_row *b, enum top_sort_key key,
		bool ascending);

const struct top_vm_row *top_model_find(const struct top_model *m, uint64_t key);

/* Halt wakeups per IPI received in the interval, the share of IPIs that hit a halted target;
 * negative when nothing was received. */
double top_halted_share(const struct top_rates *r);

#endif
