/* Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a property that does not hold
 * aborts naming itself, so libFuzzer keeps the input as a reproducer; and the checks every
 * text from untrusted input must pass before it is drawn or exposed. */
#ifndef IPIV_FUZZ_H
#define IPIV_FUZZ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naming.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), noreturn));

static void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: property does not hold: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* FUZZ_CHECK(cond, "what, with %d", args...) */
#define FUZZ_CHECK(cond, ...)                                              \
	do {                                                               \
		if (!(cond))                                               \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

static inline bool fuzz_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	while (len) {
		n = utf8_decode(p, len, &cp);
		if (n == 0)
			return false;
		p += n, len -= n;
	}
	return true;
}

/* What comes out of vm_name_sanitize: NUL-terminated within size, valid UTF-8, and left as
 * it is by a second pass (no control, bidi or separator characters, no edge spaces). */
static inline void fuzz_check_sanitized(const char *what, const char *s, size_t size)
{
	size_t len = strnlen(s, size);
	char again[1024];

	FUZZ_CHECK(len < size, "%s: not NUL-terminated within %zu bytes", what, size);
	FUZZ_CHECK(fuzz_utf8_valid(s, len), "%s \"%s\": invalid UTF-8", what, s);
	FUZZ_CHECK(len < sizeof(again), "%s: %zu bytes", what, len);
	vm_name_sanitize(s, len, again, sizeof(again));
	FUZZ_CHECK(strcmp(again, s) == 0, "%s \"%s\": not sanitised (\"%s\" after a second pass)",
		   what, s, again);
}

/* An error message: one line of text a terminal can show (no control characters). */
static inline void fuzz_check_error_line(const char *what, const char *err)
{
	FUZZ_CHECK(err[0] != '\0', "%s: failed without an error message", what);
	for (const char *p = err; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f,
			   "%s: control character 0x%02x in the error \"%s\"", what,
			   (unsigned char)*p, err);
}

#endif
