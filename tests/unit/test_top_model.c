/* Unit tests for daemon/ipivtop/model.c: rates between samples (counter resets included),
 * totals since a reset baseline, VMs that exit kept as gone then dropped, sorting, filters
 * (regex, guest, pid), latency quantiles over the refresh interval. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ipivtop/model.h"

#define NS 1000000000ull

struct sample {
	struct ipiv_snapshot snap;
	struct ipiv_vm_stats vms[4];
	char names[4][VM_NAME_MAX];
};

static void add_vm(struct sample *s, uint64_t key, int pid, const char *name, uint64_t sent,
		   uint64_t received)
{
	struct ipiv_vm_stats *vm = &s->vms[s->snap.n_vms];

	memset(vm, 0, sizeof(*vm));
	vm->vm = key;
	vm->pid = pid;
	vm->alive = true;
	vm->vcpu_count = 2;
	vm->counts.sent = sent;
	vm->counts.sent_by_path[IPIV_PATH_X2APIC_MSR] = sent;
	vm->counts.received = received;
	vm->counts.wakeups = received / 2;
	snprintf(s->names[s->snap.n_vms], VM_NAME_MAX, "%s", name);
	s->snap.vms = s->vms;
	s->snap.n_vms++;
}

static void update(struct top_model *m, struct sample *s, uint64_t t_ns)
{
	s->snap.taken_ns = t_ns;
	assert_int_equal(top_model_update(m, &s->snap, (const char(*)[VM_NAME_MAX])s->names, NULL,
					  NULL, NULL),
			 0);
}

static void test_delta_counter_reset(void **state)
{
	struct ipiv_counts prev = {0}, cur = {0}, d;

	prev.sent = 100;
	cur.sent = 150;
	prev.received = 500; /* restarted: ipivd restarted or the key was reused */
	cur.received = 20;
	prev.sent_by_path[IPIV_PATH_PV_KVM] = 7;
	cur.sent_by_path[IPIV_PATH_PV_KVM] = 7;
	top_counts_delta(&prev, &cur, &d);
	assert_int_equal(d.sent, 50);
	assert_int_equal(d.received, 20);
	assert_int_equal(d.sent_by_path[IPIV_PATH_PV_KVM], 0);
}

static void test_rates(void **state)
{
	struct ipiv_counts prev = {0}, cur = {0};
	struct top_rates r;

	cur.sent = 1000;
	cur.sent_accel_eligible = 250;
	cur.sent_by_path[IPIV_PATH_APIC_WRITE] = 500;
	cur.sent_by_path[IPIV_PATH_PV_KVM] = 100;
	cur.sent_by_path[IPIV_PATH_PV_HYPERV] = 100;
	cur.received = 2000;
	cur.wakeups = 1000;
	cur.exits = 4000;
	top_rates_compute(&prev, &cur, 2.0, &r);
	assert_true(r.valid);
	assert_float_equal(r.sent, 500, 1e-9);
	assert_float_equal(r.received, 1000, 1e-9);
	assert_float_equal(r.exits, 2000, 1e-9);
	assert_float_equal(r.sent_eligible, 0.25, 1e-9);
	assert_float_equal(r.sent_fallback, 0.5, 1e-9);
	assert_float_equal(r.sent_pv, 0.2, 1e-9);
	assert_float_equal(top_halted_share(&r), 0.5, 1e-9);

	/* nothing sent: shares are unknown, not 0 */
	top_rates_compute(&cur, &cur, 1.0, &r);
	assert_true(r.valid);
	assert_true(r.sent_eligible < 0);
	assert_true(top_halted_share(&r) < 0);
	/* no time passed: no rates */
	top_rates_compute(&prev, &cur, 0, &r);
	assert_false(r.valid);
}

