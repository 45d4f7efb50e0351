/* Fuzzes the exposition writer (expo.h) with untrusted label values and HELP text (VM names
 * from guests, reasons from the kernel), names and numbers, in both formats. The output is
 * read back by a strict reader of the text formats written here: every line is a HELP, TYPE,
 * EOF or sample line, names are valid, label values hold only the escapes \\ \" \n, no raw
 * newline, valid UTF-8, and each value and HELP text unescapes to what was given (invalid
 * UTF-8 as U+FFFD); numbers read back exactly; histogram buckets are cumulative.
 *
 * Input: a format byte, an 8-byte double, then NUL-separated fields: the HELP text, four
 * label values, a metric name, a label name and histogram bounds (8 bytes each). */
#include <errno.h>
#include <math.h>

#include "expo.h"
#include "fuzz.h"

#define N_VALUES 4
#define MAX_LE	 8
#define HIST	 "ipiv_fuzz_latency_seconds"

struct expected {
	char *values[N_VALUES + MAX_LE + 1]; /* label values as they must read back */
	size_t n_values;
	char *help;
};

/* in with each invalid UTF-8 byte as U+FFFD: what the writer promises to write */
static char *as_written(const char *in)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t left = strlen(in), n, o = 0;
	char *out = malloc(3 * left + 1);
	uint32_t cp;

	FUZZ_CHECK(out, "%s", "out of memory");
	while (left) {
		n = utf8_decode(p, left, &cp);
		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3, p++, left--;
			continue;
		}
		memcpy(out + o, p, n);
		o += n, p += n, left -= n;
	}
	out[o] = '\0';
	return out;
}

