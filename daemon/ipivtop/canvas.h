/* What ipivtop's screen elements draw into: lines of UTF-8 text with attribute runs, the
 * same for the terminal (screen.c paints it with curses) and for batch output (plain
 * text) and for unit tests (compare the text). Pure. */
#ifndef IPIV_TOP_CANVAS_H
#define IPIV_TOP_CANVAS_H

#include <stddef.h>

#include "strbuf.h"

/* Meanings, not colours: screen.c maps them to colour pairs or to plain attributes. */
enum top_attr {
	TOP_A_NORMAL = 0,
	TOP_A_TITLE,	/* the program line */
	TOP_A_HEADER,	/* column headers */
	TOP_A_SORTED,	/* the header of the sort column */
	TOP_A_SELECTED, /* the cursor row */
	TOP_A_DIM,	/* placeholders, gone VMs */
	TOP_A_WARN,	/* degraded, inhibited, errors, critical findings */
	TOP_A_CAUTION,	/* warning findings */
	TOP_A_GOOD,	/* accelerated, nothing inhibited */
	TOP_A_HEAT1,	/* matrix cells, from cold to hot */
	TOP_A_HEAT2,
	TOP_A_HEAT3,
	TOP_A_HEAT4,
	TOP_A_COUNT,
};

struct top_run {
	size_t start; /* byte offset in the line's text */
	enum top_attr attr;
};

struct top_line {
	struct strbuf text;
	struct top_run *runs;
	size_t n_runs;
};

struct top_canvas {
	struct top_line *lines;
	size_t n_lines, cap_lines;
	int width; /* columns the elements lay out for */
	int err;   /* 0 or -ENOMEM, sticky */
};

void top_canvas_init(struct top_canvas *c, int width);
void top_canvas_free(struct top_canvas *c);
/* Starts a new line. */
void top_canvas_line(struct top_canvas *c);
/* Appends text to the current line (starting one if there is none) in attr. */
void top_canvas_put(struct top_canvas *c, enum top_attr attr, const char *text);
void top_canvas_printf(struct top_canvas *c, enum top_attr attr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends text fitted to exactly width columns (top_fit). */
void top_canvas_fit(struct top_canvas *c, enum top_attr attr, const char *text, int width,
		    int align);
/* Pads the current line with spaces in attr up to the canvas width (for bars). */
void top_canvas_fill(struct top_canvas *c, enum top_attr attr);
/* The text of line i ("" past the end). */
const char *top_canvas_text(const struct top_canvas *c, size_t i);

#endif