static void test_update_rates_and_totals(void **state)
{
	struct top_model m;
	struct sample s = {0};
	const struct top_vm_row *row;

	top_model_init(&m);
	add_vm(&s, 1, 100, "web", 1000, 900);
	update(&m, &s, 10 * NS);
	row = top_model_find(&m, 1);
	assert_non_null(row);
	assert_false(row->rate.valid); /* one sample: no rate yet */
	assert_int_equal(row->total.sent, 1000);

	s.vms[0].counts.sent = 3000;
	s.vms[0].counts.received = 2900;
	update(&m, &s, 12 * NS);
	row = top_model_find(&m, 1);
	assert_true(row->rate.valid);
	assert_float_equal(row->rate.sent, 1000, 1e-9);
	assert_float_equal(row->rate.received, 1000, 1e-9);
	assert_int_equal(row->total.sent, 3000);

	/* "r": totals count from here */
	top_model_reset(&m);
	assert_int_equal(top_model_find(&m, 1)->total.sent, 0);
	s.vms[0].counts.sent = 3500;
	update(&m, &s, 13 * NS);
	assert_int_equal(top_model_find(&m, 1)->total.sent, 500);

	/* the counters restart below the baseline: the baseline restarts too */
	s.vms[0].counts.sent = 40;
	s.vms[0].counts.received = 40;
	update(&m, &s, 14 * NS);
	row = top_model_find(&m, 1);
	assert_float_equal(row->rate.sent, 40, 1e-9);
	assert_int_equal(row->total.sent, 40);
	top_model_free(&m);
}

static void test_gone_then_dropped(void **state)
{
	struct top_model m;
	struct sample s = {0}, without = {0};
	uint64_t t = NS;

	top_model_init(&m);
	add_vm(&s, 1, 100, "web", 10, 10);
	add_vm(&s, 2, 200, "db", 20, 20);
	update(&m, &s, t++ * NS);
	update(&m, &s, t++ * NS);
	add_vm(&without, 2, 200, "db", 30, 30);
	for (unsigned i = 1; i <= TOP_GONE_REFRESHES; i++) {
		const struct top_vm_row *row;

		update(&m, &without, t++ * NS);
		row = top_model_find(&m, 1);
		assert_non_null(row);
		assert_int_equal(row->gone, i);
		assert_false(row->rate.valid);
		assert_int_equal(row->total.sent, 10); /* last numbers stay */
	}
	update(&m, &without, t++ * NS);
	assert_null(top_model_find(&m, 1));
	assert_non_null(top_model_find(&m, 2));
	assert_int_equal(m.n_rows, 1);

	/* a VM listed but no longer alive (awaiting reclaim) is gone as well */
	without.vms[0].alive = false;
	update(&m, &without, t++ * NS);
	assert_int_equal(top_model_find(&m, 2)->gone, 1);
	top_model_free(&m);
}

static void test_key_reused_by_another_process(void **state)
{
	struct top_model m;
	struct sample a = {0}, b = {0};
	const struct top_vm_row *row;

	top_model_init(&m);
	add_vm(&a, 7, 100, "old", 5000, 5000);
	update(&m, &a, 1 * NS);
	add_vm(&b, 7, 300, "new", 10, 10);
	update(&m, &b, 2 * NS);
	row = top_model_find(&m, 7);
	assert_non_null(row);
	assert_string_equal(row->name, "new");
	assert_int_equal(row->pid, 300);
	assert_false(row->rate.valid);
	assert_int_equal(row->total.sent, 10);
	assert_int_equal(m.n_rows, 2); /* the old one shows as gone */
	top_model_free(&m);
}

