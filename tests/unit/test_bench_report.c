/* Unit tests for bench/report.c: names, the seed's table, JSON write -> read round trip and
 * its error messages, and the seed's own %Reduction figures through bench_compare. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "report.h"

/* The seed's xAPIC columns (kvm-unit-tests vmexit ipi, 2 vCPUs, target spinning): cycles
 * of IPI without and with IPIv, 20 runs each, from the IPIv series cover letter. */
static const double seed_xapic_without_ipiv[20] = {
	6106, 6244, 6165, 5992, 6083, 6238, 6164, 5984, 5931, 5955,
	5897, 6140, 6183, 5991, 5866, 6032, 6050, 6004, 5961, 6194,
};
static const double seed_xapic_with_ipiv[20] = {
	4816, 4656, 4658, 4710, 4741, 4904, 4617, 4763, 4712, 4530,
	4673, 4794, 4728, 4994, 4665, 4654, 4653, 4792, 4626, 4576,
};

static void set_param(struct bench_host *h, const char *name, const char *value)
{
	unsigned i = h->n_params++;

	snprintf(h->params[i].name, sizeof(h->params[i].name), "%s", name);
	snprintf(h->params[i].value, sizeof(h->params[i].value), "%s", value);
}

/* An xAPIC unicast run on an Intel host, 2 vCPUs, K = 10000, counts that match. */
static struct bench_result *seed_result(const double *cycles, unsigned n, const char *ipiv)
{
	struct bench_result *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->config.pattern = BENCH_XAPIC_PHYS;
	r->config.cpu_mode = BENCH_CPU_REAL;
	r->config.target = BENCH_TARGET_SPIN;
	r->config.vcpus = 2;
	r->config.runs = n;
	r->config.ipis = 10000;
	r->config.warmup = 2;
	r->config.timeout_s = 10;
	snprintf(r->host.cpu_vendor, sizeof(r->host.cpu_vendor), "GenuineIntel");
	snprintf(r->host.cpu_model, sizeof(r->host.cpu_model), "Intel(R) Xeon(R) Platinum 8480+");
	snprintf(r->host.kernel, sizeof(r->host.kernel), "6.1.0-18-amd64");
	snprintf(r->host.kvm_module, sizeof(r->host.kvm_module), "kvm_intel");
	set_param(&r->host, "enable_apicv", "Y");
	set_param(&r->host, "enable_ipiv", ipiv);
	set_param(&r->host, "kvm.halt_poll_ns", "200000");
	r->host.tsc_khz = 2000000;
	r->n_runs = n;
	memcpy(r->cycles_per_ipi, cycles, n * sizeof(*cycles));
	r->fanout = 1;
	r->vcpu[0].sent = (uint64_t)n * 10000;
	r->vcpu[1].received = (uint64_t)n * 10000;
	r->wall_seconds = 1.5;
	return r;
}

