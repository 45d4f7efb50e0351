/* Unit tests for daemon/lib/diag_report.c: evaluation over two snapshots with "since" carried
 * between evaluations, latency figures derived from the histograms, the text report, the JSON shape, and the metric lines (which must pass
 * `promtool check metrics`; without promtool the rest runs and the program exits 77). */
#include <errno.h>
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

#include "diag_report.h"
#include "send_cells.h"

#define X2	   ICR_MODE_X2APIC
#define FIXED(vec) ((uint32_t)(vec) | (ICR_DM_FIXED << ICR_DELIVERY_SHIFT))
#define SEC	   1000000000ull

static bool have_promtool;

struct fixture {
	struct ipiv_snapshot prev, cur;
	struct ipiv_vm_stats prev_vms[3], cur_vms[3];
	const char *names[3];
	struct accel_state host;
	struct diag_thresholds th;
};

static void add_send(struct ipiv_vm_stats *vm, uint32_t path, uint32_t class, uint64_t n)
{
	test_send_cell(vm, path, class)->count += n;
	vm->counts.sent_by_path[path] += n;
	vm->counts.sent += n;
	if (icr_class_accel_eligible(class))
		vm->counts.sent_accel_eligible += n;
}

static void fact(struct accel_state *h, enum accel_fact_id id, enum accel_state_value v,
		 const char *value, const char *source)
{
	h->facts[id].state = v;
	snprintf(h->facts[id].value, sizeof(h->facts[id].value), "%s", value);
	snprintf(h->facts[id].source, sizeof(h->facts[id].source), "%s", source);
}

/* An Intel host whose CPU has IPIv and whose kvm_intel has it off; VMs: "web" (logical-mode
 * IPIs in the window, an inhibit), "we\"ird" (a hostile name, NMIs), "idle" (nothing). */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint32_t logical = icr_classify(FIXED(0xfd) | ICR_DEST_LOGICAL, 0x00010002, X2);
	uint32_t phys = icr_classify(FIXED(0xfd), 3, X2);
	uint32_t nmi = icr_classify(ICR_DM_NMI << ICR_DELIVERY_SHIFT, 3, X2);

	if (!f)
		return -1;
	diag_thresholds_default(&f->th);
	f->host.vendor = ACCEL_VENDOR_INTEL;
	snprintf(f->host.vendor_id, sizeof(f->host.vendor_id), "GenuineIntel");
	snprintf(f->host.model_name, sizeof(f->host.model_name), "Intel(R) Xeon(R) \"8480+\"");
	f->host.family = 6;
	f->host.model = 143;
	for (unsigned i = 0; i < ACCEL_FACT_COUNT; i++)
		fact(&f->host, i, ACCEL_UNKNOWN, "", "/dev/cpu/0/msr");
	fact(&f->host, ACCEL_CPU_IPI_VIRT, ACCEL_YES, "ipi_virt", "/proc/cpuinfo");
	fact(&f->host, ACCEL_INTEL_ENABLE_IPIV, ACCEL_NO, "N",
	     "/sys/module/kvm_intel/parameters/enable_ipiv");
	f->host.backend = ACCEL_BACKEND_KVM_INTEL;
	f->host.mechanism = "ipiv";
	f->host.apicv_hw = f->host.apicv_enabled = f->host.ipiv_hw = ACCEL_YES;
	f->host.ipiv_enabled = f->host.ipiv_effective = ACCEL_NO;
	f->host.why = "kvm_intel.enable_ipiv=N";

	f->names[0] = "web";
	f->names[1] = "we\"ird\\name\n\x1b[31m";
	f->names[2] = "idle";
	for (unsigned i = 0; i < 3; i++) {
		f->prev_vms[i].vm = 0xffff888100000000ull + i * 0x1000;
		f->prev_vms[i].alive = true;
	}
	add_send(&f->prev_vms[0], IPIV_PATH_X2APIC_MSR, phys, 10);
	f->prev_vms[0].inhibits_known = true;
	memcpy(f->cur_vms, f->prev_vms, sizeof(f->cur_vms));
	add_send(&f->cur_vms[0], IPIV_PATH_X2APIC_MSR, logical, 300);
	add_send(&f->cur_vms[0], IPIV_PATH_X2APIC_MSR, phys, 100);
	f->cur_vms[0].inhibits = 1u << 9;
	f->cur_vms[0].inhibit_set[9] = 1;
	f->cur_vms[0].timeline[0] =
		(struct ipiv_inhibit_change){.ts = 104 * SEC, .reason = 9, .set = 1};
	f->cur_vms[0].n_timeline = 1;
	add_send(&f->cur_vms[1], IPIV_PATH_X2APIC_MSR, nmi, 50);
	add_send(&f->cur_vms[1], IPIV_PATH_X2APIC_MSR, phys, 50);

	f->prev = (struct ipiv_snapshot){.taken_ns = 100 * SEC, .vms = f->prev_vms, .n_vms = 3};
	f->cur = (struct ipiv_snapshot){.taken_ns = 110 * SEC, .vms = f->cur_vms, .n_vms = 3};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static struct diag_report *evaluate(struct fixture *f, const struct diag_report *previous)
{
	struct diag_report *r = NULL;

	assert_int_equal(diag_evaluate_snapshot(&f->host, &f->prev, &f->cur, f->names, NULL, &f->th,
						previous, &r),
			 0);
	assert_non_null(r);
	return r;
}

