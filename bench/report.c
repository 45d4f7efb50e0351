/* ipivbench: the seed's cycle table, JSON out and back in, and the "%Reduction"
 * comparison of two runs, "~" when a rank test cannot tell them apart. Everything here works
 * on plain bench_result data. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include <jansson.h>

#include "report.h"
#include "stats.h"

#define ARRAY_SIZE(a)	 (sizeof(a) / sizeof((a)[0]))
#define BENCH_MAX_PARAMS ARRAY_SIZE(((struct bench_host *)0)->params)

static const char *const pattern_names[BENCH_PATTERN_COUNT] = {
	[BENCH_X2APIC_PHYS] = "x2apic-phys",
	[BENCH_X2APIC_LOGICAL] = "x2apic-logical",
	[BENCH_X2APIC_MULTICAST] = "x2apic-multicast",
	[BENCH_X2APIC_BROADCAST] = "x2apic-allbutself",
	[BENCH_X2APIC_SELF] = "x2apic-self",
	[BENCH_XAPIC_PHYS] = "xapic-phys",
	[BENCH_XAPIC_LOGICAL] = "xapic-logical",
	[BENCH_XAPIC_BROADCAST] = "xapic-allbutself",
	[BENCH_NMI] = "nmi",
	[BENCH_PV_SEND_IPI] = "pv",
};

static const char *const cpu_mode_names[] = {
	[BENCH_CPU_REAL] = "real",
	[BENCH_CPU_LONG] = "long",
};

static const char *const target_names[] = {
	[BENCH_TARGET_SPIN] = "spin",
	[BENCH_TARGET_HALT] = "halt",
};

static int parse_name(const char *const *names, size_t n, const char *name, unsigned *out)
{
	size_t i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *bench_pattern_name(enum bench_pattern pattern)
{
	return (unsigned)pattern < ARRAY_SIZE(pattern_names) ? pattern_names[pattern] : NULL;
}

int bench_pattern_parse(const char *name, enum bench_pattern *out)
{
	unsigned v;
	int err = parse_name(pattern_names, ARRAY_SIZE(pattern_names), name, &v);

	if (!err)
		*out = v;
	return err;
}

const char *bench_cpu_mode_name(enum bench_cpu_mode mode)
{
	return (unsigned)mode < ARRAY_SIZE(cpu_mode_names) ? cpu_mode_names[mode] : NULL;
}

int bench_cpu_mode_parse(const char *name, enum bench_cpu_mode *out)
{
	unsigned v;
	int err = parse_name(cpu_mode_names, ARRAY_SIZE(cpu_mode_names), name, &v);

	if (!err)
		*out = v;
	return err;
}

const char *bench_target_name(enum bench_target target)
{
	return (unsigned)target < ARRAY_SIZE(target_names) ? target_names[target] : NULL;
}

int bench_target_parse(const char *name, enum bench_target *out)
{
	unsigned v;
	int err = parse_name(target_names, ARRAY_SIZE(target_names), name, &v);

	if (!err)
		*out = v;
	return err;
}

static int set_err(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

int bench_result_check(const struct bench_result *r, char *err, size_t errlen)
{
	const struct bench_config *c = &r->config;
	const struct bench_host *h = &r->host;
	unsigned i;

	if (!bench_pattern_name(c->pattern))
		return set_err(err, errlen, -EINVAL, "unknown pattern %d", (int)c->pattern);
	if (!bench_cpu_mode_name(c->cpu_mode))
		return set_err(err, errlen, -EINVAL, "unknown cpu mode %d", (int)c->cpu_mode);
	if (!bench_target_name(c->target))
		return set_err(err, errlen, -EINVAL, "unknown target %d", (int)c->target);
	if (c->vcpus < 1 || c->vcpus > BENCH_MAX_VCPUS)
		return set_err(err, errlen, -EINVAL, "%u vCPUs, must be 1..%d", c->vcpus,
			       BENCH_MAX_VCPUS);
	if (c->n_pin_cpus > BENCH_MAX_VCPUS)
		return set_err(err, errlen, -EINVAL, "%u pinned CPUs, at most %d", c->n_pin_cpus,
			       BENCH_MAX_VCPUS);
	if (r->n_runs > BENCH_MAX_RUNS)
		return set_err(err, errlen, -EINVAL, "%u runs, at most %d", r->n_runs,
			       BENCH_MAX_RUNS);
	for (i = 0; i < r->n_runs; i++)
		if (!isfinite(r->cycles_per_ipi[i]))
			return set_err(err, errlen, -EINVAL, "run %u has no finite cycle count",
				       i + 1);
	if (h->n_params > BENCH_MAX_PARAMS)
		return set_err(err, errlen, -EINVAL, "%u module parameters, at most %zu",
			       h->n_params, BENCH_MAX_PARAMS);
	for (i = 0; i < h->n_params; i++)
		if (!terminated(h->params[i].name, sizeof(h->params[i].name)) ||
		    !terminated(h->params[i].value, sizeof(h->params[i].value)))
			return set_err(err, errlen, -EINVAL, "module parameter %u unterminated", i);
	if (!terminated(c->name, sizeof(c->name)) ||
	    !terminated(h->cpu_vendor, sizeof(h->cpu_vendor)) ||
	    !terminated(h->cpu_model, sizeof(h->cpu_model)) ||
	    !terminated(h->kernel, sizeof(h->kernel)) ||
	    !terminated(h->kvm_module, sizeof(h->kvm_module)))
		return set_err(err, errlen, -EINVAL, "unterminated name string");
	return 0;
}

bool bench_result_counts_match(const struct bench_result *r, uint64_t *sent, uint64_t *received,
			       uint64_t *expected)
{
	uint64_t s = 0, rx = 0, e;
	bool overflow = false;
	unsigned i, n = r->config.vcpus <= BENCH_MAX_VCPUS ? r->config.vcpus : BENCH_MAX_VCPUS;

	for (i = 0; i < n; i++) {
		overflow |= __builtin_add_overflow(s, r->vcpu[i].sent, &s);
		overflow |= __builtin_add_overflow(rx, r->vcpu[i].received, &rx);
	}
	overflow |= __builtin_mul_overflow(s, (uint64_t)r->fanout, &e);
	if (overflow)
		e = UINT64_MAX;
	if (sent)
		*sent = s;
	if (received)
		*received = rx;
	if (expected)
		*expected = e;
	return !overflow && rx == e;
}

/* Strings from /proc or a JSON file are untrusted: only printable ASCII reaches a terminal. */
static const char *printable(char *dst, size_t dst_size, const char *src, size_t src_size)
{
	size_t i;

	for (i = 0; i < src_size && src[i] && i + 1 < dst_size; i++)
		dst[i] = ((unsigned char)src[i] >= 0x20 && (unsigned char)src[i] < 0x7f) ? src[i]
											 : '?';
	dst[i] = '\0';
	return dst;
}

