/* Prometheus exposition writer (text 0.0.4, OpenMetrics 1.0.0; protobuf through
 * expo_proto.c) and Accept negotiation. The rules callers rely on are in expo.h. */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expo.h"
#include "expo_proto.h"
#include "strbuf.h"

#define EXPO_MAX_SUFFIXES 4
#define EXPO_DOUBLE_MAX	  32 /* expo_format_double's longest text and its NUL */

struct expo {
	enum expo_format format;
	struct strbuf out;
	/* Every metric name a begun family uses, so no family can be begun twice. */
	char **names;
	size_t n_names;
	size_t cap_names;
	bool open; /* a family is current */
	bool finished;
	enum expo_type type;
	char *family;	    /* name of the current family, as given to expo_begin() */
	struct expo_pb *pb; /* EXPO_PROTOBUF_DELIMITED: the family being built */
	/* The le texts of the last bucket layout written: every series of a layout has the same
	 * edges, so each is formatted once per exposition rather than once per bucket line. */
	double *le_edges;
	char (*le_text)[EXPO_DOUBLE_MAX];
	size_t n_le, cap_le;
	/* A histogram's series up to its le value, `x_bucket{vm="a",le="`: built once per
	 * histogram, copied before each bucket line. */
	struct strbuf bucket_prefix;
};

static const char *const type_suffixes[][EXPO_MAX_SUFFIXES] = {
	[EXPO_COUNTER] = {"_total", "_created"},
	[EXPO_GAUGE] = {NULL},
	[EXPO_HISTOGRAM] = {"_bucket", "_sum", "_count", "_created"},
	[EXPO_INFO] = {"_info"},
};

int expo_new(enum expo_format format, struct expo **out)
{
	struct expo *e;

	if (format != EXPO_TEXT_0_0_4 && format != EXPO_OPENMETRICS_1_0_0 &&
	    format != EXPO_PROTOBUF_DELIMITED)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->format = format;
	if (format == EXPO_PROTOBUF_DELIMITED && expo_pb_new(&e->pb) < 0) {
		free(e);
		return -ENOMEM;
	}
	*out = e;
	return 0;
}

void expo_free(struct expo *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->n_names; i++)
		free(e->names[i]);
	free(e->names);
	free(e->family);
	expo_pb_free(e->pb);
	free(e->le_edges);
	free(e->le_text);
	strbuf_release(&e->bucket_prefix);
	strbuf_release(&e->out);
	free(e);
}

const char *expo_content_type(enum expo_format format)
{
	if (format == EXPO_OPENMETRICS_1_0_0)
		return "application/openmetrics-text; version=1.0.0; charset=utf-8";
	if (format == EXPO_PROTOBUF_DELIMITED)
		return "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
		       "encoding=delimited";
	return "text/plain; version=0.0.4; charset=utf-8";
}

int expo_wants_native(const struct expo *e)
{
	return e->format == EXPO_PROTOBUF_DELIMITED;
}

int expo_valid_metric_name(const char *name)
{
	const char *p;

	if (!name || !*name || isdigit((unsigned char)*name))
		return 0;
	for (p = name; *p; p++) {
		if (!(isascii((unsigned char)*p) &&
		      (isalnum((unsigned char)*p) || *p == '_' || *p == ':')))
			return 0;
	}
	return 1;
}

