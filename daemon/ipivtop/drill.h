/* ipivtop's VM drill-down: per-vCPU rows, the source->target vCPU heat matrix, the latency
 * histogram of one stage, inhibits, and the VM's findings. Keeps its own copy of the last two
 * samples of the VM so rates survive the frames being freed. Pure. */
#ifndef IPIV_TOP_DRILL_H
#define IPIV_TOP_DRILL_H

#include <stdbool.h>
#include <stdint.h>

#include "collector.h"
#include "diag_report.h"
#include "canvas.h"
#include "model.h"

struct top_detail {
	uint64_t key;
	bool has_prev, has_cur;
	bool gone; /* the VM was not in the last sample: its last numbers stay on screen */
	struct ipiv_vm_stats prev, cur; /* deep copies: vcpus, matrix and latency */
	uint64_t prev_ns, cur_ns;
	unsigned stage;	       /* the latency stage shown, enum ipiv_lat_kind; "l" cycles it */
	uint32_t lat_recorded; /* the stages the collector records (ipiv_self_stats) */
	/* The latency pane is cumulative: since the collector started, or since "r" (since_reset:
	 * base holds the VM's histograms at base_ns, or is taken from the next sample). */
	bool since_reset, has_base;
	struct ipiv_vm_stats base; /* lat rows and lat_unmatched only */
	uint64_t base_ns;
};

/* Set since_reset after this when the user reset before the drill-down opened: its
 * cumulative latency then starts at its first sample. */
void top_detail_init(struct top_detail *d, uint64_t key);
/* "r": the latency pane counts from the latest sample. Returns 0 or -ENOMEM. */
int top_detail_reset(struct top_detail *d);
/* The histograms of cur less those of base, row by row (rows matched by kind, sub and vCPU;
 * a row that shrank restarted and counts whole), empty rows left out; the rest of out is cur.
 * out->lat is allocated: free() it. Returns 0 or -ENOMEM. */
int top_lat_since(const struct ipiv_vm_stats *cur, const struct ipiv_vm_stats *base,
		  struct ipiv_vm_stats *out);
/* Adds the VM's latest sample (NULL: it was not in the sample). Returns 0 or -ENOMEM. */
int top_detail_update(struct top_detail *d, const struct ipiv_vm_stats *vm, uint64_t taken_ns);
void top_detail_free(struct top_detail *d);

/* Rates of one vCPU row (vcpu_id as in ipiv_vcpu_stats; IPIV_VCPU_NONE for VMM threads). */
bool top_detail_vcpu_rates(const struct top_detail *d, uint32_t vcpu_id, struct top_rates *out);
/* Interrupts per second from src to dst in the last interval; negative if unknown. */
double top_detail_matrix_rate(const struct top_detail *d, uint32_t src, uint32_t dst);

/* Heat attribute for value against the hottest cell. */
enum top_attr top_heat_attr(double value, double max);

/* Draws the whole drill-down; row is the VM's table row (name, inhibits), may be NULL;
 * findings is the latest diagnosis (NULL: none, findings_note says why). */
void top_drill_draw(struct top_canvas *c, const struct top_detail *d, const struct top_vm_row *row,
		    const struct diag_report *findings, const char *findings_note);

#endif
