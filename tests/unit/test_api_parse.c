/* Unit tests for daemon/ipivtop/api_parse.c: api.c's documents parsed back give the snapshot they
 * were built from (every field the API carries, latency histograms bucket by bucket), the
 * findings document gives back the report, and malformed documents one-line errors. */
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
#include "ipivtop/api_parse.h"
#include "diag_report.h"
#include "ipivtop/drill.h"
#include "ipivtop/format.h"
#include "ipivtop/table.h"

#define ID_KEY 0x1234abcd5678ef00ull

struct fixture {
	struct ipiv_snapshot snap;
	struct ipiv_vm_stats vms[2];
	struct ipiv_send_cell sends[4];
	struct ipiv_exit_cell exits[2];
	struct ipiv_vcpu_stats vcpus[3];
	struct ipiv_matrix_cell matrix[3];
	struct ipiv_probe probes[3];
	struct ipiv_prog_stats progs[2];
	struct ipiv_lat_hist lat[6];
	const char *names[2];
};

static void fill_counts(struct ipiv_counts *c, uint64_t seed)
{
	for (unsigned p = 0; p < IPIV_PATH_COUNT; p++)
		c->sent_by_path[p] = seed * 7 + p;
	for (unsigned d = 0; d < ICR_DM_COUNT; d++)
		c->received_by_delivery[d] = d == 7 ? 0 : seed * 3 + d; /* a zero stays absent */
	for (unsigned a = 0; a < IPIV_AVIC_CAUSE_COUNT; a++)
		c->avic_incomplete[a] = seed + a;
	c->sent = seed * 100;
	c->sent_accel_eligible = seed * 90;
	c->received = seed * 99;
	c->eois = seed * 98;
	c->wakeups = seed * 50;
	c->wakeups_halted = seed * 40;
	c->halt_ns = seed * 123456789ull + 987;
	c->exits = seed * 1000 + 1;
	for (unsigned r = 0; r < IPIV_TRAP_COUNT; r++)
		c->icr_write_traps[r] = r == 1 ? 0 : seed * 11 + r;
	for (unsigned t = 0; t < IPIV_PI_TRIGGER_COUNT; t++)
		c->pi_descriptor_updates[t] = seed * 13 + t;
	c->state_ns[IPIV_VSTATE_BLOCKED] = seed * 2000000001ull;
	c->state_ns[IPIV_VSTATE_PREEMPTED] = seed * 17;
	c->posted_wakeups = seed * 30;
	c->posted_wakeups_ipi = seed * 20;
	c->x2apic_fastpath_handled = seed * 8;
	c->x2apic_fastpath_missed = seed;
	c->avic_running_set = seed * 6;
	c->avic_running_cleared = seed * 5;
}

static struct fixture *make_fixture(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ipiv_vm_stats *vm = &f->vms[0];
	/* in (path, class) order, as the collector lists them */
	static const uint32_t classes[] = {
		ICR_DM_FIXED,
		ICR_DM_FIXED | (ICR_SH_ALL_BUT_SELF << ICR_CLASS_SH_SHIFT) | ICR_CLASS_BROADCAST,
		ICR_DM_FIXED | ICR_CLASS_LOGICAL | ICR_CLASS_MULTICAST,
		ICR_DM_NMI,
	};

	vm->vm = 0xffff888812345000ull;
	vm->pid = 4242;
	vm->alive = true;
	vm->vcpu_count = 2;
	fill_counts(&vm->counts, 5);
	for (unsigned i = 0; i < 4; i++) {
		f->sends[i] = (struct ipiv_send_cell){
			i == 3 ? IPIV_PATH_APIC_WRITE : IPIV_PATH_X2APIC_MSR, classes[i], 10 + i};
	}
	vm->send_cells = f->sends;
	vm->n_send_cells = 4;
	vm->inhibits_known = true;
	vm->inhibits = (1ull << 8) | (1ull << 13); /* irqwin and an unnamed reason */
	vm->inhibit_set[8] = 4;
	vm->inhibit_clear[8] = 3;
	vm->inhibit_set[13] = 1;
	vm->timeline[0] = (struct ipiv_inhibit_change){5000000000ull, 8, 1};
	vm->timeline[1] = (struct ipiv_inhibit_change){7500000000ull, 8, 0};
	vm->n_timeline = 2;
	f->exits[0] = (struct ipiv_exit_cell){IPIV_ISA_VMX, 32, 77};
	f->exits[1] = (struct ipiv_exit_cell){IPIV_ISA_VMX, 56, 5};
	vm->exits = f->exits;
	vm->n_exits = 2;
	f->vcpus[0] = (struct ipiv_vcpu_stats){.vcpu_id = 0, .tid = 4243};
	f->vcpus[1] = (struct ipiv_vcpu_stats){.vcpu_id = 1, .tid = 4244};
	f->vcpus[2] = (struct ipiv_vcpu_stats){.vcpu_id = IPIV_VCPU_NONE, .tid = 0};
	fill_counts(&f->vcpus[0].counts, 2);
	fill_counts(&f->vcpus[1].counts, 3);
	fill_counts(&f->vcpus[2].counts, 1);
	vm->vcpus = f->vcpus;
	vm->n_vcpus = 3;
	f->matrix[0] = (struct ipiv_matrix_cell){0, 1, 300};
	f->matrix[1] = (struct ipiv_matrix_cell){1, 0, 200};
	f->matrix[2] = (struct ipiv_matrix_cell){IPIV_VCPU_NONE, 1, 9};
	vm->matrix = f->matrix;
	vm->n_matrix = 3;
	/* sorted by (kind, sub, vcpu); send->EOI on x2apic_msr per vCPU, to be merged */
	f->lat[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_ACCEPT, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = 0};
	f->lat[1] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_ACCEPT_RUN, .sub = IPIV_LAT_CASE_HALTED, .vcpu = IPIV_LAT_VM_WIDE};
	f->lat[2] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = 0};
	f->lat[3] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = 1};
	f->lat[4] =
		(struct ipiv_lat_hist){.kind = IPIV_LAT_HALT, .sub = 1, .vcpu = IPIV_LAT_VM_WIDE};
	latency_add(&f->lat[0].h, 0);
	latency_add(&f->lat[0].h, 63);
	latency_add(&f->lat[0].h, 64); /* edges: the first bucket's and the next one's */
	latency_add(&f->lat[1].h, 123456);
	for (uint64_t v = 900; v < 40000000; v = v * 3 / 2)
		latency_add(&f->lat[2].h, v);
	latency_add(&f->lat[3].h, 14600);
	latency_add(&f->lat[3].h, 1ull << 40); /* overflow */
	latency_add(&f->lat[4].h, 5000000);
	/* the exits KVM's exit fastpath sent: a kind of its own, after halts */
	f->lat[5] = (struct ipiv_lat_hist){.kind = IPIV_LAT_EXIT_FASTPATH,
					   .sub = IPIV_PATH_X2APIC_MSR,
					   .vcpu = IPIV_LAT_VM_WIDE};
	latency_add(&f->lat[5].h, 2100);
	vm->lat = f->lat;
	vm->n_lat = 6;
	vm->latency_enabled = true;
	vm->lat_unmatched[IPIV_UNM_OVERWRITTEN] = 3;
	vm->lat_unmatched[IPIV_UNM_STALE] = 11;

	vm = &f->vms[1];
	vm->vm = 0xffff888899999000ull;
	vm->pid = 5000;
	vm->alive = false;
	vm->vcpu_count = 1;

	f->probes[0] = (struct ipiv_probe){"kvm_apic_ipi", "ipiv_apic_ipi", false, true, 0};
	f->probes[1] = (struct ipiv_probe){"kvm_avic_incomplete_ipi", "ipiv_avic_incomplete", true,
					   false, -ENOENT};
	f->probes[2] = (struct ipiv_probe){"kvm_exit", "ipiv_exit", false, false, -EPERM};
	snprintf(f->progs[0].name, sizeof(f->progs[0].name), "ipiv_apic_ipi");
	f->progs[0].run_cnt = 12345;
	f->progs[0].run_time_ns = 999999;
	snprintf(f->progs[1].name, sizeof(f->progs[1].name), "ipiv_exit");
	f->snap.vms = f->vms;
	f->snap.n_vms = 2;
	f->snap.self.probes = f->probes;
	f->snap.self.n_probes = 3;
	f->snap.self.n_attached = 1;
	f->snap.self.progs = f->progs;
	f->snap.self.n_progs = 2;
	f->snap.self.bpf_stats_enabled = true;
	f->snap.self.drops[IPIV_DROP_MATRIX_FULL] = 3;
	f->snap.self.drops[IPIV_DROP_EOI_DUPLICATE] = 1000;
	f->snap.self.vms_discovered = 7;
	f->snap.self.vms_reclaimed = 5;
	f->names[0] = "web";
	f->names[1] = "db";
	return f;
}