static const struct diag_finding *find(const struct diag_result *res, enum diag_rule_id rule)
{
	for (size_t i = 0; i < res->n_findings; i++)
		if (res->findings[i].rule == rule)
			return &res->findings[i];
	return NULL;
}

static void test_evaluate_snapshot(void **state)
{
	struct fixture *f = *state;
	struct diag_report *r = evaluate(f, NULL);

	assert_int_equal(r->n_vms, 3);
	assert_string_equal(r->vms[0].name, "web");
	assert_string_equal(r->vms[1].name, "we\"ird\\name[31m"); /* control bytes dropped */
	assert_float_equal(r->vms[0].window_seconds, 10.0, 1e-9);
	/* what the window held, the 10 sent before it left out; the idle VM had nothing */
	assert_int_equal(r->vms[0].result.window_ipis_sent, 400);
	assert_int_equal(r->vms[1].result.window_ipis_sent, 100);
	assert_int_equal(r->vms[2].result.window_ipis_sent, 0);
	assert_non_null(find(&r->vms[0].result, DIAG_RULE_LOGICAL_DEST_MODE));
	assert_non_null(find(&r->vms[0].result, DIAG_RULE_APICV_INHIBITED));
	assert_non_null(find(&r->vms[1].result, DIAG_RULE_SPECIAL_DELIVERY));
	assert_int_equal(r->vms[2].result.n_findings, 0);
	assert_non_null(find(&r->host_result, DIAG_RULE_ACCEL_DISABLED_IN_MODULE));
	assert_int_equal(find(&r->vms[0].result, DIAG_RULE_LOGICAL_DEST_MODE)->since_ns, 110 * SEC);
	diag_report_free(r);

	/* latency for one VM only: its rule is evaluated, the others' are not */
	{
		struct diag_latency lat = {0};
		const struct diag_latency *lats[3] = {NULL, &lat, NULL};

		lat.preempted_share = (struct diag_figure){true, 0.5, 1000};
		assert_int_equal(diag_evaluate_snapshot(&f->host, &f->prev, &f->cur, f->names, lats,
							&f->th, NULL, &r),
				 0);
		assert_non_null(find(&r->vms[1].result, DIAG_RULE_TARGETS_PREEMPTED));
		assert_null(find(&r->vms[0].result, DIAG_RULE_TARGETS_PREEMPTED));
		diag_report_free(r);
	}

	/* first sight: no previous snapshot, counts since start, no window */
	assert_int_equal(
		diag_evaluate_snapshot(NULL, NULL, &f->cur, f->names, NULL, &f->th, NULL, &r), 0);
	assert_false(r->host_known);
	assert_float_equal(r->vms[0].window_seconds, 0, 0);
	assert_non_null(find(&r->vms[0].result, DIAG_RULE_LOGICAL_DEST_MODE));
	diag_report_free(r);

	assert_int_equal(diag_evaluate_snapshot(NULL, NULL, NULL, f->names, NULL, &f->th, NULL, &r),
			 -EINVAL);
	diag_report_free(NULL);
}

