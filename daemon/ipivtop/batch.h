/* ipivtop's batch output (-b): per iteration, every VM's rates and totals as a plain text
 * table, CSV (one header line, then a row per VM per iteration) or JSON (one object per
 * iteration per line). Pure: writes to a FILE. */
#ifndef IPIV_TOP_BATCH_H
#define IPIV_TOP_BATCH_H

#include <stdbool.h>
#include <stdio.h>

#include "model.h"

enum top_batch_format {
	TOP_BATCH_TEXT,
	TOP_BATCH_CSV,
	TOP_BATCH_JSON,
};

/* Prints iteration (1-based) of the model's visible rows; t is seconds since the start.
 * Returns 0 or -EIO when the stream failed. */
int top_batch_print(FILE *f, enum top_batch_format fmt, unsigned iteration, double t,
		    const struct top_model *m);

/* What the log modes (-l, -L) and -z add to a record. */
struct top_batch_opts {
	bool header;	    /* CSV: write the header line first */
	bool skip_zero;	    /* -z: leave out VMs with nothing counted in the interval */
	char timestamp[32]; /* "" or the wall-clock time the record starts with (-l, -L) */
};

/* The same with options. */
int top_batch_write(FILE *f, enum top_batch_format fmt, const struct top_batch_opts *o,
		    unsigned iteration, double t, const struct top_model *m);

/* Nothing sent, received, acknowledged, woken or exited in the row's interval, or gone:
 * what -z leaves out. A row without rates yet is not idle (nothing is known). */
bool top_row_idle(const struct top_vm_row *row);

/* Escapes a CSV field (RFC 4180: quoted when it holds a comma, quote or line break). */
void top_csv_field(FILE *f, const char *s);

#endif
