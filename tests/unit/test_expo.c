/* Unit tests for daemon/lib/expo.c: number rendering, escaping, every family type in both
 * formats, the rules that keep families whole, and Accept negotiation. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "expo.h"

static struct expo *new_expo(enum expo_format format)
{
	struct expo *e = NULL;

	assert_int_equal(expo_new(format, &e), 0);
	assert_non_null(e);
	return e;
}

static char *finish(struct expo *e)
{
	char *body = NULL;
	size_t len = 0;

	assert_int_equal(expo_finish(e, &body, &len), 0);
	assert_non_null(body);
	assert_int_equal(len, strlen(body));
	expo_free(e);
	return body;
}

static void assert_double_renders(double v, const char *want)
{
	char buf[40];
	int n = expo_format_double(v, buf, sizeof(buf));

	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_double_rendering_is_canonical(void **state)
{
	assert_double_renders(0.001, "0.001");
	assert_double_renders(0.0001, "0.0001");
	assert_double_renders(0.00001, "1.0e-05");
	assert_double_renders(0.000025, "2.5e-05");
	assert_double_renders(0.1, "0.1");
	assert_double_renders(1, "1.0");
	assert_double_renders(10, "10.0");
	assert_double_renders(250.5, "250.5");
	assert_double_renders(123456, "123456.0");
	assert_double_renders(999999.5, "999999.5");
	assert_double_renders(1e6, "1.0e+06");
	assert_double_renders(1234567, "1.234567e+06");
	assert_double_renders(1e100, "1.0e+100");
	assert_double_renders(-2.5, "-2.5");
	assert_double_renders(0, "0.0");
	assert_double_renders(-0.0, "-0.0");
	assert_double_renders(NAN, "NaN");
	assert_double_renders(INFINITY, "+Inf");
	assert_double_renders(-INFINITY, "-Inf");
	assert_double_renders(0.3, "0.3");
	assert_double_renders(0.1 + 0.2, "0.30000000000000004");
}

static void test_double_rendering_round_trips(void **state)
{
	const double edges[] = {
		DBL_MAX,	   -DBL_MAX, DBL_MIN,	5e-324, 1e-4,  9.999999999999999e-5,
		999999.9999999999, 1e6,	     2.0 / 3.0, 1e21,	1e-300};
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char buf[40];
	double v;
	size_t i;

	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		expo_format_double(edges[i], buf, sizeof(buf));
		assert_true(strtod(buf, NULL) == edges[i]);
	}
	/* Arbitrary bit patterns (xorshift), skipping NaN and infinities. */
	for (i = 0; i < 30000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(&v, &x, sizeof(v));
		if (!isfinite(v))
			continue;
		assert_true(expo_format_double(v, buf, sizeof(buf)) < 32);
		if (strtod(buf, NULL) != v)
			fail_msg("%.17g rendered as %s does not read back", v, buf);
	}
}

static void test_counter_both_formats(void **state)
{
	const struct expo_label l[] = {{"vm", "web"}, {"path", "x2apic"}};
	struct expo *e;
	char *body;

	e = new_expo(EXPO_TEXT_0_0_4);
	assert_int_equal(expo_begin(e, "ipiv_ipis_sent", EXPO_COUNTER, "IPIs sent."), 0);
	assert_int_equal(expo_counter(e, l, 2, 18446744073709551615ull), 0);
	assert_int_equal(expo_counter(e, NULL, 0, 0), 0);
	body = finish(e);
	assert_string_equal(
		body, "# HELP ipiv_ipis_sent_total IPIs sent.\n"
		      "# TYPE ipiv_ipis_sent_total counter\n"
		      "ipiv_ipis_sent_total{vm=\"web\",path=\"x2apic\"} 18446744073709551615\n"
		      "ipiv_ipis_sent_total 0\n");
	free(body);

	e = new_expo(EXPO_OPENMETRICS_1_0_0);
	assert_int_equal(expo_begin(e, "ipiv_ipis_sent", EXPO_COUNTER, "IPIs sent."), 0);
	assert_int_equal(expo_counter(e, l, 1, 7), 0);
	assert_int_equal(expo_counter_f(e, l + 1, 1, 0.5), 0);
	body = finish(e);
	assert_string_equal(body, "# HELP ipiv_ipis_sent IPIs sent.\n"
				  "# TYPE ipiv_ipis_sent counter\n"
				  "ipiv_ipis_sent_total{vm=\"web\"} 7\n"
				  "ipiv_ipis_sent_total{path=\"x2apic\"} 0.5\n"
				  "# EOF\n");
	free(body);
}

