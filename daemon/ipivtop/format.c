/* ipivtop's text primitives: numbers for narrow columns, display width, ellipsis, sanitising. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "naming.h"
#include "format.h"
#include "utf8.h"

static bool utf8_terminal = true;

void top_format_set_utf8(bool utf8)
{
	utf8_terminal = utf8;
}

bool top_format_utf8(void)
{
	return utf8_terminal;
}

void top_humanize(double v, char out[TOP_NUM_MAX])
{
	static const char units[] = " kMGTPE";
	unsigned u = 0;

	if (!(v >= 0)) { /* negative or NaN */
		snprintf(out, TOP_NUM_MAX, TOP_NONE);
		return;
	}
	if (v < 9.95 && v != floor(v)) {
		snprintf(out, TOP_NUM_MAX, "%.1f", v);
		return;
	}
	if (v < 999.5) {
		snprintf(out, TOP_NUM_MAX, "%.0f", v);
		return;
	}
	while (u < sizeof(units) - 2 && v >= 999.5) {
		v /= 1000;
		u++;
	}
	/* One decimal below 100 ("1.2k", "12.3k"), none above ("123k"); whatever rounds up to
	 * 1000 of a unit moves to the next one. */
	if (v < 99.95)
		snprintf(out, TOP_NUM_MAX, "%.1f%c", v, units[u]);
	else if (v < 999.5 || u == sizeof(units) - 2)
		snprintf(out, TOP_NUM_MAX, "%.0f%c", v, units[u]);
	else
		snprintf(out, TOP_NUM_MAX, "1.0%c", units[u + 1]);
}

void top_percent(double num, double den, char out[TOP_NUM_MAX])
{
	double pct;
	size_t n;

	if (!(den > 0) || !(num >= 0)) {
		snprintf(out, TOP_NUM_MAX, TOP_NONE);
		return;
	}
	pct = num / den * 100;
	if (pct > 0 && pct < 0.5) {
		snprintf(out, TOP_NUM_MAX, "<1%%");
		return;
	}
	if (pct < 999.5) {
		snprintf(out, TOP_NUM_MAX, "%.0f%%", pct);
		return;
	}
	top_humanize(pct, out);
	n = strlen(out);
	snprintf(out + n, TOP_NUM_MAX - n, "%%");
}

/* Columns of the character at s: its length in *len; invalid bytes are one column each. */
static int char_width(const char *s, size_t left, size_t *len)
{
	uint32_t cp;
	int w;

	*len = utf8_decode((const unsigned char *)s, left, &cp);
	if (*len == 0) {
		*len = 1;
		return 1;
	}
	w = wcwidth((wchar_t)cp);
	return w < 0 ? 0 : w;
}

int top_display_width(const char *s)
{
	size_t left = strlen(s), len;
	int width = 0;

	while (left) {
		width += char_width(s, left, &len);
		s += len;
		left -= len;
	}
	return width;
}

static size_t put(char *out, size_t size, size_t at, const char *s, size_t n)
{
	if (at + n + 1 > size)
		return at;
	memcpy(out + at, s, n);
	out[at + n] = '\0';
	return at + n;
}

static size_t pad(char *out, size_t size, size_t at, int n)
{
	while (n-- > 0)
		at = put(out, size, at, " ", 1);
	return at;
}

size_t top_fit(const char *s, int width, enum top_align align, char *out, size_t size)
{
	const char *ellipsis = utf8_terminal ? "\u2026" : "~";
	int w = top_display_width(s), used = 0;
	size_t left = strlen(s), len, at = 0;

	if (!size)
		return 0;
	out[0] = '\0';
	if (width <= 0)
		return 0;
	if (w <= width) {
		if (align == TOP_RIGHT)
			at = pad(out, size, at, width - w);
		at = put(out, size, at, s, left);
		if (align == TOP_LEFT)
			at = pad(out, size, at, width - w);
		return at;
	}
	/* Too wide: as many characters as fit in width - 1 columns, then the ellipsis. */
	while (left) {
		int cw = char_width(s, left, &len);

		if (used + cw > width - 1)
			break;
		at = put(out, size, at, s, len);
		used += cw;
		s += len;
		left -= len;
	}
	at = pad(out, size, at, width - 1 - used);
	return put(out, size, at, ellipsis, strlen(ellipsis));
}

