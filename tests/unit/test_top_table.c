/* Unit tests for ipivtop's screen elements without a terminal: the VM table's columns at
 * several widths (every line exactly as wide as the layout), gone rows, placeholders, latency
 * and findings cells, sort keys, the drill-down's vCPU rows, matrix, latency histogram bars
 * and wrapped findings, and the help screen's keys. */
#include <errno.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ipivtop/drill.h"
#include "ipivtop/findings.h"
#include "ipivtop/format.h"
#include "ipivtop/header.h"
#include "ipivtop/help.h"
#include "ipivtop/latency_pane.h"
#include "ipivtop/table.h"

static int setup(void **state)
{
	if (!setlocale(LC_CTYPE, "C.UTF-8") && !setlocale(LC_CTYPE, "C.utf8"))
		return -1;
	top_format_set_utf8(true);
	return 0;
}

static struct top_vm_row make_row(const char *name, double sent)
{
	struct top_vm_row r = {.key = 1, .pid = 10, .vcpus = 4};

	snprintf(r.name, sizeof(r.name), "%s", name);
	r.rate.valid = true;
	r.rate.seconds = 1;
	r.rate.sent = sent;
	r.rate.received = sent;
	r.rate.delta.sent = (uint64_t)sent;
	r.rate.delta.sent_accel_eligible = (uint64_t)sent / 2;
	r.rate.delta.received = (uint64_t)sent;
	r.rate.delta.wakeups = (uint64_t)sent / 4;
	r.inhibits_known = true;
	return r;
}

static void test_layout_widths(void **state)
{
	static const int widths[] = {40, 60, 80, 100, 120, 200};

	for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
		struct top_layout l;
		struct top_canvas c;
		struct top_vm_row rows[2] = {
			make_row("web-frontend-with-a-very-long-name-indeed", 12345),
			make_row("\xe6\x97\xa5\xe6\x9c\xac-vm", 3),
		};

		rows[1].gone = 1;
		top_table_layout(widths[w], &l);
		assert_true(l.width <= widths[w]);
		assert_true(l.shown[TOP_COL_NAME] && l.shown[TOP_COL_SENT]);
		assert_true(l.name_width >= TOP_NAME_MIN && l.name_width <= TOP_NAME_MAX);
		top_canvas_init(&c, widths[w]);
		top_table_header(&c, &l, TOP_SORT_SENT);
		top_table_row(&c, &l, &rows[0], true);
		top_table_row(&c, &l, &rows[1], false);
		for (size_t i = 0; i < c.n_lines; i++)
			if (top_display_width(top_canvas_text(&c, i)) != l.width)
				fail_msg("width %d, line %zu is %d wide, want %d: \"%s\"",
					 widths[w], i, top_display_width(top_canvas_text(&c, i)),
					 l.width, top_canvas_text(&c, i));
		top_canvas_free(&c);
	}
}

static void test_columns_drop_by_rank(void **state)
{
	struct top_layout wide, narrow;

	top_table_layout(200, &wide);
	for (int i = 0; i < TOP_COL_COUNT; i++)
		assert_true(wide.shown[i]);
	assert_int_equal(wide.name_width, TOP_NAME_MAX);
	top_table_layout(80, &narrow);
	assert_false(narrow.shown[TOP_COL_EXITS]); /* often zero where kvm_exit is silent */
	assert_false(narrow.shown[TOP_COL_PV]);
	assert_true(narrow.shown[TOP_COL_FINDINGS]);
	assert_true(narrow.shown[TOP_COL_P50]);
	assert_true(narrow.shown[TOP_COL_RECEIVED]);
	assert_true(narrow.shown[TOP_COL_HALTED]);
}