/* Serialises as ipivd does (json_reply) and parses the text back. */
static json_t *through_text(json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII), err[200];
	json_t *back = NULL;

	assert_non_null(text);
	assert_int_equal(api_parse_text(text, strlen(text), &back, err, sizeof(err)), 0);
	free(text);
	json_decref(doc);
	return back;
}

static void assert_counts_equal(const struct ipiv_counts *a, const struct ipiv_counts *b)
{
	assert_memory_equal(a, b, sizeof(*a));
}

static uint64_t id_of(uint64_t vm)
{
	char id[17];
	uint64_t key;

	api_vm_id(vm, ID_KEY, id);
	assert_int_equal(api_parse_vm_key(id, &key), 0);
	return key;
}

static void test_vms_round_trip(void **state)
{
	struct fixture *f = make_fixture();
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	json_t *doc = through_text(api_vms(&f->snap, f->names, ID_KEY));
	char(*names)[VM_NAME_MAX], err[200];

	assert_int_equal(api_parse_vms(doc, snap, &names, NULL, err, sizeof(err)), 0);
	assert_int_equal(snap->n_vms, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct ipiv_vm_stats *want = &f->vms[i], *got = &snap->vms[i];

		assert_string_equal(names[i], f->names[i]);
		assert_int_equal(got->vm, id_of(want->vm));
		assert_int_equal(got->pid, want->pid);
		assert_int_equal(got->alive, want->alive);
		assert_int_equal(got->vcpu_count, want->vcpu_count);
		assert_counts_equal(&got->counts, &want->counts);
		assert_int_equal(got->inhibits_known, want->inhibits_known);
		assert_int_equal(got->inhibits, want->inhibits);
		assert_int_equal(got->n_vcpus, 0); /* summaries carry no rows */
	}
	json_decref(doc);
	free(names);
	api_parse_snapshot_free(snap);
	free(f);
}

static void test_detail_round_trip(void **state)
{
	struct fixture *f = make_fixture();
	const struct ipiv_vm_stats *want = &f->vms[0];
	struct ipiv_vm_stats got = {0};
	char name[VM_NAME_MAX], err[200];
	json_t *doc = through_text(api_vm_detail(&f->snap, f->names, ID_KEY, "web"));

	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	assert_string_equal(name, "web");
	assert_int_equal(got.vm, id_of(want->vm));
	assert_counts_equal(&got.counts, &want->counts);
	assert_int_equal(got.n_send_cells, want->n_send_cells);
	for (size_t i = 0; i < want->n_send_cells; i++) {
		assert_int_equal(got.send_cells[i].path, want->send_cells[i].path);
		assert_int_equal(got.send_cells[i].class, want->send_cells[i].class);
		assert_int_equal(got.send_cells[i].count, want->send_cells[i].count);
		assert_int_equal(vm_sent(&got, want->send_cells[i].path, want->send_cells[i].class),
				 want->send_cells[i].count);
	}
	assert_int_equal(got.n_exits, 2);
	assert_memory_equal(got.exits, want->exits, 2 * sizeof(*got.exits));
	assert_int_equal(got.n_vcpus, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(got.vcpus[i].vcpu_id, want->vcpus[i].vcpu_id);
		assert_int_equal(got.vcpus[i].tid, want->vcpus[i].tid);
		assert_counts_equal(&got.vcpus[i].counts, &want->vcpus[i].counts);
	}
	assert_int_equal(got.n_matrix, 3);
	assert_memory_equal(got.matrix, want->matrix, 3 * sizeof(*got.matrix));
	assert_int_equal(got.inhibits, want->inhibits);
	assert_memory_equal(got.inhibit_set, want->inhibit_set, sizeof(got.inhibit_set));
	assert_memory_equal(got.inhibit_clear, want->inhibit_clear, sizeof(got.inhibit_clear));
	assert_int_equal(got.n_timeline, want->n_timeline);
	assert_memory_equal(got.timeline, want->timeline,
			    want->n_timeline * sizeof(got.timeline[0]));
	api_parse_vm_free(&got);
	json_decref(doc);
	free(f);
}

