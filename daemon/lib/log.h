/* ipivd's log: one line per event on stderr, with time, level and the part of ipivd that
 * speaks, as logfmt (the Prometheus exporters' default) or JSON; --log.level drops the
 * lines below it. Thread-safe: a line is written whole. Until a program picks a format the
 * lines are plain "ipiv: <message>" text (ipivtop's, whose terminal is no log); command-line
 * errors, found while the log flags are still being parsed, are never log lines. */
#ifndef IPIV_LOG_H
#define IPIV_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdnoreturn.h>

enum ipiv_log_level {
	IPIV_LOG_DEBUG,
	IPIV_LOG_INFO,
	IPIV_LOG_WARN,
	IPIV_LOG_ERROR,
};

enum ipiv_log_format {
	IPIV_LOG_PLAIN, /* the default: "ipiv: <message>", no time or level */
	IPIV_LOG_LOGFMT,
	IPIV_LOG_JSON,
};

/* "debug", "info", "warn" or "error"; returns -EINVAL for anything else. */
int ipiv_log_set_level(const char *name);
/* "logfmt" or "json"; returns -EINVAL for anything else. */
int ipiv_log_set_format(const char *name);
/* Where lines go (default stderr); tests point it at a memory stream. */
void ipiv_log_set_stream(FILE *f);
bool ipiv_log_enabled(enum ipiv_log_level level);

/* One line: ts=2026-12-06T08:10:00.123Z level=info component=httpd msg="...". The message
 * is escaped as its format needs; a trailing newline in it is dropped. */
void ipiv_log(enum ipiv_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ipiv_vlog(enum ipiv_log_level level, const char *component, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* A command-line tool's usage error: "PROG: <message> (see PROG --help)" on stderr, then
 * exit status 2. Plain text, not a log line: the flags are still being parsed. */
noreturn void ipiv_usage_error(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(component, ...) ipiv_log(IPIV_LOG_DEBUG, component, __VA_ARGS__)
#define log_info(component, ...)  ipiv_log(IPIV_LOG_INFO, component, __VA_ARGS__)
#define log_warn(component, ...)  ipiv_log(IPIV_LOG_WARN, component, __VA_ARGS__)
#define log_error(component, ...) ipiv_log(IPIV_LOG_ERROR, component, __VA_ARGS__)

#endif /* IPIV_LOG_H */
