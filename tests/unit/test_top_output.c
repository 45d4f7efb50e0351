/* Unit tests for ipivtop's batch output (text, CSV with escaping, JSON lines with totals) and
 * for the --connect URL parser's one-line errors. */
#include <errno.h>
#include <jansson.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ipivtop/batch.h"
#include "ipivtop/format.h"
#include "ipivtop/http.h"

static int setup(void **state)
{
	if (!setlocale(LC_CTYPE, "C.UTF-8") && !setlocale(LC_CTYPE, "C.utf8"))
		return -1;
	return 0;
}

/* A model with two samples of two VMs, one second apart. */
static void make_model(struct top_model *m)
{
	struct ipiv_vm_stats vms[2] = {
		{.vm = 1, .pid = 11, .alive = true, .vcpu_count = 4},
		{.vm = 2, .pid = 22, .alive = true, .vcpu_count = 2},
	};
	struct ipiv_snapshot snap = {.vms = vms, .n_vms = 2, .taken_ns = 1000000000ull};
	char names[2][VM_NAME_MAX] = {"web,\"01\"", "db"};

	top_model_init(m);
	assert_int_equal(
		top_model_update(m, &snap, (const char(*)[VM_NAME_MAX])names, NULL, NULL, NULL), 0);
	vms[0].counts.sent = 3000;
	vms[0].counts.sent_accel_eligible = 3000;
	vms[0].counts.received = 3000;
	vms[0].inhibits_known = true;
	snap.taken_ns = 2000000000ull;
	assert_int_equal(
		top_model_update(m, &snap, (const char(*)[VM_NAME_MAX])names, NULL, NULL, NULL), 0);
}

/* send_to_eoi.<key> of a batch JSON VM: count, or a quantile's value_ns. */
static json_t *json_object_path(json_t *vm, const char *key)
{
	json_t *o = json_object_get(json_object_get(json_object_get(vm, "latency"), "send_to_eoi"),
				    key);

	return json_is_object(o) ? json_object_get(o, "value_ns") : o;
}

static char *capture(enum top_batch_format fmt, const struct top_model *m, unsigned iteration)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(top_batch_print(f, fmt, iteration, 2.0, m), 0);
	fclose(f);
	return buf;
}

static void test_csv(void **state)
{
	struct top_model m;
	const char *want = "1,2.000,\"web,\"\"01\"\"\",11,4,running,1,3000,3000,";
	char *out, *line2;

	make_model(&m);
	out = capture(TOP_BATCH_CSV, &m, 1);
	assert_int_equal(strncmp(out, "iteration,time_s,vm,pid,vcpus,state,", 36), 0);
	line2 = strchr(out, '\n') + 1;
	/* the name holds a comma and quotes: quoted, quotes doubled */
	if (strncmp(line2, want, strlen(want)))
		fail_msg("row: %s", line2);
	assert_non_null(strstr(line2, ",3000,3000,3000,0,0,0,none,,,\n"));
	free(out);
	/* the header comes once */
	out = capture(TOP_BATCH_CSV, &m, 2);
	assert_int_equal(strncmp(out, "2,", 2), 0);
	free(out);
	top_model_free(&m);
}

static void test_json(void **state)
{
	struct top_model m;
	json_error_t je;
	json_t *doc, *web;
	char *out;

	make_model(&m);
	out = capture(TOP_BATCH_JSON, &m, 3);
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n')[1], '\0'); /* one line per iteration */
	doc = json_loads(out, 0, &je);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "iteration")), 3);
	assert_int_equal(json_array_size(json_object_get(doc, "vms")), 2);
	web = json_array_get(json_object_get(doc, "vms"), 0);
	assert_string_equal(json_string_value(json_object_get(web, "name")), "web,\"01\"");
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(web, "totals"), "sent")), 3000);
	assert_float_equal(json_real_value(json_object_get(json_object_get(web, "rates"), "sent")),
			   3000, 1e-6);
	assert_true(json_is_null(json_object_get(web, "latency")));
	assert_true(json_is_null(json_object_get(web, "findings")));
	json_decref(doc);
	free(out);
	top_model_free(&m);
}