size_t top_sanitize(const char *in, char *out, size_t size)
{
	char clean[VM_NAME_MAX * 4];
	size_t n, left, len, at = 0;
	const char *s = clean;
	uint32_t cp;

	if (!size)
		return 0;
	n = vm_name_sanitize(in, strlen(in), clean, sizeof(clean));
	left = n;
	out[0] = '\0';
	while (left) {
		len = utf8_decode((const unsigned char *)s, left, &cp);
		if (len == 0) /* vm_name_sanitize already dropped these; be safe */
			len = 1;
		else if (wcwidth((wchar_t)cp) >= 0)
			at = put(out, size, at, s, len);
		s += len;
		left -= len;
	}
	if (at == 0)
		at = put(out, size, 0, "?", 1);
	return at;
}

void top_duration(double ns, char out[TOP_NUM_MAX])
{
	static const char *const utf8_units[] = {"ns", "\u00b5s", "ms", "s"};
	static const char *const ascii_units[] = {"ns", "us", "ms", "s"};
	const char *const *units = utf8_terminal ? utf8_units : ascii_units;
	unsigned u = 0;
	double v = ns;

	if (!(v >= 0)) {
		snprintf(out, TOP_NUM_MAX, TOP_NONE);
		return;
	}
	/* Move up while the value would print as 1000 or more of its unit. */
	while (u < 3 && v >= 999.5) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(out, TOP_NUM_MAX, "%.0f%s", v, units[u]);
	else if (v < 99.95)
		snprintf(out, TOP_NUM_MAX, "%.1f%s", v, units[u]);
	else
		snprintf(out, TOP_NUM_MAX, "%.0f%s", v, units[u]);
}

int top_bar(uint64_t count, uint64_t max, int width, char *out, size_t size)
{
	const char *block = utf8_terminal ? "\u2588" : "#";
	size_t len = strlen(block), at = 0;
	int n = 0;

	if (size)
		out[0] = '\0';
	if (count && max && width > 0) {
		n = (int)((double)count / max * width + 0.5);
		if (n < 1)
			n = 1;
		if (n > width)
			n = width;
	}
	for (int i = 0; i < n; i++)
		at = put(out, size, at, block, len);
	return n;
}

bool top_wrap_line(const char **text, int width, char *out, size_t size)
{
	const char *s = *text, *brk = NULL, *p;
	size_t left, len;
	int used = 0;

	if (size)
		out[0] = '\0';
	while (*s == ' ')
		s++;
	if (!*s) {
		*text = s;
		return false;
	}
	if (width < 1)
		width = 1;
	left = strlen(s);
	for (p = s; *p; p += len, left -= len) {
		int cw = char_width(p, left, &len);

		if (*p == ' ')
			brk = p;
		if (used + cw > width)
			break;
		used += cw;
	}
	if (!*p) /* the rest fits */
		brk = p;
	else if (*p == ' ')
		brk = p;
	else if (!brk || brk == s) /* one word wider than the line: cut it */
		brk = p > s ? p : s + len;
	while (brk > s && brk[-1] == ' ')
		brk--;
	len = (size_t)(brk - s);
	if (size) {
		if (len > size - 1)
			len = size - 1;
		memcpy(out, s, len);
		out[len] = '\0';
	}
	*text = brk;
	return true;
}

/* strtod/strtol leave leading spaces to us to allow; trailing ones are allowed here. */
static bool only_spaces(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return !*s;
}

bool top_parse_seconds(const char *s, double min, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !only_spaces(end) || !isfinite(v) || v < min || v > 86400)
		return false;
	*out = v;
	return true;
}

bool top_parse_pid(const char *s, int32_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno || !only_spaces(end) || v < 1 || v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	return true;
}

size_t top_scroll_clamp(long want, size_t n_lines, size_t page)
{
	size_t last = n_lines > page ? n_lines - page : 0;

	if (want < 0)
		return 0;
	return (size_t)want > last ? last : (size_t)want;
}