#define PRINTABLE(buf, field) printable(buf, sizeof(buf), field, sizeof(field))

static double cycles_to_ns(double cycles, uint64_t tsc_khz)
{
	/* tsc_khz cycles per millisecond: tsc_khz / 1e6 cycles per nanosecond */
	return cycles * 1e6 / (double)tsc_khz;
}

static void print_params(FILE *f, const struct bench_host *h)
{
	char name[sizeof(h->params[0].name)], value[sizeof(h->params[0].value)];
	unsigned i;

	for (i = 0; i < h->n_params; i++)
		fprintf(f, " %s=%s", PRINTABLE(name, h->params[i].name),
			PRINTABLE(value, h->params[i].value));
}

static void print_header(FILE *f, const struct bench_result *r)
{
	const struct bench_config *c = &r->config;
	const struct bench_host *h = &r->host;
	char vendor[sizeof(h->cpu_vendor)], model[sizeof(h->cpu_model)];
	char kernel[sizeof(h->kernel)], module[sizeof(h->kvm_module)], name[sizeof(c->name)];
	unsigned i;

	fprintf(f,
		"ipivbench: pattern %s, cpu mode %s, target %s, %u vCPUs, K=%u IPIs per run, "
		"%u runs",
		bench_pattern_name(c->pattern), bench_cpu_mode_name(c->cpu_mode),
		bench_target_name(c->target), c->vcpus, c->ipis, r->n_runs);
	if (c->name[0])
		fprintf(f, ", VM %s", PRINTABLE(name, c->name));
	fputc('\n', f);

	fprintf(f, "host: %s %s, kernel %s, %s",
		h->cpu_vendor[0] ? PRINTABLE(vendor, h->cpu_vendor) : "(unknown vendor)",
		h->cpu_model[0] ? PRINTABLE(model, h->cpu_model) : "(unknown model)",
		h->kernel[0] ? PRINTABLE(kernel, h->kernel) : "(unknown)",
		h->kvm_module[0] ? PRINTABLE(module, h->kvm_module) : "(no kvm module found)");
	print_params(f, h);
	fprintf(f, "\nguest support: x2APIC %s, PV send-IPI %s\n", h->x2apic ? "yes" : "no",
		h->pv_send_ipi ? "yes" : "no");

	if (c->pin && c->n_pin_cpus) {
		fprintf(f, "pinning: vCPUs round-robin on host CPUs");
		for (i = 0; i < c->n_pin_cpus; i++)
			fprintf(f, "%s%d", i ? "," : " ", c->pin_cpus[i]);
		fputc('\n', f);
	} else {
		fprintf(f, "pinning: none\n");
	}
	if (h->tsc_khz)
		fprintf(f, "TSC: %" PRIu64 " kHz\n", h->tsc_khz);
	else
		fprintf(f, "TSC: frequency unknown (tsc_khz 0), ns/IPI omitted\n");
}

static void print_stat_row(FILE *f, const char *label, double cycles, uint64_t tsc_khz)
{
	fprintf(f, "%-7s %12.2f", label, cycles);
	if (tsc_khz)
		fprintf(f, " %12.2f", cycles_to_ns(cycles, tsc_khz));
	fputc('\n', f);
}

static void print_counts(FILE *f, const struct bench_result *r)
{
	uint64_t sent, received, expected;
	bool match = bench_result_counts_match(r, &sent, &received, &expected);
	unsigned i;

	fprintf(f, "\nGuest counts (fanout %u: deliveries expected per IPI sent)\n", r->fanout);
	fprintf(f, "%7s %20s %20s\n", "vCPU", "sent", "received");
	for (i = 0; i < r->config.vcpus; i++)
		fprintf(f, "%7u %20" PRIu64 " %20" PRIu64 "\n", i, r->vcpu[i].sent,
			r->vcpu[i].received);
	fprintf(f, "%-7s %20" PRIu64 " %20" PRIu64 "\n", "total", sent, received);
	if (expected == UINT64_MAX && !match)
		fprintf(f,
			"expected received: overflows 64 bits (sent %" PRIu64 " x fanout %u): "
			"MISMATCH\n",
			sent, r->fanout);
	else if (match)
		fprintf(f, "expected received: %" PRIu64 " (sent %" PRIu64 " x fanout %u): match\n",
			expected, sent, r->fanout);
	else
		fprintf(f,
			"expected received: %" PRIu64 " (sent %" PRIu64 " x fanout %u): "
			"MISMATCH, received %" PRIu64 "\n",
			expected, sent, r->fanout, received);
}

