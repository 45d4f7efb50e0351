/* ipivtop's latency pane: one stage's histogram (merged over its paths or cases) as a bar
 * chart of its non-empty buckets, its quantiles with their bucket error, the figures by path
 * and the deliveries that could not be matched. Pure. */
#ifndef IPIV_TOP_LATENCY_H
#define IPIV_TOP_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#include "collector.h"
#include "canvas.h"

/* Bars shown at most: more non-empty buckets than this are grouped. */
#define TOP_HIST_ROWS 16

/* "send→accept", "accept→running", "send→EOI", "exit", "halt" ("->" outside UTF-8). */
const char *top_lat_stage_name(unsigned kind);
/* The stage after kind, in enum ipiv_lat_kind order, wrapping before IPIV_LAT_UNMATCHED. */
unsigned top_lat_next_stage(unsigned kind);

/* One bar: buckets [lo, hi] ns (overflow: hi is unbounded) and what they hold. */
struct top_hist_row {
	uint64_t lo, hi;
	bool overflow;
	uint64_t count;
};

/*
 * The bars of h: one per non-empty bucket when there are at most max_rows of them; else the
 * buckets from the first to the last non-empty one in equal runs, at most max_rows, the empty
 * runs left out. Returns how many rows were written to out (max_rows of room).
 */
size_t top_hist_rows(const struct latency_hist *h, size_t max_rows, struct top_hist_row *out);

/* Draws the pane for vm's stage (an enum ipiv_lat_kind below IPIV_LAT_UNMATCHED); recorded
 * has a bit per stage the collector records; span says what vm's histograms cover ("since
 * the collector started"). */
void top_latency_draw(struct top_canvas *c, const struct ipiv_vm_stats *vm, unsigned stage,
		      uint32_t recorded, const char *span);

#endif