static void assert_quantile_equal(const struct latency_quantile *a,
				  const struct latency_quantile *b)
{
	assert_int_equal(a->valid, b->valid);
	assert_int_equal(a->overflow, b->overflow);
	assert_float_equal(a->value_ns, b->value_ns, 1e-6);
	assert_float_equal(a->error_ns, b->error_ns, 1e-6);
}

/* Every (kind, sub) histogram of want, merged over vCPUs, is in got bucket by bucket. With
 * per_vcpu, got's rows are want's, vCPU by vCPU; without, got has VM-wide rows only. */
static void assert_latency_equal(const struct ipiv_vm_stats *got, const struct ipiv_vm_stats *want,
				 bool per_vcpu)
{
	size_t hists = 0;

	for (unsigned kind = 0; kind < IPIV_LAT_UNMATCHED; kind++)
		for (unsigned sub = 0; sub < IPIV_PATH_COUNT; sub++) {
			struct latency_hist a, b;
			bool has = vm_latency(want, kind, sub, &b);

			assert_int_equal(vm_latency(got, kind, sub, &a), has);
			assert_memory_equal(&a, &b, sizeof(a));
			hists += has;
		}
	if (per_vcpu) {
		assert_int_equal(got->n_lat, want->n_lat);
		for (size_t i = 0; i < got->n_lat; i++) {
			assert_int_equal(got->lat[i].kind, want->lat[i].kind);
			assert_int_equal(got->lat[i].sub, want->lat[i].sub);
			assert_int_equal(got->lat[i].vcpu, want->lat[i].vcpu);
			assert_memory_equal(&got->lat[i].h, &want->lat[i].h, sizeof(got->lat[i].h));
		}
	} else {
		assert_int_equal(got->n_lat, hists);
		for (size_t i = 0; i < got->n_lat; i++) {
			assert_int_equal(got->lat[i].vcpu, IPIV_LAT_VM_WIDE);
			if (i)
				assert_true(got->lat[i - 1].kind < got->lat[i].kind ||
					    (got->lat[i - 1].kind == got->lat[i].kind &&
					     got->lat[i - 1].sub < got->lat[i].sub));
		}
	}
	assert_memory_equal(got->lat_unmatched, want->lat_unmatched, sizeof(got->lat_unmatched));
	assert_int_equal(got->latency_enabled, want->latency_enabled);
}

/* The fixture's web VM as ipivd without --collector.per-vcpu holds it: the same histograms,
 * every one VM-wide. Free with free(). */
static struct ipiv_lat_hist *vm_wide_only(struct ipiv_vm_stats *vm)
{
	struct ipiv_lat_hist *rows = calloc(vm->n_lat + 1, sizeof(*rows));
	size_t n = 0;

	assert_non_null(rows);
	for (size_t i = 0; i < vm->n_lat; i++) {
		struct ipiv_lat_hist *same = n && rows[n - 1].kind == vm->lat[i].kind &&
							     rows[n - 1].sub == vm->lat[i].sub
						     ? &rows[n - 1]
						     : NULL;

		if (!same) {
			same = &rows[n++];
			same->kind = vm->lat[i].kind;
			same->sub = vm->lat[i].sub;
			same->vcpu = IPIV_LAT_VM_WIDE;
		}
		latency_merge(&same->h, &vm->lat[i].h);
	}
	vm->lat = rows;
	vm->n_lat = n;
	return rows;
}

static void test_latency_round_trip(void **state)
{
	struct fixture *f = make_fixture();
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	struct ipiv_vm_stats got = {0};
	char(*names)[VM_NAME_MAX], name[VM_NAME_MAX], err[200];
	struct api_latency *lat, want;
	struct latency_hist h;
	json_t *doc = through_text(api_vms(&f->snap, f->names, ID_KEY));

	/* the summary's send->EOI quantiles, as the standalone collector computes them */
	assert_int_equal(api_parse_vms(doc, snap, &names, &lat, err, sizeof(err)), 0);
	assert_true(vm_latency(&f->vms[0], IPIV_LAT_SEND_EOI, IPIV_LAT_ANY_SUB, &h));
	api_latency_from_hist(&h, &want);
	assert_true(lat[0].known);
	assert_int_equal(lat[0].count, want.count);
	assert_int_equal(lat[0].sum_ns, want.sum_ns);
	assert_float_equal(lat[0].mean_ns, want.mean_ns, 1e-3);
	assert_quantile_equal(&lat[0].p50, &want.p50);
	assert_quantile_equal(&lat[0].p90, &want.p90);
	assert_quantile_equal(&lat[0].p99, &want.p99);
	assert_true(lat[0].p99.overflow || lat[0].p99.valid);
	assert_false(lat[1].known); /* the other VM has none: null */
	assert_false(lat[1].p50.valid);
	json_decref(doc);
	free(names);
	free(lat);
	api_parse_snapshot_free(snap);

	/* the detail's histograms, bucket by bucket: per vCPU, as the collector keyed them */
	doc = through_text(api_vm_detail(&f->snap, f->names, ID_KEY, "web"));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	assert_latency_equal(&got, &f->vms[0], true);
	api_parse_vm_free(&got);
	assert_null(got.lat);
	json_decref(doc);

	/* VM-wide only (no --collector.per-vcpu): merged over vCPUs, the same figures */
	{
		struct ipiv_vm_stats per_vcpu = f->vms[0];
		struct ipiv_lat_hist *wide = vm_wide_only(&f->vms[0]);

		doc = through_text(api_vm_detail(&f->snap, f->names, ID_KEY, "web"));
		assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
		assert_latency_equal(&got, &per_vcpu, false);
		api_parse_vm_free(&got);
		json_decref(doc);
		free(wide);
	}
	free(f);
}