int bench_report_table(FILE *f, const struct bench_result *r)
{
	uint64_t tsc_khz = r->host.tsc_khz;
	struct bench_stats s;
	unsigned i;
	int err;

	err = bench_result_check(r, NULL, 0);
	if (err)
		return err;

	print_header(f, r);
	fprintf(f, "\nCycles of IPI\n%7s %12s", "run", "cycles/IPI");
	if (tsc_khz)
		fprintf(f, " %12s", "ns/IPI");
	fputc('\n', f);
	for (i = 0; i < r->n_runs; i++) {
		fprintf(f, "%7u %12.2f", i + 1, r->cycles_per_ipi[i]);
		if (tsc_khz)
			fprintf(f, " %12.2f", cycles_to_ns(r->cycles_per_ipi[i], tsc_khz));
		fputc('\n', f);
	}
	if (r->n_runs == 0) {
		fprintf(f, "(no runs measured)\n");
	} else {
		err = bench_stats_compute(r->cycles_per_ipi, r->n_runs, &s);
		if (err)
			return err;
		print_stat_row(f, "Average", s.mean, tsc_khz);
		print_stat_row(f, "Median", s.median, tsc_khz);
		print_stat_row(f, "Min", s.min, tsc_khz);
		print_stat_row(f, "Max", s.max, tsc_khz);
		print_stat_row(f, "Stddev", s.stddev, tsc_khz);
	}
	print_counts(f, r);
	if (r->send_to_eoi_samples) {
		fprintf(f,
			"\nGuest send->EOI (TSC before the ICR write to TSC before each target's "
			"EOI), %" PRIu64 " deliveries\n",
			r->send_to_eoi_samples);
		fprintf(f, "Median  %12.2f cycles", r->send_to_eoi_cycles.median);
		if (r->host.tsc_khz)
			fprintf(f, "  %12.2f ns",
				r->send_to_eoi_cycles.median * 1e6 / (double)r->host.tsc_khz);
		fprintf(f, "\nMean    %12.2f cycles", r->send_to_eoi_cycles.mean);
		if (r->host.tsc_khz)
			fprintf(f, "  %12.2f ns",
				r->send_to_eoi_cycles.mean * 1e6 / (double)r->host.tsc_khz);
		fputc('\n', f);
	}
	fprintf(f, "wall time: %.3f s\n", r->wall_seconds);
	return ferror(f) ? -EIO : 0;
}

/*
 * JSON schema ipivbench/1, one object:
 *   "schema":       "ipivbench/1"
 *   "config":       {"pattern", "cpu_mode", "target" (names), "vcpus", "runs", "ipis",
 *                    "warmup_runs", "pin" (bool), "pin_cpus" [int], "timeout_s", "name"}
 *   "host":         {"cpu_vendor", "cpu_model", "kernel", "kvm_module", "params" {name: value},
 *                    "tsc_khz", "pv_send_ipi" (bool), "x2apic" (bool)}
 *   "runs":         [cycles per IPI of each run]
 *   "stats":        {"cycles": {mean, median, min, max, stddev}, "ns": same or null}; null
 *                   members when there are no runs. Derived: not read back.
 *   "fanout":       deliveries expected per IPI sent
 *   "vcpus":        [{"id", "sent", "received"}], one per configured vCPU
 *   "wall_seconds": host wall time of the measured runs
 */

static json_t *json_fixed_string(const char *s, size_t size)
{
	return json_stringn(s, strnlen(s, size));
}

/* jansson refuses strings that are not UTF-8; find that before building, so that a NULL
 * while building can only mean no memory. */
static int check_utf8(const char *s, size_t size)
{
	json_t *j = json_fixed_string(s, size);

	if (!j)
		return -EINVAL;
	json_decref(j);
	return 0;
}

static int check_for_json(const struct bench_result *r)
{
	const struct bench_host *h = &r->host;
	unsigned i, j;

	if (check_utf8(r->config.name, sizeof(r->config.name)) ||
	    check_utf8(h->cpu_vendor, sizeof(h->cpu_vendor)) ||
	    check_utf8(h->cpu_model, sizeof(h->cpu_model)) ||
	    check_utf8(h->kernel, sizeof(h->kernel)) ||
	    check_utf8(h->kvm_module, sizeof(h->kvm_module)))
		return -EINVAL;
	for (i = 0; i < h->n_params; i++) {
		if (check_utf8(h->params[i].name, sizeof(h->params[i].name)) ||
		    check_utf8(h->params[i].value, sizeof(h->params[i].value)))
			return -EINVAL;
		/* a JSON object keeps one value per name */
		for (j = 0; j < i; j++)
			if (strcmp(h->params[i].name, h->params[j].name) == 0)
				return -EINVAL;
	}
	/* JSON integers are signed 64-bit in jansson */
	if (h->tsc_khz > INT64_MAX)
		return -ERANGE;
	for (i = 0; i < r->config.vcpus; i++)
		if (r->vcpu[i].sent > INT64_MAX || r->vcpu[i].received > INT64_MAX)
			return -ERANGE;
	return 0;
}

static json_t *stats_json(const struct bench_stats *s, double scale)
{
	return json_pack("{s:f, s:f, s:f, s:f, s:f}", "mean", s->mean * scale, "median",
			 s->median * scale, "min", s->min * scale, "max", s->max * scale, "stddev",
			 s->stddev * scale);
}

static json_t *config_json(const struct bench_config *c)
{
	json_t *pins = json_array();
	unsigned i;

	for (i = 0; pins && i < c->n_pin_cpus; i++) {
		if (json_array_append_new(pins, json_integer(c->pin_cpus[i]))) {
			json_decref(pins);
			return NULL;
		}
	}
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:o, s:I, s:o}", "pattern",
			 bench_pattern_name(c->pattern), "cpu_mode",
			 bench_cpu_mode_name(c->cpu_mode), "target", bench_target_name(c->target),
			 "vcpus", (json_int_t)c->vcpus, "runs", (json_int_t)c->runs, "ipis",
			 (json_int_t)c->ipis, "warmup_runs", (json_int_t)c->warmup, "pin", c->pin,
			 "pin_cpus", pins, "timeout_s", (json_int_t)c->timeout_s, "name",
			 json_fixed_string(c->name, sizeof(c->name)));
}