/* One exit-latency row of vm: n samples of ns each, added to what it has. */
static void add_exit_latency(struct ipiv_vm_stats *vm, struct ipiv_lat_hist *rows, uint16_t kind,
			     uint32_t path, uint64_t n, uint64_t ns)
{
	struct ipiv_lat_hist *h = NULL;

	for (size_t i = 0; i < vm->n_lat; i++)
		if (rows[i].kind == kind && rows[i].sub == path)
			h = &rows[i];
	if (!h) {
		h = &rows[vm->n_lat++];
		*h = (struct ipiv_lat_hist){.kind = kind, .sub = path, .vcpu = IPIV_LAT_VM_WIDE};
	}
	for (uint64_t i = 0; i < n; i++)
		latency_add(&h->h, ns);
	vm->lat = rows;
	vm->latency_enabled = true;
}

/* With no figures given, the rules get them from the histograms' growth over the window:
 * ipivd and ipivtop both evaluate that way, so the fallback rule is evaluated for both. */
static void test_latency_derived_from_snapshots(void **state)
{
	struct fixture *f = *state;
	struct ipiv_lat_hist prev_rows[3] = {0}, cur_rows[3] = {0};
	uint32_t phys = icr_classify(FIXED(0xfd), 3, X2);
	const struct diag_finding *fb;
	struct diag_latency **lat;
	struct diag_report *r;

	/* "idle" falls back to APIC-write exits: 1000 IPIs in the window. Before the window
	 * its APIC-write exits were cheap; in it they cost 4 us against the fastpath's 1 us. */
	add_send(&f->cur_vms[2], IPIV_PATH_APIC_WRITE, phys, 1000);
	add_exit_latency(&f->prev_vms[2], prev_rows, IPIV_LAT_EXIT, IPIV_PATH_X2APIC_MSR, 300,
			 1000);
	add_exit_latency(&f->prev_vms[2], prev_rows, IPIV_LAT_EXIT, IPIV_PATH_APIC_WRITE, 500, 900);
	memcpy(cur_rows, prev_rows, sizeof(cur_rows));
	f->cur_vms[2].lat = cur_rows;
	f->cur_vms[2].n_lat = f->prev_vms[2].n_lat;
	f->cur_vms[2].latency_enabled = true;
	add_exit_latency(&f->cur_vms[2], cur_rows, IPIV_LAT_EXIT, IPIV_PATH_X2APIC_MSR, 200, 1000);
	add_exit_latency(&f->cur_vms[2], cur_rows, IPIV_LAT_EXIT, IPIV_PATH_APIC_WRITE, 400, 4000);
	/* 150 of the window's x2APIC exits were the fastpath's, at 800 ns */
	add_exit_latency(&f->cur_vms[2], cur_rows, IPIV_LAT_EXIT_FASTPATH, IPIV_PATH_X2APIC_MSR,
			 150, 800);

	lat = diag_latency_inputs(&f->prev, &f->cur);
	assert_non_null(lat);
	assert_null(lat[0]); /* no latency on "web" */
	assert_non_null(lat[2]);
	assert_true(lat[2]->exit_ns[IPIV_PATH_APIC_WRITE].known);
	assert_int_equal(lat[2]->exit_ns[IPIV_PATH_APIC_WRITE].samples, 400);
	assert_float_equal(lat[2]->exit_ns[IPIV_PATH_APIC_WRITE].value, 4000, 4000 / 16.0);
	assert_int_equal(lat[2]->exit_ns[IPIV_PATH_X2APIC_MSR].samples, 200);
	assert_true(lat[2]->exit_fastpath_ns.known);
	assert_int_equal(lat[2]->exit_fastpath_ns.samples, 150);
	assert_float_equal(lat[2]->exit_fastpath_ns.value, 800, 800 / 16.0);
	assert_false(lat[2]->halt_ns.known);
	free(lat);

	assert_int_equal(diag_evaluate_snapshot(&f->host, &f->prev, &f->cur, f->names, NULL, &f->th,
						NULL, &r),
			 0);
	fb = find(&r->vms[2].result, DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH);
	assert_non_null(fb);
	assert_non_null(
		strstr(fb->title, "fastpath's")); /* measured against the fastpath's exits */
	/* "web" has no latency: the rule says what it lacks instead */
	assert_null(find(&r->vms[0].result, DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH));
	{
		bool skipped = false;

		for (size_t i = 0; i < r->vms[0].result.n_skipped; i++)
			skipped |= r->vms[0].result.skipped[i].rule ==
				   DIAG_RULE_FALLBACK_SLOWER_THAN_FASTPATH;
		assert_true(skipped);
	}
	diag_report_free(r);
	f->prev_vms[2].lat = f->cur_vms[2].lat = NULL;
	f->prev_vms[2].n_lat = f->cur_vms[2].n_lat = 0;
}

