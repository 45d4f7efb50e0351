/* A growable byte buffer for building HTTP bodies; see strbuf.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "utf8.h"

static int strbuf_reserve(struct strbuf *sb, size_t extra)
{
	size_t need, cap;
	char *buf;

	if (sb->err)
		return sb->err;
	if (extra > (size_t)-1 / 2 - sb->len - 1)
		goto nomem;
	need = sb->len + extra + 1;
	if (need <= sb->cap)
		return 0;
	cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	buf = realloc(sb->buf, cap);
	if (!buf)
		goto nomem;
	sb->buf = buf;
	sb->cap = cap;
	return 0;
nomem:
	sb->err = -ENOMEM;
	return sb->err;
}

void strbuf_append(struct strbuf *sb, const char *s, size_t n)
{
	if (strbuf_reserve(sb, n))
		return;
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
	strbuf_append(sb, s, strlen(s));
}

void strbuf_putc(struct strbuf *sb, char c)
{
	strbuf_append(sb, &c, 1);
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (!sb->err)
			sb->err = -EINVAL;
		return;
	}
	if (strbuf_reserve(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void strbuf_put_escaped(struct strbuf *sb, const char *s, const struct strbuf_escape *escapes,
			size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), len, i;
	uint32_t cp;

	while (left) {
		len = utf8_decode(p, left, &cp);
		if (len == 0) {
			strbuf_puts(sb, "\xef\xbf\xbd"); /* U+FFFD, for one byte */
			p++, left--;
			continue;
		}
		for (i = 0; i < n && escapes[i].cp != cp; i++)
			;
		if (i < n)
			strbuf_puts(sb, escapes[i].text);
		else
			strbuf_append(sb, (const char *)p, len);
		p += len, left -= len;
	}
}

char *strbuf_steal(struct strbuf *sb, size_t *len)
{
	char *buf = NULL;

	if (!sb->err && strbuf_reserve(sb, 0) == 0) {
		buf = sb->buf;
		buf[sb->len] = '\0';
		if (len)
			*len = sb->len;
		sb->buf = NULL;
	}
	strbuf_release(sb);
	return buf;
}

void strbuf_release(struct strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->err = 0;
}

void set_err(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!err || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}
