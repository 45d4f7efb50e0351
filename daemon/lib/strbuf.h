/* A growable byte buffer for building HTTP bodies (metrics, HTML).
 * An allocation failure is latched: later appends are no-ops and strbuf_error() reports it. */
#ifndef IPIV_STRBUF_H
#define IPIV_STRBUF_H

#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *buf; /* always NUL-terminated once anything was appended */
	size_t len;
	size_t cap;
	int err; /* 0 or -ENOMEM, sticky */
};

void strbuf_append(struct strbuf *sb, const char *s, size_t n);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_putc(struct strbuf *sb, char c);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int strbuf_error(const struct strbuf *sb)
{
	return sb->err;
}
/* A code point strbuf_put_escaped() writes as text instead of itself. */
struct strbuf_escape {
	uint32_t cp;
	const char *text;
};

/* Appends the string s with each code point listed in escapes[0..n) written as its text, and
 * each byte that does not start valid UTF-8 (utf8.h: overlong forms, surrogates, truncated
 * sequences) as U+FFFD; the rest is copied as it is. HTML text and Prometheus label values
 * and HELP text are escaped this way, with tables of their own. */
void strbuf_put_escaped(struct strbuf *sb, const char *s, const struct strbuf_escape *escapes,
			size_t n);

/* Hands the buffer to the caller (free() it) and resets sb; NULL after an error. */
char *strbuf_steal(struct strbuf *sb, size_t *len);
void strbuf_release(struct strbuf *sb);

/* Writes a one-line error message into a caller's fixed buffer (err may be NULL or size 0). */
void set_err(char *err, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
