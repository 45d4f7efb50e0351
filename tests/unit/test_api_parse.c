/* Unit tests for daemon/lib/api_parse.c: api.c's documents parsed back give the snapshot they
 * were built from (every field the API carries), and malformed documents one-line errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api.h"
#include "api_parse.h"

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
	const char *names[2];
};

static void fill_counts(struct ipiv_counts *c, uint64_t seed)
{
	for (unsigned p = 0; p < IPIV_PATH_COUNT; p++)
		c->sent_by_path[p] = seed * 7 + p;
	for (unsigned d = 0; d < ICR_DM_COUNT; d++)
		c->received_by_mode[d] = d == 3 ? 0 : seed * 3 + d; /* a zero stays absent */
	for (unsigned a = 0; a < IPIV_AVIC_CAUSE_COUNT; a++)
		c->avic_incomplete[a] = seed + a;
	c->sent_total = seed * 100;
	c->sent_accel_eligible = seed * 90;
	c->received_total = seed * 99;
	c->eois = seed * 98;
	c->wakeups = seed * 50;
	c->wakeups_waited = seed * 40;
	c->halt_ns = seed * 123456789ull + 987;
	c->exits_total = seed * 1000 + 1;
}

static struct fixture *make_fixture(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ipiv_vm_stats *vm = &f->vms[0];
	static const uint32_t classes[] = {
		ICR_DM_FIXED,
		ICR_DM_FIXED | ICR_CLASS_LOGICAL | ICR_CLASS_MULTICAST,
		ICR_DM_FIXED | (ICR_SH_ALL_BUT_SELF << ICR_CLASS_SH_SHIFT) | ICR_CLASS_BROADCAST,
		ICR_DM_NMI,
	};

	vm->vm = 0xffff888812345000ull;
	vm->pid = 4242;
	vm->alive = true;
	vm->vcpu_count = 2;
	fill_counts(&vm->c, 5);
	for (unsigned i = 0; i < 4; i++) {
		f->sends[i] = (struct ipiv_send_cell){ i == 3 ? IPIV_PATH_APIC_WRITE
							      : IPIV_PATH_X2APIC_MSR,
						       classes[i], 10 + i };
		vm->sent[f->sends[i].path][f->sends[i].class] = f->sends[i].count;
	}
	vm->send_cells = f->sends;
	vm->n_send_cells = 4;
	vm->inhibits_known = true;
	vm->inhibits = (1ull << 8) | (1ull << 13); /* irqwin and an unnamed reason */
	vm->inhibit_set[8] = 4;
	vm->inhibit_clear[8] = 3;
	vm->inhibit_set[13] = 1;
	f->exits[0] = (struct ipiv_exit_cell){ IPIV_ISA_VMX, 32, 77 };
	f->exits[1] = (struct ipiv_exit_cell){ IPIV_ISA_VMX, 56, 5 };
	vm->exits = f->exits;
	vm->n_exits = 2;
	f->vcpus[0] = (struct ipiv_vcpu_stats){ .vcpu_id = 0, .tid = 4243 };
	f->vcpus[1] = (struct ipiv_vcpu_stats){ .vcpu_id = 1, .tid = 4244 };
	f->vcpus[2] = (struct ipiv_vcpu_stats){ .vcpu_id = IPIV_VCPU_NONE, .tid = 0 };
	fill_counts(&f->vcpus[0].c, 2);
	fill_counts(&f->vcpus[1].c, 3);
	fill_counts(&f->vcpus[2].c, 1);
	vm->vcpus = f->vcpus;
	vm->n_vcpus = 3;
	f->matrix[0] = (struct ipiv_matrix_cell){ 0, 1, 300 };
	f->matrix[1] = (struct ipiv_matrix_cell){ 1, 0, 200 };
	f->matrix[2] = (struct ipiv_matrix_cell){ IPIV_VCPU_NONE, 1, 9 };
	vm->matrix = f->matrix;
	vm->n_matrix = 3;

	vm = &f->vms[1];
	vm->vm = 0xffff888899999000ull;
	vm->pid = 5000;
	vm->alive = false;
	vm->vcpu_count = 1;

	f->probes[0] = (struct ipiv_probe){ "kvm_apic_ipi", "ipiv_apic_ipi", false, true, 0 };
	f->probes[1] = (struct ipiv_probe){ "kvm_avic_incomplete_ipi", "ipiv_avic_incomplete",
					    true, false, -ENOENT };
	f->probes[2] = (struct ipiv_probe){ "kvm_exit", "ipiv_exit", false, false, -EPERM };
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
	char (*names)[VM_NAME_MAX], err[200];

	assert_int_equal(api_parse_vms(doc, snap, &names, err, sizeof(err)), 0);
	assert_int_equal(snap->n_vms, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct ipiv_vm_stats *want = &f->vms[i], *got = &snap->vms[i];

		assert_string_equal(names[i], f->names[i]);
		assert_int_equal(got->vm, id_of(want->vm));
		assert_int_equal(got->pid, want->pid);
		assert_int_equal(got->alive, want->alive);
		assert_int_equal(got->vcpu_count, want->vcpu_count);
		assert_counts_equal(&got->c, &want->c);
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
	struct ipiv_vm_stats got = { 0 };
	char name[VM_NAME_MAX], err[200];
	json_t *doc = through_text(api_vm_detail(&f->snap, f->names, ID_KEY, "web"));

	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), 0);
	assert_string_equal(name, "web");
	assert_int_equal(got.vm, id_of(want->vm));
	assert_counts_equal(&got.c, &want->c);
	assert_int_equal(got.n_send_cells, want->n_send_cells);
	for (size_t i = 0; i < want->n_send_cells; i++) {
		assert_int_equal(got.send_cells[i].path, want->send_cells[i].path);
		assert_int_equal(got.send_cells[i].class, want->send_cells[i].class);
		assert_int_equal(got.send_cells[i].count, want->send_cells[i].count);
	}
	assert_memory_equal(got.sent, want->sent, sizeof(got.sent));
	assert_int_equal(got.n_exits, 2);
	assert_memory_equal(got.exits, want->exits, 2 * sizeof(*got.exits));
	assert_int_equal(got.n_vcpus, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(got.vcpus[i].vcpu_id, want->vcpus[i].vcpu_id);
		assert_int_equal(got.vcpus[i].tid, want->vcpus[i].tid);
		assert_counts_equal(&got.vcpus[i].c, &want->vcpus[i].c);
	}
	assert_int_equal(got.n_matrix, 3);
	assert_memory_equal(got.matrix, want->matrix, 3 * sizeof(*got.matrix));
	assert_int_equal(got.inhibits, want->inhibits);
	assert_memory_equal(got.inhibit_set, want->inhibit_set, sizeof(got.inhibit_set));
	assert_memory_equal(got.inhibit_clear, want->inhibit_clear, sizeof(got.inhibit_clear));
	api_parse_vm_free(&got);
	json_decref(doc);
	free(f);
}