static void test_cells(void **state)
{
	struct top_vm_row r = make_row("web", 1234);
	char cell[64];

	top_table_cell(&r, TOP_COL_SENT, cell, sizeof(cell));
	assert_string_equal(cell, "1.2k");
	top_table_cell(&r, TOP_COL_ELIGIBLE, cell, sizeof(cell));
	assert_string_equal(cell, "50%");
	top_table_cell(&r, TOP_COL_HALTED, cell, sizeof(cell));
	assert_string_equal(cell, "25%");
	top_table_cell(&r, TOP_COL_P50, cell, sizeof(cell));
	assert_string_equal(cell, "-"); /* no latency yet */
	top_table_cell(&r, TOP_COL_FINDINGS, cell, sizeof(cell));
	assert_string_equal(cell, "-"); /* not evaluated yet */
	assert_int_equal(top_findings_attr(&r), TOP_A_DIM);
	r.latency.known = true;
	r.latency.p50 = (struct latency_quantile){.q = 0.5, .valid = true, .value_ns = 14600};
	r.latency.p99 = (struct latency_quantile){.q = 0.99, .valid = true, .value_ns = 3.2e6};
	top_table_cell(&r, TOP_COL_P50, cell, sizeof(cell));
	assert_string_equal(cell, "~14.6\u00b5s");
	top_table_cell(&r, TOP_COL_P99, cell, sizeof(cell));
	assert_string_equal(cell, "~3.2ms");
	r.latency.p99.overflow = true;
	top_table_cell(&r, TOP_COL_P99, cell, sizeof(cell));
	assert_string_equal(cell, ">17.2s");
	r.has_findings = true;
	top_table_cell(&r, TOP_COL_FINDINGS, cell, sizeof(cell));
	assert_string_equal(cell, "0");
	assert_int_equal(top_findings_attr(&r), TOP_A_GOOD);
	r.findings = 2;
	r.worst = DIAG_WARNING;
	top_table_cell(&r, TOP_COL_FINDINGS, cell, sizeof(cell));
	assert_string_equal(cell, "2");
	assert_int_equal(top_findings_attr(&r), TOP_A_CAUTION);
	r.worst = DIAG_CRITICAL;
	assert_int_equal(top_findings_attr(&r), TOP_A_WARN);
	r.worst = DIAG_INFO;
	assert_int_equal(top_findings_attr(&r), TOP_A_NORMAL);
	top_table_cell(&r, TOP_COL_INHIBIT, cell, sizeof(cell));
	assert_string_equal(cell, "none");
	r.inhibits = (1ull << 8) | (1ull << 9);
	top_table_cell(&r, TOP_COL_INHIBIT, cell, sizeof(cell));
	assert_string_equal(cell, "irqwin+1");
	r.inhibits_known = false;
	top_table_cell(&r, TOP_COL_INHIBIT, cell, sizeof(cell));
	assert_string_equal(cell, "-");
	r.rate.valid = false;
	top_table_cell(&r, TOP_COL_SENT, cell, sizeof(cell));
	assert_string_equal(cell, "-");
}

static void test_gone_row_says_so(void **state)
{
	struct top_vm_row r = make_row("web", 10);
	struct top_layout l;
	struct top_canvas c;

	r.gone = 2;
	top_table_layout(100, &l);
	top_canvas_init(&c, 100);
	top_table_row(&c, &l, &r, false);
	assert_non_null(strstr(top_canvas_text(&c, 0), "VM is gone"));
	assert_int_equal(strncmp(top_canvas_text(&c, 0), "web ", 4), 0);
	top_canvas_free(&c);
}

static void test_sort_keys(void **state)
{
	assert_int_equal(top_table_sort_for_key('S'), TOP_SORT_SENT);
	assert_int_equal(top_table_sort_for_key('R'), TOP_SORT_RECEIVED);
	assert_int_equal(top_table_sort_for_key('N'), TOP_SORT_NAME);
	assert_int_equal(top_table_sort_for_key('H'), TOP_SORT_HALTED);
	assert_int_equal(top_table_sort_for_key('L'), TOP_SORT_P50);
	assert_int_equal(top_table_sort_for_key('T'), TOP_SORT_P99);
	assert_int_equal(top_table_sort_for_key('D'), TOP_SORT_FINDINGS);
	assert_int_equal(top_table_sort_for_key('q'), -1);
	/* no key is both a command and a sort key */
	for (int i = 0; i < TOP_COL_COUNT; i++)
		assert_null(strchr("qhfosrbl", top_columns[i].key ? top_columns[i].key : 'Z'));
}