static void test_gauge_and_info_both_formats(void **state)
{
	const struct expo_label l[] = {{"version", "1.2"}};
	struct expo *e;
	char *body;

	e = new_expo(EXPO_TEXT_0_0_4);
	assert_int_equal(expo_begin(e, "ipiv_vms", EXPO_GAUGE, "VMs seen."), 0);
	assert_int_equal(expo_gauge(e, NULL, 0, 3), 0);
	assert_int_equal(expo_gauge(e, l, 1, NAN), 0);
	assert_int_equal(expo_begin(e, "ipiv_build", EXPO_INFO, "Build."), 0);
	assert_int_equal(expo_info(e, l, 1), 0);
	body = finish(e);
	assert_string_equal(body, "# HELP ipiv_vms VMs seen.\n"
				  "# TYPE ipiv_vms gauge\n"
				  "ipiv_vms 3.0\n"
				  "ipiv_vms{version=\"1.2\"} NaN\n"
				  "# HELP ipiv_build_info Build.\n"
				  "# TYPE ipiv_build_info gauge\n"
				  "ipiv_build_info{version=\"1.2\"} 1\n");
	free(body);

	e = new_expo(EXPO_OPENMETRICS_1_0_0);
	assert_int_equal(expo_begin(e, "ipiv_build", EXPO_INFO, NULL), 0);
	assert_int_equal(expo_info(e, l, 1), 0);
	body = finish(e);
	assert_string_equal(body, "# TYPE ipiv_build info\n"
				  "ipiv_build_info{version=\"1.2\"} 1\n"
				  "# EOF\n");
	free(body);
}

static void test_histogram_buckets_are_cumulative_with_inf(void **state)
{
	const double le[] = {0.000001, 0.001, 1, 1e6};
	const uint64_t counts[] = {1, 0, 2, 3, 4};
	const struct expo_histogram h = {le, counts, 4, 12.25, NULL};
	const struct expo_label l[] = {{"vm", "a"}};
	const uint64_t only_inf = 5;
	const struct expo_histogram empty = {NULL, &only_inf, 0, 0, NULL};
	struct expo *e;
	char *body, *want;
	int fmt;

	for (fmt = EXPO_TEXT_0_0_4; fmt <= EXPO_OPENMETRICS_1_0_0; fmt++) {
		e = new_expo(fmt);
		assert_int_equal(expo_begin(e, "ipiv_delivery_seconds", EXPO_HISTOGRAM, "D."), 0);
		assert_int_equal(expo_histogram(e, l, 1, &h), 0);
		assert_int_equal(expo_histogram(e, NULL, 0, &empty), 0);
		body = finish(e);
		assert_true(asprintf(&want, "%s%s",
				     "# HELP ipiv_delivery_seconds D.\n"
				     "# TYPE ipiv_delivery_seconds histogram\n"
				     "ipiv_delivery_seconds_bucket{vm=\"a\",le=\"1.0e-06\"} 1\n"
				     "ipiv_delivery_seconds_bucket{vm=\"a\",le=\"0.001\"} 1\n"
				     "ipiv_delivery_seconds_bucket{vm=\"a\",le=\"1.0\"} 3\n"
				     "ipiv_delivery_seconds_bucket{vm=\"a\",le=\"1.0e+06\"} 6\n"
				     "ipiv_delivery_seconds_bucket{vm=\"a\",le=\"+Inf\"} 10\n"
				     "ipiv_delivery_seconds_sum{vm=\"a\"} 12.25\n"
				     "ipiv_delivery_seconds_count{vm=\"a\"} 10\n"
				     "ipiv_delivery_seconds_bucket{le=\"+Inf\"} 5\n"
				     "ipiv_delivery_seconds_sum 0.0\n"
				     "ipiv_delivery_seconds_count 5\n",
				     fmt == EXPO_OPENMETRICS_1_0_0 ? "# EOF\n" : "") > 0);
		assert_string_equal(body, want);
		free(want);
		free(body);
	}
}

/* Each layout's le texts are formatted once and reused while the layout repeats: series of
 * different layouts (and of one buffer rewritten in between) must each get their own. */