static void test_sort(void **state)
{
	struct top_model m;
	struct sample s = {0};

	top_model_init(&m);
	add_vm(&s, 1, 101, "bravo", 0, 0);
	add_vm(&s, 2, 102, "alpha", 0, 0);
	add_vm(&s, 3, 103, "charlie", 0, 0);
	update(&m, &s, 1 * NS);
	s.vms[0].counts.sent = 300;
	s.vms[1].counts.sent = 100;
	s.vms[2].counts.sent = 100;
	s.vms[2].vcpu_count = 8;
	update(&m, &s, 2 * NS);

	m.sort = TOP_SORT_SENT;
	m.ascending = false;
	top_model_sort(&m);
	assert_string_equal(m.rows[0].name, "bravo");
	assert_string_equal(m.rows[1].name, "alpha"); /* tie: by name */
	assert_string_equal(m.rows[2].name, "charlie");
	m.ascending = true;
	top_model_sort(&m);
	assert_string_equal(m.rows[0].name, "alpha");
	assert_string_equal(m.rows[1].name, "charlie");
	assert_string_equal(m.rows[2].name, "bravo");
	m.sort = TOP_SORT_NAME;
	top_model_sort(&m);
	assert_string_equal(m.rows[0].name, "alpha");
	assert_string_equal(m.rows[2].name, "charlie");
	m.sort = TOP_SORT_VCPUS;
	m.ascending = false;
	top_model_sort(&m);
	assert_string_equal(m.rows[0].name, "charlie");

	/* gone rows sort last whatever their numbers */
	m.rows[0].gone = 1;
	top_model_sort(&m);
	assert_string_equal(m.rows[2].name, "charlie");
	top_model_free(&m);
}

static void test_filter(void **state)
{
	struct top_model m;
	struct top_vm_row web = {.name = "web-01"}, db = {.name = "db-01"};
	char err[128];

	top_model_init(&m);
	assert_true(top_model_visible(&m, &web));
	assert_int_equal(top_model_set_filter(&m, "^web", err, sizeof(err)), 0);
	assert_true(top_model_visible(&m, &web));
	assert_false(top_model_visible(&m, &db));
	assert_int_equal(top_model_set_filter(&m, "(", err, sizeof(err)), -EINVAL);
	assert_true(strlen(err) > 0);
	assert_false(top_model_visible(&m, &db)); /* a bad regex keeps the old filter */
	assert_int_equal(top_model_set_filter(&m, "", err, sizeof(err)), 0);
	assert_true(top_model_visible(&m, &db));
	top_model_free(&m);
}

/* Quantiles of an interval come from the histogram's growth, not its whole life. */
static void test_hist_delta(void **state)
{
	struct latency_hist prev = {0}, cur = {0}, d;

	for (int i = 0; i < 100; i++)
		latency_add(&prev, 1000);
	cur = prev;
	for (int i = 0; i < 10; i++)
		latency_add(&cur, 1000000);
	top_hist_delta(&prev, &cur, &d);
	assert_int_equal(d.count, 10);
	assert_int_equal(d.sum_ns, 10 * 1000000);
	assert_true(latency_quantile(&d, 0.5).value_ns > 900000);
	/* over the whole life the median is still ~1 us */
	assert_true(latency_quantile(&cur, 0.5).value_ns < 2000);

	/* a histogram that shrank restarted: its growth is itself */
	top_hist_delta(&cur, &prev, &d);
	assert_int_equal(d.count, 100);
	assert_int_equal(d.buckets[hist_bucket(1000)], 100);
	/* one bucket lower with the count higher is a restart too */
	memset(&cur, 0, sizeof(cur));
	for (int i = 0; i < 200; i++)
		latency_add(&cur, 5000);
	top_hist_delta(&prev, &cur, &d);
	assert_int_equal(d.count, 200);
}

static void add_hist(struct top_lat_sample *l, unsigned n, uint64_t ns)
{
	l->known = true;
	for (unsigned i = 0; i < n; i++)
		latency_add(&l->hist, ns);
}

static void update_lat(struct top_model *m, struct sample *s, const struct top_lat_sample *lat,
		       uint64_t t_ns)
{
	s->snap.taken_ns = t_ns;
	assert_int_equal(top_model_update(m, &s->snap, (const char(*)[VM_NAME_MAX])s->names, NULL,
					  lat, NULL),
			 0);
}