static void test_since_is_carried_and_resets(void **state)
{
	struct fixture *f = *state;
	struct diag_report *first = evaluate(f, NULL), *second, *third, *fourth;
	uint32_t logical = icr_classify(FIXED(0xfd) | ICR_DEST_LOGICAL, 0x00010002, X2);

	/* next window: still logical */
	memcpy(f->prev_vms, f->cur_vms, sizeof(f->prev_vms));
	f->prev.taken_ns = f->cur.taken_ns;
	f->cur.taken_ns += 10 * SEC;
	add_send(&f->cur_vms[0], IPIV_PATH_X2APIC_MSR, logical, 500);
	second = evaluate(f, first);
	assert_int_equal(find(&second->vms[0].result, DIAG_RULE_LOGICAL_DEST_MODE)->since_ns,
			 110 * SEC);
	assert_int_equal(find(&second->host_result, DIAG_RULE_ACCEL_DISABLED_IN_MODULE)->since_ns,
			 110 * SEC);

	/* a quiet window clears it */
	memcpy(f->prev_vms, f->cur_vms, sizeof(f->prev_vms));
	f->prev.taken_ns = f->cur.taken_ns;
	f->cur.taken_ns += 10 * SEC;
	third = evaluate(f, second);
	assert_null(find(&third->vms[0].result, DIAG_RULE_LOGICAL_DEST_MODE));

	/* back again: a new since */
	f->prev.taken_ns = f->cur.taken_ns;
	f->cur.taken_ns += 10 * SEC;
	add_send(&f->cur_vms[0], IPIV_PATH_X2APIC_MSR, logical, 500);
	fourth = evaluate(f, third);
	assert_int_equal(find(&fourth->vms[0].result, DIAG_RULE_LOGICAL_DEST_MODE)->since_ns,
			 f->cur.taken_ns);
	diag_report_free(first);
	diag_report_free(second);
	diag_report_free(third);
	diag_report_free(fourth);
}

static char *print(const struct diag_report *r, const char *vm, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*rc = diag_report_print(f, r, vm);
	fclose(f);
	return buf;
}