/* /api/v1/vms?histograms=send_to_eoi parsed back: each summary's histogram bucket by bucket
 * as the collector merges it over paths and vCPUs; a VM without observations and a list read
 * without the parameter have none; bad buckets are refused with the field named. */
static void test_vms_hists_round_trip(void **state)
{
	struct fixture *f = make_fixture();
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	char(*names)[VM_NAME_MAX], err[200], want_err[200];
	struct api_latency *lat;
	struct api_hist *hs;
	struct latency_hist want;
	json_t *doc =
		through_text(api_vms_with(&f->snap, f->names, ID_KEY, API_VMS_HIST_SEND_TO_EOI));
	json_t *buckets;

	assert_non_null(snap);
	assert_int_equal(api_parse_vms_hists(doc, snap, &names, &lat, &hs, err, sizeof(err)), 0);
	assert_true(vm_latency(&f->vms[0], IPIV_LAT_SEND_EOI, IPIV_LAT_ANY_SUB, &want));
	assert_true(hs[0].known);
	assert_memory_equal(hs[0].hist.buckets, want.buckets, sizeof(want.buckets));
	assert_int_equal(hs[0].hist.count, want.count);
	assert_int_equal(hs[0].hist.sum_ns, want.sum_ns);
	assert_int_equal(lat[0].count, want.count);
	assert_false(hs[1].known); /* no observations: null */
	free(names);
	free(lat);
	free(hs);
	api_parse_snapshot_free(snap);

	/* written again from the parsed histogram, the document is the same */
	{
		struct ipiv_vm_stats vm = f->vms[0];
		struct ipiv_lat_hist row = {
			.kind = IPIV_LAT_SEND_EOI, .sub = 1, .vcpu = IPIV_LAT_VM_WIDE};
		struct ipiv_snapshot one = {.vms = &vm, .n_vms = 1};
		json_t *again;

		row.h = want;
		vm.lat = &row;
		vm.n_lat = 1;
		again = api_vms_with(&one, f->names, ID_KEY, API_VMS_HIST_SEND_TO_EOI);
		assert_true(
			json_equal(json_object_get(json_array_get(json_object_get(again, "vms"), 0),
						   "send_to_eoi"),
				   json_object_get(json_array_get(json_object_get(doc, "vms"), 0),
						   "send_to_eoi")));
		json_decref(again);
	}

	/* bad buckets: refused even when the caller does not want the histograms */
	buckets = json_object_get(
		json_object_get(json_array_get(json_object_get(doc, "vms"), 0), "send_to_eoi"),
		"buckets");
	json_array_append_new(buckets, json_pack("[i, i]", 1000, 1));
	snap = calloc(1, sizeof(*snap));
	assert_int_equal(api_parse_vms_hists(doc, snap, &names, &lat, &hs, err, sizeof(err)),
			 -EINVAL);
	snprintf(want_err, sizeof(want_err),
		 "vms[0].send_to_eoi.buckets[%zu]: 1000 ns is not a bucket edge",
		 json_array_size(buckets) - 1);
	assert_string_equal(err, want_err);
	assert_int_equal(api_parse_vms(doc, snap, &names, NULL, err, sizeof(err)), -EINVAL);
	json_array_remove(buckets, json_array_size(buckets) - 1);
	{ /* one more in a bucket than count says */
		json_t *pair = json_array_get(buckets, 0);

		json_array_set_new(pair, 1,
				   json_integer(json_integer_value(json_array_get(pair, 1)) + 1));
	}
	assert_int_equal(api_parse_vms_hists(doc, snap, &names, &lat, &hs, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "the buckets hold"));
	json_decref(doc);
	free(snap);

	/* without the parameter: figures, no histograms */
	doc = through_text(api_vms(&f->snap, f->names, ID_KEY));
	snap = calloc(1, sizeof(*snap));
	assert_int_equal(api_parse_vms_hists(doc, snap, &names, &lat, &hs, err, sizeof(err)), 0);
	assert_true(lat[0].known);
	assert_false(hs[0].known);
	free(names);
	free(lat);
	free(hs);
	api_parse_snapshot_free(snap);
	json_decref(doc);
	free(f);
}

/* The drill-down's row of one vCPU (VCPU, TID, rates, HALT%, P50, P99) for vm, as ipivtop
 * draws it. */
static void drill_row(const struct ipiv_vm_stats *vm, uint32_t vcpu, uint32_t tid, char *out,
		      size_t size)
{
	struct top_vm_row row = {.key = vm->vm, .pid = vm->pid};
	struct top_detail d;
	struct top_canvas c;
	char prefix[32];

	if (vcpu == IPIV_VCPU_NONE)
		snprintf(prefix, sizeof(prefix), " none %8s ", tid ? "?" : TOP_NONE);
	else
		snprintf(prefix, sizeof(prefix), "%5u %8u ", vcpu, tid);
	top_detail_init(&d, vm->vm);
	assert_int_equal(top_detail_update(&d, vm, 1000000000ull), 0);
	top_canvas_init(&c, 100);
	top_drill_draw(&c, &d, &row, NULL, NULL);
	out[0] = 0;
	for (size_t i = 0; i < c.n_lines; i++)
		if (!strncmp(top_canvas_text(&c, i), prefix, strlen(prefix)))
			snprintf(out, size, "%s", top_canvas_text(&c, i));
	top_canvas_free(&c);
	top_detail_free(&d);
	if (!out[0])
		fail_msg("no drill-down row for vCPU %u", vcpu);
}

/* The last two words of a drill-down row: its P50 and P99 cells. */
static void p50_p99(const char *line, char *p50, char *p99)
{
	const char *end = line + strlen(line), *a, *b;

	while (end > line && end[-1] == ' ')
		end--;
	for (b = end; b > line && b[-1] != ' '; b--)
		;
	for (a = b; a > line && a[-1] == ' '; a--)
		;
	end = a;
	for (a = end; a > line && a[-1] != ' '; a--)
		;
	snprintf(p50, TOP_NUM_MAX, "%.*s", (int)(end - a), a);
	snprintf(p99, TOP_NUM_MAX, "%.*s", (int)strcspn(b, " "), b);
}

