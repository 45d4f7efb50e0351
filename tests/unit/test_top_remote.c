/* Unit tests for daemon/ipivtop/source_remote.c with its HTTP layer stubbed: ipivd's answers
 * are api.c's documents of a hand-made snapshot. Which requests one refresh makes: each shown
 * VM in detail when at most TOP_REMOTE_HIST_MAX_VMS are shown, else one
 * /api/v1/vms?histograms=send_to_eoi; either way the table gets every shown VM's send->EOI
 * histogram, so its P50/P99 are per interval at any VM count. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ipivd/api.h"
#include "ipivtop/http.h"
#include "ipivtop/model.h"
#include "ipivtop/source.h"

#define ID_KEY	0x5eed5eed12345678ull
#define MAX_VMS (TOP_REMOTE_HIST_MAX_VMS + 8)

/* The ipivd the stub answers for. */
static struct {
	struct ipiv_snapshot snap;
	struct ipiv_vm_stats vms[MAX_VMS];
	struct ipiv_lat_hist lat[MAX_VMS];
	char name_buf[MAX_VMS][16];
	const char *names[MAX_VMS];
	bool old_ipivd; /* ignores ?histograms= */
	/* the requests made, in order */
	char paths[4 * MAX_VMS][64];
	size_t n_paths;
} ipivd;

int top_url_parse(const char *url, struct top_url *out, char *err, size_t err_size)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->host, sizeof(out->host), "%s", url);
	return 0;
}

static int reply(json_t *doc, char **body, size_t *len)
{
	assert_non_null(doc);
	*body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	assert_non_null(*body);
	*len = strlen(*body);
	return 0;
}

int top_http_get(const struct top_url *url, const char *path, double timeout_s, char **body,
		 size_t *len, char *err, size_t err_size)
{
	const char *const *names = ipivd.names;
	static const char vm_prefix[] = "/api/v1/vms/";

	assert_true(ipivd.n_paths < sizeof(ipivd.paths) / sizeof(ipivd.paths[0]));
	snprintf(ipivd.paths[ipivd.n_paths++], sizeof(ipivd.paths[0]), "%s", path);
	if (!strcmp(path, "/api/v1/status"))
		return reply(api_status(&ipivd.snap, "1.2.3-test"), body, len);
	if (!strcmp(path, "/api/v1/vms"))
		return reply(api_vms(&ipivd.snap, names, ID_KEY), body, len);
	if (!strcmp(path, "/api/v1/vms?histograms=send_to_eoi"))
		return reply(api_vms_with(&ipivd.snap, names, ID_KEY,
					  ipivd.old_ipivd ? 0 : API_VMS_HIST_SEND_TO_EOI),
			     body, len);
	if (!strncmp(path, vm_prefix, strlen(vm_prefix))) {
		json_t *doc = api_vm_detail(&ipivd.snap, names, ID_KEY, path + strlen(vm_prefix));

		if (doc)
			return reply(doc, body, len);
		snprintf(err, err_size, "GET %s: HTTP status 404", path);
		return -ENOENT;
	}
	/* /api/v1/findings: not evaluated yet */
	snprintf(err, err_size, "GET %s: HTTP status 503", path);
	return -EPROTO;
}

/* n VMs, VM i with i + 1 send->EOI observations of (i + 1) us. */
static void ipivd_init(size_t n)
{
	memset(&ipivd, 0, sizeof(ipivd));
	ipivd.snap.vms = ipivd.vms;
	ipivd.snap.n_vms = n;
	for (size_t i = 0; i < n; i++) {
		struct ipiv_vm_stats *vm = &ipivd.vms[i];

		vm->vm = 0xffff888100000000ull + 0x1000 * i;
		vm->pid = 1000 + (int32_t)i;
		vm->alive = true;
		vm->vcpu_count = 2;
		vm->latency_enabled = true;
		ipivd.lat[i] = (struct ipiv_lat_hist){.kind = IPIV_LAT_SEND_EOI,
						      .sub = IPIV_PATH_X2APIC_MSR,
						      .vcpu = IPIV_LAT_VM_WIDE};
		for (size_t k = 0; k <= i; k++)
			latency_add(&ipivd.lat[i].h, 1000 * (i + 1));
		vm->lat = &ipivd.lat[i];
		vm->n_lat = 1;
		snprintf(ipivd.name_buf[i], sizeof(ipivd.name_buf[i]), "vm%02zu", i);
		ipivd.names[i] = ipivd.name_buf[i];
	}
}

