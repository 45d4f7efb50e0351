/* ipivd's log lines: see log.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* s as a quoted logfmt value or JSON string: quotes, backslashes and control bytes escaped
 * (bytes >= 0x80 pass: names are sanitised UTF-8 already). */
static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void ipiv_vlog(enum ipiv_log_level level, const char *component, const char *fmt, va_list ap)
{
	char msg[1024], ts[64];
	struct timespec now;
	struct tm tm;
	size_t len;
	FILE *f;

	if (level < min_level || level > IPIV_LOG_ERROR)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len && msg[len - 1] == '\n')
		msg[--len] = '\0';
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03dZ", (int)(now.tv_nsec / 1000000));

	pthread_mutex_lock(&lock);
	f = stream ? stream : stderr;
	if (format == IPIV_LOG_JSON) {
		fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts,
			level_names[level]);
		put_quoted(f, component ? component : "ipivd");
		fputs(",\"msg\":", f);
		put_quoted(f, msg);
		fputs("}\n", f);
	} else if (format == IPIV_LOG_PLAIN) {
		fprintf(f, "ipiv: %s\n", msg);
	} else {
		fprintf(f, "ts=%s level=%s component=%s msg=", ts, level_names[level],
			component ? component : "ipivd");
		put_quoted(f, msg);
		fputc('\n', f);
	}
	fflush(f);
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