/* With per-vCPU latency, each vCPU row carries its send->EOI quantiles and histograms; parsed
 * back, ipivtop --connect draws each vCPU's P50/P99 as the standalone collector does. */
static void test_vcpu_latency_round_trip(void **state)
{
	struct fixture *f = make_fixture();
	struct ipiv_vm_stats got = {0};
	char name[VM_NAME_MAX], err[200], want_line[256], got_line[256];
	char p50[TOP_NUM_MAX], p99[TOP_NUM_MAX];
	struct latency_hist h = {0};
	struct latency_quantile q;
	json_t *doc = through_text(api_vm_detail(&f->snap, f->names, ID_KEY, "web")), *rows, *eoi;

	/* vCPU 1 received 2 IPIs: 14.6 us and one beyond the last edge */
	rows = json_object_get(doc, "vcpu_rows");
	eoi = json_object_get(json_array_get(rows, 1), "send_to_eoi");
	assert_int_equal(json_integer_value(json_object_get(eoi, "count")), 2);
	latency_add(&h, 14600);
	q = latency_quantile(&h, 0.5);
	assert_float_equal(
		json_real_value(json_object_get(json_object_get(eoi, "p50"), "value_ns")),
		q.value_ns, 1e-6);
	assert_float_equal(
		json_real_value(json_object_get(json_object_get(eoi, "p50"), "error_ns")),
		q.error_ns, 1e-6);
	assert_true(json_is_true(json_object_get(json_object_get(eoi, "p99"), "overflow")));
	assert_non_null(json_object_get(eoi, "p90"));
	assert_null(json_object_get(eoi, "buckets")); /* they are under latency */
	assert_int_equal(
		json_array_size(json_object_get(
			json_object_get(
				json_object_get(json_object_get(json_array_get(rows, 1), "latency"),
						"send_to_eoi"),
				"x2apic_msr"),
			"buckets")),
		2);
	/* the non-vCPU row: no send->EOI of its own, the VM-wide rows no vCPU holds */
	assert_true(json_is_null(json_object_get(json_array_get(rows, 2), "send_to_eoi")));
	assert_non_null(json_object_get(
		json_object_get(json_object_get(json_array_get(rows, 2), "latency"), "halt"),
		"true"));

	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	for (size_t i = 0; i < 3; i++) {
		const struct ipiv_vcpu_stats *v = &f->vcpus[i];

		drill_row(&f->vms[0], v->vcpu_id, v->tid, want_line, sizeof(want_line));
		drill_row(&got, v->vcpu_id, v->tid, got_line, sizeof(got_line));
		assert_string_equal(got_line, want_line);
	}
	drill_row(&got, 1, 4244, got_line, sizeof(got_line));
	p50_p99(got_line, p50, p99);
	top_quantile_cell(&q, want_line, sizeof(want_line));
	assert_string_equal(p50, want_line);
	assert_string_equal(p99, ">17.2s");
	api_parse_vm_free(&got);
	json_decref(doc);

	/* ipivd without --collector.per-vcpu: VM-wide histograms only, no latency in the vCPU
	 * rows, and the drill-down says n/a rather than pass the VM's figures off as a vCPU's */
	{
		struct ipiv_lat_hist *wide = vm_wide_only(&f->vms[0]);

		doc = through_text(api_vm_detail(&f->snap, f->names, ID_KEY, "web"));
		free(wide);
	}
	rows = json_object_get(doc, "vcpu_rows");
	for (size_t i = 0; i < 3; i++) {
		assert_null(json_object_get(json_array_get(rows, i), "send_to_eoi"));
		assert_null(json_object_get(json_array_get(rows, i), "latency"));
	}
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	for (size_t i = 0; i < 2; i++) {
		drill_row(&got, f->vcpus[i].vcpu_id, f->vcpus[i].tid, got_line, sizeof(got_line));
		p50_p99(got_line, p50, p99);
		assert_string_equal(p50, TOP_NA);
		assert_string_equal(p99, TOP_NA);
	}
	api_parse_vm_free(&got);
	json_decref(doc);
	free(f);
}

/* Per-vCPU latency that does not add up to the VM's is refused with the field named. */
static void test_vcpu_latency_malformed(void **state)
{
	struct fixture *f = make_fixture();
	char name[VM_NAME_MAX], err[200];
	struct ipiv_vm_stats got = {0};
	json_t *doc, *row, *hist;

	/* one more observation in vCPU 1's histogram than the VM-wide one holds */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	row = json_array_get(json_object_get(doc, "vcpu_rows"), 1);
	hist = json_object_get(json_object_get(json_object_get(row, "latency"), "send_to_eoi"),
			       "x2apic_msr");
	json_integer_set(json_array_get(json_array_get(json_object_get(hist, "buckets"), 0), 1), 2);
	json_object_set_new(hist, "count", json_integer(3));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vcpu_rows[1].latency.send_to_eoi.x2apic_msr: more than "
				    "latency.send_to_eoi.x2apic_msr holds"));
	assert_null(got.lat);
	json_decref(doc);

	/* the row's quantiles disagree with its histograms */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	row = json_array_get(json_object_get(doc, "vcpu_rows"), 1);
	json_object_set_new(json_object_get(row, "send_to_eoi"), "count", json_integer(5));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vcpu_rows[1].send_to_eoi: count 5, but the row's "
				    "send_to_eoi histograms hold 2"));
	json_decref(doc);

	/* histograms without the quantiles */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	row = json_array_get(json_object_get(doc, "vcpu_rows"), 0);
	json_object_del(row, "send_to_eoi");
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vcpu_rows[0]: latency and send_to_eoi come together"));
	json_decref(doc);

	/* an unknown stage under a vCPU */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	row = json_array_get(json_object_get(doc, "vcpu_rows"), 0);
	json_object_set_new(json_object_get(row, "latency"), "warp", json_object());
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vcpu_rows[0].latency: unknown stage \"warp\""));
	json_decref(doc);
	free(f);
}

