/* Unit tests for daemon/lib/strbuf.c's strbuf_put_escaped, the one escaping loop of HTML
 * (landing.c) and Prometheus labels and HELP text (expo.c): replacements by code point, U+FFFD
 * for each byte that does not start valid UTF-8, and everything else copied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strbuf.h"

#define FFFD "\xef\xbf\xbd"

static char *escaped(const char *s, const struct strbuf_escape *escapes, size_t n)
{
	struct strbuf sb = {0};
	char *out;

	strbuf_put_escaped(&sb, s, escapes, n);
	out = strbuf_steal(&sb, NULL);
	assert_non_null(out);
	return out;
}

static void assert_escaped(const char *s, const struct strbuf_escape *escapes, size_t n,
			   const char *want)
{
	char *out = escaped(s, escapes, n);

	assert_string_equal(out, want);
	free(out);
}

static void test_replaces_listed_code_points(void **state)
{
	/* a multi-byte code point is replaced whole; one not listed is copied */
	const struct strbuf_escape t[] = {{'<', "&lt;"}, {0xe9, "e"}, {0x1f427, "[penguin]"}};

	assert_escaped("a<b caf\xc3\xa9 \xf0\x9f\x90\xa7 \xc3\xa8", t, 3,
		       "a&lt;b cafe [penguin] \xc3\xa8");
	/* only the first n entries count */
	assert_escaped("a<b caf\xc3\xa9", t, 1, "a&lt;b caf\xc3\xa9");
	assert_escaped("a<b", t, 0, "a<b");
	assert_escaped("", t, 3, "");
}

static void test_invalid_bytes_become_fffd_one_each(void **state)
{
	const struct strbuf_escape t[] = {{'x', "X"}};

	assert_escaped("\xff"
		       "x",
		       t, 1, FFFD "X");
	/* an overlong NUL and an overlong '/' are two bytes each, two U+FFFD each */
	assert_escaped("\xc0\x80\xe0\x80\xaf", t, 1, FFFD FFFD FFFD FFFD FFFD);
	/* a surrogate (U+D800) and a code point above U+10FFFF */
	assert_escaped("\xed\xa0\x80|\xf4\x90\x80\x80", t, 1,
		       FFFD FFFD FFFD "|" FFFD FFFD FFFD FFFD);
	/* a sequence cut short by the end, and one by an ASCII byte that is then escaped */
	assert_escaped("a\xe2\x82", t, 1, "a" FFFD FFFD);
	assert_escaped("\xe2x", t, 1, FFFD "X");
}

static void test_appends_to_what_is_there(void **state)
{
	const struct strbuf_escape t[] = {{'"', "\\\""}};
	struct strbuf sb = {0};
	char *out;

	strbuf_puts(&sb, "v=\"");
	strbuf_put_escaped(&sb, "a\"b", t, 1);
	strbuf_putc(&sb, '"');
	out = strbuf_steal(&sb, NULL);
	assert_string_equal(out, "v=\"a\\\"b\"");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replaces_listed_code_points),
		cmocka_unit_test(test_invalid_bytes_become_fffd_one_each),
		cmocka_unit_test(test_appends_to_what_is_there),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
