/* Unit tests for daemon/lib/log.c: logfmt and JSON lines, escaping of what a message holds
 * (quotes, newlines, control bytes), the level filter and bad flag values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "log.h"

static char *buf;
static size_t len;
static FILE *mem;

static int setup(void **state)
{
	mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	ipiv_log_set_stream(mem);
	assert_int_equal(ipiv_log_set_level("info"), 0);
	assert_int_equal(ipiv_log_set_format("logfmt"), 0);
	return 0;
}

static int teardown(void **state)
{
	ipiv_log_set_stream(NULL);
	fclose(mem);
	free(buf);
	buf = NULL;
	return 0;
}

static void test_logfmt(void **state)
{
	log_info("httpd", "closed a connection from %s: %s\n", "127.0.0.1", "say \"hi\"\\x");
	fflush(mem);
	/* ts=2026-12-06T08:10:00.123Z level=... */
	assert_int_equal(strncmp(buf, "ts=", 3), 0);
	assert_int_equal(buf[13], 'T');
	assert_int_equal(buf[26], 'Z');
	assert_non_null(strstr(buf, " level=info component=httpd msg=\"closed a connection from "
				    "127.0.0.1: say \\\"hi\\\"\\\\x\"\n"));
	assert_int_equal(strchr(buf, '\n') - buf + 1, (long)len); /* one line */
}

static void test_json_escapes_everything(void **state)
{
	json_t *doc;
	json_error_t err;

	assert_int_equal(ipiv_log_set_format("json"), 0);
	log_warn("collector", "line1\nline2\ttab \x01 \"q\" caf\xc3\xa9");
	fflush(mem);
	assert_int_equal(strchr(buf, '\n') - buf + 1, (long)len);
	doc = json_loads(buf, 0, &err);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(doc, "component")), "collector");
	assert_string_equal(json_string_value(json_object_get(doc, "msg")),
			    "line1\nline2\ttab \x01 \"q\" caf\xc3\xa9");
	assert_int_equal(strlen(json_string_value(json_object_get(doc, "ts"))), 24);
	json_decref(doc);
}

static void test_level_filter(void **state)
{
	log_debug("ipivd", "not shown");
	fflush(mem);
	assert_int_equal(len, 0);
	assert_false(ipiv_log_enabled(IPIV_LOG_DEBUG));
	assert_int_equal(ipiv_log_set_level("error"), 0);
	log_warn("ipivd", "not shown either");
	log_error("ipivd", "shown");
	fflush(mem);
	assert_non_null(strstr(buf, "level=error"));
	assert_null(strstr(buf, "not shown"));
	assert_int_equal(ipiv_log_set_level("debug"), 0);
	assert_true(ipiv_log_enabled(IPIV_LOG_DEBUG));
}

static void test_bad_values(void **state)
{
	assert_int_equal(ipiv_log_set_level("verbose"), -EINVAL);
	assert_int_equal(ipiv_log_set_level(NULL), -EINVAL);
	assert_int_equal(ipiv_log_set_format("text"), -EINVAL);
	assert_int_equal(ipiv_log_set_format(NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_logfmt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_escapes_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
