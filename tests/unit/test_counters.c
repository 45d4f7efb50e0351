/* Unit tests for daemon/lib/counters.c: the table include/ipiv_counters.h makes is whole and
 * consistent (names valid and unique, every family's series exist, docs/metrics.md lists
 * them), map entries land in the fields their kind says, and families keep the series they
 * should. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "counters.h"
#include "expo.h"
#include "icr.h"

#define FIXED_UNICAST ICR_DM_FIXED /* an ICR class IPIv/AVIC deliver without an exit */

static const struct counter_family *families(const struct counter_kind *k, unsigned i)
{
	const struct counter_family *all[] = {&k->vm, &k->host, &k->vcpu};

	return all[i];
}

static void test_table_is_consistent(void **state)
{
	const char *keys[64], *metrics[64];
	size_t n_keys = 0, n_metrics = 0;

	assert_null(counter_kinds[IPIV_CNT_NONE].name);
	for (unsigned kind = 1; kind < IPIV_CNT_KIND_COUNT; kind++) {
		const struct counter_kind *k = &counter_kinds[kind];
		const struct counter_field *by_sub = &k->field[COUNTER_BY_SUB];

		assert_non_null(k->name);
		for (unsigned slot = 0; slot < COUNTER_SLOTS; slot++) {
			const struct counter_field *f = &k->field[slot];
			size_t len;

			if (!f->name)
				continue;
			/* a JSON key once in the whole document, with its unit in the name */
			for (size_t i = 0; i < n_keys; i++)
				if (!strcmp(keys[i], f->name))
					fail_msg("%s: JSON key %s twice", k->name, f->name);
			keys[n_keys++] = f->name;
			len = strlen(f->name);
			assert_int_equal(f->ns, len > 8 && !strcmp(f->name + len - 8, "_seconds"));
			assert_true(f->offset + sizeof(uint64_t) <= sizeof(struct ipiv_counts));
		}
		if (by_sub->name) {
			assert_non_null(k->sub_name);
			assert_true(k->n_sub > 0 && k->n_sub <= COUNTER_MAX_SAMPLES);
			assert_true(k->first_sub < k->n_sub);
			assert_true(by_sub->offset + k->n_sub * sizeof(uint64_t) <=
				    sizeof(struct ipiv_counts));
			for (unsigned sub = 0; sub < k->n_sub; sub++)
				assert_non_null(k->sub_name(sub));
		}
		/* an UNLESS field needs its WHEN; a split without UNLESS takes TOTAL - WHEN */
		if (k->field[COUNTER_UNLESS].name)
			assert_non_null(k->field[COUNTER_WHEN].name);
		for (unsigned i = 0; i < 3; i++) {
			const struct counter_family *f = families(k, i);

			if (!f->name)
				continue;
			assert_int_equal(expo_valid_metric_name(f->name), 1);
			assert_true(f->help && *f->help);
			for (size_t j = 0; j < n_metrics; j++)
				if (!strcmp(metrics[j], f->name))
					fail_msg("%s: metric %s twice", k->name, f->name);
			metrics[n_metrics++] = f->name;
			switch (f->from) {
			case COUNTER_FROM_TOTAL:
				assert_non_null(k->field[COUNTER_TOTAL].name);
				break;
			case COUNTER_FROM_BY_SUB: assert_non_null(by_sub->name); break;
			case COUNTER_FROM_WHEN: assert_non_null(k->field[COUNTER_WHEN].name); break;
			case COUNTER_FROM_SPLIT:
				assert_non_null(k->field[COUNTER_WHEN].name);
				assert_true(k->field[COUNTER_UNLESS].name ||
					    k->field[COUNTER_TOTAL].name);
				break;
			}
			if (f->from == COUNTER_FROM_BY_SUB || f->from == COUNTER_FROM_SPLIT)
				assert_int_equal(expo_valid_label_name(k->label), 1);
		}
	}
}

static void add(struct ipiv_counts *c, uint16_t kind, uint16_t sub, uint32_t sub2, uint64_t n)
{
	struct ipiv_counter_key key = {.vm = 1, .vcpu = 0, .kind = kind, .sub = sub, .sub2 = sub2};

	counter_add(c, &key, n);
}