int expo_valid_label_name(const char *name)
{
	const char *p;

	if (!name || !*name || isdigit((unsigned char)*name))
		return 0;
	/* Names starting with __ are reserved for Prometheus' own use. */
	if (name[0] == '_' && name[1] == '_')
		return 0;
	for (p = name; *p; p++) {
		if (!(isascii((unsigned char)*p) && (isalnum((unsigned char)*p) || *p == '_')))
			return 0;
	}
	return 1;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

int expo_format_double(double v, char *buf, size_t size)
{
	char sci[40], digits[20];
	int prec, exp, nd, i, n;
	const char *sign = signbit(v) ? "-" : "";
	char *e;

	if (isnan(v))
		return snprintf(buf, size, "NaN");
	if (isinf(v))
		return snprintf(buf, size, "%sInf", v > 0 ? "+" : "-");
	if (v == 0)
		return snprintf(buf, size, "%s0.0", sign);

	/*
	 * Shortest significand that reads back as the same double. A double is within 1.2e-16
	 * of any shorter decimal that reads back as it, closer than half a unit of the 15th
	 * digit, so 15 significant digits rounded show that decimal with zeros after it (cut
	 * below); only when 15 digits do not read back are 16 and then 17 needed. Subnormals
	 * have fewer bits than that, so they try every precision.
	 */
	for (prec = fabs(v) < DBL_MIN ? 0 : 14; prec < 17; prec++) {
		snprintf(sci, sizeof(sci), "%.*e", prec, fabs(v));
		if (strtod(sci, NULL) == fabs(v))
			break;
	}
	e = strchr(sci, 'e');
	exp = atoi(e + 1);
	nd = 0;
	for (i = 0; sci + i < e; i++) {
		if (isdigit((unsigned char)sci[i]))
			digits[nd++] = sci[i];
	}
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';

	if (exp >= -4 && exp < 6) {
		char fixed[40];
		int pos = 0, point = exp + 1; /* digits before the decimal point */

		if (point <= 0) {
			pos += snprintf(fixed + pos, sizeof(fixed) - pos, "0.");
			for (i = 0; i < -point; i++)
				fixed[pos++] = '0';
			pos += snprintf(fixed + pos, sizeof(fixed) - pos, "%s", digits);
		} else {
			for (i = 0; i < point; i++)
				fixed[pos++] = i < nd ? digits[i] : '0';
			fixed[pos++] = '.';
			if (nd > point)
				pos += snprintf(fixed + pos, sizeof(fixed) - pos, "%s",
						digits + point);
			else
				fixed[pos++] = '0';
		}
		fixed[pos] = '\0';
		n = snprintf(buf, size, "%s%s", sign, fixed);
	} else {
		n = snprintf(buf, size, "%s%c.%se%c%02d", sign, digits[0],
			     nd > 1 ? digits + 1 : "0", exp < 0 ? '-' : '+', abs(exp));
	}
	return n;
}

/* Writes s escaped for a label value (or an OpenMetrics HELP text when quote is true: the
 * same rules); 0.0.4 HELP text escapes only backslash and newline (the first two). */
static void put_escaped(struct strbuf *sb, const char *s, bool quote)
{
	static const struct strbuf_escape label[] = {
		{'\\', "\\\\"},
		{'\n', "\\n"},
		{'"', "\\\""},
	};

	strbuf_put_escaped(sb, s, label, quote ? 3 : 2);
}

static int remember_name(struct expo *e, const char *base, const char *suffix)
{
	size_t i;
	char *name;

	if (asprintf(&name, "%s%s", base, suffix ? suffix : "") < 0)
		return -ENOMEM;
	for (i = 0; i < e->n_names; i++) {
		if (strcmp(e->names[i], name) == 0) {
			free(name);
			return -EEXIST;
		}
	}
	if (e->n_names == e->cap_names) {
		size_t cap = e->cap_names ? e->cap_names * 2 : 32;
		char **names = realloc(e->names, cap * sizeof(*names));

		if (!names) {
			free(name);
			return -ENOMEM;
		}
		e->names = names;
		e->cap_names = cap;
	}
	e->names[e->n_names++] = name;
	return 0;
}

static int check_names_free(const struct expo *e, const char *base, enum expo_type type)
{
	size_t i, j, lb = strlen(base);

	for (i = 0; i < e->n_names; i++) {
		const char *known = e->names[i];

		if (strncmp(known, base, lb) != 0)
			continue;
		if (known[lb] == '\0')
			return -EEXIST;
		for (j = 0; j < EXPO_MAX_SUFFIXES && type_suffixes[type][j]; j++) {
			if (strcmp(known + lb, type_suffixes[type][j]) == 0)
				return -EEXIST;
		}
	}
	return 0;
}

int expo_begin(struct expo *e, const char *name, enum expo_type type, const char *help)
{
	const char *type_word, *type_name_suffix = "";
	bool om = e->format == EXPO_OPENMETRICS_1_0_0;
	size_t i;
	char *family;
	int err;

	if (e->finished || !expo_valid_metric_name(name) || type < EXPO_COUNTER || type > EXPO_INFO)
		return -EINVAL;
	if ((type == EXPO_COUNTER && ends_with(name, "_total")) ||
	    (type == EXPO_INFO && ends_with(name, "_info")))
		return -EINVAL;
	err = check_names_free(e, name, type);
	if (err)
		return err;
	family = strdup(name);
	if (!family)
		return -ENOMEM;
	err = remember_name(e, name, NULL);
	for (i = 0; !err && i < EXPO_MAX_SUFFIXES && type_suffixes[type][i]; i++)
		err = remember_name(e, name, type_suffixes[type][i]);
	if (err) {
		free(family);
		return err;
	}
	if (e->pb) {
		err = expo_pb_begin(e->pb, &e->out, name, type, help);
		if (err) {
			free(family);
			return err;
		}
		goto begun;
	}

	switch (type) {
	case EXPO_COUNTER:
		type_word = "counter";
		/* In 0.0.4 the TYPE line names the samples, which carry _total. */
		if (!om)
			type_name_suffix = "_total";
		break;
	case EXPO_GAUGE: type_word = "gauge"; break;
	case EXPO_HISTOGRAM: type_word = "histogram"; break;
	case EXPO_INFO:
	default:
		type_word = om ? "info" : "gauge";
		if (!om)
			type_name_suffix = "_info";
		break;
	}
	if (help) {
		strbuf_printf(&e->out, "# HELP %s%s ", name, type_name_suffix);
		put_escaped(&e->out, help, om);
		strbuf_putc(&e->out, '\n');
	}
	strbuf_printf(&e->out, "# TYPE %s%s %s\n", name, type_name_suffix, type_word);

begun:
	free(e->family);
	e->family = family;
	e->type = type;
	e->open = true;
	return 0;
}

static int check_labels(const struct expo_label *labels, size_t n_labels, bool histogram)
{
	size_t i, j;

	if (n_labels && !labels)
		return -EINVAL;
	for (i = 0; i < n_labels; i++) {
		if (!expo_valid_label_name(labels[i].name) || !labels[i].value)
			return -EINVAL;
		if (histogram && strcmp(labels[i].name, "le") == 0)
			return -EINVAL;
		for (j = 0; j < i; j++) {
			if (strcmp(labels[i].name, labels[j].name) == 0)
				return -EINVAL;
		}
	}
	return 0;
}

/* name="value" pairs, comma-separated */
static void put_labels(struct strbuf *sb, const struct expo_label *labels, size_t n_labels)
{
	for (size_t i = 0; i < n_labels; i++) {
		if (i)
			strbuf_putc(sb, ',');
		strbuf_puts(sb, labels[i].name);
		strbuf_puts(sb, "=\"");
		put_escaped(sb, labels[i].value, true);
		strbuf_putc(sb, '"');
	}
}

/* name{labels[,le="..."]} */
static void put_series(struct expo *e, const char *suffix, const struct expo_label *labels,
		       size_t n_labels, const char *le)
{
	strbuf_puts(&e->out, e->family);
	strbuf_puts(&e->out, suffix);
	if (n_labels == 0 && !le)
		return;
	strbuf_putc(&e->out, '{');
	put_labels(&e->out, labels, n_labels);
	if (le) {
		strbuf_puts(&e->out, n_labels ? ",le=\"" : "le=\"");
		strbuf_puts(&e->out, le);
		strbuf_putc(&e->out, '"');
	}
	strbuf_putc(&e->out, '}');
}

/* " 123\n": a sample's integer value and the line's end */
static void put_u64_value(struct strbuf *sb, uint64_t v)
{
	char text[24];
	char *p = text + sizeof(text);

	*--p = '\n';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	*--p = ' ';
	strbuf_append(sb, p, (size_t)(text + sizeof(text) - p));
}

/* The le texts of a layout (finite, increasing edges), formatted when it differs from the
 * last one asked for; NULL when out of memory. */
static const char (*le_texts(struct expo *e, const double *le, size_t n))[EXPO_DOUBLE_MAX]
{
	static const char no_edges[1][EXPO_DOUBLE_MAX];

	if (n == 0)
		return no_edges;
	if (n == e->n_le && !memcmp(le, e->le_edges, n * sizeof(*le)))
		return e->le_text;
	if (n > e->cap_le) {
		double *edges = realloc(e->le_edges, n * sizeof(*edges));
		char(*text)[EXPO_DOUBLE_MAX];

		if (!edges)
			return NULL;
		e->le_edges = edges;
		text = realloc(e->le_text, n * sizeof(*text));
		if (!text)
			return NULL;
		e->le_text = text;
		e->cap_le = n;
	}
	e->n_le = 0; /* a layout half formatted is never reused */
	for (size_t i = 0; i < n; i++)
		expo_format_double(le[i], e->le_text[i], EXPO_DOUBLE_MAX);
	memcpy(e->le_edges, le, n * sizeof(*le));
	e->n_le = n;
	return e->le_text;
}

static int check_sample(struct expo *e, enum expo_type type, const struct expo_label *labels,
			size_t n_labels)
{
	if (e->finished || !e->open || e->type != type)
		return -EINVAL;
	return check_labels(labels, n_labels, type == EXPO_HISTOGRAM);
}

int expo_counter(struct expo *e, const struct expo_label *labels, size_t n_labels, uint64_t value)
{
	int err = check_sample(e, EXPO_COUNTER, labels, n_labels);

	if (err)
		return err;
	if (e->pb)
		return expo_pb_value(e->pb, labels, n_labels, (double)value);
	put_series(e, "_total", labels, n_labels, NULL);
	put_u64_value(&e->out, value);
	return 0;
}

static void put_double_value(struct strbuf *sb, double v)
{
	char num[40];

	expo_format_double(v, num, sizeof(num));
	strbuf_printf(sb, " %s\n", num);
}

int expo_counter_f(struct expo *e, const struct expo_label *labels, size_t n_labels, double value)
{
	int err = check_sample(e, EXPO_COUNTER, labels, n_labels);

	/* A counter total is never NaN nor negative (OpenMetrics requires it). */
	if (!err && (isnan(value) || value < 0))
		err = -EINVAL;
	if (err)
		return err;
	if (e->pb)
		return expo_pb_value(e->pb, labels, n_labels, value);
	put_series(e, "_total", labels, n_labels, NULL);
	put_double_value(&e->out, value);
	return 0;
}

int expo_gauge(struct expo *e, const struct expo_label *labels, size_t n_labels, double value)
{
	int err = check_sample(e, EXPO_GAUGE, labels, n_labels);

	if (err)
		return err;
	if (e->pb)
		return expo_pb_value(e->pb, labels, n_labels, value);
	put_series(e, "", labels, n_labels, NULL);
	put_double_value(&e->out, value);
	return 0;
}

int expo_info(struct expo *e, const struct expo_label *labels, size_t n_labels)
{
	int err = check_sample(e, EXPO_INFO, labels, n_labels);

	if (err)
		return err;
	if (e->pb)
		return expo_pb_value(e->pb, labels, n_labels, 1);
	put_series(e, "_info", labels, n_labels, NULL);
	strbuf_puts(&e->out, " 1\n");
	return 0;
}

/* The native buckets of a histogram of total observations: see struct expo_native. */
static int check_native(const struct expo_native *n, uint64_t total)
{
	uint64_t sum = n->zero_count;

	if (n->schema < -4 || n->schema > 8 || !isfinite(n->zero_threshold) ||
	    n->zero_threshold < 0 || (n->n && (!n->index || !n->count)))
		return -EINVAL;
	for (size_t i = 0; i < n->n; i++) {
		if (i && n->index[i] <= n->index[i - 1])
			return -EINVAL;
		if (n->count[i] > UINT64_MAX - sum)
			return -EOVERFLOW;
		sum += n->count[i];
	}
	return sum == total ? 0 : -EINVAL;
}

int expo_histogram(struct expo *e, const struct expo_label *labels, size_t n_labels,
		   const struct expo_histogram *h)
{
	uint64_t cumulative = 0;
	const char(*le)[EXPO_DOUBLE_MAX];
	struct strbuf *prefix = &e->bucket_prefix;
	size_t i;
	int err = check_sample(e, EXPO_HISTOGRAM, labels, n_labels);

	if (err)
		return err;
	if (!h || !h->counts || (h->n_buckets && !h->le) || isnan(h->sum))
		return -EINVAL;
	for (i = 0; i < h->n_buckets; i++) {
		if (!isfinite(h->le[i]) || (i && !(h->le[i] > h->le[i - 1])))
			return -EINVAL;
	}
	for (i = 0; i <= h->n_buckets; i++) {
		if (h->counts[i] > UINT64_MAX - cumulative)
			return -EOVERFLOW;
		cumulative += h->counts[i];
	}
	if (h->native) {
		err = check_native(h->native, cumulative);
		if (err)
			return err;
	}
	if (e->pb)
		return expo_pb_histogram(e->pb, labels, n_labels, h);

	le = le_texts(e, h->le, h->n_buckets);
	prefix->len = 0;
	strbuf_puts(prefix, e->family);
	strbuf_puts(prefix, "_bucket{");
	put_labels(prefix, labels, n_labels);
	strbuf_puts(prefix, n_labels ? ",le=\"" : "le=\"");
	if (!le || strbuf_error(prefix))
		return -ENOMEM;

	cumulative = 0;
	for (i = 0; i <= h->n_buckets; i++) {
		cumulative += h->counts[i];
		strbuf_append(&e->out, prefix->buf, prefix->len);
		strbuf_puts(&e->out, i < h->n_buckets ? le[i] : "+Inf");
		strbuf_putc(&e->out, '"');
		strbuf_putc(&e->out, '}');
		put_u64_value(&e->out, cumulative);
	}
	put_series(e, "_sum", labels, n_labels, NULL);
	put_double_value(&e->out, h->sum);
	put_series(e, "_count", labels, n_labels, NULL);
	put_u64_value(&e->out, cumulative);
	return 0;
}

int expo_finish(struct expo *e, char **body, size_t *len)
{
	int err;

	if (e->finished)
		return -EINVAL;
	e->finished = true;
	e->open = false;
	if (e->format == EXPO_OPENMETRICS_1_0_0)
		strbuf_puts(&e->out, "# EOF\n");
	err = e->pb ? expo_pb_flush(e->pb, &e->out) : 0;
	if (!err)
		err = strbuf_error(&e->out);
	if (err) {
		strbuf_release(&e->out);
		return err;
	}
	*body = strbuf_steal(&e->out, len);
	return *body ? 0 : -ENOMEM;
}

/* Accept header negotiation (RFC 9110 media ranges with q parameters). */

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static size_t trimmed_len(const char *p, const char *end)
{
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return end - p;
}

static bool token_is(const char *p, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

/* q is 0 to 1 with up to three decimals; anything else makes the media range invalid. */
static int parse_q(const char *p, size_t n, double *q)
{
	char num[8];
	char *end;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, p, n);
	num[n] = '\0';
	if (!isdigit((unsigned char)num[0]))
		return -EINVAL;
	*q = strtod(num, &end);
	if (*end || *q < 0 || *q > 1)
		return -EINVAL;
	return 0;
}

enum expo_candidate {
	CAND_NONE,
	CAND_TEXT,
	CAND_OPENMETRICS,
	CAND_PROTOBUF,
};

/* Judges one media range, e.g. `application/openmetrics-text; version=1.0.0; q=0.5`. */
static enum expo_candidate judge_range(const char *p, const char *end, double *q)
{
	const char *semi = memchr(p, ';', end - p);
	const char *type_end = semi ? semi : end;
	size_t type_len, vlen = 0;
	const char *version = NULL;
	bool om, text, pb, pb_family = false, pb_delimited = false;

	p = skip_ws(p, end);
	type_len = trimmed_len(p, type_end);
	om = token_is(p, type_len, "application/openmetrics-text");
	text = token_is(p, type_len, "text/plain");
	pb = token_is(p, type_len, "application/vnd.google.protobuf");
	if (!om && !text && !pb && !token_is(p, type_len, "text/*") &&
	    !token_is(p, type_len, "*/*"))
		return CAND_NONE;

	*q = 1.0;
	while (semi) {
		const char *param = skip_ws(semi + 1, end), *eq, *val;
		size_t klen, len;

		if (param >= end)
			break;
		semi = memchr(param, ';', (size_t)(end - param));
		len = trimmed_len(param, semi ? semi : end);
		if (len == 0)
			continue;
		eq = memchr(param, '=', len);
		if (!eq)
			return CAND_NONE;
		klen = trimmed_len(param, eq);
		val = skip_ws(eq + 1, param + len);
		len = param + len - val;
		if (len >= 2 && val[0] == '"' && val[len - 1] == '"')
			val++, len -= 2;
		if (token_is(param, klen, "q")) {
			if (parse_q(val, len, q))
				return CAND_NONE;
		} else if (token_is(param, klen, "version")) {
			version = val;
			vlen = len;
		} else if (token_is(param, klen, "proto")) {
			pb_family = token_is(val, len, "io.prometheus.client.MetricFamily");
		} else if (token_is(param, klen, "encoding")) {
			pb_delimited = token_is(val, len, "delimited");
		}
	}
	if (*q <= 0)
		return CAND_NONE;
	/* the text and compact-text protobuf encodings are not offered */
	if (pb)
		return pb_family && pb_delimited ? CAND_PROTOBUF : CAND_NONE;
	if (om) {
		if (!version || token_is(version, vlen, "1.0.0") ||
		    token_is(version, vlen, "0.0.1"))
			return CAND_OPENMETRICS;
		return CAND_NONE;
	}
	if (text && version && !token_is(version, vlen, "0.0.4"))
		return CAND_NONE;
	return CAND_TEXT;
}

enum expo_format expo_negotiate(const char *accept)
{
	enum expo_candidate best = CAND_NONE, cand;
	double best_q = -1, q;
	const char *p, *end, *comma;

	if (!accept)
		return EXPO_TEXT_0_0_4;
	p = accept;
	end = accept + strlen(accept);
	while (p < end) {
		comma = memchr(p, ',', end - p);
		if (!comma)
			comma = end;
		cand = judge_range(p, comma, &q);
		if (cand != CAND_NONE && q > best_q) {
			best = cand;
			best_q = q;
		}
		p = comma + 1;
	}
	if (best == CAND_PROTOBUF)
		return EXPO_PROTOBUF_DELIMITED;
	return best == CAND_OPENMETRICS ? EXPO_OPENMETRICS_1_0_0 : EXPO_TEXT_0_0_4;
}