static bool name_char(char c, bool first, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

/* A metric (colon) or label name at *p; moves past it. */
static void read_name(const char **p, const char *end, bool colon, const char *line)
{
	const char *s = *p;

	while (*p < end && name_char(**p, *p == s, colon))
		(*p)++;
	FUZZ_CHECK(*p > s, "no name at \"%.*s\" in \"%s\"", (int)(end - s), s, line);
}

/* Text up to end_char (or the line's end when 0), unescaped into out; quotes: quotes are
 * escaped (\"), as in label values and OpenMetrics HELP text. */
static void read_escaped(const char **p, const char *end, char end_char, bool quotes, char *out,
			 const char *line)
{
	size_t o = 0;

	while (*p < end && **p != end_char) {
		/* OpenMetrics escapes quotes in HELP text as in label values */
		FUZZ_CHECK(!(**p == '"' && quotes), "raw quote in \"%.*s\"", (int)(end - line),
			   line);
		if (**p != '\\') {
			out[o++] = *(*p)++;
			continue;
		}
		FUZZ_CHECK(*p + 1 < end, "backslash at the end of \"%s\"", line);
		switch ((*p)[1]) {
		case '\\': out[o++] = '\\'; break;
		case 'n': out[o++] = '\n'; break;
		case '"':
			FUZZ_CHECK(quotes, "\\\" in 0.0.4 HELP text \"%s\"", line);
			out[o++] = '"';
			break;
		default: FUZZ_CHECK(0, "escape \\%c in \"%s\"", (*p)[1], line);
		}
		*p += 2;
	}
	out[o] = '\0';
	if (end_char) {
		FUZZ_CHECK(*p < end, "unterminated label value in \"%s\"", line);
		(*p)++;
	}
}

static void check_value_known(const struct expected *want, const char *value, const char *line)
{
	for (size_t i = 0; i < want->n_values; i++)
		if (strcmp(want->values[i], value) == 0)
			return;
	FUZZ_CHECK(0, "label value \"%s\" was never given (line \"%s\")", value, line);
}

/* One sample line: name{l="v",...} value */
static double read_sample(const char *line, const char *end, const struct expected *want, char *buf)
{
	const char *p = line;
	char *num_end;
	double v;

	read_name(&p, end, true, line);
	if (p < end && *p == '{') {
		p++;
		while (p < end && *p != '}') {
			read_name(&p, end, false, line);
			FUZZ_CHECK(p + 1 < end && p[0] == '=' && p[1] == '"', "label in \"%s\"",
				   line);
			p += 2;
			read_escaped(&p, end, '"', true, buf, line);
			check_value_known(want, buf, line);
			if (p < end && *p == ',')
				p++;
		}
		FUZZ_CHECK(p < end, "unterminated labels in \"%s\"", line);
		p++;
	}
	FUZZ_CHECK(p < end && *p == ' ', "no value in \"%s\"", line);
	p++;
	v = strtod(p, &num_end);
	FUZZ_CHECK(num_end == end && num_end > p, "value in \"%s\"", line);
	return v;
}

/* Whether line is a sample of the series name: the name, then labels or the value. A
 * fuzzed family may be called HIST "_count" too; its samples end in "_total". */
static bool is_sample_of(const char *line, const char *name)
{
	size_t n = strlen(name);

	return strncmp(line, name, n) == 0 && (line[n] == '{' || line[n] == ' ');
}

/* Reads the whole exposition, checking every line against want. */
static void read_exposition(const char *body, size_t len, bool om, const struct expected *want)
{
	const char *line = body, *end, *p;
	char *buf = malloc(len + 1);
	bool eof = false;
	double v, bucket = 0;

	FUZZ_CHECK(buf, "%s", "out of memory");
	FUZZ_CHECK(fuzz_utf8_valid(body, len), "%s", "the exposition is not valid UTF-8");
	FUZZ_CHECK(len && body[len - 1] == '\n', "%s", "the exposition does not end a line");
	FUZZ_CHECK(strlen(body) == len, "%s", "a NUL in the exposition");
	for (; line < body + len; line = end + 1) {
		end = memchr(line, '\n', body + len - line);
		FUZZ_CHECK(!eof, "%s", "a line after # EOF");
		if (end - line == 5 && memcmp(line, "# EOF", 5) == 0) {
			FUZZ_CHECK(om, "%s", "# EOF in text 0.0.4");
			eof = true;
		} else if (end - line > 7 && memcmp(line, "# HELP ", 7) == 0) {
			p = line + 7;
			read_name(&p, end, true, line);
			FUZZ_CHECK(p < end && *p == ' ', "HELP without text: \"%.*s\"",
				   (int)(end - line), line);
			p++;
			read_escaped(&p, end, 0, om, buf, line);
			FUZZ_CHECK(strcmp(buf, want->help) == 0, "HELP reads back as \"%s\"", buf);
		} else if (end - line > 7 && memcmp(line, "# TYPE ", 7) == 0) {
			p = line + 7;
			read_name(&p, end, true, line);
			FUZZ_CHECK(p < end && *p == ' ', "%s", "TYPE without a type");
		} else {
			FUZZ_CHECK(line[0] != '#', "comment line \"%.*s\"", (int)(end - line),
				   line);
			v = read_sample(line, end, want, buf);
			if (is_sample_of(line, HIST "_bucket")) {
				FUZZ_CHECK(v >= bucket, "bucket %g after %g: not cumulative", v,
					   bucket);
				bucket = v;
			} else if (is_sample_of(line, HIST "_count")) {
				FUZZ_CHECK(v == bucket, "_count %g, +Inf bucket %g", v, bucket);
			}
		}
	}
	FUZZ_CHECK(eof == om, "%s", "# EOF missing from OpenMetrics");
	free(buf);
}

static void check_double(double v)
{
	char buf[32], *end;
	int n = expo_format_double(v, buf, sizeof(buf));
	double back;

	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(buf), "%d characters for %a", n, v);
	back = strtod(buf, &end);
	FUZZ_CHECK(!*end, "\"%s\" is not a number", buf);
	if (isnan(v))
		FUZZ_CHECK(isnan(back), "NaN written as \"%s\"", buf);
	else
		FUZZ_CHECK(back == v && signbit(back) == signbit(v), "%a written as \"%s\"", v,
			   buf);
	if (isfinite(v))
		FUZZ_CHECK(strchr(buf, '.'), "\"%s\" has no fractional digit", buf);
}

