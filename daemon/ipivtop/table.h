/* ipivtop's VM table: its columns, which of them fit a width, and its rows drawn into a
 * canvas (the terminal and batch text share it). Pure. */
#ifndef IPIV_TOP_TABLE_H
#define IPIV_TOP_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "canvas.h"
#include "format.h"
#include "model.h"

enum top_col {
	TOP_COL_NAME,
	TOP_COL_VCPUS,
	TOP_COL_SENT,
	TOP_COL_RECEIVED,
	TOP_COL_ELIGIBLE,
	TOP_COL_FALLBACK,
	TOP_COL_PV,
	TOP_COL_EXITS,
	TOP_COL_P50,
	TOP_COL_P99,
	TOP_COL_HALTED,
	TOP_COL_INHIBIT,
	TOP_COL_FINDINGS,
	TOP_COL_COUNT,
};

struct top_column {
	const char *header;
	const char *help; /* one line for the help screen */
	int width;	  /* the name column's minimum; the others' exact width */
	enum top_align align;
	int sort; /* enum top_sort_key, or -1: not sortable */
	char key; /* key that sorts by it (0: none) */
	int drop; /* columns with a higher drop rank go first when space is short */
};

extern const struct top_column top_columns[TOP_COL_COUNT];

#define TOP_NAME_MIN 12
#define TOP_NAME_MAX 32

struct top_layout {
	bool shown[TOP_COL_COUNT];
	int name_width;
	int width; /* the sum, separators included: every line is exactly this wide */
};

/* Columns that fit in width (the name always does; others drop by rank). */
void top_table_layout(int width, struct top_layout *out);

/* A quantile as a cell: "~14.6µs" (a bucket midpoint), ">17.2s" in the overflow bucket,
 * "-" when there is none. */
void top_quantile_cell(const struct latency_quantile *q, char *out, size_t size);

/* The findings cell's attribute: by the worst severity (critical WARN, warning CAUTION,
 * info NORMAL), GOOD for none, DIM when not evaluated. */
enum top_attr top_findings_attr(const struct top_vm_row *row);

/* The text of one cell, unpadded. */
void top_table_cell(const struct top_vm_row *row, enum top_col col, char *out, size_t size);

/* The sort column the key selects, or -1. */
int top_table_sort_for_key(int key);

/* The header line (the sort column marked with TOP_A_SORTED). */
void top_table_header(struct top_canvas *c, const struct top_layout *l, enum top_sort_key sort);
/* One row; a gone VM says so across its numeric columns. */
void top_table_row(struct top_canvas *c, const struct top_layout *l, const struct top_vm_row *row,
		   bool selected);

/* The "x" view's child rows of a VM, kvm_stat's child events: the IPI paths that sent in the
 * interval (into paths, if not NULL: IPIV_PATH_COUNT of room). Returns how many. */
size_t top_table_children(const struct top_vm_row *row, enum ipiv_path *paths);
/* One child row: the path's IPIs per second under SENT/s, its share of the VM's under
 * RECV/s; last draws the closing branch. */
void top_table_child(struct top_canvas *c, const struct top_layout *l, const struct top_vm_row *row,
		     enum ipiv_path path, bool last);

/* The rows the filter lets through, in model order (pointers into m->rows). */
size_t top_table_visible(const struct top_model *m, const struct top_vm_row **out, size_t cap);

#endif