static void test_latency_malformed(void **state)
{
	static const struct {
		const char *bucket; /* replaces buckets[0] of send_to_eoi.x2apic_msr */
		const char *want;
	} cases[] = {
		{"[1000, 1]", "1000 ns is not a bucket edge"},
		{"[-2, 1]", "is not a bucket edge"},
		{"[1000]", "expected [upper edge ns, count]"},
		{"[1023, -1]", "expected [upper edge ns, count]"},
	};
	struct fixture *f = make_fixture();
	char name[VM_NAME_MAX], err[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
		json_t *hist = json_object_get(
			json_object_get(json_object_get(doc, "latency"), "send_to_eoi"),
			"x2apic_msr");
		struct ipiv_vm_stats got = {0};
		json_error_t je;
		int r;

		json_array_set_new(json_object_get(hist, "buckets"), 0,
				   json_loads(cases[i].bucket, JSON_DECODE_ANY, &je));
		r = api_parse_vm_detail(doc, &got, name, err, sizeof(err));
		if (r != -EINVAL || !strstr(err, cases[i].want) ||
		    !strstr(err, "latency.send_to_eoi.x2apic_msr.buckets[0]"))
			fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, r, err, cases[i].want);
		assert_null(got.lat);
		json_decref(doc);
	}
	{
		json_t *doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
		json_t *hist = json_object_get(
			json_object_get(json_object_get(doc, "latency"), "halt"), "true");
		struct ipiv_vm_stats got = {0};

		json_object_set_new(hist, "count", json_integer(2));
		assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "latency.halt.true: the buckets hold 1 observations, "
					    "count says 2"));
		json_decref(doc);
		doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
		json_object_set_new(json_object_get(doc, "latency"), "warp", json_object());
		assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "latency: unknown stage \"warp\""));
		json_decref(doc);
	}
	free(f);
}

static void test_findings_round_trip(void **state)
{
	struct fixture *f = make_fixture();
	struct ipiv_snapshot prev = f->snap;
	struct ipiv_vm_stats prev_vms[2];
	struct diag_thresholds th;
	struct diag_report *want;
	struct api_findings *got;
	struct diag_finding *extra;
	char err[200];
	json_t *doc;
	size_t findings = 0;

	/* a window of 2 s in which vm 0 sent all its IPIs */
	memcpy(prev_vms, f->vms, sizeof(prev_vms));
	memset(&prev_vms[0].counts, 0, sizeof(prev_vms[0].counts));
	prev_vms[0].send_cells = NULL;
	prev_vms[0].n_send_cells = 0;
	prev.vms = prev_vms;
	prev.taken_ns = 1000000000ull;
	f->snap.taken_ns = 3000000000ull;
	diag_thresholds_default(&th);
	assert_int_equal(diag_threshold_parse(&th, "--diag.min-ipis=10", err, sizeof(err)), 0);
	assert_int_equal(
		diag_evaluate_snapshot(NULL, &prev, &f->snap, f->names, NULL, &th, NULL, &want), 0);
	/* a string evidence, a finding active for a while */
	extra = &want->vms[0].result.findings[want->vms[0].result.n_findings++];
	extra->rule = DIAG_RULE_APICV_INHIBITED;
	extra->severity = DIAG_CRITICAL;
	snprintf(extra->title, sizeof(extra->title), "APICv inhibited \x1b[2Jby irqwin");
	snprintf(extra->remedy, sizeof(extra->remedy), "Do the thing.");
	snprintf(extra->evidence[0].name, sizeof(extra->evidence[0].name), "reasons");
	snprintf(extra->evidence[0].text, sizeof(extra->evidence[0].text), "irqwin");
	extra->evidence[1] = (struct diag_evidence){
		.name = "ipis", .text = "1234", .is_number = true, .value = 1234};
	extra->n_evidence = 2;
	extra->since_ns = 500000000ull;

	doc = through_text(diag_report_json(want, NULL));
	assert_int_equal(api_parse_findings(doc, want->taken_ns, &got, err, sizeof(err)), 0);
	assert_false(got->report.host_known);
	assert_int_equal(got->report.taken_ns, want->taken_ns);
	assert_int_equal(got->report.host_result.n_findings, want->host_result.n_findings);
	assert_int_equal(got->report.host_result.n_skipped, want->host_result.n_skipped);
	assert_true(want->host_result.n_skipped > 0); /* host unknown: its rules say so */
	assert_int_equal(got->report.n_vms, want->n_vms);
	for (size_t i = 0; i < want->n_vms; i++) {
		const struct diag_vm_report *a = &got->report.vms[i], *b = &want->vms[i];

		assert_string_equal(a->name, b->name);
		assert_float_equal(a->window_seconds, b->window_seconds, 1e-9);
		assert_int_equal(a->result.n_findings, b->result.n_findings);
		for (size_t j = 0; j < b->result.n_findings; j++) {
			const struct diag_finding *x = &a->result.findings[j],
						  *y = &b->result.findings[j];

			assert_int_equal(x->rule, y->rule);
			assert_int_equal(x->severity, y->severity);
			assert_string_equal(x->remedy, y->remedy);
			assert_int_equal(x->since_ns, y->since_ns);
			assert_int_equal(x->n_evidence, y->n_evidence);
			for (size_t k = 0; k < y->n_evidence; k++) {
				assert_string_equal(x->evidence[k].name, y->evidence[k].name);
				assert_int_equal(x->evidence[k].is_number,
						 y->evidence[k].is_number);
				assert_float_equal(x->evidence[k].value, y->evidence[k].value,
						   1e-9);
				if (!y->evidence[k].is_number)
					assert_string_equal(x->evidence[k].text,
							    y->evidence[k].text);
			}
			findings++;
		}
		assert_int_equal(a->result.n_skipped, b->result.n_skipped);
		for (size_t j = 0; j < b->result.n_skipped; j++) {
			assert_int_equal(a->result.skipped[j].rule, b->result.skipped[j].rule);
			assert_string_equal(a->result.skipped[j].needs, b->result.skipped[j].needs);
		}
	}
	assert_true(findings >= 2); /* the rules found something besides the one added */
	/* titles from the network are sanitised; numbers come back as text */
	extra = &got->report.vms[0].result.findings[got->report.vms[0].result.n_findings - 1];
	assert_string_equal(extra->title, "APICv inhibited [2Jby irqwin");
	assert_string_equal(extra->evidence[1].text, "1234");
	assert_int_equal(extra->since_ns, 500000000ull);
	api_findings_free(got);
	json_decref(doc);

	/* malformed: an unknown rule names the place */
	doc = diag_report_json(want, NULL);
	json_object_set_new(
		json_array_get(
			json_object_get(json_array_get(json_object_get(doc, "vms"), 0), "findings"),
			0),
		"rule", json_string("warp_drive"));
	assert_int_equal(api_parse_findings(doc, 0, &got, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vms[0].findings[0].rule: unknown rule \"warp_drive\""));
	json_decref(doc);
	diag_report_free(want);
	free(f);
}