static void test_text(void **state)
{
	struct fixture *f = *state;
	struct diag_report *r = evaluate(f, NULL);
	char *text, *line, *save = NULL;
	int rc;

	text = print(r, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "Host\n  cpu: intel \"Intel(R) Xeon(R) \"8480+\"\""));
	assert_non_null(strstr(text, "effective no"));
	assert_non_null(strstr(text, "kvm_intel.enable_ipiv"));
	assert_non_null(strstr(text, "/sys/module/kvm_intel/parameters/enable_ipiv"));
	assert_non_null(strstr(text, "[warning] accel_disabled_in_module:"));
	assert_non_null(strstr(text, "\nVM web (window 10.0 s)\n"));
	assert_non_null(strstr(text, "[warning] logical_dest_mode:"));
	assert_non_null(strstr(text, "evidence: logical=300 logical_multicast=0 sent=400"));
	assert_non_null(strstr(text, "remedy: Linux picks x2apic_cluster"));
	assert_non_null(strstr(text, "[critical] apicv_inhibited:"));
	assert_non_null(strstr(text, "pit_reinj"));
	assert_non_null(strstr(text, "not evaluated: targets_preempted (needs the preempted"));
	assert_non_null(strstr(text,
			       "\nVM web (window 10.0 s)\n  APICv inhibits: pit_reinj (0x200)\n"
			       "  APICv inhibit timeline (newest last):\n"
			       "        -6.000 s  set    pit_reinj\n"));
	/* idle: the bitmap was never reported */
	assert_non_null(strstr(text, "\nVM idle (window 10.0 s)\n  APICv inhibits: unknown"));
	assert_non_null(strstr(text, "  APICv inhibit timeline: none recorded\n  no findings\n"));
	assert_non_null(strstr(text, "VM we\"ird\\name[31m"));
	assert_null(strchr(text, '\x1b'));
	/* wrapped text stays within 100 columns */
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "      ", 6) || !strncmp(line, "  [", 3))
			if (strlen(line) > 100)
				fail_msg("line over 100 columns: %s", line);
	free(text);

	text = print(r, "idle", &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "Host\n"));
	assert_non_null(strstr(text, "VM idle"));
	assert_null(strstr(text, "VM web"));
	free(text);

	text = print(r, "nosuch", &rc);
	assert_int_equal(rc, -ENOENT);
	assert_string_equal(text, "");
	free(text);
	diag_report_free(r);
}