static json_t *host_json(const struct bench_host *h)
{
	json_t *params = json_object();
	unsigned i;

	for (i = 0; params && i < h->n_params; i++) {
		if (json_object_set_new(
			    params, h->params[i].name,
			    json_fixed_string(h->params[i].value, sizeof(h->params[i].value)))) {
			json_decref(params);
			return NULL;
		}
	}
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:b, s:b}", "cpu_vendor",
			 json_fixed_string(h->cpu_vendor, sizeof(h->cpu_vendor)), "cpu_model",
			 json_fixed_string(h->cpu_model, sizeof(h->cpu_model)), "kernel",
			 json_fixed_string(h->kernel, sizeof(h->kernel)), "kvm_module",
			 json_fixed_string(h->kvm_module, sizeof(h->kvm_module)), "params", params,
			 "tsc_khz", (json_int_t)h->tsc_khz, "pv_send_ipi", h->pv_send_ipi, "x2apic",
			 h->x2apic);
}

static json_t *runs_json(const struct bench_result *r)
{
	json_t *runs = json_array();
	unsigned i;

	for (i = 0; runs && i < r->n_runs; i++) {
		if (json_array_append_new(runs, json_real(r->cycles_per_ipi[i]))) {
			json_decref(runs);
			return NULL;
		}
	}
	return runs;
}

static json_t *vcpus_json(const struct bench_result *r)
{
	json_t *vcpus = json_array();
	unsigned i;

	for (i = 0; vcpus && i < r->config.vcpus; i++) {
		if (json_array_append_new(vcpus,
					  json_pack("{s:I, s:I, s:I}", "id", (json_int_t)i, "sent",
						    (json_int_t)r->vcpu[i].sent, "received",
						    (json_int_t)r->vcpu[i].received))) {
			json_decref(vcpus);
			return NULL;
		}
	}
	return vcpus;
}

static json_t *all_stats_json(const struct bench_result *r)
{
	struct bench_stats s;

	if (r->n_runs == 0 || bench_stats_compute(r->cycles_per_ipi, r->n_runs, &s))
		return json_pack("{s:n, s:n}", "cycles", "ns");
	return json_pack("{s:o, s:o?}", "cycles", stats_json(&s, 1.0), "ns",
			 r->host.tsc_khz ? stats_json(&s, 1e6 / (double)r->host.tsc_khz) : NULL);
}

/* {"samples", "cycles": stats, "ns": stats or null}; null members without samples */
static json_t *send_to_eoi_json(const struct bench_result *r)
{
	if (!r->send_to_eoi_samples)
		return json_pack("{s:I, s:n, s:n}", "samples", (json_int_t)0, "cycles", "ns");
	return json_pack("{s:I, s:o, s:o?}", "samples", (json_int_t)r->send_to_eoi_samples,
			 "cycles", stats_json(&r->send_to_eoi_cycles, 1.0), "ns",
			 r->host.tsc_khz
				 ? stats_json(&r->send_to_eoi_cycles, 1e6 / (double)r->host.tsc_khz)
				 : NULL);
}

/* Optional on read (older files have none): samples and the cycle statistics. */
static int read_send_to_eoi(json_t *root, struct bench_result *out)
{
	json_t *o = json_object_get(root, "send_to_eoi"), *c;
	json_int_t samples = 0;

	if (!o)
		return 0;
	if (json_unpack(o, "{s:I}", "samples", &samples) || samples < 0)
		return -EINVAL;
	out->send_to_eoi_samples = samples;
	c = json_object_get(o, "cycles");
	if (!samples || json_is_null(c))
		return 0;
	return json_unpack(c, "{s:F, s:F, s:F, s:F, s:F}", "mean", &out->send_to_eoi_cycles.mean,
			   "median", &out->send_to_eoi_cycles.median, "min",
			   &out->send_to_eoi_cycles.min, "max", &out->send_to_eoi_cycles.max,
			   "stddev", &out->send_to_eoi_cycles.stddev)
		       ? -EINVAL
		       : 0;
}

int bench_report_json(FILE *f, const struct bench_result *r)
{
	json_t *root;
	int err;

	err = bench_result_check(r, NULL, 0);
	if (!err)
		err = check_for_json(r);
	if (err)
		return err;

	/* "o" steals each part even when packing fails, so nothing leaks on any path. */
	root = json_pack("{s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:f, s:o}", "schema",
			 BENCH_JSON_SCHEMA, "config", config_json(&r->config), "host",
			 host_json(&r->host), "runs", runs_json(r), "stats", all_stats_json(r),
			 "fanout", (json_int_t)r->fanout, "vcpus", vcpus_json(r), "wall_seconds",
			 r->wall_seconds, "send_to_eoi", send_to_eoi_json(r));
	if (!root)
		return -ENOMEM;
	/* 17 significant digits: every double reads back bit for bit. */
	err = json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	json_decref(root);
	if (err || fputc('\n', f) == EOF || ferror(f))
		return -EIO;
	return 0;
}

/* Reading back: each getter names the field by its path ("config.vcpus", "vcpus[2].sent")
 * so the one-line error says exactly what is wrong. */
struct json_reader {
	const char *path;
	char *err;
	size_t errlen;
};