static void test_status_round_trip(void **state)
{
	struct fixture *f = make_fixture();
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	json_t *doc;
	char version[64], err[200];
	bool degraded = false;

	/* ipivd's default: every latency family but send->accept */
	f->snap.self.lat_kinds_recorded =
		((1u << IPIV_LAT_UNMATCHED) - 1) & ~(1u << IPIV_LAT_SEND_ACCEPT);
	doc = through_text(api_status(&f->snap, "1.2.3"));
	assert_int_equal(
		api_parse_status(doc, snap, &degraded, version, sizeof(version), err, sizeof(err)),
		0);
	assert_int_equal(snap->self.lat_kinds_recorded, f->snap.self.lat_kinds_recorded);
	assert_true(degraded); /* kvm_exit is required and missing */
	assert_string_equal(version, "1.2.3");
	assert_int_equal(snap->self.n_probes, 3);
	assert_int_equal(snap->self.n_attached, 1);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(snap->self.probes[i].name, f->probes[i].name);
		assert_string_equal(snap->self.probes[i].prog, f->probes[i].prog);
		assert_int_equal(snap->self.probes[i].attached, f->probes[i].attached);
		assert_int_equal(snap->self.probes[i].optional, f->probes[i].optional);
		assert_int_equal(snap->self.probes[i].err, f->probes[i].err);
	}
	assert_int_equal(snap->self.n_progs, 2);
	assert_memory_equal(snap->self.progs, f->progs, 2 * sizeof(*f->progs));
	assert_memory_equal(snap->self.drops, f->snap.self.drops, sizeof(f->snap.self.drops));
	assert_true(snap->self.bpf_stats_enabled);
	assert_int_equal(snap->self.vms_discovered, 7);
	assert_int_equal(snap->self.vms_reclaimed, 5);
	/* an ipivd from before the list recorded every family; an unknown one is an error */
	json_object_del(doc, "latency_recorded");
	assert_int_equal(
		api_parse_status(doc, snap, &degraded, version, sizeof(version), err, sizeof(err)),
		0);
	assert_int_equal(snap->self.lat_kinds_recorded, (1u << IPIV_LAT_UNMATCHED) - 1);
	json_object_set_new(doc, "latency_recorded", json_pack("[s]", "send_to_nowhere"));
	assert_int_equal(
		api_parse_status(doc, snap, &degraded, version, sizeof(version), err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "latency_recorded"));
	json_decref(doc);
	api_parse_snapshot_free(snap);
	free(f);
}

/* A name from the network is sanitised like one from /proc. */
static void test_names_sanitised(void **state)
{
	const char *text =
		"{\"vms\": [{\"name\": \"evil\\u001b[2Jvm\\u202e\", \"id\": "
		"\"00000000000000ff\", \"pid\": 1, \"alive\": true, \"vcpus\": 1, "
		"\"counts\": {\"sent\": 0, \"sent_by_path\": {}, \"sent_accel_eligible\": "
		"0, \"received\": 0, \"received_by_delivery\": {}, \"eois\": 0, "
		"\"wakeups\": 0, \"wakeups_halted\": 0, \"halt_seconds\": 0.0, "
		"\"avic_incomplete\": {}, \"exits\": 0}, \"apicv_inhibits\": "
		"{\"known\": false, \"reasons\": []}}]}";
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	char(*names)[VM_NAME_MAX], err[200];
	json_t *doc;

	assert_int_equal(api_parse_text(text, strlen(text), &doc, err, sizeof(err)), 0);
	assert_int_equal(api_parse_vms(doc, snap, &names, NULL, err, sizeof(err)), 0);
	assert_string_equal(names[0], "evil[2Jvm");
	assert_int_equal(snap->vms[0].vm, 0xff);
	json_decref(doc);
	free(names);
	api_parse_snapshot_free(snap);
}

/* Each malformed document gives -EINVAL and one line naming the place. */
static void test_malformed(void **state)
{
	static const struct {
		const char *text;
		const char *want; /* a substring of the error */
	} cases[] = {
		{"{\"vms\": [", "line 1"},
		{"", "line"},
		{"{\"vms\": {}}", "vms: expected an array"},
		{"{\"vms\": [42]}", "vms[0]: expected an object"},
		{"{\"vms\": [{\"name\": \"a\"}]}", "vms[0].id: expected a string"},
		{"{\"vms\": [{\"name\": \"a\", \"id\": \"xyz\"}]}", "not 16 hex digits"},
		{"{\"vms\": [{\"name\": \"a\", \"id\": \"0000000000000001\", \"pid\": -1}]}",
		 "vms[0].pid: expected a non-negative integer"},
		{"{\"vms\": [{\"name\": \"a\", \"id\": \"0000000000000001\", \"pid\": 1, "
		 "\"alive\": true, \"vcpus\": 1, \"counts\": {\"sent\": \"many\"}}]}",
		 "vms[0].counts.sent: expected a non-negative integer"},
	};
	char err[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
		char(*names)[VM_NAME_MAX] = NULL;
		json_t *doc = NULL;
		int r;

		err[0] = '\0';
		r = api_parse_text(cases[i].text, strlen(cases[i].text), &doc, err, sizeof(err));
		if (!r)
			r = api_parse_vms(doc, snap, &names, NULL, err, sizeof(err));
		if (r != -EINVAL || !strstr(err, cases[i].want) || strchr(err, '\n'))
			fail_msg("case %zu: got %d \"%s\", want -EINVAL with \"%s\"", i, r, err,
				 cases[i].want);
		json_decref(doc);
		api_parse_snapshot_free(snap);
	}
}