static void test_histogram_layouts_interleaved(void **state)
{
	const double a[] = {0.000001, 0.001, 1}, b[] = {0.000002, 0.002, 2}, c[] = {0.5};
	double reused[] = {0.000001, 0.001, 1};
	const uint64_t counts[] = {1, 2, 3, 4};
	const struct expo_label la[] = {{"vm", "a"}}, lb[] = {{"vm", "b"}}, lc[] = {{"vm", "c"}},
				lr[] = {{"vm", "r"}}, ls[] = {{"vm", "s"}};
	const struct expo_histogram ha = {a, counts, 3, 1, NULL}, hb = {b, counts, 3, 1, NULL},
				    hc = {c, counts, 1, 1, NULL}, hr = {reused, counts, 3, 1, NULL};
	const char *want[] = {
		"x_bucket{vm=\"a\",le=\"1.0e-06\"} 1\nx_bucket{vm=\"a\",le=\"0.001\"} 3\n"
		"x_bucket{vm=\"a\",le=\"1.0\"} 6\n",
		"x_bucket{vm=\"b\",le=\"2.0e-06\"} 1\nx_bucket{vm=\"b\",le=\"0.002\"} 3\n"
		"x_bucket{vm=\"b\",le=\"2.0\"} 6\n",
		"x_bucket{vm=\"c\",le=\"0.5\"} 1\nx_bucket{vm=\"c\",le=\"+Inf\"} 3\n",
		"x_bucket{vm=\"r\",le=\"1.0e-06\"} 1\nx_bucket{vm=\"r\",le=\"0.001\"} 3\n"
		"x_bucket{vm=\"r\",le=\"1.0\"} 6\n",
		"x_bucket{vm=\"s\",le=\"4.0e-06\"} 1\nx_bucket{vm=\"s\",le=\"0.004\"} 3\n"
		"x_bucket{vm=\"s\",le=\"4.0\"} 6\n",
	};
	struct expo *e = new_expo(EXPO_TEXT_0_0_4);
	char *body;
	size_t i;

	assert_int_equal(expo_begin(e, "x", EXPO_HISTOGRAM, "X."), 0);
	assert_int_equal(expo_histogram(e, la, 1, &ha), 0);
	assert_int_equal(expo_histogram(e, lb, 1, &hb), 0);
	assert_int_equal(expo_histogram(e, lc, 1, &hc), 0);
	assert_int_equal(expo_histogram(e, lr, 1, &hr), 0); /* same edges as a: from the cache */
	for (i = 0; i < 3; i++)
		reused[i] *= 4;
	assert_int_equal(expo_histogram(e, ls, 1, &hr), 0); /* same buffer, new edges */
	body = finish(e);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(body, want[i]))
			fail_msg("missing from the exposition:\n%s\nin:\n%s", want[i], body);
	free(body);
}

static void test_histogram_rejects_bad_bounds_and_overflow(void **state)
{
	const double unsorted[] = {1, 1};
	const double inf[] = {1, INFINITY};
	const double nan[] = {NAN};
	const double ok[] = {1};
	const uint64_t counts[] = {1, 2, 3};
	const uint64_t huge[] = {UINT64_MAX, 1};
	const struct expo_label le[] = {{"le", "1"}};
	struct expo_histogram h = {unsorted, counts, 2, 0, NULL};
	struct expo *e = new_expo(EXPO_TEXT_0_0_4);
	char *body;

	assert_int_equal(expo_begin(e, "h", EXPO_HISTOGRAM, NULL), 0);
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EINVAL);
	h.le = inf;
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EINVAL);
	h.le = nan;
	h.n_buckets = 1;
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EINVAL);
	h.le = ok;
	h.counts = huge;
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EOVERFLOW);
	h.counts = counts;
	h.sum = NAN;
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EINVAL);
	h.sum = 1;
	/* le belongs to the writer */
	assert_int_equal(expo_histogram(e, le, 1, &h), -EINVAL);
	assert_int_equal(expo_histogram(e, NULL, 0, NULL), -EINVAL);
	body = finish(e);
	assert_string_equal(body, "# TYPE h histogram\n");
	free(body);
}

static void test_label_values_are_escaped(void **state)
{
	const struct expo_label l[] = {
		{"vm", "a\\b\"c\nd"},
		{"bad", "x\xff\xc0\x80y"}, /* a stray byte and an overlong NUL */
		{"utf8", "caf\xc3\xa9 \xf0\x9f\x90\xa7"},
		{"empty", ""},
	};
	struct expo *e;
	char *body;
	int fmt;

	for (fmt = EXPO_TEXT_0_0_4; fmt <= EXPO_OPENMETRICS_1_0_0; fmt++) {
		e = new_expo(fmt);
		assert_int_equal(expo_begin(e, "g", EXPO_GAUGE, NULL), 0);
		assert_int_equal(expo_gauge(e, l, 4, 1), 0);
		body = finish(e);
		assert_non_null(strstr(body,
				       "g{vm=\"a\\\\b\\\"c\\nd\","
				       "bad=\"x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy\","
				       "utf8=\"caf\xc3\xa9 \xf0\x9f\x90\xa7\",empty=\"\"} 1.0\n"));
		free(body);
	}
}

