/* ipivd's log lines: see log.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum ipiv_log_level min_level = IPIV_LOG_INFO;
static enum ipiv_log_format format = IPIV_LOG_PLAIN;
static FILE *stream;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int ipiv_log_set_level(const char *name)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (name && !strcmp(name, level_names[i])) {
			min_level = i;
			return 0;
		}
	}
	return -EINVAL;
}

int ipiv_log_set_format(const char *name)
{
	if (name && !strcmp(name, "logfmt"))
		format = IPIV_LOG_LOGFMT;
	else if (name && !strcmp(name, "json"))
		format = IPIV_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

void ipiv_log_set_stream(FILE *f)
{
	stream = f;
}

bool ipiv_log_enabled(enum ipiv_log_level level)
{
	return level >= min_level;
}

/* A log line being built: at most LINE_MAX_BYTES, whole lines only (see line_put). */
#define LINE_MAX_BYTES 8192
#define TRUNCATED      "...(truncated)"

struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
};

static void line_put(struct line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - l->len)
		n = sizeof(l->buf) - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void line_puts(struct line *l, const char *s)
{
	line_put(l, s, strlen(s));
}

/* s as a quoted logfmt value or JSON string: quotes, backslashes and control bytes escaped
 * (bytes >= 0x80 pass: names are sanitised UTF-8 already). */
static void put_quoted(struct line *l, const char *s)
{
	char esc[8];

	line_put(l, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			line_put(l, esc, 2);
		} else if (c == '\n') {
			line_puts(l, "\\n");
		} else if (c == '\t') {
			line_puts(l, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			line_puts(l, esc);
		} else {
			line_put(l, (const char *)&c, 1);
		}
	}
	line_put(l, "\"", 1);
}

/* The line to f in one write(2) where f has a descriptor, so that other writers on the same
 * descriptor (stderr shared with a supervisor or a child) never cut into it. */
static void write_line(FILE *f, const char *s, size_t n)
{
	int fd;

	fflush(f);
	fd = fileno(f);
	if (fd < 0) { /* a memory stream */
		fwrite(s, 1, n, f);
		fflush(f);
		return;
	}
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void ipiv_vlog(enum ipiv_log_level level, const char *component, const char *fmt, va_list ap)
{
	char msg[1024], ts[64];
	struct line line, *l = &line;
	struct timespec now;
	struct tm tm;
	size_t len;
	int n;

	if (level < min_level || level > IPIV_LOG_ERROR)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n >= (int)sizeof(msg)) /* a huge message: say that it was cut */
		memcpy(msg + sizeof(msg) - sizeof(TRUNCATED), TRUNCATED, sizeof(TRUNCATED));
	len = strlen(msg);
	while (len && msg[len - 1] == '\n')
		msg[--len] = '\0';
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03dZ", (int)(now.tv_nsec / 1000000));
	if (!component)
		component = "ipivd";

	/* msg escaped is at most 6 bytes a byte (\u00XX): the line always fits */
	_Static_assert(sizeof(msg) * 6 + 2 * sizeof(ts) + 256 < LINE_MAX_BYTES, "line too small");
	l->len = 0;
	if (format == IPIV_LOG_JSON) {
		line_puts(l, "{\"ts\":\"");
		line_puts(l, ts);
		line_puts(l, "\",\"level\":\"");
		line_puts(l, level_names[level]);
		line_puts(l, "\",\"component\":");
		put_quoted(l, component);
		line_puts(l, ",\"msg\":");
		put_quoted(l, msg);
		line_puts(l, "}\n");
	} else if (format == IPIV_LOG_PLAIN) {
		line_puts(l, "ipiv: ");
		line_puts(l, msg);
		line_puts(l, "\n");
	} else {
		line_puts(l, "ts=");
		line_puts(l, ts);
		line_puts(l, " level=");
		line_puts(l, level_names[level]);
		line_puts(l, " component=");
		line_puts(l, component);
		line_puts(l, " msg=");
		put_quoted(l, msg);
		line_puts(l, "\n");
	}

	pthread_mutex_lock(&lock);
	write_line(stream ? stream : stderr, l->buf, l->len);
	pthread_mutex_unlock(&lock);
}

void ipiv_log(enum ipiv_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ipiv_vlog(level, component, fmt, ap);
	va_end(ap);
}

void ipiv_usage_error(const char *prog, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one write: the line is whole even where stderr is a pipe shared with others */
	fprintf(stderr, "%s: %s (see %s --help)\n", prog, msg, prog);
	fflush(stderr);
	exit(2);
}