/* An ipivd names inhibit reasons as its kernel does (BTF); a reader whose build does not know
 * a name still gets the bits, in the bitmap, the change counters and the timeline. */
static void test_inhibit_names_of_another_kernel(void **state)
{
	struct fixture *f = make_fixture();
	json_t *doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	json_t *inh = json_object_get(doc, "apicv_inhibits");
	struct ipiv_vm_stats got = {0};
	char name[VM_NAME_MAX], err[200];
	json_t *x;
	size_t i;

	json_array_set_new(json_object_get(inh, "reasons"), 0, json_string("warp_drive_on"));
	json_array_foreach(json_object_get(doc, "apicv_inhibit_changes"), i, x)
		json_object_set_new(x, "reason", json_string("warp_drive_on"));
	json_array_foreach(json_object_get(doc, "apicv_inhibit_timeline"), i, x)
		json_object_set_new(x, "reason", json_string("warp_drive_on"));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	assert_int_equal(got.inhibits, f->vms[0].inhibits);
	assert_int_equal(got.inhibit_set[8], 4);
	assert_int_equal(got.inhibit_clear[8], 3);
	assert_int_equal(got.inhibit_set[13], 1);
	assert_int_equal(got.timeline[1].reason, 8);
	api_parse_vm_free(&got);

	/* an out-of-range bit is an error, not a shift past the bitmap */
	json_object_set_new(json_array_get(json_object_get(doc, "apicv_inhibit_timeline"), 0),
			    "bit", json_integer(64));
	memset(&got, 0, sizeof(got));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "apicv_inhibit_timeline[0].bit: expected 0..15"));
	api_parse_vm_free(&got);
	json_decref(doc);
	free(f);
}

static void test_unknown_labels_rejected(void **state)
{
	struct fixture *f = make_fixture();
	json_t *doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	json_t *counts = json_object_get(doc, "counts");
	struct ipiv_vm_stats got = {0};
	char name[VM_NAME_MAX], err[200];

	json_object_set_new(json_object_get(counts, "sent_by_path"), "warp_drive", json_integer(1));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown label \"warp_drive\""));
	assert_null(got.vcpus);
	json_decref(doc);

	/* the same for what kernel-patches/' tracepoints counted */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	counts = json_object_get(json_object_get(doc, "counts"), "patched_tracepoints");
	json_object_set_new(json_object_get(counts, "icr_write_traps"), "warp_drive",
			    json_integer(1));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "counts.patched_tracepoints.icr_write_traps: unknown label "
				    "\"warp_drive\""));
	json_decref(doc);
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	counts = json_object_get(json_object_get(doc, "counts"), "patched_tracepoints");
	json_object_set_new(json_object_get(counts, "state_seconds"), "running", json_real(1));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "state_seconds: unknown state \"running\""));
	json_decref(doc);
	/* an ipivd from before the patched tracepoints: the counts are 0, not an error */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	json_object_del(json_object_get(doc, "counts"), "patched_tracepoints");
	memset(&got, 0, sizeof(got));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	assert_int_equal(got.counts.posted_wakeups, 0);
	assert_int_equal(got.counts.sent, f->vms[0].counts.sent);
	json_decref(doc);
	api_parse_vm_free(&got);
	free(f);
}

/* Accepted mode 3 is "pv_kick" both ways; an ipivd before it said "reserved3", which still
 * parses to mode 3. */
static void test_accepted_pv_kick(void **state)
{
	struct fixture *f = make_fixture();
	json_t *doc = through_text(api_vm_detail(&f->snap, f->names, ID_KEY, "web"));
	json_t *by_mode = json_object_get(json_object_get(doc, "counts"), "received_by_delivery");
	struct ipiv_vm_stats got = {0};
	char name[VM_NAME_MAX], err[200];

	assert_int_equal(json_integer_value(json_object_get(by_mode, "pv_kick")),
			 f->vms[0].counts.received_by_delivery[ICR_DM_PV_KICK]);
	assert_null(json_object_get(by_mode, "reserved3"));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	assert_int_equal(got.counts.received_by_delivery[ICR_DM_PV_KICK], 18);
	api_parse_vm_free(&got);

	json_object_del(by_mode, "pv_kick");
	json_object_set_new(by_mode, "reserved3", json_integer(14));
	memset(&got, 0, sizeof(got));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	assert_int_equal(got.counts.received_by_delivery[ICR_DM_PV_KICK], 14);
	api_parse_vm_free(&got);
	json_decref(doc);
	free(f);
}

static void test_vm_key(void **state)
{
	uint64_t key;
	char id[17];

	assert_int_equal(api_parse_vm_key("0123456789abcdef", &key), 0);
	assert_int_equal(key, 0x0123456789abcdefull);
	api_vm_key_str(key, id);
	assert_string_equal(id, "0123456789abcdef");
	assert_int_equal(api_parse_vm_key("0123456789ABCDEF", &key), -EINVAL);
	assert_int_equal(api_parse_vm_key("123", &key), -EINVAL);
	assert_int_equal(api_parse_vm_key("0123456789abcdef0", &key), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vms_round_trip),
		cmocka_unit_test(test_detail_round_trip),
		cmocka_unit_test(test_status_round_trip),
		cmocka_unit_test(test_names_sanitised),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_unknown_labels_rejected),
		cmocka_unit_test(test_inhibit_names_of_another_kernel),
		cmocka_unit_test(test_vm_key),
		cmocka_unit_test(test_accepted_pv_kick),
		cmocka_unit_test(test_latency_round_trip),
		cmocka_unit_test(test_vms_hists_round_trip),
		cmocka_unit_test(test_latency_malformed),
		cmocka_unit_test(test_vcpu_latency_round_trip),
		cmocka_unit_test(test_vcpu_latency_malformed),
		cmocka_unit_test(test_findings_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