/* The second sample brings send->EOI figures for VM 1 and a diagnosis naming both VMs. */
static void test_latency_and_findings(void **state)
{
	struct ipiv_vm_stats vms[2] = {
		{.vm = 1, .pid = 11, .alive = true, .vcpu_count = 4},
		{.vm = 2, .pid = 22, .alive = true, .vcpu_count = 2},
	};
	struct ipiv_snapshot snap = {.vms = vms, .n_vms = 2, .taken_ns = 1000000000ull};
	char names[2][VM_NAME_MAX] = {"web", "db"};
	struct api_latency lat[2] = {0};
	struct diag_vm_report vr[2] = {{.vm = 1, .name = "web"}, {.vm = 2, .name = "db"}};
	struct diag_report report = {.vms = vr, .n_vms = 2};
	struct latency_hist h = {0};
	struct top_model m;
	json_error_t je;
	json_t *doc, *web, *db;
	char *out, *row;

	for (int i = 0; i < 95; i++)
		latency_add(&h, 14600);
	for (int i = 0; i < 5; i++)
		latency_add(&h, 3200000);
	api_latency_from_hist(&h, &lat[0]);
	vr[0].result.findings[0] = (struct diag_finding){.rule = DIAG_RULE_LOGICAL_DEST_MODE,
							 .severity = DIAG_WARNING};
	vr[0].result.findings[1] =
		(struct diag_finding){.rule = DIAG_RULE_TARGETS_HALTED, .severity = DIAG_INFO};
	vr[0].result.n_findings = 2;
	top_model_init(&m);
	assert_int_equal(
		top_model_update(&m, &snap, (const char(*)[VM_NAME_MAX])names, lat, NULL, &report),
		0);
	assert_true(m.rows[0].has_findings);
	assert_int_equal(m.rows[0].findings, 2);
	assert_int_equal(m.rows[0].worst, DIAG_WARNING);
	assert_true(m.rows[1].has_findings);
	assert_int_equal(m.rows[1].findings, 0);

	out = capture(TOP_BATCH_CSV, &m, 1);
	row = strstr(out, "\n1,2.000,web,");
	assert_non_null(row);
	/* p50 and p99 in seconds: the midpoints of [14336, 14847] and [3145728, 3276799] */
	if (!strstr(row, ",1.45915e-05,0.00321126,logical_dest_mode targets_halted\n"))
		fail_msg("web: %s", row);
	assert_non_null(strstr(out, ",,,none\n")); /* db: no latency, no findings */
	free(out);

	out = capture(TOP_BATCH_JSON, &m, 1);
	doc = json_loads(out, 0, &je);
	assert_non_null(doc);
	web = json_array_get(json_object_get(doc, "vms"), 0);
	db = json_array_get(json_object_get(doc, "vms"), 1);
	assert_int_equal(json_integer_value(json_object_path(web, "count")), 100);
	assert_float_equal(json_real_value(json_object_path(web, "p50")), 14591.5, 1e-6);
	assert_float_equal(json_real_value(json_object_path(web, "p99")), 3211263.5, 1e-6);
	assert_string_equal(json_string_value(json_array_get(json_object_get(web, "findings"), 0)),
			    "logical_dest_mode");
	assert_int_equal(json_array_size(json_object_get(web, "findings")), 2);
	assert_true(json_is_null(json_object_get(db, "latency")));
	assert_int_equal(json_array_size(json_object_get(db, "findings")), 0);
	assert_true(json_is_array(json_object_get(db, "findings")));
	json_decref(doc);
	free(out);

	/* the text table shows them too */
	out = capture(TOP_BATCH_TEXT, &m, 1);
	assert_non_null(strstr(out, "~14.6\u00b5s  ~3.2ms"));
	free(out);
	top_model_free(&m);
}

static void test_text_and_filter(void **state)
{
	struct top_model m;
	char *out, err[64];

	make_model(&m);
	assert_int_equal(top_model_set_filter(&m, "^db$", err, sizeof(err)), 0);
	out = capture(TOP_BATCH_TEXT, &m, 1);
	assert_non_null(strstr(out, "iteration 1 at 2.0s\n"));
	assert_non_null(strstr(out, "\ndb "));
	assert_null(strstr(out, "web"));
	free(out);
	top_model_free(&m);
}