/* The table as a string the test frees. */
static char *capture_table(const struct bench_result *r, int *ret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*ret = bench_report_table(f, r);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static char *capture_compare(const struct bench_result *a, const struct bench_result *b, int *ret,
			     char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*ret = bench_compare(f, a, b, err, errlen);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* The line of text starting with prefix, copied into line; false if none. */
static bool find_line(const char *text, const char *prefix, char *line, size_t size)
{
	const char *p = text;

	while (p && *p) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			snprintf(line, size, "%.*s", (int)len, p);
			return true;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}

static void test_names_round_trip(void **state)
{
	static const char *const expected[BENCH_PATTERN_COUNT] = {
		"x2apic-phys",
		"x2apic-logical",
		"x2apic-multicast",
		"x2apic-allbutself",
		"x2apic-self",
		"xapic-phys",
		"xapic-logical",
		"xapic-allbutself",
		"nmi",
		"pv",
	};
	enum bench_pattern p;
	enum bench_cpu_mode m;
	enum bench_target t;
	unsigned i;

	for (i = 0; i < BENCH_PATTERN_COUNT; i++) {
		assert_string_equal(bench_pattern_name(i), expected[i]);
		assert_int_equal(bench_pattern_parse(expected[i], &p), 0);
		assert_int_equal(p, i);
	}
	assert_null(bench_pattern_name(BENCH_PATTERN_COUNT));
	assert_int_equal(bench_pattern_parse("x2apic", &p), -EINVAL);
	assert_int_equal(bench_pattern_parse("XAPIC-PHYS", &p), -EINVAL);
	assert_int_equal(bench_pattern_parse(NULL, &p), -EINVAL);

	assert_string_equal(bench_cpu_mode_name(BENCH_CPU_REAL), "real");
	assert_string_equal(bench_cpu_mode_name(BENCH_CPU_LONG), "long");
	assert_null(bench_cpu_mode_name(BENCH_CPU_LONG + 1));
	assert_int_equal(bench_cpu_mode_parse("long", &m), 0);
	assert_int_equal(m, BENCH_CPU_LONG);
	assert_int_equal(bench_cpu_mode_parse("protected", &m), -EINVAL);

	assert_string_equal(bench_target_name(BENCH_TARGET_SPIN), "spin");
	assert_string_equal(bench_target_name(BENCH_TARGET_HALT), "halt");
	assert_null(bench_target_name(BENCH_TARGET_HALT + 1));
	assert_int_equal(bench_target_parse("halt", &t), 0);
	assert_int_equal(t, BENCH_TARGET_HALT);
	assert_int_equal(bench_target_parse("", &t), -EINVAL);
}

static void test_table_has_every_run_and_ns(void **state)
{
	struct bench_result *r = seed_result(seed_xapic_without_ipiv, 20, "N");
	char line[256], label[16];
	double cycles, ns, stat_cycles, stat_ns;
	unsigned rows = 0, run;
	const char *p, *counts;
	char *out;
	int ret;

	out = capture_table(r, &ret);
	assert_int_equal(ret, 0);
	assert_non_null(strstr(out, "pattern xapic-phys"));
	assert_non_null(strstr(out, "cpu mode real"));
	assert_non_null(strstr(out, "target spin"));
	assert_non_null(strstr(out, "2 vCPUs"));
	assert_non_null(strstr(out, "K=10000"));
	assert_non_null(strstr(out, "enable_ipiv=N"));
	assert_non_null(strstr(out, "ns/IPI"));

	/* run rows: "run cycles ns", in order, at 2 GHz ns is half the cycles; the rows of
	 * guest counts below parse alike, so stop at their heading */
	counts = strstr(out, "Guest counts");
	assert_non_null(counts);
	for (p = strstr(out, "Cycles of IPI"); p && p < counts;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (sscanf(p, "%u %lf %lf", &run, &cycles, &ns) != 3)
			continue;
		assert_int_equal(run, rows + 1);
		assert_true(fabs(cycles - seed_xapic_without_ipiv[rows]) < 0.005);
		assert_true(fabs(ns - seed_xapic_without_ipiv[rows] / 2.0) < 0.005);
		rows++;
	}
	assert_int_equal(rows, 20);

	/* expected values computed independently from the seed's column */
	static const struct {
		const char *label;
		double cycles;
	} stat_rows[] = {
		{"Average", 6059.00}, {"Median", 6041.00}, {"Min", 5866.00},
		{"Max", 6244.00},     {"Stddev", 114.79},
	};
	for (run = 0; run < sizeof(stat_rows) / sizeof(stat_rows[0]); run++) {
		assert_true(find_line(out, stat_rows[run].label, line, sizeof(line)));
		assert_int_equal(sscanf(line, "%15s %lf %lf", label, &stat_cycles, &stat_ns), 3);
		assert_string_equal(label, stat_rows[run].label);
		assert_true(fabs(stat_cycles - stat_rows[run].cycles) < 0.006);
		assert_true(fabs(stat_ns - stat_rows[run].cycles / 2.0) < 0.006);
	}

	/* the guest's own counts */
	assert_true(find_line(counts, "      0", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%u %lf %lf", &run, &cycles, &ns), 3);
	assert_true(cycles == 200000 && ns == 0);
	assert_true(find_line(counts, "      1", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%u %lf %lf", &run, &cycles, &ns), 3);
	assert_true(cycles == 0 && ns == 200000);
	assert_true(find_line(out, "total", line, sizeof(line)));
	assert_non_null(strstr(line, "200000"));
	assert_true(find_line(out, "expected received", line, sizeof(line)));
	assert_non_null(strstr(line, "match"));
	assert_null(strstr(line, "MISMATCH"));
	free(out);
	free(r);
}

static void test_table_ns_at_other_frequency(void **state)
{
	static const double cycles[] = {3000.0, 4500.0};
	struct bench_result *r = seed_result(cycles, 2, "Y");
	char line[256], label[16];
	double c, ns;
	char *out;
	int ret;

	r->host.tsc_khz = 3000000; /* 3 GHz: 3000 cycles are 1000 ns */
	out = capture_table(r, &ret);
	assert_int_equal(ret, 0);
	assert_true(find_line(out, "      1", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%*u %lf %lf", &c, &ns), 2);
	assert_true(fabs(ns - 1000.0) < 1e-6);
	assert_true(find_line(out, "Average", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%15s %lf %lf", label, &c, &ns), 3);
	assert_true(fabs(c - 3750.0) < 1e-6);
	assert_true(fabs(ns - 1250.0) < 1e-6);
	free(out);
	free(r);
}

static void test_table_without_tsc_omits_ns(void **state)
{
	struct bench_result *r = seed_result(seed_xapic_without_ipiv, 20, "N");
	char line[256], extra[32];
	unsigned run;
	double cycles;
	char *out;
	int ret;

	r->host.tsc_khz = 0;
	out = capture_table(r, &ret);
	assert_int_equal(ret, 0);
	assert_non_null(strstr(out, "ns/IPI omitted"));
	assert_true(find_line(out, "    run", line, sizeof(line)));
	assert_non_null(strstr(line, "cycles/IPI"));
	assert_null(strstr(line, "ns/IPI"));
	assert_true(find_line(out, "      1", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%u %lf %31s", &run, &cycles, extra), 2);
	assert_true(find_line(out, "Average", line, sizeof(line)));
	assert_int_equal(sscanf(line, "Average %lf %31s", &cycles, extra), 1);
	free(out);
	free(r);
}

static void test_table_reports_count_mismatch(void **state)
{
	struct bench_result *r = seed_result(seed_xapic_without_ipiv, 20, "N");
	char line[256];
	char *out;
	int ret;

	r->vcpu[1].received--;
	out = capture_table(r, &ret);
	assert_int_equal(ret, 0);
	assert_true(find_line(out, "expected received", line, sizeof(line)));
	assert_non_null(strstr(line, "MISMATCH"));
	assert_non_null(strstr(line, "199999"));
	assert_false(bench_result_counts_match(r, NULL, NULL, NULL));
	free(out);

	/* all-but-self on 4 vCPUs: each IPI reaches 3 */
	r->config.vcpus = 4;
	r->fanout = 3;
	memset(r->vcpu, 0, sizeof(r->vcpu));
	r->vcpu[0].sent = 10;
	r->vcpu[1].received = 10;
	r->vcpu[2].received = 10;
	r->vcpu[3].received = 10;
	assert_true(bench_result_counts_match(r, NULL, NULL, NULL));
	free(r);
}

static void test_table_refuses_invalid_result(void **state)
{
	struct bench_result *r = seed_result(seed_xapic_without_ipiv, 20, "N");
	char *out;
	int ret;

	r->config.vcpus = BENCH_MAX_VCPUS + 1;
	out = capture_table(r, &ret);
	assert_int_equal(ret, -EINVAL);
	free(out);
	r->config.vcpus = 2;
	r->config.pattern = BENCH_PATTERN_COUNT;
	out = capture_table(r, &ret);
	assert_int_equal(ret, -EINVAL);
	free(out);
	free(r);
}

static char *temp_path(void)
{
	char *path = strdup("/tmp/test_bench_report.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return path;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void write_json(const char *path, const struct bench_result *r)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(bench_report_json(f, r), 0);
	assert_int_equal(fclose(f), 0);
}

static void assert_results_equal(const struct bench_result *a, const struct bench_result *b)
{
	unsigned i;

	assert_int_equal(a->config.pattern, b->config.pattern);
	assert_int_equal(a->config.cpu_mode, b->config.cpu_mode);
	assert_int_equal(a->config.target, b->config.target);
	assert_int_equal(a->config.vcpus, b->config.vcpus);
	assert_int_equal(a->config.runs, b->config.runs);
	assert_int_equal(a->config.ipis, b->config.ipis);
	assert_int_equal(a->config.warmup, b->config.warmup);
	assert_int_equal(a->config.pin, b->config.pin);
	assert_int_equal(a->config.n_pin_cpus, b->config.n_pin_cpus);
	for (i = 0; i < a->config.n_pin_cpus; i++)
		assert_int_equal(a->config.pin_cpus[i], b->config.pin_cpus[i]);
	assert_int_equal(a->config.timeout_s, b->config.timeout_s);
	assert_string_equal(a->config.name, b->config.name);

	assert_string_equal(a->host.cpu_vendor, b->host.cpu_vendor);
	assert_string_equal(a->host.cpu_model, b->host.cpu_model);
	assert_string_equal(a->host.kernel, b->host.kernel);
	assert_string_equal(a->host.kvm_module, b->host.kvm_module);
	assert_int_equal(a->host.n_params, b->host.n_params);
	for (i = 0; i < a->host.n_params; i++) {
		assert_string_equal(a->host.params[i].name, b->host.params[i].name);
		assert_string_equal(a->host.params[i].value, b->host.params[i].value);
	}
	assert_true(a->host.tsc_khz == b->host.tsc_khz);
	assert_int_equal(a->host.pv_send_ipi, b->host.pv_send_ipi);
	assert_int_equal(a->host.x2apic, b->host.x2apic);

	assert_int_equal(a->n_runs, b->n_runs);
	/* bit for bit: JSON carries every double at full precision */
	assert_memory_equal(a->cycles_per_ipi, b->cycles_per_ipi,
			    a->n_runs * sizeof(a->cycles_per_ipi[0]));
	assert_int_equal(a->fanout, b->fanout);
	for (i = 0; i < a->config.vcpus; i++) {
		assert_true(a->vcpu[i].sent == b->vcpu[i].sent);
		assert_true(a->vcpu[i].received == b->vcpu[i].received);
	}
	assert_memory_equal(&a->wall_seconds, &b->wall_seconds, sizeof(a->wall_seconds));
}

static void test_json_round_trip(void **state)
{
	struct bench_result *r = seed_result(seed_xapic_without_ipiv, 20, "N");
	struct bench_result *back = malloc(sizeof(*back));
	char *path = temp_path(), err[256] = "";
	unsigned i;

	assert_non_null(back);
	/* values that only survive at full precision, and every field away from zero */
	r->cycles_per_ipi[3] = 1.0 / 3.0;
	r->cycles_per_ipi[7] = 6106.123456789012;
	r->config.cpu_mode = BENCH_CPU_LONG;
	r->config.target = BENCH_TARGET_HALT;
	r->config.pattern = BENCH_X2APIC_MULTICAST;
	r->config.vcpus = 5;
	r->config.pin = true;
	r->config.n_pin_cpus = 3;
	r->config.pin_cpus[0] = 4;
	r->config.pin_cpus[1] = 7;
	r->config.pin_cpus[2] = 0;
	snprintf(r->config.name, sizeof(r->config.name), "bench \"vm\" \\ 1");
	r->host.pv_send_ipi = true;
	r->host.x2apic = true;
	r->host.tsc_khz = 2899999;
	r->fanout = 4;
	for (i = 0; i < 5; i++) {
		r->vcpu[i].sent = 1000 + i;
		r->vcpu[i].received = (1ULL << 40) + i;
	}
	r->wall_seconds = 0.1 + 0.2;

	write_json(path, r);
	assert_int_equal(bench_result_from_json(path, back, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_results_equal(r, back);

	/* and a second generation is the same again */
	write_json(path, back);
	memset(r, 0xa5, sizeof(*r));
	assert_int_equal(bench_result_from_json(path, r, err, sizeof(err)), 0);
	assert_results_equal(back, r);

	unlink(path);
	free(path);
	free(back);
	free(r);
}

static void test_json_schema_shape(void **state)
{
	struct bench_result *r = seed_result(seed_xapic_without_ipiv, 20, "N");
	char *path = temp_path();
	json_t *root, *stats;
	json_error_t jerr;

	r->config.pin = true;
	r->config.n_pin_cpus = 2;
	r->config.pin_cpus[0] = 2;
	r->config.pin_cpus[1] = 3;
	write_json(path, r);
	root = json_load_file(path, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "schema")), "ipivbench/1");
	assert_int_equal(json_array_size(json_object_get(root, "runs")), 20);
	assert_int_equal(
		json_array_size(json_object_get(json_object_get(root, "config"), "pin_cpus")), 2);
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(root, "host"), "params"), "enable_ipiv")),
		"N");
	stats = json_object_get(root, "stats");
	assert_true(
		fabs(json_real_value(json_object_get(json_object_get(stats, "cycles"), "mean")) -
		     6059.0) < 1e-9);
	assert_true(fabs(json_real_value(json_object_get(json_object_get(stats, "ns"), "median")) -
			 6041.0 / 2.0) < 1e-9);
	assert_int_equal(json_array_size(json_object_get(root, "vcpus")), 2);
	json_decref(root);

	/* no TSC frequency: no ns statistics, and no figure invented for them */
	r->host.tsc_khz = 0;
	write_json(path, r);
	root = json_load_file(path, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_null(json_object_get(json_object_get(root, "stats"), "ns")));
	json_decref(root);

	unlink(path);
	free(path);
	free(r);
}

static void test_json_write_refuses_what_json_cannot_hold(void **state)
{
	struct bench_result *r = seed_result(seed_xapic_without_ipiv, 20, "N");
	FILE *f = fopen("/dev/null", "w");

	assert_non_null(f);
	r->vcpu[0].sent = UINT64_MAX;
	assert_int_equal(bench_report_json(f, r), -ERANGE);
	r->vcpu[0].sent = 1;
	snprintf(r->host.cpu_model, sizeof(r->host.cpu_model), "bad \xff utf-8");
	assert_int_equal(bench_report_json(f, r), -EINVAL);
	snprintf(r->host.cpu_model, sizeof(r->host.cpu_model), "fine");
	set_param(&r->host, "enable_ipiv", "Y");
	assert_int_equal(bench_report_json(f, r), -EINVAL);
	fclose(f);
	free(r);
}

/* Writes a valid result, lets edit change the JSON tree, and reads the file back. */
static int read_edited(void (*edit)(json_t *root), char *err, size_t errlen)
{
	struct bench_result *r = seed_result(seed_xapic_without_ipiv, 20, "N");
	char *path = temp_path();
	json_error_t jerr;
	json_t *root;
	int ret;

	write_json(path, r);
	root = json_load_file(path, 0, &jerr);
	assert_non_null(root);
	edit(root);
	assert_int_equal(json_dump_file(root, path, 0), 0);
	json_decref(root);
	memset(r, 0xa5, sizeof(*r));
	ret = bench_result_from_json(path, r, err, errlen);
	if (ret)
		assert_int_equal(r->n_runs, 0); /* cleared on failure */
	unlink(path);
	free(path);
	free(r);
	return ret;
}

static void drop_config_vcpus(json_t *root)
{
	json_object_del(json_object_get(root, "config"), "vcpus");
}

static void drop_host(json_t *root)
{
	json_object_del(root, "host");
}

static void runs_as_string(json_t *root)
{
	json_object_set_new(root, "runs", json_string("many"));
}

static void run_as_string(json_t *root)
{
	json_array_set_new(json_object_get(root, "runs"), 4, json_string("6000"));
}

static void too_many_runs(json_t *root)
{
	json_t *runs = json_object_get(root, "runs");

	while (json_array_size(runs) <= BENCH_MAX_RUNS)
		json_array_append_new(runs, json_real(5000.0));
}

static void unknown_pattern(json_t *root)
{
	json_object_set_new(json_object_get(root, "config"), "pattern", json_string("x3apic"));
}

static void vcpus_out_of_range(json_t *root)
{
	json_object_set_new(json_object_get(root, "config"), "vcpus", json_integer(65));
}

static void negative_count(json_t *root)
{
	json_object_set_new(json_array_get(json_object_get(root, "vcpus"), 1), "received",
			    json_integer(-1));
}

static void duplicate_vcpu_id(json_t *root)
{
	json_object_set_new(json_array_get(json_object_get(root, "vcpus"), 1), "id",
			    json_integer(0));
}

static void long_model(json_t *root)
{
	char model[200];

	memset(model, 'M', sizeof(model) - 1);
	model[sizeof(model) - 1] = '\0';
	json_object_set_new(json_object_get(root, "host"), "cpu_model", json_string(model));
}

static void wrong_schema(json_t *root)
{
	json_object_set_new(root, "schema", json_string("ipivbench/2"));
}

static void schema_number(json_t *root)
{
	json_object_set_new(root, "schema", json_integer(1));
}

static void unknown_field(json_t *root)
{
	json_object_set_new(root, "comment", json_string("added by hand"));
}

static void test_json_read_errors_name_the_field(void **state)
{
	static const struct {
		void (*edit)(json_t *root);
		int ret;
		const char *message;
	} cases[] = {
		{drop_config_vcpus, -EINVAL, "missing field config.vcpus"},
		{drop_host, -EINVAL, "missing field host"},
		{runs_as_string, -EINVAL, "runs must be an array"},
		{run_as_string, -EINVAL, "runs[4] must be a number"},
		{too_many_runs, -E2BIG, "too many runs: 1001, at most 1000"},
		{unknown_pattern, -EINVAL, "config.pattern \"x3apic\" is unknown"},
		{vcpus_out_of_range, -EINVAL, "config.vcpus is 65, must be 1..64"},
		{negative_count, -EINVAL, "vcpus[1].received is -1"},
		{duplicate_vcpu_id, -EINVAL, "vcpus[1].id 0 appears twice"},
		{long_model, -EINVAL, "host.cpu_model is too long"},
		{wrong_schema, -EINVAL, "schema is \"ipivbench/2\", expected \"ipivbench/1\""},
		{schema_number, -EINVAL, "schema is not a string"},
	};
	char err[256];
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(read_edited(cases[i].edit, err, sizeof(err)), cases[i].ret);
		if (!strstr(err, cases[i].message))
			fail_msg("case %u: \"%s\" lacks \"%s\"", i, err, cases[i].message);
		assert_null(strchr(err, '\n'));
	}
	/* fields this reader does not know are no error */
	assert_int_equal(read_edited(unknown_field, err, sizeof(err)), 0);
}

static void test_json_read_missing_and_malformed_files(void **state)
{
	struct bench_result *r = malloc(sizeof(*r));
	char *path = temp_path(), err[256], expect[300];

	assert_non_null(r);
	unlink(path);
	assert_int_equal(bench_result_from_json(path, r, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));

	/* the error points at line 3, where the stray comma is */
	write_text(path, "{\n  \"schema\": \"ipivbench/1\",\n  ,\n}\n");
	assert_int_equal(bench_result_from_json(path, r, err, sizeof(err)), -EINVAL);
	snprintf(expect, sizeof(expect), "%s:3:", path);
	assert_true(strncmp(err, expect, strlen(expect)) == 0);
	assert_non_null(strstr(err, "invalid JSON"));

	write_text(path, "");
	assert_int_equal(bench_result_from_json(path, r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid JSON"));

	write_text(path, "[1, 2, 3]\n");
	assert_int_equal(bench_result_from_json(path, r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not an object"));

	write_text(path, "{\"config\": {}}\n");
	assert_int_equal(bench_result_from_json(path, r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "missing field schema"));

	write_text(path, "{\"schema\": \"ipivbench/1\", \"schema\": \"ipivbench/1\"}\n");
	assert_int_equal(bench_result_from_json(path, r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "duplicate"));

	unlink(path);
	free(path);
	free(r);
}

static void test_compare_seed_reduction(void **state)
{
	struct bench_result *a = seed_result(seed_xapic_without_ipiv, 20, "N");
	struct bench_result *b = seed_result(seed_xapic_with_ipiv, 20, "Y");
	char line[256], label[16], va[32], vb[32], pct[32], err[256] = "";
	double ca, cb;
	unsigned rows = 0, run;
	const char *p, *table;
	char *out;
	int ret;

	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	assert_string_equal(err, "");

	assert_true(find_line(out, "Average", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%15s %31s %31s %31s", label, va, vb, pct), 4);
	assert_string_equal(va, "6059.00");
	assert_string_equal(vb, "4713.10");
	assert_string_equal(pct, "-22.21%");
	/* no run overlaps: p = 2 / C(40, 20), 1.5e-11 */
	assert_non_null(strstr(line, "-22.21%  (p=0.000 n=20+20)"));

	assert_true(find_line(out, "Median", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%15s %31s %31s %31s", label, va, vb, pct), 4);
	assert_string_equal(va, "6041.00");
	assert_string_equal(vb, "4691.50");
	assert_string_equal(pct, "-22.34%");
	assert_non_null(strstr(line, "(p=0.000 n=20+20)"));
	assert_non_null(strstr(out, "Mann-Whitney U test of A's runs against B's (exact)"));

	/* the headline names what changed, before the table */
	table = strstr(out, "Cycles of IPI");
	assert_non_null(table);
	p = strstr(out, "\nkvm_intel.enable_ipiv: N -> Y\n");
	assert_non_null(p);
	assert_true(p < table);
	assert_null(strstr(out, "enable_apicv:"));
	assert_null(strstr(out, "halt_poll_ns:"));
	assert_null(strstr(out, "note:"));

	for (p = table; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (sscanf(p, "%u %lf %lf", &run, &ca, &cb) != 3)
			continue;
		assert_int_equal(run, rows + 1);
		assert_true(ca == seed_xapic_without_ipiv[rows]);
		assert_true(cb == seed_xapic_with_ipiv[rows]);
		rows++;
	}
	assert_int_equal(rows, 20);
	free(out);

	/* the other way round the change is an increase, printed with its sign */
	out = capture_compare(b, a, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	assert_true(find_line(out, "Average", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%15s %31s %31s %31s", label, va, vb, pct), 4);
	assert_string_equal(pct, "+28.56%");
	assert_non_null(strstr(out, "\nkvm_intel.enable_ipiv: Y -> N\n"));
	free(out);
	free(a);
	free(b);
}

static void test_compare_refuses_mismatch(void **state)
{
	struct bench_result *a = seed_result(seed_xapic_without_ipiv, 20, "N");
	struct bench_result *b = seed_result(seed_xapic_with_ipiv, 20, "Y");
	char err[256];
	char *out;
	int ret;

	b->config.pattern = BENCH_X2APIC_PHYS;
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(out, "");
	assert_string_equal(err, "cannot compare: pattern differs (A xapic-phys, B x2apic-phys)");
	free(out);

	b->config.pattern = a->config.pattern;
	b->config.cpu_mode = BENCH_CPU_LONG;
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(out, "");
	assert_string_equal(err, "cannot compare: cpu mode differs (A real, B long)");
	free(out);

	b->config.cpu_mode = a->config.cpu_mode;
	b->config.target = BENCH_TARGET_HALT;
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(out, "");
	assert_string_equal(err, "cannot compare: target differs (A spin, B halt)");
	free(out);

	b->config.target = a->config.target;
	b->config.vcpus = 4;
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(out, "");
	assert_string_equal(err, "cannot compare: vCPU count differs (A 2, B 4)");
	free(out);

	b->config.vcpus = a->config.vcpus;
	b->n_runs = 0;
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(err, "cannot compare: B has no runs");
	free(out);
	free(a);
	free(b);
}

static void test_compare_notes_but_allows_other_differences(void **state)
{
	struct bench_result *a = seed_result(seed_xapic_without_ipiv, 20, "Y");
	struct bench_result *b = seed_result(seed_xapic_with_ipiv, 12, "Y");
	char line[256], err[256];
	double ca, cb;
	unsigned rows = 0, run;
	const char *p;
	char *out;
	int ret;

	b->config.ipis = 50000;
	snprintf(b->host.kernel, sizeof(b->host.kernel), "6.9.0-rc1+");
	snprintf(b->host.params[2].value, sizeof(b->host.params[2].value), "0");
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	assert_non_null(strstr(out, "\nkvm.halt_poll_ns: 200000 -> 0\n"));
	assert_null(strstr(out, "enable_ipiv:"));
	assert_non_null(strstr(out, "note: K differs: A 10000, B 50000 IPIs per run"));
	assert_non_null(strstr(out, "note: kernels differ: A 6.1.0-18-amd64, B 6.9.0-rc1+"));
	assert_non_null(strstr(out, "note: run counts differ: A 20, B 12"));
	for (p = strstr(out, "Cycles of IPI"); p && *p;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (sscanf(p, "%u %lf %lf", &run, &ca, &cb) == 3)
			rows++;
	assert_int_equal(rows, 12);
	/* each side's average uses all of its own runs: 20 for A */
	assert_true(find_line(out, "Average", line, sizeof(line)));
	assert_non_null(strstr(line, "6059.00"));
	free(out);

	/* same parameters: said so; a parameter only one side has shows as absent */
	b->host.params[2] = a->host.params[2];
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	assert_non_null(strstr(out, "module parameters: no difference between A and B"));
	free(out);
	set_param(&b->host, "enable_device_posted_irqs", "Y");
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	assert_non_null(strstr(out, "\nkvm_intel.enable_device_posted_irqs: (absent) -> Y\n"));
	free(out);

	/* a broken ground truth is worth a note, not a refusal */
	b->vcpu[1].received = 3;
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	assert_non_null(strstr(out, "note: B's guest counts do not match"));
	free(out);
	free(a);
	free(b);
}

/* The Average and Median rows' change column and p, as printed. */
static void compare_rows(const char *out, char avg[32], char med[32], char p_avg[32],
			 char p_med[32])
{
	char line[256], label[16], va[32], vb[32];

	assert_true(find_line(out, "Average", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%15s %31s %31s %31s (%31s", label, va, vb, avg, p_avg), 5);
	assert_true(find_line(out, "Median", line, sizeof(line)));
	assert_int_equal(sscanf(line, "%15s %31s %31s %31s (%31s", label, va, vb, med, p_med), 5);
}

static void test_compare_identical_runs_print_tilde(void **state)
{
	struct bench_result *a = seed_result(seed_xapic_without_ipiv, 20, "N");
	char avg[32], med[32], p_avg[32], p_med[32], err[256];
	char *out;
	int ret;

	out = capture_compare(a, a, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	compare_rows(out, avg, med, p_avg, p_med);
	assert_string_equal(avg, "~");
	assert_string_equal(med, "~");
	assert_string_equal(p_avg, "p=1.000");
	assert_string_equal(p_med, "p=1.000");
	assert_null(strstr(out, "note:"));
	free(out);
	free(a);
}

static void test_compare_overlapping_runs_print_tilde(void **state)
{
	/* B is A's runs 1 % faster, shuffled (5931 x 0.99 made 5930 to keep the values
	 * distinct): medians 6041 and 5981, but the runs interleave (U = 263 of 400) and the
	 * exact p is 0.091, 3138977377 / 34461632205 by the partition recurrence. */
	static const double shuffled_faster[20] = {
		5872, 5932, 6102, 6176, 5972, 5990, 6103, 6121, 6045, 6182,
		5930, 5838, 6132, 5895, 5807, 6079, 6022, 5944, 5901, 5924,
	};
	struct bench_result *a = seed_result(seed_xapic_without_ipiv, 20, "N");
	struct bench_result *b = seed_result(shuffled_faster, 20, "Y");
	char avg[32], med[32], p_avg[32], p_med[32], err[256];
	char *out;
	int ret;

	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	compare_rows(out, avg, med, p_avg, p_med);
	assert_string_equal(avg, "~");
	assert_string_equal(med, "~");
	assert_string_equal(p_avg, "p=0.091");
	assert_string_equal(p_med, "p=0.091");
	free(out);
	free(a);
	free(b);
}

static void test_compare_significant_sign_both_ways(void **state)
{
	/* 20 runs each, B 10 % slower with some overlap at the edges */
	double slow[20], fast[20];
	struct bench_result *a, *b;
	char avg[32], med[32], p_avg[32], p_med[32], err[256];
	char *out;
	unsigned i;
	int ret;

	for (i = 0; i < 20; i++) {
		fast[i] = 5000 + 30 * i;
		slow[i] = 5500 + 30 * i;
	}
	a = seed_result(fast, 20, "Y");
	b = seed_result(slow, 20, "N");
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	compare_rows(out, avg, med, p_avg, p_med);
	/* medians 5285 and 5785 */
	assert_string_equal(avg, "+9.46%");
	assert_string_equal(med, "+9.46%");
	assert_string_equal(p_avg, "p=0.000");
	free(out);

	out = capture_compare(b, a, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	compare_rows(out, avg, med, p_avg, p_med);
	assert_string_equal(avg, "-8.64%");
	assert_string_equal(med, "-8.64%");
	free(out);
	free(a);
	free(b);
}

static void test_compare_p_just_below_alpha_keeps_a_digit(void **state)
{
	/* 8 + 8 runs with U = 13: exact p = 2 x 321 / 12870 = 0.04988, significant, which
	 * "%.3f" would print as 0.050 */
	static const double low[8] = {1000, 2000, 3000, 4000, 5000, 6000, 12000, 16000};
	static const double high[8] = {7000, 8000, 9000, 10000, 11000, 13000, 14000, 15000};
	struct bench_result *a = seed_result(low, 8, "Y");
	struct bench_result *b = seed_result(high, 8, "N");
	char avg[32], med[32], p_avg[32], p_med[32], err[256];
	char *out;
	int ret;

	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	compare_rows(out, avg, med, p_avg, p_med);
	assert_string_equal(med, "+133.33%");
	assert_string_equal(p_med, "p=0.0499");
	free(out);
	free(a);
	free(b);
}

static void test_compare_three_runs_never_significant(void **state)
{
	/* benchstat's caveat: 3 + 3 runs, fully separated and 20 % apart, give p = 0.1 */
	static const double three_slow[3] = {6100, 6000, 6200}, three_fast[3] = {4900, 4800, 5000};
	struct bench_result *a = seed_result(three_slow, 3, "N");
	struct bench_result *b = seed_result(three_fast, 3, "Y");
	char avg[32], med[32], p_avg[32], p_med[32], line[256], err[256];
	char *out;
	int ret;

	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	compare_rows(out, avg, med, p_avg, p_med);
	assert_string_equal(avg, "~");
	assert_string_equal(med, "~");
	assert_string_equal(p_avg, "p=0.100");
	assert_true(find_line(out, "note: 3+3 runs", line, sizeof(line)));
	assert_non_null(strstr(line, "can never differ significantly (smallest possible p=0.100"));
	free(out);

	/* 5 + 5 can: 2 / 252 */
	a->n_runs = 5;
	a->cycles_per_ipi[3] = 6050;
	a->cycles_per_ipi[4] = 6150;
	b->n_runs = 5;
	b->cycles_per_ipi[3] = 4850;
	b->cycles_per_ipi[4] = 4950;
	out = capture_compare(a, b, &ret, err, sizeof(err));
	assert_int_equal(ret, 0);
	compare_rows(out, avg, med, p_avg, p_med);
	assert_string_equal(avg, "-19.67%");
	assert_string_equal(p_avg, "p=0.008");
	assert_null(strstr(out, "note:"));
	free(out);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_table_has_every_run_and_ns),
		cmocka_unit_test(test_table_ns_at_other_frequency),
		cmocka_unit_test(test_table_without_tsc_omits_ns),
		cmocka_unit_test(test_table_reports_count_mismatch),
		cmocka_unit_test(test_table_refuses_invalid_result),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_schema_shape),
		cmocka_unit_test(test_json_write_refuses_what_json_cannot_hold),
		cmocka_unit_test(test_json_read_errors_name_the_field),
		cmocka_unit_test(test_json_read_missing_and_malformed_files),
		cmocka_unit_test(test_compare_seed_reduction),
		cmocka_unit_test(test_compare_refuses_mismatch),
		cmocka_unit_test(test_compare_notes_but_allows_other_differences),
		cmocka_unit_test(test_compare_identical_runs_print_tilde),
		cmocka_unit_test(test_compare_overlapping_runs_print_tilde),
		cmocka_unit_test(test_compare_significant_sign_both_ways),
		cmocka_unit_test(test_compare_p_just_below_alpha_keeps_a_digit),
		cmocka_unit_test(test_compare_three_runs_never_significant),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