static void test_add(void **state)
{
	static const struct ipiv_counts zero;
	struct ipiv_counts c = {0};

	add(&c, IPIV_CNT_SEND, IPIV_PATH_X2APIC_MSR, FIXED_UNICAST, 5);
	add(&c, IPIV_CNT_SEND, IPIV_PATH_X2APIC_MSR, ICR_DM_NMI, 2);
	add(&c, IPIV_CNT_SEND, IPIV_PATH_COUNT, FIXED_UNICAST, 100); /* no such path: dropped */
	assert_int_equal(c.sent, 7);
	assert_int_equal(c.sent_by_path[IPIV_PATH_X2APIC_MSR], 7);
	assert_int_equal(c.sent_accel_eligible, 5);

	add(&c, IPIV_CNT_RECV, ICR_DM_PV_KICK, 0, 3);
	assert_int_equal(c.received, 3);
	assert_int_equal(c.received_by_delivery[ICR_DM_PV_KICK], 3);

	add(&c, IPIV_CNT_WAKEUP, 1, 0, 4);
	add(&c, IPIV_CNT_WAKEUP, 0, 0, 6);
	assert_int_equal(c.wakeups, 10);
	assert_int_equal(c.wakeups_halted, 4);
	add(&c, IPIV_CNT_HALT_NS, 1, 0, 1000);
	add(&c, IPIV_CNT_HALT_NS, 0, 0, 500);
	assert_int_equal(c.halt_ns, 1500);

	add(&c, IPIV_CNT_FASTPATH, 1, FIXED_UNICAST, 8);
	add(&c, IPIV_CNT_FASTPATH, 0, FIXED_UNICAST, 1);
	assert_int_equal(c.x2apic_fastpath_handled, 8);
	assert_int_equal(c.x2apic_fastpath_missed, 1);

	add(&c, IPIV_CNT_STATE_NS, IPIV_VSTATE_BLOCKED, 0, 77);
	add(&c, IPIV_CNT_STATE_NS, IPIV_VSTATE_COUNT, 0, 99);
	assert_int_equal(c.state_ns[IPIV_VSTATE_BLOCKED], 77);

	add(&c, IPIV_CNT_EXIT, IPIV_ISA_VMX, 12, 9);
	assert_int_equal(c.exits, 9);

	/* kinds with no fields here, and kinds that do not exist, change nothing */
	memset(&c, 0, sizeof(c));
	add(&c, IPIV_CNT_INHIBIT, 8, 1, 1);
	add(&c, IPIV_CNT_NONE, 0, 0, 1);
	add(&c, IPIV_CNT_KIND_COUNT, 0, 0, 1);
	add(&c, IPIV_CNT_MATRIX_CELL, 0, 1, 1);
	assert_memory_equal(&c, &zero, sizeof(c));
}

/* k's VM family has two series, yes and no, with these values. */
static void assert_split(const struct counter_kind *k, const struct ipiv_counts *c, const char *yes,
			 uint64_t yes_value, const char *no, uint64_t no_value)
{
	struct counter_sample s[COUNTER_MAX_SAMPLES];

	assert_int_equal(counter_samples(k, &k->vm, c, s), 2);
	assert_string_equal(s[0].label_value, yes);
	assert_int_equal(s[0].value, yes_value);
	assert_string_equal(s[1].label_value, no);
	assert_int_equal(s[1].value, no_value);
}

/* The series a family keeps: those that counted, plus zeros; if_any keeps all or none. */
static void test_samples(void **state)
{
	const struct counter_kind *recv = &counter_kinds[IPIV_CNT_RECV];
	const struct counter_kind *state_ns = &counter_kinds[IPIV_CNT_STATE_NS];
	const struct counter_kind *wakeup = &counter_kinds[IPIV_CNT_WAKEUP];
	const struct counter_kind *pi = &counter_kinds[IPIV_CNT_PI_WAKEUP];
	struct counter_sample s[COUNTER_MAX_SAMPLES];
	struct ipiv_counts c = {0};

	/* accepted: fixed even at 0, other modes once seen */
	assert_int_equal(counter_samples(recv, &recv->vm, &c, s), 1);
	assert_string_equal(s[0].label_value, "fixed");
	assert_int_equal(s[0].value, 0);
	c.received_by_delivery[ICR_DM_NMI] = 2;
	assert_int_equal(counter_samples(recv, &recv->vm, &c, s), 2);
	assert_string_equal(s[1].label_value, "nmi");
	/* the host total: one series without a label of the kind */
	c.received = 2;
	assert_int_equal(counter_samples(recv, &recv->host, &c, s), 1);
	assert_null(s[0].label_value);
	assert_int_equal(s[0].value, 2);

	/* states: never "running", nanoseconds */
	c.state_ns[IPIV_VSTATE_RUNNING] = 5;
	c.state_ns[IPIV_VSTATE_PREEMPTED] = 7;
	assert_int_equal(counter_samples(state_ns, &state_ns->vm, &c, s), 1);
	assert_string_equal(s[0].label_value, "preempted");
	assert_true(s[0].ns);

	/* wakeups: true/false both always, false being the total less the halted ones */
	assert_int_equal(counter_samples(wakeup, &wakeup->vm, &c, s), 2);
	c.wakeups = 10;
	c.wakeups_halted = 4;
	assert_split(wakeup, &c, "true", 4, "false", 6);

	/* posted wakeups: none until one counted, then ipi and other */
	assert_int_equal(counter_samples(pi, &pi->vm, &c, s), 0);
	c.posted_wakeups = 3;
	assert_split(pi, &c, "ipi", 0, "other", 3);
}

/* Every counter metric and JSON key is in docs/metrics.md (run from the source tree). */
static void test_documented(void **state)
{
	FILE *f = fopen("docs/metrics.md", "r");
	static char doc[1 << 17];
	size_t len;

	if (!f)
		skip();
	len = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[len] = '\0';
	for (unsigned kind = 1; kind < IPIV_CNT_KIND_COUNT; kind++) {
		const struct counter_kind *k = &counter_kinds[kind];
		char want[128];

		for (unsigned i = 0; i < 3; i++) {
			if (!families(k, i)->name)
				continue;
			snprintf(want, sizeof(want), "`%s_total`", families(k, i)->name);
			if (!strstr(doc, want))
				fail_msg("docs/metrics.md does not list %s", want);
		}
		for (unsigned slot = 0; slot < COUNTER_SLOTS; slot++) {
			if (!k->field[slot].name)
				continue;
			snprintf(want, sizeof(want), "`%s`", k->field[slot].name);
			if (!strstr(doc, want))
				fail_msg("docs/metrics.md does not name the JSON key %s", want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_is_consistent),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
