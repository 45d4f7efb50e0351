/* Unit tests for the protobuf exposition (daemon/lib/expo_proto.c through expo.h): Accept
 * negotiation of Prometheus' header, every family type decoded back with protobuf-c, native
 * buckets as spans and deltas, and the native input expo refuses. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "expo.h"
#include "metrics.pb-c.h"

typedef Io__Prometheus__Client__MetricFamily pb_family;

/* What Prometheus 2.42 sends with --enable-feature=native-histograms (scrape/scrape.go). */
#define PROMETHEUS_NATIVE_ACCEPT                                                            \
	"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=" \
	"delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/"           \
	"openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

static void test_negotiation(void **state)
{
	assert_int_equal(expo_negotiate(PROMETHEUS_NATIVE_ACCEPT), EXPO_PROTOBUF_DELIMITED);
	assert_int_equal(expo_negotiate("application/vnd.google.protobuf; "
					"proto=io.prometheus.client.MetricFamily; "
					"encoding=delimited"),
			 EXPO_PROTOBUF_DELIMITED);
	/* the text encodings of protobuf are not offered; the next range wins */
	assert_int_equal(expo_negotiate("application/vnd.google.protobuf;proto=io.prometheus."
					"client.MetricFamily;encoding=text,application/"
					"openmetrics-text;q=0.5"),
			 EXPO_OPENMETRICS_1_0_0);
	assert_int_equal(expo_negotiate("application/vnd.google.protobuf;encoding=delimited"),
			 EXPO_TEXT_0_0_4);
	assert_int_equal(expo_negotiate("application/vnd.google.protobuf;proto=other.Message;"
					"encoding=delimited"),
			 EXPO_TEXT_0_0_4);
	/* a lower q loses */
	assert_int_equal(expo_negotiate("application/vnd.google.protobuf;proto=io.prometheus."
					"client.MetricFamily;encoding=delimited;q=0.4,"
					"application/openmetrics-text;version=1.0.0;q=0.8"),
			 EXPO_OPENMETRICS_1_0_0);
	assert_string_equal(expo_content_type(EXPO_PROTOBUF_DELIMITED),
			    "application/vnd.google.protobuf; "
			    "proto=io.prometheus.client.MetricFamily; encoding=delimited");
}

/* Splits a delimited body into families (up to max); fails on any malformed framing. */
static size_t decode(const char *body, size_t len, pb_family **out, size_t max)
{
	const uint8_t *p = (const uint8_t *)body, *end = p + len;
	size_t n = 0;

	while (p < end) {
		uint64_t size = 0;
		unsigned shift = 0;

		do {
			assert_true(p < end && shift < 64);
			size |= (uint64_t)(*p & 0x7f) << shift;
			shift += 7;
		} while (*p++ & 0x80);
		assert_true(size <= (uint64_t)(end - p));
		assert_true(n < max);
		out[n] = io__prometheus__client__metric_family__unpack(NULL, size, p);
		assert_non_null(out[n]);
		n++;
		p += size;
	}
	return n;
}

static void free_families(pb_family **f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		io__prometheus__client__metric_family__free_unpacked(f[i], NULL);
}