static void test_json(void **state)
{
	struct fixture *f = *state;
	struct diag_report *r = evaluate(f, NULL);
	json_t *j = diag_report_json(r, NULL), *host, *vm, *fd, *ev, *x;
	size_t i;

	assert_non_null(j);
	host = json_object_get(j, "host");
	assert_true(json_is_true(json_object_get(host, "known")));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(host, "cpu"), "vendor")),
		"intel");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(host, "cpu"), "model")),
			 143);
	assert_string_equal(json_string_value(json_object_get(host, "ipiv_hardware")), "yes");
	assert_string_equal(json_string_value(json_object_get(host, "ipiv_effective")), "no");
	x = json_object_get(host, "facts");
	assert_int_equal(json_array_size(x), ACCEL_FACT_COUNT);
	json_array_foreach(x, i, fd)
	{
		assert_true(json_is_string(json_object_get(fd, "name")));
		assert_true(json_is_string(json_object_get(fd, "state")));
		assert_true(json_is_string(json_object_get(fd, "source")));
	}
	fd = json_array_get(json_object_get(host, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(fd, "rule")),
			    "accel_disabled_in_module");

	x = json_object_get(j, "vms");
	assert_int_equal(json_array_size(x), 3);
	vm = json_array_get(x, 0);
	assert_string_equal(json_string_value(json_object_get(vm, "name")), "web");
	assert_float_equal(json_real_value(json_object_get(vm, "window_seconds")), 10.0, 1e-9);
	assert_int_equal(json_integer_value(json_object_get(vm, "window_ipis_sent")), 400);
	assert_true(json_is_integer(json_object_get(vm, "window_received")));
	fd = NULL;
	json_array_foreach(json_object_get(vm, "findings"), i,
			   x) if (!strcmp(json_string_value(json_object_get(x, "rule")),
					  "logical_dest_mode")) fd = x;
	assert_non_null(fd);
	assert_string_equal(json_string_value(json_object_get(fd, "severity")), "warning");
	assert_true(json_is_string(json_object_get(fd, "title")));
	assert_true(json_is_string(json_object_get(fd, "remedy")));
	assert_true(json_is_number(json_object_get(fd, "active_seconds")));
	ev = json_object_get(fd, "evidence");
	assert_float_equal(json_number_value(json_object_get(ev, "logical")), 300, 0);
	assert_float_equal(json_number_value(json_object_get(ev, "logical_share")), 0.75, 1e-9);
	x = json_array_get(json_object_get(vm, "not_evaluated"), 0);
	assert_true(json_is_string(json_object_get(x, "rule")));
	assert_true(json_is_string(json_object_get(x, "needs")));
	x = json_object_get(vm, "apicv_inhibits");
	assert_true(json_is_true(json_object_get(x, "known")));
	assert_int_equal(json_integer_value(json_object_get(x, "bitmap")), 0x200);
	assert_string_equal(json_string_value(json_array_get(json_object_get(x, "reasons"), 0)),
			    "pit_reinj");
	assert_int_equal(json_integer_value(json_object_get(x, "changes_counted")), 1);
	x = json_array_get(json_object_get(vm, "apicv_inhibit_timeline"), 0);
	assert_float_equal(json_real_value(json_object_get(x, "ago_seconds")), 6.0, 1e-9);
	assert_string_equal(json_string_value(json_object_get(x, "reason")), "pit_reinj");
	assert_true(json_is_true(json_object_get(x, "set")));
	x = json_array_get(json_object_get(j, "vms"), 2);
	assert_true(json_is_null(json_object_get(json_object_get(x, "apicv_inhibits"), "bitmap")));
	assert_int_equal(json_array_size(json_object_get(x, "apicv_inhibit_timeline")), 0);
	json_decref(j);

	j = diag_report_json(r, "idle");
	assert_int_equal(json_array_size(json_object_get(j, "vms")), 1);
	json_decref(j);
	assert_null(diag_report_json(r, "nosuch"));
	diag_report_free(r);

	/* no host state: the section says so */
	assert_int_equal(
		diag_evaluate_snapshot(NULL, &f->prev, &f->cur, f->names, NULL, &f->th, NULL, &r),
		0);
	j = diag_report_json(r, NULL);
	host = json_object_get(j, "host");
	assert_true(json_is_false(json_object_get(host, "known")));
	assert_int_equal(json_array_size(json_object_get(host, "not_evaluated")), 2);
	json_decref(j);
	diag_report_free(r);
}

static char *metrics(const struct diag_report *r, enum expo_format format)
{
	struct expo *e;
	char *body;
	size_t len;

	assert_int_equal(expo_new(format, &e), 0);
	assert_int_equal(diag_metrics_write(e, r), 0);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	return body;
}

static unsigned count_prefix(const char *body, const char *prefix)
{
	unsigned n = 0;

	for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, prefix, strlen(prefix)))
			n++;
	return n;
}

static void promtool_check(const char *body)
{
	char path[] = "/tmp/ipiv-diag-metrics-XXXXXX", cmd[128], out[4096];
	int fd = mkstemp(path), status;
	size_t n = 0;
	FILE *p;

	if (!have_promtool)
		skip();
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n + 1 < sizeof(out) && fgets(out + n, (int)(sizeof(out) - n), p))
		n += strlen(out + n);
	out[n] = '\0';
	status = pclose(p);
	unlink(path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out[0])
		fail_msg("promtool check metrics rejected:\n%s\noutput:\n%s", body, out);
}