static int reader_fail(struct json_reader *rd, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reader_fail(struct json_reader *rd, int ret, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return set_err(rd->err, rd->errlen, ret, "%s: %s", rd->path, msg);
}

static int get_member(struct json_reader *rd, json_t *obj, const char *where, const char *key,
		      json_t **out)
{
	*out = json_object_get(obj, key);
	if (!*out)
		return reader_fail(rd, -EINVAL, "missing field %s%s%s", where, *where ? "." : "",
				   key);
	return 0;
}

static int get_uint(struct json_reader *rd, json_t *obj, const char *where, const char *key,
		    uint64_t min, uint64_t max, uint64_t *out)
{
	json_int_t v;
	json_t *j;
	int err = get_member(rd, obj, where, key, &j);

	if (err)
		return err;
	if (!json_is_integer(j))
		return reader_fail(rd, -EINVAL, "%s%s%s must be an integer", where,
				   *where ? "." : "", key);
	v = json_integer_value(j);
	if (v < 0 || (uint64_t)v < min || (uint64_t)v > max)
		return reader_fail(rd, -EINVAL, "%s%s%s is %lld, must be %" PRIu64 "..%" PRIu64,
				   where, *where ? "." : "", key, (long long)v, min, max);
	*out = v;
	return 0;
}

static int get_unsigned(struct json_reader *rd, json_t *obj, const char *where, const char *key,
			unsigned *out)
{
	uint64_t v;
	int err = get_uint(rd, obj, where, key, 0, UINT_MAX, &v);

	if (!err)
		*out = v;
	return err;
}

static int get_bool(struct json_reader *rd, json_t *obj, const char *where, const char *key,
		    bool *out)
{
	json_t *j;
	int err = get_member(rd, obj, where, key, &j);

	if (err)
		return err;
	if (!json_is_boolean(j))
		return reader_fail(rd, -EINVAL, "%s%s%s must be true or false", where,
				   *where ? "." : "", key);
	*out = json_is_true(j);
	return 0;
}

static int get_number(struct json_reader *rd, json_t *j, const char *field, double *out)
{
	if (!json_is_number(j))
		return reader_fail(rd, -EINVAL, "%s must be a number", field);
	*out = json_number_value(j);
	return 0;
}

static int copy_string(struct json_reader *rd, json_t *j, const char *field, char *dst, size_t size)
{
	size_t len;

	if (!json_is_string(j))
		return reader_fail(rd, -EINVAL, "%s must be a string", field);
	len = json_string_length(j);
	if (len >= size || strlen(json_string_value(j)) != len)
		return reader_fail(rd, -EINVAL, "%s is too long or holds a NUL (at most %zu bytes)",
				   field, size - 1);
	memcpy(dst, json_string_value(j), len + 1);
	return 0;
}

static int get_string(struct json_reader *rd, json_t *obj, const char *where, const char *key,
		      char *dst, size_t size)
{
	char field[64];
	json_t *j;
	int err = get_member(rd, obj, where, key, &j);

	if (err)
		return err;
	snprintf(field, sizeof(field), "%s%s%s", where, *where ? "." : "", key);
	return copy_string(rd, j, field, dst, size);
}

static int get_object(struct json_reader *rd, json_t *obj, const char *where, const char *key,
		      json_t **out)
{
	int err = get_member(rd, obj, where, key, out);

	if (!err && !json_is_object(*out))
		return reader_fail(rd, -EINVAL, "%s%s%s must be an object", where,
				   *where ? "." : "", key);
	return err;
}

static int get_array(struct json_reader *rd, json_t *obj, const char *where, const char *key,
		     json_t **out)
{
	int err = get_member(rd, obj, where, key, out);

	if (!err && !json_is_array(*out))
		return reader_fail(rd, -EINVAL, "%s%s%s must be an array", where, *where ? "." : "",
				   key);
	return err;
}

/* A name from the file must be one this build knows: an old reader meeting a new pattern
 * says so instead of guessing. */
static int get_name(struct json_reader *rd, json_t *obj, const char *key,
		    int (*parse)(const char *, unsigned *), unsigned *out)
{
	char name[32];
	int err = get_string(rd, obj, "config", key, name, sizeof(name));

	if (err)
		return err;
	if (parse(name, out))
		return reader_fail(rd, -EINVAL, "config.%s \"%s\" is unknown", key, name);
	return 0;
}

static int parse_pattern(const char *name, unsigned *out)
{
	return parse_name(pattern_names, ARRAY_SIZE(pattern_names), name, out);
}

static int parse_cpu_mode(const char *name, unsigned *out)
{
	return parse_name(cpu_mode_names, ARRAY_SIZE(cpu_mode_names), name, out);
}

static int parse_target(const char *name, unsigned *out)
{
	return parse_name(target_names, ARRAY_SIZE(target_names), name, out);
}

static int read_config(struct json_reader *rd, json_t *root, struct bench_config *c)
{
	unsigned pattern = 0, mode = 0, target = 0;
	json_t *config, *pins, *pin;
	uint64_t v;
	size_t i;
	int err;

	if ((err = get_object(rd, root, "", "config", &config)) ||
	    (err = get_name(rd, config, "pattern", parse_pattern, &pattern)) ||
	    (err = get_name(rd, config, "cpu_mode", parse_cpu_mode, &mode)) ||
	    (err = get_name(rd, config, "target", parse_target, &target)) ||
	    (err = get_uint(rd, config, "config", "vcpus", 1, BENCH_MAX_VCPUS, &v)) ||
	    (err = get_unsigned(rd, config, "config", "runs", &c->runs)) ||
	    (err = get_unsigned(rd, config, "config", "ipis", &c->ipis)) ||
	    (err = get_unsigned(rd, config, "config", "warmup_runs", &c->warmup)) ||
	    (err = get_bool(rd, config, "config", "pin", &c->pin)) ||
	    (err = get_unsigned(rd, config, "config", "timeout_s", &c->timeout_s)) ||
	    (err = get_string(rd, config, "config", "name", c->name, sizeof(c->name))) ||
	    (err = get_array(rd, config, "config", "pin_cpus", &pins)))
		return err;
	c->pattern = pattern;
	c->cpu_mode = mode;
	c->target = target;
	c->vcpus = v;

	if (json_array_size(pins) > BENCH_MAX_VCPUS)
		return reader_fail(rd, -EINVAL, "config.pin_cpus has %zu entries, at most %d",
				   json_array_size(pins), BENCH_MAX_VCPUS);
	json_array_foreach(pins, i, pin)
	{
		if (!json_is_integer(pin) || json_integer_value(pin) < 0 ||
		    json_integer_value(pin) > INT_MAX)
			return reader_fail(rd, -EINVAL, "config.pin_cpus[%zu] must be a CPU number",
					   i);
		c->pin_cpus[i] = json_integer_value(pin);
	}
	c->n_pin_cpus = json_array_size(pins);
	return 0;
}

static int read_host(struct json_reader *rd, json_t *root, struct bench_host *h)
{
	json_t *host, *params, *value;
	const char *name;
	char field[64];
	int err;

	if ((err = get_object(rd, root, "", "host", &host)) ||
	    (err = get_string(rd, host, "host", "cpu_vendor", h->cpu_vendor,
			      sizeof(h->cpu_vendor))) ||
	    (err = get_string(rd, host, "host", "cpu_model", h->cpu_model, sizeof(h->cpu_model))) ||
	    (err = get_string(rd, host, "host", "kernel", h->kernel, sizeof(h->kernel))) ||
	    (err = get_string(rd, host, "host", "kvm_module", h->kvm_module,
			      sizeof(h->kvm_module))) ||
	    (err = get_uint(rd, host, "host", "tsc_khz", 0, INT64_MAX, &h->tsc_khz)) ||
	    (err = get_bool(rd, host, "host", "pv_send_ipi", &h->pv_send_ipi)) ||
	    (err = get_bool(rd, host, "host", "x2apic", &h->x2apic)) ||
	    (err = get_object(rd, host, "host", "params", &params)))
		return err;

	if (json_object_size(params) > BENCH_MAX_PARAMS)
		return reader_fail(rd, -EINVAL, "host.params has %zu entries, at most %zu",
				   json_object_size(params), BENCH_MAX_PARAMS);
	json_object_foreach(params, name, value)
	{
		unsigned i = h->n_params;

		snprintf(field, sizeof(field), "host.params.%s", name);
		if (strlen(name) >= sizeof(h->params[i].name) || !name[0])
			return reader_fail(rd, -EINVAL,
					   "host.params name \"%.40s\" is empty or "
					   "longer than %zu bytes",
					   name, sizeof(h->params[i].name) - 1);
		err = copy_string(rd, value, field, h->params[i].value, sizeof(h->params[i].value));
		if (err)
			return err;
		strcpy(h->params[i].name, name);
		h->n_params++;
	}
	return 0;
}

static int read_runs(struct json_reader *rd, json_t *root, struct bench_result *r)
{
	char field[32];
	json_t *runs, *run;
	size_t i;
	int err = get_array(rd, root, "", "runs", &runs);

	if (err)
		return err;
	if (json_array_size(runs) > BENCH_MAX_RUNS)
		return reader_fail(rd, -E2BIG, "too many runs: %zu, at most %d",
				   json_array_size(runs), BENCH_MAX_RUNS);
	json_array_foreach(runs, i, run)
	{
		snprintf(field, sizeof(field), "runs[%zu]", i);
		err = get_number(rd, run, field, &r->cycles_per_ipi[i]);
		if (err)
			return err;
	}
	r->n_runs = json_array_size(runs);
	return 0;
}

static int read_vcpus(struct json_reader *rd, json_t *root, struct bench_result *r)
{
	bool seen[BENCH_MAX_VCPUS] = {false};
	json_t *vcpus, *vcpu;
	char where[32];
	uint64_t id;
	size_t i;
	int err = get_array(rd, root, "", "vcpus", &vcpus);

	if (err)
		return err;
	if (json_array_size(vcpus) != r->config.vcpus)
		return reader_fail(rd, -EINVAL, "vcpus has %zu entries, config.vcpus is %u",
				   json_array_size(vcpus), r->config.vcpus);
	json_array_foreach(vcpus, i, vcpu)
	{
		snprintf(where, sizeof(where), "vcpus[%zu]", i);
		if (!json_is_object(vcpu))
			return reader_fail(rd, -EINVAL, "%s must be an object", where);
		err = get_uint(rd, vcpu, where, "id", 0, r->config.vcpus - 1, &id);
		if (err)
			return err;
		if (seen[id])
			return reader_fail(rd, -EINVAL, "%s.id %" PRIu64 " appears twice", where,
					   id);
		seen[id] = true;
		if ((err = get_uint(rd, vcpu, where, "sent", 0, INT64_MAX, &r->vcpu[id].sent)) ||
		    (err = get_uint(rd, vcpu, where, "received", 0, INT64_MAX,
				    &r->vcpu[id].received)))
			return err;
	}
	return 0;
}

int bench_result_from_json(const char *path, struct bench_result *out, char *err, size_t errlen)
{
	struct json_reader rd = {.path = path, .err = err, .errlen = errlen};
	json_t *root = NULL, *schema, *wall;
	json_error_t jerr;
	int ret;
	FILE *f;

	memset(out, 0, sizeof(*out));
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		return set_err(err, errlen, ret, "%s: cannot open: %s", path, strerror(-ret));
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (!root)
		return set_err(err, errlen, -EINVAL, "%s:%d:%d: invalid JSON: %s", path, jerr.line,
			       jerr.column, jerr.text);

	if (!json_is_object(root)) {
		ret = reader_fail(&rd, -EINVAL,
				  "not an ipivbench result (top level is not an "
				  "object)");
		goto cleanup;
	}
	if ((ret = get_member(&rd, root, "", "schema", &schema)))
		goto cleanup;
	if (!json_is_string(schema) || strcmp(json_string_value(schema), BENCH_JSON_SCHEMA)) {
		ret = reader_fail(&rd, -EINVAL, "schema is %s%.40s%s, expected \"%s\"",
				  json_is_string(schema) ? "\"" : "",
				  json_is_string(schema) ? json_string_value(schema)
							 : "not a string",
				  json_is_string(schema) ? "\"" : "", BENCH_JSON_SCHEMA);
		goto cleanup;
	}
	if ((ret = read_config(&rd, root, &out->config)) ||
	    (ret = read_host(&rd, root, &out->host)) || (ret = read_runs(&rd, root, out)) ||
	    (ret = get_unsigned(&rd, root, "", "fanout", &out->fanout)) ||
	    (ret = read_vcpus(&rd, root, out)) ||
	    (ret = get_member(&rd, root, "", "wall_seconds", &wall)) ||
	    (ret = get_number(&rd, wall, "wall_seconds", &out->wall_seconds)))
		goto cleanup;
	if (read_send_to_eoi(root, out)) {
		ret = reader_fail(&rd, -EINVAL, "send_to_eoi is malformed");
		goto cleanup;
	}
	ret = 0;

cleanup:
	json_decref(root);
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* A parameter name without a dot belongs to the host's kvm_module (see host.h). */
static void qualified_param(char *dst, size_t size, const struct bench_host *h, unsigned i)
{
	char name[sizeof(h->params[0].name)], module[sizeof(h->kvm_module)];

	PRINTABLE(name, h->params[i].name);
	if (strchr(name, '.'))
		snprintf(dst, size, "%s", name);
	else
		snprintf(dst, size, "%s.%s",
			 h->kvm_module[0] ? PRINTABLE(module, h->kvm_module) : "(no module)", name);
}

static const char *find_param(const struct bench_host *h, const char *qualified)
{
	char name[80];
	unsigned i;

	for (i = 0; i < h->n_params; i++) {
		qualified_param(name, sizeof(name), h, i);
		if (strcmp(name, qualified) == 0)
			return h->params[i].value;
	}
	return NULL;
}

/* The headline: what was changed between A and B, normally one module parameter.
 * Returns the number of differences printed. */
static unsigned print_param_changes(FILE *f, const struct bench_host *a, const struct bench_host *b)
{
	char name[80], va[sizeof(a->params[0].value)], vb[sizeof(b->params[0].value)];
	char ma[sizeof(a->kvm_module)], mb[sizeof(b->kvm_module)];
	unsigned i, changes = 0;
	const char *other;

	if (strcmp(a->kvm_module, b->kvm_module)) {
		fprintf(f, "kvm module: %s -> %s\n",
			a->kvm_module[0] ? PRINTABLE(ma, a->kvm_module) : "(none)",
			b->kvm_module[0] ? PRINTABLE(mb, b->kvm_module) : "(none)");
		changes++;
	}
	for (i = 0; i < a->n_params; i++) {
		qualified_param(name, sizeof(name), a, i);
		other = find_param(b, name);
		if (other && strcmp(other, a->params[i].value) == 0)
			continue;
		fprintf(f, "%s: %s -> %s\n", name, PRINTABLE(va, a->params[i].value),
			other ? printable(vb, sizeof(vb), other, sizeof(vb)) : "(absent)");
		changes++;
	}
	for (i = 0; i < b->n_params; i++) {
		qualified_param(name, sizeof(name), b, i);
		if (find_param(a, name))
			continue;
		fprintf(f, "%s: (absent) -> %s\n", name, PRINTABLE(vb, b->params[i].value));
		changes++;
	}
	return changes;
}

static void print_host_notes(FILE *f, const struct bench_result *a, const struct bench_result *b)
{
	const struct bench_host *ha = &a->host, *hb = &b->host;
	char sa[sizeof(ha->cpu_model)], sb[sizeof(hb->cpu_model)];
	char va[sizeof(ha->cpu_vendor)], vb[sizeof(hb->cpu_vendor)];

	if (a->config.ipis != b->config.ipis)
		fprintf(f, "note: K differs: A %u, B %u IPIs per run\n", a->config.ipis,
			b->config.ipis);
	if (strcmp(ha->cpu_vendor, hb->cpu_vendor) || strcmp(ha->cpu_model, hb->cpu_model))
		fprintf(f, "note: CPUs differ: A %s %s, B %s %s\n", PRINTABLE(va, ha->cpu_vendor),
			PRINTABLE(sa, ha->cpu_model), PRINTABLE(vb, hb->cpu_vendor),
			PRINTABLE(sb, hb->cpu_model));
	if (strcmp(ha->kernel, hb->kernel))
		fprintf(f, "note: kernels differ: A %s, B %s\n", PRINTABLE(sa, ha->kernel),
			PRINTABLE(sb, hb->kernel));
	if (ha->tsc_khz != hb->tsc_khz)
		fprintf(f,
			"note: TSC differs: A %" PRIu64 " kHz, B %" PRIu64 " kHz; cycles are "
			"compared, not time\n",
			ha->tsc_khz, hb->tsc_khz);
	if (a->config.pin != b->config.pin)
		fprintf(f, "note: vCPUs pinned in %s only\n", a->config.pin ? "A" : "B");
	if (!bench_result_counts_match(a, NULL, NULL, NULL))
		fprintf(f, "note: A's guest counts do not match the expected deliveries\n");
	if (!bench_result_counts_match(b, NULL, NULL, NULL))
		fprintf(f, "note: B's guest counts do not match the expected deliveries\n");
	if (a->n_runs != b->n_runs)
		fprintf(f,
			"note: run counts differ: A %u, B %u; rows show the first %u, "
			"Average and Median use every run\n",
			a->n_runs, b->n_runs, a->n_runs < b->n_runs ? a->n_runs : b->n_runs);
}

/* "%+.2f%%" as the seed prints it ("-22.21%") when the runs differ, benchstat's "~" when
 * the rank test cannot tell them apart; a zero baseline has no reduction. */
static const char *reduction(char *buf, size_t size, double a, double b, bool significant)
{
	if (a == 0.0)
		snprintf(buf, size, "n/a");
	else if (!significant)
		snprintf(buf, size, "~");
	else
		snprintf(buf, size, "%+.2f%%", (b - a) / a * 100.0);
	return buf;
}

static void print_compare_row(FILE *f, const char *label, double a, double b,
			      const struct bench_utest *ut, unsigned na, unsigned nb)
{
	bool significant = ut->p < BENCH_ALPHA;
	char pct[32];

	/* a p just below alpha would round to "0.050" beside a percentage: one more digit */
	fprintf(f, "%-7s %12.2f %12.2f %12s  (p=%.*f n=%u+%u)\n", label, a, b,
		reduction(pct, sizeof(pct), a, b, significant),
		significant && ut->p >= BENCH_ALPHA - 0.0005 ? 4 : 3, ut->p, na, nb);
}

int bench_compare(FILE *f, const struct bench_result *a, const struct bench_result *b, char *err,
		  size_t errlen)
{
	const struct bench_config *ca = &a->config, *cb = &b->config;
	struct bench_stats sa, sb;
	struct bench_utest ut;
	char why[160];
	unsigned i, rows;
	double min_p;
	int ret;

	if (bench_result_check(a, why, sizeof(why)))
		return set_err(err, errlen, -EINVAL, "cannot compare: A is invalid: %s", why);
	if (bench_result_check(b, why, sizeof(why)))
		return set_err(err, errlen, -EINVAL, "cannot compare: B is invalid: %s", why);
	if (ca->pattern != cb->pattern)
		return set_err(err, errlen, -EINVAL, "cannot compare: pattern differs (A %s, B %s)",
			       bench_pattern_name(ca->pattern), bench_pattern_name(cb->pattern));
	if (ca->cpu_mode != cb->cpu_mode)
		return set_err(
			err, errlen, -EINVAL, "cannot compare: cpu mode differs (A %s, B %s)",
			bench_cpu_mode_name(ca->cpu_mode), bench_cpu_mode_name(cb->cpu_mode));
	if (ca->target != cb->target)
		return set_err(err, errlen, -EINVAL, "cannot compare: target differs (A %s, B %s)",
			       bench_target_name(ca->target), bench_target_name(cb->target));
	if (ca->vcpus != cb->vcpus)
		return set_err(err, errlen, -EINVAL,
			       "cannot compare: vCPU count differs (A %u, B %u)", ca->vcpus,
			       cb->vcpus);
	if (a->n_runs == 0 || b->n_runs == 0)
		return set_err(err, errlen, -EINVAL, "cannot compare: %s has no runs",
			       a->n_runs == 0 ? "A" : "B");
	ret = bench_stats_compute(a->cycles_per_ipi, a->n_runs, &sa);
	if (!ret)
		ret = bench_stats_compute(b->cycles_per_ipi, b->n_runs, &sb);
	if (!ret)
		ret = bench_utest(a->cycles_per_ipi, a->n_runs, b->cycles_per_ipi, b->n_runs, &ut);
	if (ret)
		return set_err(err, errlen, ret, "cannot compare: statistics failed: %s",
			       strerror(-ret));

	fprintf(f, "ipivbench compare: pattern %s, cpu mode %s, target %s, %u vCPUs\n",
		bench_pattern_name(ca->pattern), bench_cpu_mode_name(ca->cpu_mode),
		bench_target_name(ca->target), ca->vcpus);
	if (!print_param_changes(f, &a->host, &b->host))
		fprintf(f, "module parameters: no difference between A and B\n");
	print_host_notes(f, a, b);
	/* with 3 + 3 runs even a complete separation has p = 2 / C(6, 3) = 0.1 */
	min_p = bench_utest_min_p(a->n_runs, b->n_runs);
	if (min_p >= BENCH_ALPHA)
		fprintf(f,
			"note: %u+%u runs can never differ significantly (smallest possible "
			"p=%.3f, alpha %.2f): record 5 or more runs per side\n",
			a->n_runs, b->n_runs, min_p, BENCH_ALPHA);

	fprintf(f, "\nCycles of IPI\n%7s %12s %12s %12s\n", "run", "A", "B", "%Reduction");
	rows = a->n_runs < b->n_runs ? a->n_runs : b->n_runs;
	for (i = 0; i < rows; i++)
		fprintf(f, "%7u %12.2f %12.2f\n", i + 1, a->cycles_per_ipi[i],
			b->cycles_per_ipi[i]);
	print_compare_row(f, "Average", sa.mean, sb.mean, &ut, a->n_runs, b->n_runs);
	print_compare_row(f, "Median", sa.median, sb.median, &ut, a->n_runs, b->n_runs);
	fprintf(f, "%%Reduction = (B - A) / A x 100; \"~\": no significant difference\n");
	fprintf(f,
		"p: two-sided Mann-Whitney U test of A's runs against B's (%s); "
		"significant when p < %.2f\n",
		ut.exact ? "exact" : "normal approximation, tie-corrected", BENCH_ALPHA);
	return ferror(f) ? -EIO : 0;
}