static const char *field(const uint8_t **data, size_t *size)
{
	const uint8_t *nul = memchr(*data, 0, *size);
	const char *s = (const char *)*data;

	if (!nul)
		return NULL;
	*size -= (size_t)(nul - *data) + 1;
	*data = nul + 1;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *help, *values[N_VALUES], *metric, *label;
	struct expected want = {0};
	double d, le[MAX_LE];
	uint64_t counts[MAX_LE + 1];
	size_t n_le = 0, len;
	struct expo *e;
	bool om;
	char *body, le_text[MAX_LE][32];
	int r;

	if (size < 9)
		return 0;
	om = data[0] & 1;
	memcpy(&d, data + 1, sizeof(d));
	data += 9, size -= 9;
	check_double(d);
	if (!(help = field(&data, &size)))
		return 0;
	for (size_t i = 0; i < N_VALUES; i++)
		if (!(values[i] = field(&data, &size)))
			return 0;
	if (!(metric = field(&data, &size)) || !(label = field(&data, &size)))
		return 0;
	while (n_le < MAX_LE && size >= sizeof(double)) {
		memcpy(&le[n_le], data, sizeof(double));
		data += sizeof(double), size -= sizeof(double);
		check_double(le[n_le]);
		/* the writer takes finite, strictly increasing bounds only */
		if (!isfinite(le[n_le]) || (n_le && !(le[n_le] > le[n_le - 1])))
			continue;
		expo_format_double(le[n_le], le_text[n_le], sizeof(le_text[n_le]));
		want.values[want.n_values++] = strdup(le_text[n_le]);
		counts[n_le] = n_le * 3 + 1;
		n_le++;
	}
	counts[n_le] = 7;
	want.values[want.n_values++] = strdup("+Inf");
	for (size_t i = 0; i < N_VALUES; i++)
		want.values[want.n_values++] = as_written(values[i]);
	want.help = as_written(help);

	FUZZ_CHECK(expo_new(om ? EXPO_OPENMETRICS_1_0_0 : EXPO_TEXT_0_0_4, &e) == 0, "%s",
		   "expo_new failed");
	{
		struct expo_label labels[] = {
			EXPO_LABEL("vm", values[0]),
			EXPO_LABEL("path", values[1]),
			EXPO_LABEL("reason", values[2]),
		};
		struct expo_label hl[] = {EXPO_LABEL("vm", values[3])};
		struct expo_histogram h = {.le = le, .counts = counts, .n_buckets = n_le, .sum = d};

		FUZZ_CHECK(expo_begin(e, "ipiv_fuzz", EXPO_GAUGE, help) == 0, "%s",
			   "a valid family refused");
		FUZZ_CHECK(expo_gauge(e, labels, 3, d) == 0, "%s", "a gauge sample refused");
		FUZZ_CHECK(expo_begin(e, HIST, EXPO_HISTOGRAM, help) == 0, "%s",
			   "a valid histogram refused");
		r = expo_histogram(e, hl, 1, &h);
		FUZZ_CHECK(r == 0 || (r == -EINVAL && isnan(d)), "histogram refused: %d", r);
	}
	/* a family and a label of untrusted names: valid ones are written, others refused */
	r = expo_begin(e, metric, EXPO_COUNTER, help);
	if (r == 0) {
		struct expo_label l[] = {EXPO_LABEL(label, values[0])};

		FUZZ_CHECK(expo_valid_metric_name(metric), "invalid name \"%s\" accepted", metric);
		r = expo_counter(e, l, 1, 42);
		FUZZ_CHECK((r == 0) == (expo_valid_label_name(label) != 0), "label name \"%s\": %d",
			   label, r);
	} else {
		FUZZ_CHECK(r == -EINVAL || r == -EEXIST, "expo_begin returned %d", r);
	}
	FUZZ_CHECK(expo_finish(e, &body, &len) == 0, "%s", "expo_finish failed");
	read_exposition(body, len, om, &want);
	free(body);
	expo_free(e);
	for (size_t i = 0; i < want.n_values; i++)
		free(want.values[i]);
	free(want.help);
	return 0;
}