static void test_metrics_lines(void **state)
{
	struct fixture *f = *state;
	struct diag_report *r = evaluate(f, NULL);
	char *body = metrics(r, EXPO_TEXT_0_0_4);
	unsigned findings = 0;

	for (size_t i = 0; i < r->n_vms; i++)
		findings += r->vms[i].result.n_findings;
	assert_int_equal(count_prefix(body, "ipiv_finding{"), findings);
	assert_non_null(strstr(body, "ipiv_finding{vm=\"web\",rule=\"logical_dest_mode\","
				     "severity=\"warning\"} 1.0\n"));
	assert_non_null(strstr(body, "ipiv_finding{vm=\"web\",rule=\"apicv_inhibited\","
				     "severity=\"critical\"} 1.0\n"));
	assert_non_null(strstr(body, "ipiv_finding{vm=\"we\\\"ird\\\\name[31m\","
				     "rule=\"special_delivery\""));
	assert_null(strstr(body, "vm=\"idle\""));
	assert_non_null(strstr(body, "ipiv_host_finding{rule=\"accel_disabled_in_module\","
				     "severity=\"warning\"} 1.0\n"));
	assert_non_null(strstr(body, "ipiv_host_accel_info{vendor=\"intel\",model=\"Intel(R) "
				     "Xeon(R) \\\"8480+\\\"\",backend=\"kvm_intel\","
				     "mechanism=\"ipiv\""));
	assert_non_null(strstr(body, "ipiv_effective=\"no\"} 1\n"));
	assert_int_equal(count_prefix(body, "ipiv_host_accel_fact_info{"), ACCEL_FACT_COUNT);
	assert_non_null(strstr(body,
			       "ipiv_host_accel_fact_info{fact=\"kvm_intel.enable_ipiv\","
			       "state=\"no\",value=\"N\","
			       "source=\"/sys/module/kvm_intel/parameters/enable_ipiv\"} 1\n"));
	/* three VMs lack latency data for targets_preempted */
	assert_non_null(
		strstr(body, "ipiv_diag_rule_not_evaluated{rule=\"targets_preempted\"} 3.0\n"));
	assert_non_null(
		strstr(body, "ipiv_diag_rule_not_evaluated{rule=\"logical_dest_mode\"} 0.0\n"));
	promtool_check(body);
	free(body);

	body = metrics(r, EXPO_OPENMETRICS_1_0_0);
	assert_non_null(strstr(body, "# TYPE ipiv_host_accel info\n"));
	assert_non_null(strstr(body, "\n# EOF\n"));
	free(body);
	diag_report_free(r);
}

static void test_metrics_quiet_host(void **state)
{
	struct fixture *f = *state;
	struct diag_report *r;
	char *body;

	/* no host state, no findings: the families are still valid and empty */
	f->cur = f->prev;
	assert_int_equal(
		diag_evaluate_snapshot(NULL, &f->prev, &f->cur, f->names, NULL, &f->th, NULL, &r),
		0);
	body = metrics(r, EXPO_TEXT_0_0_4);
	assert_int_equal(count_prefix(body, "ipiv_finding{"), 0);
	assert_int_equal(count_prefix(body, "ipiv_host_accel_info{"), 0);
	assert_non_null(strstr(body, "# TYPE ipiv_finding gauge\n"));
	promtool_check(body);
	free(body);
	diag_report_free(r);
}

/* A host without APICv (kvm_pvm here): every VM is "disabled", and some 6.1-style "absent"
 * too. The host says so once; the VMs say nothing of it, in the report, JSON and metrics;
 * on a host with APICv hardware a VM's own reason still is its finding. */
