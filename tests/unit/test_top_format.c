/* Unit tests for daemon/ipivtop/format.c: humanised numbers, percentages and durations, display
 * width of UTF-8, fitting to a column with an ellipsis, sanitising untrusted names for the
 * terminal, histogram bars and word wrapping. */
#include <locale.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ipivtop/format.h"

static int setup(void **state)
{
	/* wcwidth needs an UTF-8 character type; C.UTF-8 exists on every glibc system. */
	if (!setlocale(LC_CTYPE, "C.UTF-8") && !setlocale(LC_CTYPE, "C.utf8"))
		return -1;
	top_format_set_utf8(true);
	return 0;
}

static void test_humanize(void **state)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{0, "0"},	  {0.5, "0.5"},	    {9.94, "9.9"},    {9.96, "10"},
		{12, "12"},	  {999, "999"},	    {999.4, "999"},   {999.5, "1.0k"},
		{1234, "1.2k"},	  {12345, "12.3k"}, {99949, "99.9k"}, {99950, "100k"},
		{123456, "123k"}, {999499, "999k"}, {999500, "1.0M"}, {3.4e6, "3.4M"},
		{5.6e9, "5.6G"},  {7e12, "7.0T"},   {1e18, "1.0E"},   {5e20, "500E"},
		{-1, "-"},	  {0.0 / 0.0, "-"},
	};
	char out[TOP_NUM_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		top_humanize(cases[i].v, out);
		if (strcmp(out, cases[i].want))
			fail_msg("%g: got \"%s\", want \"%s\"", cases[i].v, out, cases[i].want);
		if (cases[i].v < 1e21)
			assert_true(strlen(out) <= 5);
	}
}

static void test_percent(void **state)
{
	char out[TOP_NUM_MAX];

	top_percent(97, 100, out);
	assert_string_equal(out, "97%");
	top_percent(1, 1000, out);
	assert_string_equal(out, "<1%");
	top_percent(0, 10, out);
	assert_string_equal(out, "0%");
	top_percent(5, 0, out);
	assert_string_equal(out, "-");
	top_percent(25, 10, out);
	assert_string_equal(out, "250%");
	top_percent(120, 10, out);
	assert_string_equal(out, "1.2k%");
}

static void test_display_width(void **state)
{
	assert_int_equal(top_display_width(""), 0);
	assert_int_equal(top_display_width("web-01"), 6);
	assert_int_equal(top_display_width("caf\xc3\xa9"), 4);		    /* é */
	assert_int_equal(top_display_width("\xe6\x97\xa5\xe6\x9c\xac"), 4); /* 日本: wide */
	assert_int_equal(top_display_width("e\xcc\x81"), 1); /* e + combining acute */
	assert_int_equal(top_display_width("a\xff"
					   "b"),
			 3); /* invalid byte: 1 */
}

static void assert_fit(const char *s, int width, enum top_align align, const char *want)
{
	char out[128];

	top_fit(s, width, align, out, sizeof(out));
	if (strcmp(out, want))
		fail_msg("fit(\"%s\", %d): got \"%s\", want \"%s\"", s, width, out, want);
	assert_int_equal(top_display_width(out), width);
}