static bool canvas_has(const struct top_canvas *c, const char *s)
{
	for (size_t i = 0; i < c->n_lines; i++)
		if (strstr(top_canvas_text(c, i), s))
			return true;
	return false;
}

static void test_drill(void **state)
{
	struct ipiv_vcpu_stats vcpus[3] = {
		{.vcpu_id = 0, .tid = 501, .apicv_active = IPIV_APICV_INACTIVE},
		{.vcpu_id = 1, .tid = 502},
		{.vcpu_id = IPIV_VCPU_NONE},
	};
	struct ipiv_matrix_cell matrix[2] = {{0, 1, 100}, {IPIV_VCPU_NONE, 0, 4}};
	struct ipiv_vm_stats vm = {.vm = 9,
				   .pid = 500,
				   .alive = true,
				   .vcpu_count = 2,
				   .vcpus = vcpus,
				   .n_vcpus = 3,
				   .matrix = matrix,
				   .n_matrix = 2};
	struct top_vm_row row = make_row("web", 0);
	struct top_detail d;
	struct top_canvas c;
	struct top_rates r;

	top_detail_init(&d, 9);
	assert_int_equal(top_detail_update(&d, &vm, 1000000000ull), 0);
	vcpus[0].counts.sent = 200;
	vcpus[1].counts.received = 200;
	matrix[0].count = 300;
	assert_int_equal(top_detail_update(&d, &vm, 3000000000ull), 0);
	assert_true(top_detail_vcpu_rates(&d, 0, &r));
	assert_float_equal(r.sent, 100, 1e-9);
	assert_float_equal(top_detail_matrix_rate(&d, 0, 1), 100, 1e-9);
	assert_float_equal(top_detail_matrix_rate(&d, 1, 0), 0, 1e-9);
	assert_int_equal(top_heat_attr(100, 100), TOP_A_HEAT4);
	assert_int_equal(top_heat_attr(10, 100), TOP_A_HEAT1);
	assert_int_equal(top_heat_attr(0, 100), TOP_A_DIM);

	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, NULL, NULL);
	assert_true(canvas_has(&c, "VM web (pid 500, 2 vCPUs)"));
	assert_true(canvas_has(&c, "      501   off    100")); /* vCPU 0 sends 100/s */
	assert_true(canvas_has(&c, "      502     -"));	       /* APICv of vCPU 1 not known */
	assert_true(canvas_has(&c, "  TID APICv SENT/s"));
	assert_true(canvas_has(&c, "src\\dst     0     1"));  /* matrix header */
	assert_true(canvas_has(&c, "        0     .   100")); /* 0 -> 1 at 100/s */
	assert_true(canvas_has(&c, "     none"));
	assert_true(canvas_has(&c, "IPI latency histogram"));
	assert_true(canvas_has(&c, "Findings"));
	assert_false(canvas_has(&c, "VM is gone"));
	assert_false(canvas_has(&c, "timeline"));
	top_canvas_free(&c);

	/* the inhibit timeline, timed from the newest change */
	vm.inhibits_known = true;
	vm.timeline[0] = (struct ipiv_inhibit_change){1000000000ull, 0, 1};
	vm.timeline[1] = (struct ipiv_inhibit_change){3500000000ull, 8, 1};
	vm.timeline[2] = (struct ipiv_inhibit_change){3750000000ull, 8, 0};
	vm.n_timeline = 3;
	assert_int_equal(top_detail_update(&d, &vm, 3500000000ull), 0);
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, NULL, NULL);
	assert_true(canvas_has(&c, "timeline     -2.750 s  disabled set"));
	assert_true(canvas_has(&c, "-0.250 s  irqwin set"));
	assert_true(canvas_has(&c, "0.000 s  irqwin cleared"));
	top_canvas_free(&c);
	vm.n_timeline = 0;
	vm.inhibits_known = false;

	/* the VM exits: its last numbers stay, marked gone */
	assert_int_equal(top_detail_update(&d, NULL, 4000000000ull), 0);
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, NULL, NULL);
	assert_true(canvas_has(&c, "VM is gone"));
	assert_true(canvas_has(&c, "      501"));
	top_canvas_free(&c);
	top_detail_free(&d);
}

