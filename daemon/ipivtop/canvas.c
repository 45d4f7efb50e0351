/* Lines of text with attribute runs, the drawing surface of ipivtop's screen elements. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canvas.h"
#include "format.h"

void top_canvas_init(struct top_canvas *c, int width)
{
	memset(c, 0, sizeof(*c));
	c->width = width;
}

void top_canvas_free(struct top_canvas *c)
{
	for (size_t i = 0; i < c->n_lines; i++) {
		strbuf_release(&c->lines[i].text);
		free(c->lines[i].runs);
	}
	free(c->lines);
	memset(c, 0, sizeof(*c));
}

void top_canvas_line(struct top_canvas *c)
{
	if (c->err)
		return;
	if (c->n_lines == c->cap_lines) {
		size_t cap = c->cap_lines ? c->cap_lines * 2 : 32;
		struct top_line *l = realloc(c->lines, cap * sizeof(*l));

		if (!l) {
			c->err = -ENOMEM;
			return;
		}
		c->lines = l;
		c->cap_lines = cap;
	}
	memset(&c->lines[c->n_lines++], 0, sizeof(struct top_line));
}

void top_canvas_put(struct top_canvas *c, enum top_attr attr, const char *text)
{
	struct top_line *l;
	struct top_run *runs;

	if (!c->n_lines)
		top_canvas_line(c);
	if (c->err)
		return;
	l = &c->lines[c->n_lines - 1];
	if (!l->n_runs || l->runs[l->n_runs - 1].attr != attr) {
		runs = realloc(l->runs, (l->n_runs + 1) * sizeof(*runs));
		if (!runs) {
			c->err = -ENOMEM;
			return;
		}
		l->runs = runs;
		l->runs[l->n_runs++] = (struct top_run){.start = l->text.len, .attr = attr};
	}
	strbuf_puts(&l->text, text);
	if (strbuf_error(&l->text))
		c->err = -ENOMEM;
}

void top_canvas_printf(struct top_canvas *c, enum top_attr attr, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	top_canvas_put(c, attr, buf);
}

void top_canvas_fit(struct top_canvas *c, enum top_attr attr, const char *text, int width,
		    int align)
{
	char buf[1024];

	top_fit(text, width, (enum top_align)align, buf, sizeof(buf));
	top_canvas_put(c, attr, buf);
}

void top_canvas_fill(struct top_canvas *c, enum top_attr attr)
{
	int used;

	if (!c->n_lines)
		top_canvas_line(c);
	if (c->err)
		return;
	used = top_display_width(top_canvas_text(c, c->n_lines - 1));
	if (used < c->width)
		top_canvas_printf(c, attr, "%*s", c->width - used, "");
}

const char *top_canvas_text(const struct top_canvas *c, size_t i)
{
	if (i >= c->n_lines || !c->lines[i].text.buf)
		return "";
	return c->lines[i].text.buf;
}