static void test_every_type_decodes(void **state)
{
	const double le[] = {0.001, 0.01};
	const uint64_t counts[] = {1, 2, 3};
	const int32_t index[] = {-10, -9, -6, 3};
	const uint64_t ncount[] = {2, 1, 1, 1};
	const struct expo_native native = {.schema = 4,
					   .zero_threshold = 1e-7,
					   .zero_count = 1,
					   .index = index,
					   .count = ncount,
					   .n = 4};
	const struct expo_histogram h = {le, counts, 2, 0.5, &native};
	const struct expo_label l[] = {{"vm", "we\"b"}, {"path", "x2apic_msr"}};
	struct expo *e;
	pb_family *f[8];
	char *body;
	size_t len, n;

	assert_int_equal(expo_new(EXPO_PROTOBUF_DELIMITED, &e), 0);
	assert_true(expo_wants_native(e));
	assert_int_equal(expo_begin(e, "c", EXPO_COUNTER, "A counter."), 0);
	assert_int_equal(expo_counter(e, l, 2, 7), 0);
	assert_int_equal(expo_counter_f(e, l, 1, 2.5), 0);
	assert_int_equal(expo_begin(e, "empty", EXPO_GAUGE, "No sample: left out."), 0);
	assert_int_equal(expo_begin(e, "g", EXPO_GAUGE, NULL), 0);
	assert_int_equal(expo_gauge(e, NULL, 0, -1.5), 0);
	assert_int_equal(expo_begin(e, "build", EXPO_INFO, "Info."), 0);
	assert_int_equal(expo_info(e, l, 1), 0);
	assert_int_equal(expo_begin(e, "h_seconds", EXPO_HISTOGRAM, "A histogram."), 0);
	assert_int_equal(expo_histogram(e, l, 2, &h), 0);
	/* the names rules are the text formats' */
	assert_int_equal(expo_begin(e, "c", EXPO_GAUGE, NULL), -EEXIST);
	assert_int_equal(expo_counter(e, l, 1, 1), -EINVAL);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);

	n = decode(body, len, f, 8);
	assert_int_equal(n, 4);
	assert_string_equal(f[0]->name, "c_total");
	assert_string_equal(f[0]->help, "A counter.");
	assert_int_equal(f[0]->type, IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER);
	assert_int_equal(f[0]->n_metric, 2);
	assert_int_equal(f[0]->metric[0]->n_label, 2);
	assert_string_equal(f[0]->metric[0]->label[0]->name, "vm");
	assert_string_equal(f[0]->metric[0]->label[0]->value, "we\"b");
	assert_string_equal(f[0]->metric[0]->label[1]->value, "x2apic_msr");
	assert_true(f[0]->metric[0]->counter->value == 7);
	assert_true(f[0]->metric[1]->counter->value == 2.5);
	assert_null(f[0]->metric[0]->gauge);

	assert_string_equal(f[1]->name, "g");
	assert_null(f[1]->help);
	assert_int_equal(f[1]->type, IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE);
	assert_int_equal(f[1]->metric[0]->n_label, 0);
	assert_true(f[1]->metric[0]->gauge->value == -1.5);

	assert_string_equal(f[2]->name, "build_info");
	assert_int_equal(f[2]->type, IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE);
	assert_true(f[2]->metric[0]->gauge->value == 1);

	assert_string_equal(f[3]->name, "h_seconds");
	assert_int_equal(f[3]->type, IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM);
	{
		const Io__Prometheus__Client__Histogram *ph = f[3]->metric[0]->histogram;
		/* -10, -9 | gap of 2 filled: -8, -7 empty | -6 | a new span: 3 */
		const int64_t want_deltas[] = {2, -1, -1, 0, 1, 0};

		assert_non_null(ph);
		assert_int_equal(ph->sample_count, 6);
		assert_true(ph->sample_sum == 0.5);
		assert_int_equal(ph->n_bucket, 2);
		assert_true(ph->bucket[0]->upper_bound == 0.001);
		assert_int_equal(ph->bucket[0]->cumulative_count, 1);
		assert_int_equal(ph->bucket[1]->cumulative_count, 3);
		assert_true(ph->has_schema);
		assert_int_equal(ph->schema, 4);
		assert_true(ph->zero_threshold == 1e-7);
		assert_int_equal(ph->zero_count, 1);
		assert_int_equal(ph->n_positive_span, 2);
		assert_int_equal(ph->positive_span[0]->offset, -10);
		assert_int_equal(ph->positive_span[0]->length, 5);
		assert_int_equal(ph->positive_span[1]->offset, 8); /* -5 .. 2 skipped */
		assert_int_equal(ph->positive_span[1]->length, 1);
		assert_int_equal(ph->n_positive_delta, 6);
		for (size_t i = 0; i < 6; i++)
			assert_int_equal(ph->positive_delta[i], want_deltas[i]);
		assert_int_equal(ph->n_negative_span, 0);
	}
	free_families(f, n);
	free(body);
}