static void test_hist_rows(void **state)
{
	struct latency_hist h = {0};
	struct top_hist_row rows[TOP_HIST_ROWS];
	uint64_t total = 0;
	size_t n;

	assert_int_equal(top_hist_rows(&h, TOP_HIST_ROWS, rows), 0);
	/* few buckets: one row each, with their exact edges */
	latency_add(&h, 1000);
	latency_add(&h, 1000);
	latency_add(&h, 50000);
	n = top_hist_rows(&h, TOP_HIST_ROWS, rows);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].lo, hist_bucket_lo(hist_bucket(1000)));
	assert_int_equal(rows[0].hi, hist_bucket_hi(hist_bucket(1000)));
	assert_int_equal(rows[0].count, 2);
	assert_int_equal(rows[1].count, 1);
	assert_false(rows[1].overflow);
	/* many: grouped into at most TOP_HIST_ROWS runs, nothing lost, edges increasing */
	for (uint64_t v = 100; v < 100000000; v = v * 11 / 10)
		latency_add(&h, v);
	latency_add(&h, 1ull << 40); /* the overflow bucket */
	n = top_hist_rows(&h, TOP_HIST_ROWS, rows);
	assert_true(n > 1 && n <= TOP_HIST_ROWS);
	for (size_t i = 0; i < n; i++) {
		total += rows[i].count;
		assert_true(rows[i].count > 0);
		assert_true(rows[i].lo <= rows[i].hi);
		if (i)
			assert_true(rows[i].lo > rows[i - 1].hi);
	}
	assert_int_equal(total, h.count);
	assert_true(rows[n - 1].overflow);
}