static void test_status_round_trip(void **state)
{
	struct fixture *f = make_fixture();
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	json_t *doc = through_text(api_status(&f->snap, "1.2.3"));
	char version[64], err[200];
	bool degraded = false;

	assert_int_equal(api_parse_status(doc, snap, &degraded, version, sizeof(version), err,
					  sizeof(err)),
			 0);
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
	json_decref(doc);
	api_parse_snapshot_free(snap);
	free(f);
}

/* A name from the network is sanitised like one from /proc. */
static void test_names_sanitised(void **state)
{
	const char *text = "{\"vms\": [{\"name\": \"evil\\u001b[2Jvm\\u202e\", \"id\": "
			   "\"00000000000000ff\", \"pid\": 1, \"alive\": true, \"vcpus\": 1, "
			   "\"counts\": {\"sent\": 0, \"sent_by_path\": {}, \"sent_accel_eligible\": "
			   "0, \"received\": 0, \"received_by_delivery\": {}, \"eois\": 0, "
			   "\"wakeups\": 0, \"wakeups_halted\": 0, \"halt_seconds\": 0.0, "
			   "\"avic_incomplete\": {}, \"exits\": 0}, \"apicv_inhibits\": "
			   "{\"known\": false, \"reasons\": []}}]}";
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	char (*names)[VM_NAME_MAX], err[200];
	json_t *doc;

	assert_int_equal(api_parse_text(text, strlen(text), &doc, err, sizeof(err)), 0);
	assert_int_equal(api_parse_vms(doc, snap, &names, err, sizeof(err)), 0);
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
		{ "{\"vms\": [", "line 1" },
		{ "", "line" },
		{ "{\"vms\": {}}", "vms: expected an array" },
		{ "{\"vms\": [42]}", "vms[0]: expected an object" },
		{ "{\"vms\": [{\"name\": \"a\"}]}", "vms[0].id: expected a string" },
		{ "{\"vms\": [{\"name\": \"a\", \"id\": \"xyz\"}]}", "not 16 hex digits" },
		{ "{\"vms\": [{\"name\": \"a\", \"id\": \"0000000000000001\", \"pid\": -1}]}",
		  "vms[0].pid: expected a non-negative integer" },
		{ "{\"vms\": [{\"name\": \"a\", \"id\": \"0000000000000001\", \"pid\": 1, "
		  "\"alive\": true, \"vcpus\": 1, \"counts\": {\"sent\": \"many\"}}]}",
		  "vms[0].counts.sent: expected a non-negative integer" },
	};
	char err[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
		char (*names)[VM_NAME_MAX] = NULL;
		json_t *doc = NULL;
		int r;

		err[0] = '\0';
		r = api_parse_text(cases[i].text, strlen(cases[i].text), &doc, err, sizeof(err));
		if (!r)
			r = api_parse_vms(doc, snap, &names, err, sizeof(err));
		if (r != -EINVAL || !strstr(err, cases[i].want) || strchr(err, '\n'))
			fail_msg("case %zu: got %d \"%s\", want -EINVAL with \"%s\"", i, r, err,
				 cases[i].want);
		json_decref(doc);
		api_parse_snapshot_free(snap);
	}
}

static void test_unknown_labels_rejected(void **state)
{
	struct fixture *f = make_fixture();
	json_t *doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	json_t *counts = json_object_get(doc, "counts");
	struct ipiv_vm_stats got = { 0 };
	char name[VM_NAME_MAX], err[200];

	json_object_set_new(json_object_get(counts, "sent_by_path"), "warp_drive",
			    json_integer(1));
	assert_int_equal(api_parse_vm_detail(doc, &got, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown label \"warp_drive\""));
	assert_null(got.vcpus);
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
		cmocka_unit_test(test_vm_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