static void test_fit(void **state)
{
	assert_fit("web", 6, TOP_LEFT, "web   ");
	assert_fit("web", 6, TOP_RIGHT, "   web");
	assert_fit("web", 3, TOP_LEFT, "web");
	assert_fit("database-01", 8, TOP_LEFT, "databas\u2026");
	assert_fit("database-01", 1, TOP_LEFT, "\u2026");
	/* cut on a character boundary, counted in columns, not bytes */
	assert_fit("caf\xc3\xa9-bar", 5, TOP_LEFT, "caf\xc3\xa9\u2026");
	/* a wide character that does not fit before the ellipsis becomes a space */
	assert_fit("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 4, TOP_LEFT, "\xe6\x97\xa5 \u2026");
	assert_fit("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 5, TOP_LEFT,
		   "\xe6\x97\xa5\xe6\x9c\xac\u2026");
	top_format_set_utf8(false);
	assert_fit("database-01", 8, TOP_LEFT, "databas~");
	top_format_set_utf8(true);
}

static void test_fit_zero_and_small_buffer(void **state)
{
	char out[4] = "xyz";

	assert_int_equal(top_fit("abc", 0, TOP_LEFT, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* never writes past the buffer */
	top_fit("abcdefgh", 8, TOP_LEFT, out, sizeof(out));
	assert_true(strlen(out) < sizeof(out));
}

static void test_sanitize(void **state)
{
	char out[64];

	top_sanitize("web\x1b]0;owned\x07-01", out, sizeof(out));
	assert_string_equal(out, "web]0;owned-01");
	top_sanitize("a\xe2\x80\xae"
		     "b",
		     out, sizeof(out)); /* RIGHT-TO-LEFT OVERRIDE */
	assert_string_equal(out, "ab");
	top_sanitize("x\xc2\x9by", out, sizeof(out)); /* C1 CSI */
	assert_string_equal(out, "xy");
	top_sanitize("\xff\xfe", out, sizeof(out));
	assert_string_equal(out, "?");
	top_sanitize("\xe6\x97\xa5\xe6\x9c\xac", out, sizeof(out));
	assert_string_equal(out, "\xe6\x97\xa5\xe6\x9c\xac");
	top_sanitize("a\xef\xbf\xbf"
		     "b",
		     out, sizeof(out)); /* U+FFFF: not printable */
	assert_string_equal(out, "ab");
}

static void test_duration(void **state)
{
	static const struct {
		double ns;
		const char *want;
	} cases[] = {
		{0, "0ns"},
		{31.5, "32ns"},
		{850, "850ns"},
		{999.4, "999ns"},
		{999.5, "1.0\u00b5s"},
		{1500, "1.5\u00b5s"},
		{14600, "14.6\u00b5s"},
		{99949, "99.9\u00b5s"},
		{99950, "100\u00b5s"},
		{146000, "146\u00b5s"},
		{999499, "999\u00b5s"},
		{999500, "1.0ms"},
		{3.2e6, "3.2ms"},
		{1.2e9, "1.2s"},
		{17.2e9, "17.2s"},
		{3600e9, "3600s"},
		{-1, "-"},
	};
	char out[TOP_NUM_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		top_duration(cases[i].ns, out);
		if (strcmp(out, cases[i].want))
			fail_msg("%g ns: got \"%s\", want \"%s\"", cases[i].ns, out, cases[i].want);
		assert_true(top_display_width(out) <= 7);
	}
	top_format_set_utf8(false);
	top_duration(14600, out);
	top_format_set_utf8(true);
	assert_string_equal(out, "14.6us");
}

static void test_bar(void **state)
{
	char bar[64 * 3 + 1];

	assert_int_equal(top_bar(100, 100, 10, bar, sizeof(bar)), 10);
	assert_string_equal(bar, "\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588");
	assert_int_equal(top_bar(50, 100, 10, bar, sizeof(bar)), 5);
	assert_int_equal(top_display_width(bar), 5);
	assert_int_equal(top_bar(44, 100, 10, bar, sizeof(bar)), 4);	/* 4.4 rounds down */
	assert_int_equal(top_bar(46, 100, 10, bar, sizeof(bar)), 5);	/* 4.6 rounds up */
	assert_int_equal(top_bar(1, 1000000, 10, bar, sizeof(bar)), 1); /* non-zero shows */
	assert_int_equal(top_bar(0, 100, 10, bar, sizeof(bar)), 0);
	assert_string_equal(bar, "");
	assert_int_equal(top_bar(5, 0, 10, bar, sizeof(bar)), 0);
	assert_int_equal(top_bar(5, 5, 0, bar, sizeof(bar)), 0);
	top_format_set_utf8(false);
	assert_int_equal(top_bar(3, 4, 8, bar, sizeof(bar)), 6);
	top_format_set_utf8(true);
	assert_string_equal(bar, "######");
	/* a short buffer holds what fits, always terminated */
	assert_int_equal(top_bar(10, 10, 10, bar, 7), 10);
	assert_int_equal(strlen(bar), 6);
}

/* Wraps text at width and joins the lines with '|'. */
static void wrap(const char *text, int width, char *out, size_t size)
{
	char line[256];
	size_t at = 0;

	out[0] = '\0';
	while (top_wrap_line(&text, width, line, sizeof(line))) {
		assert_true(top_display_width(line) <= width);
		at += snprintf(out + at, size - at, "%s%s", at ? "|" : "", line);
	}
}

static void test_wrap(void **state)
{
	char out[512];

	wrap("Boot the guest with x2apic_phys", 10, out, sizeof(out));
	assert_string_equal(out, "Boot the|guest with|x2apic_phy|s");
	wrap("  lead and trail  ", 40, out, sizeof(out));
	assert_string_equal(out, "lead and trail");
	wrap("exactly ten", 11, out, sizeof(out));
	assert_string_equal(out, "exactly ten");
	wrap("exactly ten", 10, out, sizeof(out));
	assert_string_equal(out, "exactly|ten");
	wrap("a  b", 1, out, sizeof(out));
	assert_string_equal(out, "a|b");
	/* wide characters count two columns and are never split */
	wrap("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e x", 4, out, sizeof(out));
	assert_string_equal(out, "\xe6\x97\xa5\xe6\x9c\xac|\xe8\xaa\x9e x");
	wrap("", 10, out, sizeof(out));
	assert_string_equal(out, "");
	wrap("   ", 10, out, sizeof(out));
	assert_string_equal(out, "");
}

static void test_parse_seconds_and_pid(void **state)
{
	double d = 7;
	int32_t pid = 7;

	assert_true(top_parse_seconds("2", 0.1, &d));
	assert_float_equal(d, 2, 0);
	assert_true(top_parse_seconds(" 0.5 ", 0.1, &d));
	assert_float_equal(d, 0.5, 0);
	/* what the "s" prompt once produced by appending to "2": never accepted as-is */
	d = 2;
	assert_false(top_parse_seconds("", 0.1, &d));
	assert_false(top_parse_seconds("abc", 0.1, &d));
	assert_false(top_parse_seconds("2s", 0.1, &d));
	assert_false(top_parse_seconds("0.05", 0.1, &d));
	assert_false(top_parse_seconds("86401", 0.1, &d));
	assert_false(top_parse_seconds("nan", 0.1, &d));
	assert_false(top_parse_seconds("inf", 0.1, &d));
	assert_float_equal(d, 2, 0); /* a bad answer keeps the old value */

	assert_true(top_parse_pid("4242", &pid));
	assert_int_equal(pid, 4242);
	assert_false(top_parse_pid("0", &pid));
	assert_false(top_parse_pid("-5", &pid));
	assert_false(top_parse_pid("12x", &pid));
	assert_false(top_parse_pid("2147483648", &pid));
	assert_false(top_parse_pid("", &pid));
	assert_int_equal(pid, 4242);
}

static void test_scroll_clamp(void **state)
{
	/* 100 lines in a 30-line pane: the last full page starts at 70 */
	assert_int_equal(top_scroll_clamp(0, 100, 30), 0);
	assert_int_equal(top_scroll_clamp(30, 100, 30), 30);
	assert_int_equal(top_scroll_clamp(90, 100, 30), 70);	       /* PgDn past the end */
	assert_int_equal(top_scroll_clamp(LONG_MAX / 2, 100, 30), 70); /* End */
	assert_int_equal(top_scroll_clamp(-5, 100, 30), 0);
	assert_int_equal(top_scroll_clamp(LONG_MIN / 2, 100, 30), 0); /* Home */
	/* content shorter than the pane does not scroll */
	assert_int_equal(top_scroll_clamp(10, 20, 30), 0);
	assert_int_equal(top_scroll_clamp(1, 30, 30), 0);
	assert_int_equal(top_scroll_clamp(3, 0, 30), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_humanize),
		cmocka_unit_test(test_percent),
		cmocka_unit_test(test_display_width),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_fit_zero_and_small_buffer),
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_bar),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_parse_seconds_and_pid),
		cmocka_unit_test(test_scroll_clamp),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
