/* ipivtop's text primitives: humanised numbers, percentages, display width of UTF-8, fitting
 * text to a column with an ellipsis, and sanitising untrusted names for the terminal. Pure. */
#ifndef IPIV_TOP_FORMAT_H
#define IPIV_TOP_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wide enough for any humanised number or percentage plus a NUL. */
#define TOP_NUM_MAX 16

/* What a cell shows when there is nothing to show: no rate yet, or data ipiv does not
 * collect (yet). */
#define TOP_NONE "-"
#define TOP_NA	 "n/a"

/*
 * A rate or count in at most 5 columns: "0", "0.5", "12", "999", "1.2k", "12.3k", "123k",
 * "1.2M", ... up to "E". Negative values and NaN give "-". Rounding never yields "1000k":
 * a value that rounds up to the next unit is shown in it ("1.0M").
 */
void top_humanize(double v, char out[TOP_NUM_MAX]);

/*
 * A duration in nanoseconds in at most 7 columns, three significant digits at most: "850ns",
 * "1.5µs", "14.6µs", "146µs", "3.2ms", "1.2s" ("us" for µ outside UTF-8). A value that rounds
 * to 1000 of a unit is shown in the next ("1.0µs"). Negative values and NaN give "-".
 */
void top_duration(double ns, char out[TOP_NUM_MAX]);

/*
 * A horizontal bar of count against max in width columns: full blocks ("█", "#" outside
 * UTF-8) for count / max of the width, rounded to the nearest, and at least one for a
 * non-zero count; empty for 0. Returns the columns drawn.
 */
int top_bar(uint64_t count, uint64_t max, int width, char *out, size_t size);

/*
 * The next line of text wrapped at width columns: it breaks after the last space that fits;
 * a word wider than a line is cut at a character boundary. Copies the line (without the
 * spaces around the break) into out and advances *text past it. Returns false once nothing
 * but spaces is left.
 */
bool top_wrap_line(const char **text, int width, char *out, size_t size);

/* num/den as "97%", "<1%" for a small non-zero share, "-" when den is 0. Shares above 100%
 * (wakeups per IPI can exceed 1) are printed as they are, humanised: "250%", "1.2k%". */
void top_percent(double num, double den, char out[TOP_NUM_MAX]);

/* Chooses the ellipsis: "…" in a UTF-8 terminal, "~" elsewhere. Default: UTF-8. */
void top_format_set_utf8(bool utf8);
bool top_format_utf8(void);

/* Columns that the UTF-8 text s occupies on a terminal (invalid bytes count 1, as they are
 * drawn as a replacement; non-printable characters 0). Needs an UTF-8 LC_CTYPE for wcwidth. */
int top_display_width(const char *s);

enum top_align {
	TOP_LEFT,
	TOP_RIGHT,
};

/*
 * Writes s into out (size bytes) so that it takes exactly width columns: padded with spaces
 * (on the right for TOP_LEFT, on the left for TOP_RIGHT), or cut on a character boundary
 * with an ellipsis as its last column when it is wider. A double-width character that does
 * not fit before the ellipsis is replaced by a space. Returns the bytes written.
 */
size_t top_fit(const char *s, int width, enum top_align align, char *out, size_t size);

/*
 * Makes an untrusted name (a VM name from /proc or from the network) safe to draw: what
 * vm_name_sanitize drops (invalid UTF-8, C0/C1 controls, bidi overrides, line separators),
 * plus any character the terminal cannot print (wcwidth < 0); "?" if nothing is left.
 */
size_t top_sanitize(const char *in, char *out, size_t size);

/* Seconds from min to 86400 ("2", "0.5"; spaces around are fine), for -d and the "s" key. */
bool top_parse_seconds(const char *s, double min, double *out);
/* A VMM pid for -p and the "p" key: 1 to INT32_MAX, spaces around are fine. */
bool top_parse_pid(const char *s, int32_t *out);

/* The first line a pane of page lines shows when asked to start at want in n_lines: never
 * past the last full page, never before the first line. */
size_t top_scroll_clamp(long want, size_t n_lines, size_t page);

#endif