static void test_drill_latency_and_findings(void **state)
{
	struct ipiv_lat_hist lat[3] = {
		{.kind = IPIV_LAT_SEND_ACCEPT,
		 .sub = IPIV_PATH_X2APIC_MSR,
		 .vcpu = IPIV_LAT_VM_WIDE},
		{.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = IPIV_LAT_VM_WIDE},
		{.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_APIC_WRITE, .vcpu = IPIV_LAT_VM_WIDE},
	};
	struct ipiv_vm_stats vm = {.vm = 9,
				   .pid = 500,
				   .alive = true,
				   .vcpu_count = 2,
				   .lat = lat,
				   .n_lat = 3,
				   .latency_enabled = true};
	struct diag_vm_report vr = {.vm = 9, .name = "web", .window_seconds = 2};
	struct diag_report report = {.taken_ns = 10000000000ull, .vms = &vr, .n_vms = 1};
	struct diag_finding *fd = &vr.result.findings[0];
	struct top_vm_row row = make_row("web", 0);
	struct top_detail d;
	struct top_canvas c;
	size_t bars = 0;
	bool in_findings = false;

	for (int i = 0; i < 90; i++)
		latency_add(&lat[1].h, 14000);
	for (int i = 0; i < 10; i++)
		latency_add(&lat[2].h, 3000000);
	latency_add(&lat[0].h, 500);
	vm.lat_unmatched[IPIV_UNM_NMI] = 7;
	vm.lat_unmatched[IPIV_UNM_STALE] = 2;
	fd->rule = DIAG_RULE_LOGICAL_DEST_MODE;
	fd->severity = DIAG_WARNING;
	snprintf(fd->title, sizeof(fd->title), "Most IPIs use logical destination mode");
	snprintf(fd->evidence[0].name, sizeof(fd->evidence[0].name), "logical_share");
	snprintf(fd->evidence[0].text, sizeof(fd->evidence[0].text), "0.870");
	fd->n_evidence = 1;
	snprintf(fd->remedy, sizeof(fd->remedy),
		 "Boot the guest with x2apic_phys on its kernel command line, or give it no "
		 "interrupt remapping; physical-mode unicast IPIs then go without exits.");
	fd->since_ns = 4000000000ull;
	vr.result.n_findings = 1;
	vr.result.skipped[0] =
		(struct diag_skip){DIAG_RULE_TARGETS_PREEMPTED, "needs the preempted-target share"};
	vr.result.n_skipped = 1;

	top_detail_init(&d, 9);
	assert_int_equal(d.stage, IPIV_LAT_SEND_EOI);
	assert_int_equal(top_detail_update(&d, &vm, 1000000000ull), 0);
	memset(lat, 0xff, sizeof(lat)); /* the detail keeps its own copy */
	top_canvas_init(&c, 60);
	top_drill_draw(&c, &d, &row, &report, NULL);
	for (size_t i = 0; i < c.n_lines; i++) {
		const char *l = top_canvas_text(&c, i);

		if (strstr(l, "\u2264") && strstr(l, "\u2588"))
			bars++;
		/* the findings pane wraps to the width (the screen clips the other panes) */
		in_findings |= !strncmp(l, "Findings", 8);
		if (in_findings && top_display_width(l) > 60)
			fail_msg("line %zu is wider than 60: \"%s\"", i, l);
	}
	assert_int_equal(bars, 2); /* 14 µs and 3 ms, merged over both paths */
	assert_true(canvas_has(&c, "IPI latency histogram: send\u2192EOI"));
	assert_true(canvas_has(&c, "[send\u2192EOI]"));
	assert_true(canvas_has(&c, "n 100"));
	assert_true(canvas_has(&c, "p50 14.1\u00b5s \u00b1"));
	assert_true(canvas_has(&c, "path=x2apic_msr: 90"));
	assert_true(canvas_has(&c, "path=apic_write_trap: 10"));
	assert_true(canvas_has(&c, "90  90.0%"));
	/* only the reasons that happened */
	assert_true(canvas_has(&c, "unmatched: no_eoi_delivery_mode 7, stale 2"));
	assert_false(canvas_has(&c, "coalesced 0"));
	assert_true(canvas_has(&c, "Findings (window 2.0 s)"));
	assert_true(canvas_has(&c, "[warning] logical_dest_mode: Most IPIs use"));
	assert_true(canvas_has(&c, "    for 6 s"));
	assert_true(canvas_has(&c, "    evidence: logical_share=0.870"));
	assert_true(canvas_has(&c, "    remedy: Boot the guest with x2apic_phys on its kernel"));
	assert_true(canvas_has(&c, "      command line, or give it no interrupt remapping;"));
	assert_true(canvas_has(&c, "not evaluated: targets_preempted: needs the"));
	top_canvas_free(&c);

	/* "l" moves to the next stage; send->accept has its one observation */
	d.stage = top_lat_next_stage(d.stage);
	assert_int_equal(d.stage, IPIV_LAT_EXIT);
	d.stage = top_lat_next_stage(top_lat_next_stage(d.stage));
	assert_int_equal(d.stage, IPIV_LAT_EXIT_FASTPATH);
	d.stage = top_lat_next_stage(d.stage);
	assert_int_equal(d.stage, IPIV_LAT_SEND_ACCEPT);
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, NULL, "ipivd has not evaluated them yet");
	assert_true(canvas_has(&c, "IPI latency histogram: send\u2192accept"));
	assert_true(canvas_has(&c, "n 1 "));
	assert_true(canvas_has(&c, "not evaluated yet: ipivd has not evaluated them yet"));
	top_canvas_free(&c);
	/* from an ipivd that does not record send->accept (its default), the pane says so */
	d.lat_recorded &= ~(1u << IPIV_LAT_SEND_ACCEPT);
	top_canvas_init(&c, 200);
	top_drill_draw(&c, &d, &row, NULL, NULL);
	assert_true(canvas_has(&c, "n/a: this ipivd does not record this stage"));
	assert_false(canvas_has(&c, "n 1 "));
	top_canvas_free(&c);
	d.lat_recorded = (1u << IPIV_LAT_UNMATCHED) - 1;

	/* a stage without observations, and latency collection off */
	d.stage = IPIV_LAT_HALT;
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, &report, NULL);
	assert_true(canvas_has(&c, "nothing observed in this stage yet"));
	top_canvas_free(&c);
	d.cur.latency_enabled = false;
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, &report, NULL);
	assert_true(canvas_has(&c, "n/a: latency collection is off"));
	top_canvas_free(&c);
	top_detail_free(&d);
}