static void test_csv_field(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	top_csv_field(f, "plain");
	fputc('|', f);
	top_csv_field(f, "a\nb");
	fclose(f);
	assert_string_equal(buf, "plain|\"a\nb\"");
	free(buf);
}

static void test_url(void **state)
{
	static const struct {
		const char *url, *host, *port, *prefix;
	} good[] = {
		{"http://127.0.0.1:9712", "127.0.0.1", "9712", ""},
		{"127.0.0.1:80/", "127.0.0.1", "80", ""},
		{"http://localhost", "localhost", "9712", ""},
		{"http://[::1]:9100/ipiv/", "::1", "9100", "/ipiv"},
	};
	static const struct {
		const char *url, *want;
	} bad[] = {
		{"https://h:1", "https is not supported"},
		{"ftp://h", "only http://"},
		{"http://:80", "no host"},
		{"http://h:0", "bad port"},
		{"http://h:99999", "bad port"},
		{"http://h:80x", "bad port"},
		{"http://[::1", "unterminated"},
		{"http://h/a b", "bad path"},
	};
	struct top_url u;
	char err[200];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(top_url_parse(good[i].url, &u, err, sizeof(err)), 0);
		assert_string_equal(u.host, good[i].host);
		assert_string_equal(u.port, good[i].port);
		assert_string_equal(u.prefix, good[i].prefix);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = top_url_parse(bad[i].url, &u, err, sizeof(err));

		if (r != -EINVAL || !strstr(err, bad[i].want) || strchr(err, '\n'))
			fail_msg("\"%s\": got %d \"%s\", want \"%s\"", bad[i].url, r, err,
				 bad[i].want);
	}
}

/* -z and the log modes: idle VMs left out, the time first, the header once. */
static void test_log_records_and_skip_zero(void **state)
{
	struct top_batch_opts o = {
		.header = true, .skip_zero = true, .timestamp = "2026-12-06T11:20:01Z"};
	struct top_model m;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	make_model(&m); /* web sent 3000 in the interval, db nothing */
	assert_true(top_row_idle(&m.rows[1]) || top_row_idle(&m.rows[0]));
	for (size_t i = 0; i < m.n_rows; i++)
		assert_int_equal(top_row_idle(&m.rows[i]), !strcmp(m.rows[i].name, "db"));

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(top_batch_write(f, TOP_BATCH_CSV, &o, 1, 2.0, &m), 0);
	o.header = false;
	assert_int_equal(top_batch_write(f, TOP_BATCH_CSV, &o, 2, 4.0, &m), 0);
	fclose(f);
	assert_non_null(strstr(buf, "timestamp,iteration,time_s,vm,"));
	assert_null(strstr(strstr(buf, "\n"), "timestamp,")); /* the header once */
	assert_non_null(strstr(buf, "\n2026-12-06T11:20:01Z,1,2.000,\"web,\"\"01\"\"\","));
	assert_non_null(strstr(buf, "\n2026-12-06T11:20:01Z,2,4.000,"));
	assert_null(strstr(buf, ",db,")); /* idle: left out */
	free(buf);

	/* without -z the idle VM is there; JSON carries the time too */
	o.skip_zero = false;
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_int_equal(top_batch_write(f, TOP_BATCH_JSON, &o, 3, 6.0, &m), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"timestamp\":\"2026-12-06T11:20:01Z\""));
	assert_non_null(strstr(buf, "\"name\":\"db\""));
	free(buf);

	/* a gone VM is idle; one without rates yet is not */
	m.rows[0].gone = 1;
	assert_true(top_row_idle(&m.rows[0]));
	m.rows[0].gone = 0;
	m.rows[0].rate.valid = false;
	assert_false(top_row_idle(&m.rows[0]));
	top_model_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_text_and_filter),
		cmocka_unit_test(test_csv_field),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_latency_and_findings),
		cmocka_unit_test(test_log_records_and_skip_zero),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