static void test_help_escaping_differs_by_format(void **state)
{
	const char *help = "Line \"one\"\nback\\slash";
	struct expo *e;
	char *body;

	e = new_expo(EXPO_TEXT_0_0_4);
	assert_int_equal(expo_begin(e, "g", EXPO_GAUGE, help), 0);
	body = finish(e);
	assert_string_equal(body, "# HELP g Line \"one\"\\nback\\\\slash\n# TYPE g gauge\n");
	free(body);

	e = new_expo(EXPO_OPENMETRICS_1_0_0);
	assert_int_equal(expo_begin(e, "g", EXPO_GAUGE, help), 0);
	body = finish(e);
	assert_string_equal(body,
			    "# HELP g Line \\\"one\\\"\\nback\\\\slash\n# TYPE g gauge\n# EOF\n");
	free(body);
}

static void test_names_are_validated(void **state)
{
	const struct expo_label reserved[] = {{"__name__", "x"}};
	const struct expo_label digit[] = {{"1a", "x"}};
	const struct expo_label dup[] = {{"vm", "a"}, {"vm", "b"}};
	const struct expo_label null_value[] = {{"vm", NULL}};
	struct expo *e = new_expo(EXPO_TEXT_0_0_4);
	char *body;

	assert_true(expo_valid_metric_name("ipiv:rate_5m"));
	assert_true(expo_valid_metric_name("_x9"));
	assert_false(expo_valid_metric_name("9x"));
	assert_false(expo_valid_metric_name("a-b"));
	assert_false(expo_valid_metric_name(""));
	assert_false(expo_valid_metric_name("caf\xc3\xa9"));
	assert_false(expo_valid_label_name("a:b"));
	assert_false(expo_valid_label_name("__x"));
	assert_true(expo_valid_label_name("_x"));

	assert_int_equal(expo_begin(e, "a-b", EXPO_GAUGE, NULL), -EINVAL);
	assert_int_equal(expo_begin(e, NULL, EXPO_GAUGE, NULL), -EINVAL);
	assert_int_equal(expo_begin(e, "x_total", EXPO_COUNTER, NULL), -EINVAL);
	assert_int_equal(expo_begin(e, "x_info", EXPO_INFO, NULL), -EINVAL);
	assert_int_equal(expo_begin(e, "x", (enum expo_type)42, NULL), -EINVAL);
	assert_int_equal(expo_begin(e, "x", EXPO_GAUGE, NULL), 0);
	assert_int_equal(expo_gauge(e, reserved, 1, 1), -EINVAL);
	assert_int_equal(expo_gauge(e, digit, 1, 1), -EINVAL);
	assert_int_equal(expo_gauge(e, dup, 2, 1), -EINVAL);
	assert_int_equal(expo_gauge(e, null_value, 1, 1), -EINVAL);
	assert_int_equal(expo_gauge(e, NULL, 1, 1), -EINVAL);
	body = finish(e);
	/* Refused input left no trace. */
	assert_string_equal(body, "# TYPE x gauge\n");
	free(body);
}

static void test_families_cannot_be_split_or_mixed(void **state)
{
	struct expo *e = new_expo(EXPO_OPENMETRICS_1_0_0);
	char *body;
	size_t len;

	/* No family begun yet. */
	assert_int_equal(expo_gauge(e, NULL, 0, 1), -EINVAL);
	assert_int_equal(expo_begin(e, "a", EXPO_COUNTER, NULL), 0);
	assert_int_equal(expo_gauge(e, NULL, 0, 1), -EINVAL);
	assert_int_equal(expo_histogram(e, NULL, 0, NULL), -EINVAL);
	assert_int_equal(expo_counter_f(e, NULL, 0, NAN), -EINVAL);
	assert_int_equal(expo_counter_f(e, NULL, 0, -1), -EINVAL);
	assert_int_equal(expo_counter(e, NULL, 0, 1), 0);
	assert_int_equal(expo_begin(e, "b", EXPO_GAUGE, NULL), 0);
	/* Going back to a is refused, as is any family whose samples would clash with a's. */
	assert_int_equal(expo_begin(e, "a", EXPO_COUNTER, NULL), -EEXIST);
	assert_int_equal(expo_begin(e, "a", EXPO_GAUGE, NULL), -EEXIST);
	assert_int_equal(expo_begin(e, "a_total", EXPO_GAUGE, NULL), -EEXIST);
	assert_int_equal(expo_begin(e, "b_info", EXPO_GAUGE, NULL), 0);
	assert_int_equal(expo_begin(e, "b", EXPO_INFO, NULL), -EEXIST);
	assert_int_equal(expo_begin(e, "h_count", EXPO_GAUGE, NULL), 0);
	assert_int_equal(expo_begin(e, "h", EXPO_HISTOGRAM, NULL), -EEXIST);
	/* A refused begin leaves the current family open. */
	assert_int_equal(expo_gauge(e, NULL, 0, 2), 0);
	body = finish(e);
	assert_string_equal(body, "# TYPE a counter\n"
				  "a_total 1\n"
				  "# TYPE b gauge\n"
				  "# TYPE b_info gauge\n"
				  "# TYPE h_count gauge\n"
				  "h_count 2.0\n"
				  "# EOF\n");
	free(body);

	e = new_expo(EXPO_TEXT_0_0_4);
	assert_int_equal(expo_begin(e, "g", EXPO_GAUGE, NULL), 0);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	assert_int_equal(expo_finish(e, &body, &len), -EINVAL);
	assert_int_equal(expo_gauge(e, NULL, 0, 1), -EINVAL);
	assert_int_equal(expo_begin(e, "h", EXPO_GAUGE, NULL), -EINVAL);
	free(body);
	expo_free(e);

	assert_int_equal(expo_new((enum expo_format)7, &e), -EINVAL);
}