static void test_help_lists_keys(void **state)
{
	struct top_canvas c;

	top_canvas_init(&c, 100);
	top_help_draw(&c);
	for (unsigned i = 0; i < top_n_keys; i++)
		assert_true(canvas_has(&c, top_keys[i].keys));
	for (int i = 0; i < TOP_COL_COUNT; i++)
		assert_true(canvas_has(&c, top_columns[i].help));
	top_canvas_free(&c);
}

/* The probes line: optional tracepoints a kernel lacks are said to be normal; a missing
 * required one is DEGRADED, by name. */
static void test_header_probes(void **state)
{
	struct ipiv_probe probes[] = {
		{"kvm_apic_ipi", "ipiv_apic_ipi", false, true, 0},
		{"kvm_pi_wakeup", "ipiv_pi_wakeup", true, false, -ENOENT},
		{"kvm_avic_physid_update", "ipiv_avic_physid_update", true, false, -ENOENT},
		{"kvm_exit", "ipiv_exit", true, false, -EPERM}, /* present, failed to attach */
	};
	struct ipiv_snapshot snap = {.self = {.probes = probes, .n_probes = 4, .n_attached = 1}};
	struct top_frame frame = {.snap = &snap};
	struct top_host host = {.known = true};
	struct top_model model;
	struct top_header h = {.source = "standalone",
			       .version = "t",
			       .delay_s = 2,
			       .host = &host,
			       .frame = &frame,
			       .model = &model};
	struct top_canvas c;

	top_model_init(&model);
	top_canvas_init(&c, 120);
	top_header_draw(&c, &h);
	assert_true(canvas_has(&c, "probes: 1/4 attached (2 optional not in this kernel) | "));
	assert_false(canvas_has(&c, "DEGRADED"));
	top_canvas_free(&c);

	probes[0].attached = false;
	probes[0].err = -ENOENT;
	snap.self.n_attached = 0;
	frame.degraded = true;
	top_canvas_init(&c, 120);
	top_header_draw(&c, &h);
	assert_true(canvas_has(&c, "probes: 0/4 attached (2 optional not in this kernel) "
				   "DEGRADED: kvm_apic_ipi |"));
	top_canvas_free(&c);
	top_model_free(&model);
}

/* "x": a VM's paths under its row, with their rate and share; none without rates. */
static void test_child_rows(void **state)
{
	struct top_vm_row r = make_row("web", 1000);
	enum ipiv_path paths[IPIV_PATH_COUNT];
	struct top_layout l;
	struct top_canvas c;

	r.rate.delta.sent_by_path[IPIV_PATH_X2APIC_MSR] = 750;
	r.rate.delta.sent_by_path[IPIV_PATH_PV_KVM] = 250;
	assert_int_equal(top_table_children(&r, NULL), 2);
	assert_int_equal(top_table_children(&r, paths), 2);
	assert_int_equal(paths[0], IPIV_PATH_X2APIC_MSR);
	assert_int_equal(paths[1], IPIV_PATH_PV_KVM);
	top_table_layout(120, &l);
	top_canvas_init(&c, 120);
	top_table_child(&c, &l, &r, paths[0], false);
	top_table_child(&c, &l, &r, paths[1], true);
	assert_int_equal(c.n_lines, 2);
	assert_true(canvas_has(&c, "\u251c x2apic_msr"));
	assert_true(canvas_has(&c, "\u2514 pv_kvm"));
	assert_true(canvas_has(&c, "750    75%"));
	assert_true(canvas_has(&c, "250    25%"));
	top_canvas_free(&c);
	r.rate.valid = false;
	assert_int_equal(top_table_children(&r, NULL), 0);
	r.rate.valid = true;
	r.gone = 1;
	assert_int_equal(top_table_children(&r, NULL), 0);
}