/* ipivd adds one observation of 500 us to each VM's histogram. */
static void ipivd_observe(void)
{
	for (size_t i = 0; i < ipivd.snap.n_vms; i++)
		latency_add(&ipivd.lat[i].h, 500000);
}

static size_t count_paths(const char *prefix)
{
	size_t n = 0;

	for (size_t i = 0; i < ipivd.n_paths; i++)
		n += !strncmp(ipivd.paths[i], prefix, strlen(prefix));
	return n;
}

static size_t count_path(const char *path)
{
	size_t n = 0;

	for (size_t i = 0; i < ipivd.n_paths; i++)
		n += !strcmp(ipivd.paths[i], path);
	return n;
}

/* The frame gives every VM its histogram as ipivd holds it. */
static void assert_hists(const struct top_frame *f)
{
	assert_non_null(f->send_eoi);
	assert_int_equal(f->snap->n_vms, ipivd.snap.n_vms);
	for (size_t i = 0; i < f->snap->n_vms; i++) {
		assert_true(f->send_eoi[i].known);
		assert_memory_equal(&f->send_eoi[i].hist, &ipivd.lat[i].h, sizeof(ipivd.lat[i].h));
	}
}

static struct top_source *open_remote(void)
{
	struct top_source *s;
	char err[200];

	assert_int_equal(top_source_remote_open(&s, "ipivd", 1, err, sizeof(err)), 0);
	return s;
}

/* Few VMs: one detail request each, no list with histograms. */
static void test_few_vms_in_detail(void **state)
{
	struct top_source *s;
	struct top_frame f;
	char err[200];

	ipivd_init(3);
	s = open_remote();
	ipivd.n_paths = 0;
	assert_int_equal(top_source_sample(s, false, 0, &f, err, sizeof(err)), 0);
	assert_int_equal(count_path("/api/v1/vms"), 1);
	assert_int_equal(count_paths("/api/v1/vms?"), 0);
	assert_int_equal(count_paths("/api/v1/vms/"), 3);
	assert_hists(&f);
	top_frame_free(s, &f);
	top_source_close(s);
}

/* More than TOP_REMOTE_HIST_MAX_VMS: the first refresh reads the list again with
 * histograms, the next ones only with histograms; no detail request but the drilled VM's;
 * the table's P50/P99 are the interval's. */