static void test_latency_per_interval(void **state)
{
	struct top_model m;
	struct sample s = {0};
	struct top_lat_sample lat[1] = {0};
	struct api_latency life = {0};
	const struct top_vm_row *row;

	top_model_init(&m);
	add_vm(&s, 1, 100, "web", 0, 0);
	add_hist(&lat[0], 1000, 2000); /* a long quiet life at 2 us */
	update_lat(&m, &s, lat, 1 * NS);
	row = top_model_find(&m, 1);
	assert_int_equal(m.lat_span, TOP_LAT_INTERVAL);
	assert_false(row->latency.p50.valid); /* one sample: no interval yet */

	add_hist(&lat[0], 50, 3000000); /* then a regression: 50 IPIs at 3 ms */
	update_lat(&m, &s, lat, 2 * NS);
	row = top_model_find(&m, 1);
	assert_true(row->latency.known);
	assert_int_equal(row->latency.count, 50);
	assert_true(row->latency.p50.valid);
	assert_true(row->latency.p50.value_ns > 2500000 && row->latency.p50.value_ns < 3500000);

	/* an interval without IPIs has no quantiles, whatever came before */
	update_lat(&m, &s, lat, 3 * NS);
	row = top_model_find(&m, 1);
	assert_false(row->latency.known);
	assert_false(row->latency.p50.valid);

	/* a source without histograms: its figures, over the collector's life */
	life.known = true;
	life.count = 1050;
	life.p50 = (struct latency_quantile){.q = 0.5, .valid = true, .value_ns = 2000};
	s.snap.taken_ns = 4 * NS;
	assert_int_equal(top_model_update(&m, &s.snap, (const char(*)[VM_NAME_MAX])s.names, &life,
					  NULL, NULL),
			 0);
	row = top_model_find(&m, 1);
	assert_int_equal(m.lat_span, TOP_LAT_LIFETIME);
	assert_int_equal(row->latency.count, 1050);
	assert_null(row->lat_last);

	/* "r" marks when totals count from */
	top_model_reset(&m);
	assert_int_equal(m.reset_ns, 4 * NS);
	top_model_free(&m);
}

static void test_guest_and_pid_filters(void **state)
{
	struct top_model m;
	struct sample s = {0};
	const struct top_vm_row *web, *db;
	char err[128];

	top_model_init(&m);
	add_vm(&s, 1, 100, "web", 0, 0);
	add_vm(&s, 2, 200, "web2", 0, 0);
	update(&m, &s, 1 * NS);
	web = top_model_find(&m, 1);
	db = top_model_find(&m, 2);
	assert_false(top_model_has_filters(&m));
	assert_true(top_model_has_pid(&m, 200));
	assert_false(top_model_has_pid(&m, 300));
	assert_true(top_model_has_guest(&m, "web"));
	assert_false(top_model_has_guest(&m, "we")); /* exact names only */

	top_model_set_guest(&m, "web"); /* not a regex: web2 stays out */
	assert_true(top_model_visible(&m, web));
	assert_false(top_model_visible(&m, db));
	/* what --connect asks before fetching a VM's histograms */
	assert_true(top_model_visible_vm(&m, "web", 999));
	assert_false(top_model_visible_vm(&m, "web2", 200));
	top_model_set_guest(&m, NULL);
	top_model_set_pid(&m, 200);
	assert_false(top_model_visible(&m, web));
	assert_true(top_model_visible(&m, db));
	/* filters combine */
	assert_int_equal(top_model_set_filter(&m, "^web$", err, sizeof(err)), 0);
	assert_false(top_model_visible(&m, db));
	assert_true(top_model_has_filters(&m));
	top_model_clear_filters(&m);
	assert_false(top_model_has_filters(&m));
	assert_true(top_model_visible(&m, web));
	assert_true(top_model_visible(&m, db));
	top_model_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delta_counter_reset),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_update_rates_and_totals),
		cmocka_unit_test(test_gone_then_dropped),
		cmocka_unit_test(test_key_reused_by_another_process),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_hist_delta),
		cmocka_unit_test(test_latency_per_interval),
		cmocka_unit_test(test_guest_and_pid_filters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