static void assert_negotiates(const char *accept, enum expo_format want)
{
	if (expo_negotiate(accept) != want)
		fail_msg("Accept \"%s\" gave the wrong format", accept ? accept : "(null)");
}

static void test_accept_negotiation(void **state)
{
	const enum expo_format om = EXPO_OPENMETRICS_1_0_0, text = EXPO_TEXT_0_0_4;

	/* What Prometheus 2.x and 3.x send. */
	assert_negotiates("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
			  "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
			  om);
	assert_negotiates("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
			  "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
			  om);
	assert_negotiates("application/openmetrics-text; version=0.0.1", om);
	assert_negotiates("Application/OpenMetrics-Text", om);
	assert_negotiates("application/openmetrics-text; version=\"1.0.0\"; charset=utf-8", om);
	assert_negotiates("text/plain;q=0.9, application/openmetrics-text;q=0.95", om);
	/* Text wins on q, on order for a tie, or because OpenMetrics is refused. */
	assert_negotiates("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5",
			  text);
	assert_negotiates("*/*, application/openmetrics-text", text);
	assert_negotiates("application/openmetrics-text;q=0, text/plain", text);
	assert_negotiates("application/openmetrics-text;q=0", text);
	/* Versions we cannot produce. */
	assert_negotiates("application/openmetrics-text;version=2.0.0", text);
	assert_negotiates("application/openmetrics-text;version=2.0.0,text/plain;version=1.0.0",
			  text);
	/* A bad q invalidates only its own range. */
	assert_negotiates("application/openmetrics-text;q=1.5", text);
	assert_negotiates("application/openmetrics-text;q=abc", text);
	assert_negotiates("application/openmetrics-text;q=-0.1", text);
	assert_negotiates("application/openmetrics-text;q=", text);
	assert_negotiates("text/plain;q=bogus, application/openmetrics-text;q=0.1", om);
	/* Garbage. */
	assert_negotiates(NULL, text);
	assert_negotiates("", text);
	assert_negotiates(",,,;;;===", text);
	assert_negotiates("application/openmetrics-text;;", om);
	assert_negotiates("application/openmetrics-textual", text);
	assert_negotiates("image/png", text);
	assert_negotiates("\xff\xfe;q=1", text);

	assert_non_null(
		strstr(expo_content_type(om), "application/openmetrics-text; version=1.0.0"));
	assert_non_null(strstr(expo_content_type(text), "text/plain; version=0.0.4"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_double_rendering_is_canonical),
		cmocka_unit_test(test_double_rendering_round_trips),
		cmocka_unit_test(test_counter_both_formats),
		cmocka_unit_test(test_gauge_and_info_both_formats),
		cmocka_unit_test(test_histogram_buckets_are_cumulative_with_inf),
		cmocka_unit_test(test_histogram_layouts_interleaved),
		cmocka_unit_test(test_histogram_rejects_bad_bounds_and_overflow),
		cmocka_unit_test(test_label_values_are_escaped),
		cmocka_unit_test(test_help_escaping_differs_by_format),
		cmocka_unit_test(test_names_are_validated),
		cmocka_unit_test(test_families_cannot_be_split_or_mixed),
		cmocka_unit_test(test_accept_negotiation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