static void test_many_vms_one_request(void **state)
{
	const size_t n = TOP_REMOTE_HIST_MAX_VMS + 1;
	struct top_source *s;
	struct top_frame f;
	struct top_model m;
	uint64_t key;
	char err[200];

	ipivd_init(n);
	s = open_remote();
	top_model_init(&m);
	ipivd.n_paths = 0;
	assert_int_equal(top_source_sample(s, false, 0, &f, err, sizeof(err)), 0);
	assert_int_equal(count_path("/api/v1/vms"), 1);
	assert_int_equal(count_path("/api/v1/vms?histograms=send_to_eoi"), 1);
	assert_int_equal(count_paths("/api/v1/vms/"), 0);
	assert_hists(&f);
	assert_int_equal(top_model_update(&m, f.snap, (const char(*)[VM_NAME_MAX])f.names,
					  f.latency, f.send_eoi, f.findings),
			 0);
	key = f.snap->vms[0].vm; /* the API's id, as ipivtop drills into it */
	top_frame_free(s, &f);

	/* the next refresh: one list request, with histograms; the drilled VM in detail */
	ipivd_observe();
	ipivd.n_paths = 0;
	assert_int_equal(top_source_sample(s, true, key, &f, err, sizeof(err)), 0);
	assert_int_equal(count_path("/api/v1/vms"), 0);
	assert_int_equal(count_path("/api/v1/vms?histograms=send_to_eoi"), 1);
	assert_int_equal(count_paths("/api/v1/vms/"), 1);
	assert_non_null(f.detail);
	assert_hists(&f);
	assert_int_equal(top_model_update(&m, f.snap, (const char(*)[VM_NAME_MAX])f.names,
					  f.latency, f.send_eoi, f.findings),
			 0);
	assert_int_equal(m.lat_span, TOP_LAT_INTERVAL);
	/* each VM's interval: the one 500 us observation, not its lifetime */
	for (size_t i = 0; i < m.n_rows; i++) {
		assert_true(m.rows[i].latency.known);
		assert_int_equal(m.rows[i].latency.count, 1);
		assert_int_equal(m.rows[i].latency.sum_ns, 500000);
	}
	top_frame_free(s, &f);

	/* fewer again: the buckets the list brought serve, the next refresh asks in detail */
	ipivd.snap.n_vms = 3;
	ipivd.n_paths = 0;
	assert_int_equal(top_source_sample(s, false, 0, &f, err, sizeof(err)), 0);
	assert_int_equal(count_path("/api/v1/vms?histograms=send_to_eoi"), 1);
	assert_int_equal(count_paths("/api/v1/vms/"), 0);
	assert_hists(&f);
	top_frame_free(s, &f);
	ipivd.n_paths = 0;
	assert_int_equal(top_source_sample(s, false, 0, &f, err, sizeof(err)), 0);
	assert_int_equal(count_path("/api/v1/vms"), 1);
	assert_int_equal(count_paths("/api/v1/vms/"), 3);
	assert_hists(&f);
	top_frame_free(s, &f);
	top_model_free(&m);
	top_source_close(s);
}

/* The filter decides: many VMs listed but few shown are fetched in detail. */
static void test_filter_counts_shown_vms(void **state)
{
	struct top_source *s;
	struct top_frame f;
	struct top_model m;
	char err[200];

	ipivd_init(TOP_REMOTE_HIST_MAX_VMS + 8);
	s = open_remote();
	top_model_init(&m);
	assert_int_equal(top_model_set_filter(&m, "^vm0[0-2]$", err, sizeof(err)), 0);
	s->shown = &m;
	ipivd.n_paths = 0;
	assert_int_equal(top_source_sample(s, false, 0, &f, err, sizeof(err)), 0);
	assert_int_equal(count_paths("/api/v1/vms?"), 0);
	assert_int_equal(count_paths("/api/v1/vms/"), 3);
	top_frame_free(s, &f);
	top_model_free(&m);
	top_source_close(s);
}

/* An ipivd older than ?histograms= ignores it: the table keeps ipivd's lifetime figures. */
static void test_old_ipivd_lifetime(void **state)
{
	struct top_source *s;
	struct top_frame f;
	char err[200];

	ipivd_init(TOP_REMOTE_HIST_MAX_VMS + 1);
	ipivd.old_ipivd = true;
	s = open_remote();
	ipivd.n_paths = 0;
	assert_int_equal(top_source_sample(s, false, 0, &f, err, sizeof(err)), 0);
	assert_int_equal(count_path("/api/v1/vms?histograms=send_to_eoi"), 1);
	assert_int_equal(count_paths("/api/v1/vms/"), 0);
	assert_null(f.send_eoi);
	assert_true(f.latency[0].known);
	top_frame_free(s, &f);
	top_source_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_few_vms_in_detail),
		cmocka_unit_test(test_many_vms_one_request),
		cmocka_unit_test(test_filter_counts_shown_vms),
		cmocka_unit_test(test_old_ipivd_lifetime),
	};

	return cmocka_run_group_tests_name("top_remote", tests, NULL, NULL);
}