/* "r" in the drill-down: its histograms count from the reset, row by row. */
static void test_drill_latency_since_reset(void **state)
{
	struct ipiv_lat_hist lat[2] = {
		{.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = IPIV_LAT_VM_WIDE},
		{.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_APIC_WRITE, .vcpu = IPIV_LAT_VM_WIDE},
	};
	struct ipiv_vm_stats vm = {.vm = 9,
				   .pid = 500,
				   .alive = true,
				   .vcpu_count = 2,
				   .lat = lat,
				   .n_lat = 1,
				   .latency_enabled = true};
	struct top_vm_row row = make_row("web", 0);
	struct ipiv_vm_stats since;
	struct latency_hist h;
	struct top_detail d;
	struct top_canvas c;

	for (int i = 0; i < 100; i++)
		latency_add(&lat[0].h, 14000);
	top_detail_init(&d, 9);
	assert_int_equal(top_detail_update(&d, &vm, 1000000000ull), 0);
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, NULL, NULL);
	assert_true(canvas_has(&c, "send\u2192EOI (since the collector started)"));
	assert_true(canvas_has(&c, "n 100 "));
	top_canvas_free(&c);

	assert_int_equal(top_detail_reset(&d), 0);
	for (int i = 0; i < 5; i++)
		latency_add(&lat[0].h, 3000000);
	latency_add(&lat[1].h, 500); /* a row that appeared after the reset counts whole */
	vm.n_lat = 2;
	assert_int_equal(top_detail_update(&d, &vm, 11000000000ull), 0);
	assert_int_equal(top_lat_since(&d.cur, &d.base, &since), 0);
	assert_int_equal(since.n_lat, 2);
	assert_true(vm_latency(&since, IPIV_LAT_SEND_EOI, IPIV_PATH_X2APIC_MSR, &h));
	assert_int_equal(h.count, 5);
	assert_true(vm_latency(&since, IPIV_LAT_SEND_EOI, IPIV_PATH_APIC_WRITE, &h));
	assert_int_equal(h.count, 1);
	free(since.lat);
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, NULL, NULL);
	assert_true(canvas_has(&c, "send\u2192EOI (since reset 10s ago)"));
	assert_true(canvas_has(&c, "n 6 "));
	assert_false(canvas_has(&c, "n 106 "));
	top_canvas_free(&c);
	top_detail_free(&d);

	/* reset before the drill-down opened: it counts from its first sample */
	top_detail_init(&d, 9);
	d.since_reset = true;
	assert_int_equal(top_detail_update(&d, &vm, 12000000000ull), 0);
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, NULL, NULL);
	assert_true(canvas_has(&c, "(since reset 0s ago)"));
	assert_true(canvas_has(&c, "nothing observed in this stage yet"));
	top_canvas_free(&c);
	top_detail_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_widths),
		cmocka_unit_test(test_columns_drop_by_rank),
		cmocka_unit_test(test_cells),
		cmocka_unit_test(test_gone_row_says_so),
		cmocka_unit_test(test_sort_keys),
		cmocka_unit_test(test_drill),
		cmocka_unit_test(test_help_lists_keys),
		cmocka_unit_test(test_hist_rows),
		cmocka_unit_test(test_drill_latency_and_findings),
		cmocka_unit_test(test_header_probes),
		cmocka_unit_test(test_child_rows),
		cmocka_unit_test(test_drill_latency_since_reset),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