static void test_host_wide_inhibits_said_once(void **state)
{
	struct fixture *f = *state;
	struct diag_report *r, *again;
	const struct diag_finding *hf;
	json_t *doc, *host_findings;
	char *body;
	int rc;

	f->host.backend = ACCEL_BACKEND_KVM_PVM;
	f->host.apicv_hw = f->host.apicv_enabled = f->host.ipiv_hw = ACCEL_NO;
	for (unsigned i = 0; i < 3; i++) {
		f->cur_vms[i].inhibits_known = true;
		f->cur_vms[i].inhibits = 1;
	}
	f->cur_vms[1].inhibits |= 1u << 2;
	r = evaluate(f, NULL);
	for (unsigned i = 0; i < 3; i++)
		assert_null(find(&r->vms[i].result, DIAG_RULE_APICV_INHIBITED));
	hf = find(&r->host_result, DIAG_RULE_APICV_INHIBITED);
	assert_non_null(hf);
	assert_int_equal(hf->severity, DIAG_INFO);
	assert_int_equal(hf->since_ns, 110 * SEC);
	assert_string_equal(hf->evidence[0].name, "vms");
	assert_float_equal(hf->evidence[0].value, 3, 0);
	assert_non_null(strstr(hf->title, "(3 VMs inhibited: disabled,absent)"));
	/* the VMs still show their bitmaps */
	assert_int_equal(r->vms[1].inhibits, 5);

	body = metrics(r, EXPO_TEXT_0_0_4);
	assert_int_equal(count_prefix(body, "ipiv_host_finding{rule=\"apicv_inhibited\""), 1);
	assert_non_null(strstr(body, "ipiv_host_finding{rule=\"apicv_inhibited\","
				     "severity=\"info\"} 1.0\n"));
	assert_null(strstr(body, "ipiv_finding{vm=\"web\",rule=\"apicv_inhibited\""));
	/* the host's series is the only one with the rule (not_evaluated's has no severity) */
	assert_null(
		strstr(strstr(body, "rule=\"apicv_inhibited\",") + 1, "rule=\"apicv_inhibited\","));
	promtool_check(body);
	free(body);

	doc = diag_report_json(r, NULL);
	host_findings = json_object_get(json_object_get(doc, "host"), "findings");
	rc = 0;
	for (size_t i = 0; i < json_array_size(host_findings); i++)
		rc += !strcmp(json_string_value(
				      json_object_get(json_array_get(host_findings, i), "rule")),
			      "apicv_inhibited");
	assert_int_equal(rc, 1);
	json_decref(doc);
	body = print(r, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(body, "Host\n"));
	assert_non_null(strstr(body, "[info] apicv_inhibited:"));
	/* once, in the host section: no VM's section repeats it */
	assert_null(strstr(strstr(body, "] apicv_inhibited:") + 1, "] apicv_inhibited:"));
	assert_true(strstr(body, "] apicv_inhibited:") < strstr(body, "\nVM "));
	free(body);

	/* the next evaluation keeps the host finding's since */
	f->cur.taken_ns += 10 * SEC;
	again = evaluate(f, r);
	assert_int_equal(find(&again->host_result, DIAG_RULE_APICV_INHIBITED)->since_ns, 110 * SEC);
	diag_report_free(again);
	diag_report_free(r);

	/* APICv hardware, module on: web's irqwin is its own; no host finding */
	f->host.backend = ACCEL_BACKEND_KVM_INTEL;
	f->host.apicv_hw = f->host.apicv_enabled = ACCEL_YES;
	f->cur_vms[0].inhibits = 1u << 8;
	f->cur_vms[1].inhibits = f->cur_vms[2].inhibits = 0;
	r = evaluate(f, NULL);
	assert_non_null(find(&r->vms[0].result, DIAG_RULE_APICV_INHIBITED));
	assert_null(find(&r->host_result, DIAG_RULE_APICV_INHIBITED));
	diag_report_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_evaluate_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latency_derived_from_snapshots, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_since_is_carried_and_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_quiet_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_wide_inhibits_said_once, setup, teardown),
	};
	int rc;

	have_promtool = system("command -v promtool >/dev/null 2>&1") == 0;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (rc == 0 && !have_promtool) {
		printf("promtool not installed (Debian: apt-get install prometheus)\n");
		return 77;
	}
	return rc;
}