/* A histogram with nothing in native buckets still reads as native: an empty span. */
static void test_empty_native(void **state)
{
	const double le[] = {1};
	const uint64_t counts[] = {0, 0};
	const struct expo_native native = {.schema = 4, .zero_threshold = 6.3e-8};
	const struct expo_histogram h = {le, counts, 1, 0, &native};
	struct expo *e;
	pb_family *f[2];
	char *body;
	size_t len;

	assert_int_equal(expo_new(EXPO_PROTOBUF_DELIMITED, &e), 0);
	assert_int_equal(expo_begin(e, "h", EXPO_HISTOGRAM, NULL), 0);
	assert_int_equal(expo_histogram(e, NULL, 0, &h), 0);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	assert_int_equal(decode(body, len, f, 2), 1);
	assert_int_equal(f[0]->metric[0]->histogram->n_positive_span, 1);
	assert_int_equal(f[0]->metric[0]->histogram->positive_span[0]->length, 0);
	assert_int_equal(f[0]->metric[0]->histogram->n_positive_delta, 0);
	free_families(f, 1);
	free(body);
}

static void test_native_rejected(void **state)
{
	const double le[] = {1};
	const uint64_t counts[] = {2, 1};
	const int32_t up[] = {1, 2}, down[] = {2, 1};
	const uint64_t c2[] = {1, 1}, c1[] = {1, 0};
	struct expo_native native = {
		.schema = 4, .index = up, .count = c2, .n = 2, .zero_count = 1};
	struct expo_histogram h = {le, counts, 1, 0, &native};
	struct expo *e;
	char *body;
	size_t len;

	assert_int_equal(expo_new(EXPO_PROTOBUF_DELIMITED, &e), 0);
	assert_int_equal(expo_begin(e, "h", EXPO_HISTOGRAM, NULL), 0);
	assert_int_equal(expo_histogram(e, NULL, 0, &h), 0);
	native.schema = 9;
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EINVAL);
	native.schema = 4;
	native.index = down;
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EINVAL);
	native.index = up;
	native.count = c1; /* 1 + 1 + 0: not the 3 of the classic buckets */
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EINVAL);
	native.count = c2;
	native.zero_threshold = NAN;
	assert_int_equal(expo_histogram(e, NULL, 0, &h), -EINVAL);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	free(body);
}

/* The text formats ignore native buckets: the same bytes with and without them. */
static void test_text_ignores_native(void **state)
{
	const double le[] = {1};
	const uint64_t counts[] = {2, 1};
	const int32_t index[] = {0};
	const uint64_t c[] = {3};
	const struct expo_native native = {.schema = 0, .index = index, .count = c, .n = 1};
	struct expo_histogram h = {le, counts, 1, 0.5, &native};
	char *body[2];
	size_t len[2];

	for (int i = 0; i < 2; i++) {
		struct expo *e;

		h.native = i ? &native : NULL;
		assert_int_equal(expo_new(EXPO_TEXT_0_0_4, &e), 0);
		assert_false(expo_wants_native(e));
		assert_int_equal(expo_begin(e, "h", EXPO_HISTOGRAM, NULL), 0);
		assert_int_equal(expo_histogram(e, NULL, 0, &h), 0);
		assert_int_equal(expo_finish(e, &body[i], &len[i]), 0);
		expo_free(e);
	}
	assert_int_equal(len[0], len[1]);
	assert_string_equal(body[0], body[1]);
	free(body[0]);
	free(body[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_every_type_decodes),
		cmocka_unit_test(test_empty_native),
		cmocka_unit_test(test_native_rejected),
		cmocka_unit_test(test_text_ignores_native),
	};

	return cmocka_run_group_tests_name("expo_proto", tests, NULL, NULL);
}
