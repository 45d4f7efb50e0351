/* Checks real expo.c output with Prometheus' own parsers: `promtool check metrics` (text 0.0.4,
 * including its lint) and `promtool tsdb create-blocks-from openmetrics` (OpenMetrics 1.0.0). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "expo.h"

static char workdir[] = "/tmp/ipiv-promtool-XXXXXX";

/* Every kind of family and every escape ipivd can produce; returns the number of samples. */
static size_t write_representative(struct expo *e)
{
	const struct expo_label vm_web[] = {{"vm", "web"}, {"path", "x2apic"}};
	const struct expo_label vm_odd[] = {{"vm", "we\\ird \"name\"\nline2 caf\xc3\xa9 \xff"},
					    {"path", "xapic"}};
	const struct expo_label build[] = {{"version", "0.1.0-3-gabc"}, {"kernel", "6.1.0"}};
	double le[24];
	uint64_t counts[25];
	struct expo_histogram h = {le, counts, 24, 0, NULL};
	size_t i;

	for (i = 0; i < 24; i++) {
		le[i] = ldexp(1, (int)i) / 1e9; /* log2 nanosecond buckets, in seconds */
		counts[i] = i * 3;
		h.sum += counts[i] * le[i];
	}
	counts[24] = 2;

	assert_int_equal(expo_begin(e, "ipiv_ipis_sent", EXPO_COUNTER,
				    "IPIs sent by the guest, by path.\nSecond \"line\" \\ here."),
			 0);
	assert_int_equal(expo_counter(e, vm_web, 2, 123456789012345ull), 0);
	assert_int_equal(expo_counter(e, vm_odd, 2, 0), 0);
	assert_int_equal(expo_begin(e, "ipiv_bpf_run_seconds", EXPO_COUNTER, "BPF run time."), 0);
	assert_int_equal(expo_counter_f(e, NULL, 0, 0.000123), 0);
	assert_int_equal(expo_begin(e, "ipiv_vms", EXPO_GAUGE, "VMs tracked."), 0);
	assert_int_equal(expo_gauge(e, NULL, 0, 2), 0);
	assert_int_equal(expo_begin(e, "ipiv_ipi_ratio", EXPO_GAUGE, "Odd values."), 0);
	assert_int_equal(expo_gauge(e, vm_web, 1, NAN), 0);
	assert_int_equal(expo_gauge(e, vm_odd, 1, INFINITY), 0);
	assert_int_equal(expo_gauge(e, vm_odd + 1, 1, -1e-300), 0);
	assert_int_equal(
		expo_begin(e, "ipiv_delivery_seconds", EXPO_HISTOGRAM, "IPI delivery latency."), 0);
	assert_int_equal(expo_histogram(e, vm_web, 1, &h), 0);
	assert_int_equal(expo_histogram(e, vm_odd, 1, &h), 0);
	assert_int_equal(expo_begin(e, "ipiv_build", EXPO_INFO, "Build information."), 0);
	assert_int_equal(expo_info(e, build, 2), 0);
	return 2 + 1 + 1 + 3 + 2 * (25 + 2) + 1;
}

/* Runs a shell command, returning its exit status and its output in out. */
static int run(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int status;

	assert_non_null(p);
	while (n + 1 < size && fgets(out + n, (int)(size - n), p))
		n += strlen(out + n);
	out[n] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void write_file(const char *path, const char *body)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(body, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void test_text_format_passes_promtool_lint(void **state)
{
	char path[128], cmd[512], out[4096], *body;
	struct expo *e;
	size_t len;

	assert_int_equal(expo_new(EXPO_TEXT_0_0_4, &e), 0);
	write_representative(e);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	snprintf(path, sizeof(path), "%s/metrics.prom", workdir);
	write_file(path, body);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	if (run(cmd, out, sizeof(out)) != 0 || out[0])
		fail_msg("promtool check metrics rejected:\n%s\noutput:\n%s", body, out);
	free(body);
}

static void test_split_family_fails_promtool(void **state)
{
	char path[128], cmd[512], out[4096];

	/* The check above means something only if promtool catches what expo.c prevents. */
	snprintf(path, sizeof(path), "%s/split.prom", workdir);
	write_file(path, "# HELP a_total a\n# TYPE a_total counter\na_total 1\n"
			 "# HELP b b\n# TYPE b gauge\nb 1\n"
			 "# HELP a_total a\n# TYPE a_total counter\na_total{x=\"1\"} 2\n");
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	assert_int_not_equal(run(cmd, out, sizeof(out)), 0);
}

static void test_openmetrics_parses_in_promtool(void **state)
{
	char path[128], cmd[512], out[4096], *body, *line, *save = NULL;
	unsigned long long samples = 0;
	size_t len, want;
	struct expo *e;
	FILE *f;

	assert_int_equal(expo_new(EXPO_OPENMETRICS_1_0_0, &e), 0);
	want = write_representative(e);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	assert_non_null(strstr(body, "\n# EOF\n"));

	/* The backfill parser needs a timestamp on every sample; add one. */
	snprintf(path, sizeof(path), "%s/metrics.om", workdir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(f, line[0] == '#' ? "%s\n" : "%s 1700000000\n", line);
	assert_int_equal(fclose(f), 0);
	free(body);

	snprintf(cmd, sizeof(cmd), "promtool tsdb create-blocks-from openmetrics %s %s/blocks 2>&1",
		 path, workdir);
	if (run(cmd, out, sizeof(out)) != 0)
		fail_msg("promtool rejected the OpenMetrics exposition in %s:\n%s", path, out);
	/* Second line: ULID, min time, max time, duration, number of samples, ... */
	line = strchr(out, '\n');
	assert_non_null(line);
	assert_int_equal(sscanf(line + 1, "%*s %*s %*s %*s %llu", &samples), 1);
	assert_int_equal(samples, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_format_passes_promtool_lint),
		cmocka_unit_test(test_split_family_fails_promtool),
		cmocka_unit_test(test_openmetrics_parses_in_promtool),
	};
	char cmd[128];
	int rc;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		printf("promtool not installed (Debian: apt-get install prometheus)\n");
		return 77;
	}
	if (!mkdtemp(workdir)) {
		perror("mkdtemp");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", workdir);
	return rc;
}
