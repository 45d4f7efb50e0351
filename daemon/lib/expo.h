/* Prometheus exposition writer: text format 0.0.4, OpenMetrics 1.0.0 and the delimited
 * protobuf format (native histograms) into a growable buffer, plus negotiation of the format
 * from an HTTP Accept header. */
#ifndef IPIV_EXPO_H
#define IPIV_EXPO_H

#include <stddef.h>
#include <stdint.h>

enum expo_format {
	EXPO_TEXT_0_0_4,
	EXPO_OPENMETRICS_1_0_0,
	/* io.prometheus.client.MetricFamily messages, each after its length (a varint): what
	 * Prometheus asks for with --enable-feature=native-histograms */
	EXPO_PROTOBUF_DELIMITED,
};

enum expo_type {
	EXPO_COUNTER,
	EXPO_GAUGE,
	EXPO_HISTOGRAM,
	EXPO_INFO,
};

struct expo_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
	const char *value; /* any text; invalid UTF-8 bytes are written as U+FFFD */
};

/*
 * The same observations as native (exponential) buckets, for the protobuf format only: bucket
 * i holds (b^(i-1), b^i] with b = 2^(2^-schema), and |v| <= zero_threshold counts in
 * zero_count. index[] ascends strictly; count[j] observations fell in bucket index[j]; no
 * negative buckets. zero_count plus every count[j] must be the histogram's total.
 */
struct expo_native {
	int32_t schema; /* -4 to 8 */
	double zero_threshold;
	uint64_t zero_count;
	const int32_t *index;
	const uint64_t *count;
	size_t n;
};

/*
 * One histogram observation set. Buckets are given per bucket, not cumulative: counts[i]
 * observations fell in (le[i-1], le[i]], and counts[n_buckets] above the last bound. The
 * writer makes them cumulative and adds le="+Inf" and _count (the total), so the three
 * always agree. le must be finite and strictly increasing. The text formats ignore native;
 * the protobuf format writes both, so a scraper that takes classic buckets gets the same.
 */
struct expo_histogram {
	const double *le;
	const uint64_t *counts; /* n_buckets + 1 entries */
	size_t n_buckets;
	double sum;
	const struct expo_native *native; /* NULL: classic buckets only */
};

struct expo;

/*
 * Families are written whole: expo_begin() starts a family and closes the previous one,
 * samples always go to the family begun last, and a name (or a sample name it implies, such
 * as foo_total for counter foo) can be begun only once per exposition (-EEXIST). So a family
 * can never be split in two, whatever order the caller visits its data in.
 *
 * Names are given without type suffixes: counter "ipiv_ipis_sent" is exposed as
 * ipiv_ipis_sent_total samples (and "# TYPE ipiv_ipis_sent_total counter" in 0.0.4, where
 * the TYPE line names the sample); info "ipiv_build" as ipiv_build_info (type info in
 * OpenMetrics, gauge in 0.0.4); histogram "x" as x_bucket{le}, x_sum, x_count. A counter
 * name ending in _total or an info name ending in _info is refused (-EINVAL).
 *
 * Invalid input (bad names, duplicate label names, a sample of the wrong type, a negative or
 * NaN counter) returns -EINVAL and writes nothing, so the exposition stays valid without the
 * bad sample. An allocation failure is remembered and reported by expo_finish().
 *
 * Numbers: integer counts (uint64_t) are written exactly. Doubles are written as the shortest
 * decimal that reads back as the same double, in fixed notation with at least one fractional
 * digit when 1e-4 <= |v| < 1e6 ("0.001", "1.0", "250.5") and in scientific notation with a
 * two-digit exponent otherwise ("1.0e+06", "2.5e-05"); non-finite values as NaN, +Inf, -Inf.
 * The same rendering is used for le in both formats, so a bucket's label never changes.
 *
 * The protobuf format carries the same families under the same sample names (counter
 * "x_total", info "x_info" as a gauge of 1, histogram "x"), numbers as doubles; a family
 * with no sample is left out, and the body is binary (its length, not a NUL, ends it).
 */
int expo_new(enum expo_format format, struct expo **out);
void expo_free(struct expo *e);

int expo_begin(struct expo *e, const char *name, enum expo_type type, const char *help);
int expo_counter(struct expo *e, const struct expo_label *labels, size_t n_labels, uint64_t value);
int expo_counter_f(struct expo *e, const struct expo_label *labels, size_t n_labels, double value);
int expo_gauge(struct expo *e, const struct expo_label *labels, size_t n_labels, double value);
int expo_info(struct expo *e, const struct expo_label *labels, size_t n_labels);
int expo_histogram(struct expo *e, const struct expo_label *labels, size_t n_labels,
		   const struct expo_histogram *h);

/* Ends the exposition (OpenMetrics: "# EOF") and hands the body to the caller (free() it).
 * Later writes return -EINVAL. */
int expo_finish(struct expo *e, char **body, size_t *len);

const char *expo_content_type(enum expo_format format);
/* Whether the format carries native histogram buckets (struct expo_native): a writer can
 * skip computing them otherwise. */
int expo_wants_native(const struct expo *e);

/*
 * Picks the format for an Accept header, by the acceptable media range with the highest q
 * (first listed on a tie): protobuf for application/vnd.google.protobuf with
 * proto=io.prometheus.client.MetricFamily and encoding=delimited; OpenMetrics for
 * application/openmetrics-text with version 1.0.0, 0.0.1 or none; text 0.0.4 otherwise,
 * including for NULL, empty or unparsable headers.
 */
enum expo_format expo_negotiate(const char *accept);

int expo_valid_metric_name(const char *name);
int expo_valid_label_name(const char *name);
/* Writes v as described above into buf (32 bytes always suffice); returns its length. */
int expo_format_double(double v, char *buf, size_t size);

/* For writers that emit many families: return the first error of a call. */
#define EXPO_TRY(expr)                  \
	do {                            \
		int _expo_r = (expr);   \
		if (_expo_r < 0)        \
			return _expo_r; \
	} while (0)

/* A label in an initializer list: EXPO_LABEL("vm", name). */
#define EXPO_LABEL(n, v)                  \
	{                                 \
		.name = (n), .value = (v) \
	}

#endif
