/* Unit tests for daemon/ipivtop/model.c: rates between samples (counter resets included),
 * totals since a reset baseline, VMs that exit kept as gone then dropped, sorting, filter. */
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
	assert_int_equal(
		top_model_update(m, &s->snap, (const char(*)[VM_NAME_MAX])s->names, NULL, NULL), 0);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
