/* Unit tests for daemon/ipivd/api.c: the JSON documents of /api/v1/vms, one VM's detail and
 * /api/v1/status built from a hand-made snapshot; lookup by name and id; opaque ids. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "ipivd/api.h"
#include "ipivtop/api_parse.h"
#include "golden.h"
#include "naming.h"
#include "icr.h"
#include "send_cells.h"
#include "ipiv.h"
#include "sources.h"

#define VM_WEB	0xffff8881a2b3c000ull
#define VM_AMD	0xffff8881a2b3d000ull
#define VM_IDLE 0xffff888100000040ull
#define ID_KEY	0x5eed5eed12345678ull

#define FIXED(vec) ((uint32_t)(vec) | (ICR_DM_FIXED << ICR_DELIVERY_SHIFT))

struct fixture {
	struct ipiv_snapshot snap;
	struct ipiv_vm_stats vms[3];
	struct ipiv_send_cell web_sends[3], amd_sends[1];
	struct ipiv_exit_cell web_exits[2], amd_exits[2];
	struct ipiv_vcpu_stats web_vcpus[3];
	struct ipiv_matrix_cell web_matrix[2];
	struct ipiv_probe probes[3];
	struct ipiv_prog_stats progs[1];
	const char *names[3];
};

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ipiv_vm_stats *web = &f->vms[0], *amd = &f->vms[1], *idle = &f->vms[2];

	assert_non_null(f);
	web->vm = VM_WEB;
	web->pid = 4242;
	web->vmm = VM_VMM_LIBVIRT_QEMU;
	snprintf(web->uuid, sizeof(web->uuid), "%s", "c7a5fdbd-cdaf-9455-926a-d65c16db1809");
	web->alive = true;
	web->vcpu_count = 2;
	web->send_cells = f->web_sends;
	test_add_send(web, f->web_sends, IPIV_PATH_X2APIC_MSR, icr_classify(FIXED(0xfd), 1, 2),
		      1000);
	test_add_send(web, f->web_sends, IPIV_PATH_X2APIC_MSR,
		      icr_classify(FIXED(0xfd) | ICR_DEST_LOGICAL, 0x00010003, 2), 7);
	test_add_send(web, f->web_sends, IPIV_PATH_XAPIC_MMIO,
		      icr_classify((ICR_DM_NMI << ICR_DELIVERY_SHIFT) |
					   (ICR_SH_ALL_BUT_SELF << ICR_SHORTHAND_SHIFT),
				   0xff, 1),
		      3);
	web->counts.received_by_delivery[ICR_DM_FIXED] = 900;
	web->counts.received_by_delivery[ICR_DM_NMI] = 3;
	web->counts.received = 903;
	web->counts.eois = 800;
	web->counts.wakeups = 40;
	web->counts.wakeups_halted = 30;
	web->counts.halt_ns = 1500000000ull;
	web->counts.exits = 1037;
	web->exits = f->web_exits;
	f->web_exits[0] = (struct ipiv_exit_cell){IPIV_ISA_VMX, 32, 1007};
	f->web_exits[1] = (struct ipiv_exit_cell){IPIV_ISA_VMX, 77, 30};
	web->n_exits = 2;
	web->inhibits_known = true;
	web->inhibits = (1ull << 0) | (1ull << 8);
	web->inhibit_set[0] = 1;
	web->inhibit_set[8] = 3;
	web->inhibit_clear[8] = 2;
	web->inhibit_clear[9] = 4;
	web->vcpus = f->web_vcpus;
	f->web_vcpus[0] = (struct ipiv_vcpu_stats){
		.vcpu_id = 0, .tid = 4243, .apicv_active = IPIV_APICV_INACTIVE};
	f->web_vcpus[0].counts.sent = 600;
	f->web_vcpus[0].counts.sent_by_path[IPIV_PATH_X2APIC_MSR] = 600;
	f->web_vcpus[0].counts.received = 303;
	f->web_vcpus[0].counts.received_by_delivery[ICR_DM_FIXED] = 300;
	f->web_vcpus[0].counts.received_by_delivery[ICR_DM_NMI] = 3;
	f->web_vcpus[1] = (struct ipiv_vcpu_stats){.vcpu_id = 1, .tid = 4244};
	f->web_vcpus[1].counts.sent = 407;
	f->web_vcpus[1].counts.received = 600;
	f->web_vcpus[2] = (struct ipiv_vcpu_stats){.vcpu_id = IPIV_VCPU_NONE};
	f->web_vcpus[2].counts.sent = 3;
	web->n_vcpus = 3;
	web->matrix = f->web_matrix;
	f->web_matrix[0] = (struct ipiv_matrix_cell){0, 1, 600};
	f->web_matrix[1] = (struct ipiv_matrix_cell){IPIV_VCPU_NONE, 0, 3};
	web->n_matrix = 2;

	amd->vm = VM_AMD;
	amd->pid = 5151;
	amd->vmm = VM_VMM_FIRECRACKER;
	amd->alive = true;
	amd->vcpu_count = 4;
	amd->send_cells = f->amd_sends;
	test_add_send(amd, f->amd_sends, IPIV_PATH_AVIC, icr_classify(FIXED(0xec), 2, 1), 20);
	amd->counts.avic_incomplete[IPIV_AVIC_TARGET_NOT_RUNNING] = 20;
	amd->exits = f->amd_exits;
	f->amd_exits[0] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x078, 5};
	f->amd_exits[1] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x401, 20};
	amd->n_exits = 2;
	amd->counts.exits = 25;

	idle->vm = VM_IDLE;
	idle->pid = 6000;

	f->probes[0] = (struct ipiv_probe){"kvm_apic_ipi", "ipiv_apic_ipi", false, true, 0};
	f->probes[1] = (struct ipiv_probe){"kvm_avic_incomplete_ipi", "ipiv_avic_incomplete_ipi",
					   true, false, -ENOENT};
	f->probes[2] = (struct ipiv_probe){"kvm_eoi", "ipiv_eoi", true, true, 0};
	snprintf(f->progs[0].name, sizeof(f->progs[0].name), "ipiv_apic_ipi");
	f->progs[0].run_cnt = 1234;
	f->progs[0].run_time_ns = 99000;

	f->snap.vms = f->vms;
	f->snap.n_vms = 3;
	f->snap.self.probes = f->probes;
	f->snap.self.n_probes = 3;
	f->snap.self.n_attached = 2;
	f->snap.self.progs = f->progs;
	f->snap.self.n_progs = 1;
	f->snap.self.bpf_stats_enabled = true;
	/* ipivd's default: every family but send->accept */
	f->snap.self.lat_kinds_recorded =
		((1u << IPIV_LAT_UNMATCHED) - 1) & ~(1u << IPIV_LAT_SEND_ACCEPT);
	f->snap.self.drops[IPIV_DROP_MATRIX_FULL] = 11;
	f->snap.self.vms_discovered = 5;
	f->snap.self.vms_reclaimed = 2;
	f->names[0] = "web";
	f->names[1] = "amd \"guest\" \\ 2\ncaf\xc3\xa9";
	f->names[2] = "idle";
	return f;
}

static json_int_t get_int(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("%s is not an integer", key);
	return json_integer_value(v);
}

static const char *get_str(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		fail_msg("%s is not a string", key);
	return json_string_value(v);
}

/* The object has exactly these keys (a NULL-terminated list). */
static void assert_keys(const json_t *o, const char *const *keys)
{
	size_t n = 0;

	assert_true(json_is_object(o));
	for (; keys[n]; n++)
		if (!json_object_get(o, keys[n]))
			fail_msg("key %s missing", keys[n]);
	assert_int_equal(json_object_size(o), n);
}

static const char *const counts_keys[] = {
	"sent",
	"sent_by_path",
	"sent_accel_eligible",
	"received",
	"received_by_delivery",
	"eois",
	"wakeups",
	"wakeups_halted",
	"halt_seconds",
	"avic_incomplete",
	"exits",
	"patched_tracepoints",
	NULL,
};

/* Every spelling of a kernel address that could leak: hex either case, with or without
 * leading zeros and 0x, unsigned and signed decimal, and its low 32 bits in hex. */
static void assert_no_pointer(const char *text, uint64_t ptr)
{
	char s[6][32];

	snprintf(s[0], sizeof(s[0]), "%" PRIx64, ptr);
	snprintf(s[1], sizeof(s[1]), "%" PRIX64, ptr);
	snprintf(s[2], sizeof(s[2]), "%" PRIu64, ptr);
	snprintf(s[3], sizeof(s[3]), "%" PRId64, (int64_t)ptr);
	snprintf(s[4], sizeof(s[4]), "%08" PRIx32, (uint32_t)ptr);
	snprintf(s[5], sizeof(s[5]), "%" PRIu32, (uint32_t)ptr);
	for (size_t i = 0; i < 6; i++)
		if (strstr(text, s[i]))
			fail_msg("kernel pointer %s in JSON:\n%s", s[i], text);
}

static char *dump(const json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_SORT_KEYS);

	assert_non_null(text);
	return text;
}

static void test_vm_id_is_stable_and_opaque(void **state)
{
	char a[17], b[17], c[17], d[17], hex[17];

	api_vm_id(VM_WEB, ID_KEY, a);
	api_vm_id(VM_WEB, ID_KEY, b);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), 16);
	assert_int_equal(strspn(a, "0123456789abcdef"), 16);

	api_vm_id(VM_AMD, ID_KEY, c);
	assert_string_not_equal(a, c);
	api_vm_id(VM_WEB, ID_KEY + 1, d);
	assert_string_not_equal(a, d);

	/* Even with a zero key the id is not the address. */
	api_vm_id(VM_WEB, 0, d);
	snprintf(hex, sizeof(hex), "%016" PRIx64, (uint64_t)VM_WEB);
	assert_string_not_equal(d, hex);

	/* Neighbouring allocations (one bit apart) get unrelated ids. */
	for (uint64_t bit = 1; bit; bit <<= 1) {
		char n[17];
		int same = 0;

		api_vm_id(VM_WEB ^ bit, ID_KEY, n);
		assert_string_not_equal(a, n);
		for (int i = 0; i < 16; i++)
			same += a[i] == n[i];
		assert_true(same < 12);
	}
}

static void test_vms_document(void **state)
{
	struct fixture *f = fixture_new();
	json_t *doc = api_vms(&f->snap, f->names, ID_KEY), *vms, *web, *amd, *idle, *c, *o;
	static const char *const summary_keys[] = {
		"name",		  "id",		 "vmm", "uuid", "pid", "alive", "vcpus", "counts",
		"apicv_inhibits", "send_to_eoi", NULL};
	static const char *const top_keys[] = {"vms", NULL};
	char id[17];

	assert_non_null(doc);
	assert_keys(doc, top_keys);
	vms = json_object_get(doc, "vms");
	assert_true(json_is_array(vms));
	assert_int_equal(json_array_size(vms), 3);
	web = json_array_get(vms, 0);
	amd = json_array_get(vms, 1);
	idle = json_array_get(vms, 2);
	for (size_t i = 0; i < 3; i++) {
		assert_keys(json_array_get(vms, i), summary_keys);
		assert_keys(json_object_get(json_array_get(vms, i), "counts"), counts_keys);
	}

	assert_string_equal(get_str(web, "name"), "web");
	api_vm_id(VM_WEB, ID_KEY, id);
	assert_string_equal(get_str(web, "id"), id);
	assert_string_equal(get_str(web, "vmm"), "libvirt-qemu");
	assert_string_equal(get_str(web, "uuid"), "c7a5fdbd-cdaf-9455-926a-d65c16db1809");
	assert_int_equal(get_int(web, "pid"), 4242);
	assert_true(json_is_true(json_object_get(web, "alive")));
	assert_int_equal(get_int(web, "vcpus"), 2);
	c = json_object_get(web, "counts");
	assert_int_equal(get_int(c, "sent"), 1010);
	assert_int_equal(get_int(c, "sent_accel_eligible"), 1000);
	o = json_object_get(c, "sent_by_path");
	assert_int_equal(json_object_size(o), 2);
	assert_int_equal(get_int(o, "x2apic_msr"), 1007);
	assert_int_equal(get_int(o, "xapic_mmio"), 3);
	assert_int_equal(get_int(c, "received"), 903);
	o = json_object_get(c, "received_by_delivery");
	assert_int_equal(json_object_size(o), 2);
	assert_int_equal(get_int(o, "fixed"), 900);
	assert_int_equal(get_int(o, "nmi"), 3);
	assert_int_equal(get_int(c, "eois"), 800);
	assert_int_equal(get_int(c, "wakeups"), 40);
	assert_int_equal(get_int(c, "wakeups_halted"), 30);
	assert_true(json_is_real(json_object_get(c, "halt_seconds")));
	assert_true(json_real_value(json_object_get(c, "halt_seconds")) == 1.5);
	assert_int_equal(json_object_size(json_object_get(c, "avic_incomplete")), 0);
	assert_int_equal(get_int(c, "exits"), 1037);
	o = json_object_get(web, "apicv_inhibits");
	assert_true(json_is_true(json_object_get(o, "known")));
	assert_int_equal(json_array_size(json_object_get(o, "reasons")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "reasons"), 0)),
			    "disabled");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "reasons"), 1)),
			    "irqwin");

	assert_string_equal(get_str(amd, "name"), f->names[1]);
	assert_string_equal(get_str(amd, "vmm"), "firecracker");
	assert_true(json_is_null(json_object_get(amd, "uuid"))); /* none given */
	assert_string_equal(get_str(idle, "vmm"), "unknown");
	c = json_object_get(amd, "counts");
	assert_int_equal(get_int(json_object_get(c, "sent_by_path"), "avic_incomplete"), 20);
	assert_int_equal(get_int(json_object_get(c, "avic_incomplete"), "target_not_running"), 20);
	assert_int_equal(json_object_size(json_object_get(c, "avic_incomplete")), 1);
	o = json_object_get(amd, "apicv_inhibits");
	assert_true(json_is_false(json_object_get(o, "known")));
	assert_int_equal(json_array_size(json_object_get(o, "reasons")), 0);

	assert_true(json_is_false(json_object_get(idle, "alive")));
	c = json_object_get(idle, "counts");
	assert_int_equal(get_int(c, "sent"), 0);
	assert_int_equal(json_object_size(json_object_get(c, "sent_by_path")), 0);
	assert_true(json_real_value(json_object_get(c, "halt_seconds")) == 0);
	json_decref(doc);

	/* No VMs: an empty list, not a missing key. */
	f->snap.n_vms = 0;
	doc = api_vms(&f->snap, f->names, ID_KEY);
	assert_int_equal(json_array_size(json_object_get(doc, "vms")), 0);
	json_decref(doc);
	free(f);
}

static void test_vm_detail_document(void **state)
{
	static const char *const detail_keys[] = {
		"name",
		"id",
		"vmm",
		"uuid",
		"pid",
		"alive",
		"vcpus",
		"counts",
		"apicv_inhibits",
		"sent_by_class",
		"exits_by_reason",
		"vcpu_rows",
		"matrix",
		"apicv_inhibit_changes",
		"apicv_inhibit_timeline",
		"send_to_eoi",
		"latency_enabled",
		"latency",
		"latency_unmatched",
		"latency_note",
		NULL,
	};
	static const char *const class_keys[] = {"path", "delivery",	   "dest_mode", "shorthand",
						 "dest", "accel_eligible", "count",	NULL};
	static const char *const exit_keys[] = {"isa", "reason", "name", "count", NULL};
	static const char *const matrix_keys[] = {"src", "dst", "count", NULL};
	static const char *const change_keys[] = {"reason", "bit", "set", "clear", NULL};
	struct fixture *f = fixture_new();
	json_t *doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web"), *a, *o;

	assert_non_null(doc);
	assert_keys(doc, detail_keys);
	assert_string_equal(get_str(doc, "name"), "web");

	a = json_object_get(doc, "sent_by_class");
	assert_int_equal(json_array_size(a), 3);
	for (size_t i = 0; i < 3; i++)
		assert_keys(json_array_get(a, i), class_keys);
	o = json_array_get(a, 0);
	assert_string_equal(get_str(o, "path"), "x2apic_msr");
	assert_string_equal(get_str(o, "delivery"), "fixed");
	assert_string_equal(get_str(o, "dest_mode"), "physical");
	assert_string_equal(get_str(o, "shorthand"), "none");
	assert_string_equal(get_str(o, "dest"), "unicast");
	assert_true(json_is_true(json_object_get(o, "accel_eligible")));
	assert_int_equal(get_int(o, "count"), 1000);
	o = json_array_get(a, 1);
	assert_string_equal(get_str(o, "dest_mode"), "logical");
	assert_string_equal(get_str(o, "dest"), "multicast");
	assert_true(json_is_false(json_object_get(o, "accel_eligible")));
	assert_int_equal(get_int(o, "count"), 7);
	o = json_array_get(a, 2);
	assert_string_equal(get_str(o, "path"), "xapic_mmio");
	assert_string_equal(get_str(o, "delivery"), "nmi");
	assert_string_equal(get_str(o, "shorthand"), "all_but_self");
	assert_string_equal(get_str(o, "dest"), "broadcast");
	assert_true(json_is_false(json_object_get(o, "accel_eligible")));
	assert_int_equal(get_int(o, "count"), 3);

	a = json_object_get(doc, "exits_by_reason");
	assert_int_equal(json_array_size(a), 2);
	for (size_t i = 0; i < 2; i++)
		assert_keys(json_array_get(a, i), exit_keys);
	o = json_array_get(a, 0);
	assert_string_equal(get_str(o, "isa"), "vmx");
	assert_int_equal(get_int(o, "reason"), 32);
	assert_string_equal(get_str(o, "name"), "msr_write");
	assert_int_equal(get_int(o, "count"), 1007);
	o = json_array_get(a, 1);
	assert_int_equal(get_int(o, "reason"), 77);
	assert_string_equal(get_str(o, "name"), "77");
	assert_int_equal(get_int(o, "count"), 30);

	/* vCPU rows: counts plus id, tid, APIC mode and APICv; the non-vCPU row has id null. */
	a = json_object_get(doc, "vcpu_rows");
	assert_int_equal(json_array_size(a), 3);
	o = json_array_get(a, 0);
	assert_int_equal(json_object_size(o), json_object_size(json_object_get(doc, "counts")) + 4);
	assert_int_equal(get_int(o, "id"), 0);
	assert_int_equal(get_int(o, "tid"), 4243);
	assert_string_equal(json_string_value(json_object_get(o, "apic_mode")), "unknown");
	assert_true(json_is_false(json_object_get(o, "apicv_active")));
	assert_true(json_is_null(json_object_get(json_array_get(a, 1), "apicv_active")));
	assert_int_equal(get_int(o, "sent"), 600);
	assert_int_equal(get_int(json_object_get(o, "sent_by_path"), "x2apic_msr"), 600);
	assert_int_equal(get_int(o, "received"), 303);
	assert_int_equal(get_int(json_object_get(o, "received_by_delivery"), "nmi"), 3);
	assert_int_equal(get_int(json_array_get(a, 1), "id"), 1);
	assert_int_equal(get_int(json_array_get(a, 1), "sent"), 407);
	o = json_array_get(a, 2);
	assert_true(json_is_null(json_object_get(o, "id")));
	assert_int_equal(get_int(o, "tid"), 0);
	assert_int_equal(get_int(o, "sent"), 3);

	a = json_object_get(doc, "matrix");
	assert_int_equal(json_array_size(a), 2);
	for (size_t i = 0; i < 2; i++)
		assert_keys(json_array_get(a, i), matrix_keys);
	assert_int_equal(get_int(json_array_get(a, 0), "src"), 0);
	assert_int_equal(get_int(json_array_get(a, 0), "dst"), 1);
	assert_int_equal(get_int(json_array_get(a, 0), "count"), 600);
	assert_true(json_is_null(json_object_get(json_array_get(a, 1), "src")));
	assert_int_equal(get_int(json_array_get(a, 1), "dst"), 0);
	assert_int_equal(get_int(json_array_get(a, 1), "count"), 3);

	/* Reasons ever set or cleared, with both counts; untouched reasons are left out. */
	a = json_object_get(doc, "apicv_inhibit_changes");
	assert_int_equal(json_array_size(a), 3);
	for (size_t i = 0; i < 3; i++)
		assert_keys(json_array_get(a, i), change_keys);
	assert_string_equal(get_str(json_array_get(a, 0), "reason"), "disabled");
	assert_int_equal(get_int(json_array_get(a, 0), "set"), 1);
	assert_int_equal(get_int(json_array_get(a, 0), "clear"), 0);
	assert_string_equal(get_str(json_array_get(a, 1), "reason"), "irqwin");
	assert_int_equal(get_int(json_array_get(a, 1), "set"), 3);
	assert_int_equal(get_int(json_array_get(a, 1), "clear"), 2);
	assert_string_equal(get_str(json_array_get(a, 2), "reason"), "pit_reinj");
	assert_int_equal(get_int(json_array_get(a, 2), "set"), 0);
	assert_int_equal(get_int(json_array_get(a, 2), "clear"), 4);
	json_decref(doc);

	/* An AMD guest: SVM exit names, no vCPU rows nor matrix (empty arrays, not absent). */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, f->names[1]);
	assert_non_null(doc);
	assert_keys(doc, detail_keys);
	a = json_object_get(doc, "exits_by_reason");
	assert_string_equal(get_str(json_array_get(a, 0), "isa"), "svm");
	assert_string_equal(get_str(json_array_get(a, 0), "name"), "hlt");
	assert_string_equal(get_str(json_array_get(a, 1), "name"), "avic_incomplete_ipi");
	assert_int_equal(get_int(json_array_get(a, 1), "reason"), 0x401);
	assert_string_equal(
		get_str(json_array_get(json_object_get(doc, "sent_by_class"), 0), "path"),
		"avic_incomplete");
	assert_int_equal(json_array_size(json_object_get(doc, "vcpu_rows")), 0);
	assert_int_equal(json_array_size(json_object_get(doc, "matrix")), 0);
	assert_int_equal(json_array_size(json_object_get(doc, "apicv_inhibit_changes")), 0);
	json_decref(doc);
	free(f);
}

static void test_vm_lookup(void **state)
{
	struct fixture *f = fixture_new();
	char id[17], other_key_id[17], upper[17];
	json_t *doc;

	for (size_t i = 0; i < 3; i++) {
		api_vm_id(f->vms[i].vm, ID_KEY, id);
		doc = api_vm_detail(&f->snap, f->names, ID_KEY, id);
		assert_non_null(doc);
		assert_string_equal(get_str(doc, "name"), f->names[i]);
		assert_string_equal(get_str(doc, "id"), id);
		json_decref(doc);

		doc = api_vm_detail(&f->snap, f->names, ID_KEY, f->names[i]);
		assert_non_null(doc);
		assert_string_equal(get_str(doc, "name"), f->names[i]);
		assert_string_equal(get_str(doc, "id"), id);
		assert_int_equal(get_int(doc, "pid"), f->vms[i].pid);
		json_decref(doc);
	}

	assert_null(api_vm_detail(&f->snap, f->names, ID_KEY, "nope"));
	assert_null(api_vm_detail(&f->snap, f->names, ID_KEY, ""));
	assert_null(api_vm_detail(&f->snap, f->names, ID_KEY, "WEB"));
	assert_null(api_vm_detail(&f->snap, f->names, ID_KEY, "we"));
	/* An id from another daemon (another key) names nothing here. */
	api_vm_id(VM_WEB, ID_KEY ^ 1, other_key_id);
	assert_null(api_vm_detail(&f->snap, f->names, ID_KEY, other_key_id));
	/* Ids are exact: no prefix, no case folding, no raw address. */
	api_vm_id(VM_WEB, ID_KEY, id);
	id[15] = '\0';
	assert_null(api_vm_detail(&f->snap, f->names, ID_KEY, id));
	api_vm_id(VM_WEB, ID_KEY, id);
	for (int i = 0; i < 17; i++)
		upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 'a' + 'A' : id[i]);
	if (strcmp(upper, id))
		assert_null(api_vm_detail(&f->snap, f->names, ID_KEY, upper));
	snprintf(id, sizeof(id), "%016" PRIx64, (uint64_t)VM_WEB);
	assert_null(api_vm_detail(&f->snap, f->names, ID_KEY, id));
	free(f);
}

/* Names come from VMM command lines; one that spells another VM's id must not capture
 * lookups of that id, whatever the order of the VMs. */
static void test_id_wins_over_a_name_that_spells_it(void **state)
{
	struct fixture *f = fixture_new();
	char amd_id[17], web_id[17];
	json_t *doc;

	api_vm_id(VM_AMD, ID_KEY, amd_id);
	api_vm_id(VM_WEB, ID_KEY, web_id);
	f->names[0] = amd_id; /* web, listed first, is named after amd's id */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, amd_id);
	assert_non_null(doc);
	assert_int_equal(get_int(doc, "pid"), 5151);
	json_decref(doc);
	/* web is still found by its own id. */
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, web_id);
	assert_non_null(doc);
	assert_int_equal(get_int(doc, "pid"), 4242);
	json_decref(doc);

	/* The same with the impostor listed after its victim. */
	f->names[0] = "web";
	f->names[1] = web_id;
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, web_id);
	assert_non_null(doc);
	assert_int_equal(get_int(doc, "pid"), 4242);
	json_decref(doc);
	free(f);
}

static void test_status_document(void **state)
{
	static const char *const status_keys[] = {
		"version",
		"degraded",
		"probes_attached",
		"probes_total",
		"probes",
		"programs",
		"drops",
		"bpf_stats_enabled",
		"vms",
		"vms_discovered",
		"vms_reclaimed",
		"inhibit_names",
		"latency_recorded",
		"sources",
		NULL,
	};
	static const char *const probe_keys[] = {"name",     "program", "attached",
						 "optional", "error",	NULL};
	static const char *const prog_keys[] = {"name", "runs", "run_ns", NULL};
	struct fixture *f = fixture_new();
	json_t *doc = api_status(&f->snap, "1.2.3-test"), *a, *o;
	char err[128];

	assert_non_null(doc);
	assert_keys(doc, status_keys);
	assert_string_equal(get_str(doc, "version"), "1.2.3-test");
	/* Only an optional probe is missing. */
	assert_true(json_is_false(json_object_get(doc, "degraded")));
	assert_int_equal(get_int(doc, "probes_attached"), 2);
	assert_int_equal(get_int(doc, "probes_total"), 3);
	assert_true(json_is_true(json_object_get(doc, "bpf_stats_enabled")));
	assert_int_equal(get_int(doc, "vms"), 3);
	assert_int_equal(get_int(doc, "vms_discovered"), 5);
	assert_string_equal(get_str(doc, "inhibit_names"), "builtin"); /* no collector here */
	assert_int_equal(get_int(doc, "vms_reclaimed"), 2);
	a = json_object_get(doc, "latency_recorded");
	assert_int_equal(json_array_size(a), IPIV_LAT_UNMATCHED - 1);
	assert_string_equal(json_string_value(json_array_get(a, 0)), "accept_to_running");
	/* none of the fixture's probes is a source of these (test_sources has the rest) */
	o = json_object_get(doc, "sources");
	assert_int_equal(json_object_size(o), IPIV_N_QUANTITIES);
	assert_true(json_is_null(json_object_get(json_object_get(o, "posted_wakeups"), "probe")));
	assert_string_equal(get_str(json_object_get(o, "icr_write_traps"), "kind"), "none");

	a = json_object_get(doc, "probes");
	assert_int_equal(json_array_size(a), 3);
	o = json_array_get(a, 0);
	assert_keys(o, probe_keys);
	assert_string_equal(get_str(o, "name"), "kvm_apic_ipi");
	assert_true(json_is_null(json_object_get(o, "error")));
	assert_string_equal(get_str(o, "program"), "ipiv_apic_ipi");
	assert_true(json_is_true(json_object_get(o, "attached")));
	assert_true(json_is_false(json_object_get(o, "optional")));
	o = json_array_get(a, 1);
	assert_keys(o, probe_keys);
	assert_string_equal(get_str(o, "name"), "kvm_avic_incomplete_ipi");
	assert_true(json_is_false(json_object_get(o, "attached")));
	assert_true(json_is_true(json_object_get(o, "optional")));
	snprintf(err, sizeof(err), "%s", strerror(ENOENT));
	assert_string_equal(get_str(o, "error"), err);

	a = json_object_get(doc, "programs");
	assert_int_equal(json_array_size(a), 1);
	assert_keys(json_array_get(a, 0), prog_keys);
	assert_string_equal(get_str(json_array_get(a, 0), "name"), "ipiv_apic_ipi");
	assert_int_equal(get_int(json_array_get(a, 0), "runs"), 1234);
	assert_int_equal(get_int(json_array_get(a, 0), "run_ns"), 99000);

	o = json_object_get(doc, "drops");
	assert_int_equal(json_object_size(o), IPIV_DROP_COUNT);
	for (unsigned r = 0; r < IPIV_DROP_COUNT; r++)
		assert_int_equal(get_int(o, ipiv_drop_name(r)),
				 r == IPIV_DROP_MATRIX_FULL ? 11 : 0);
	json_decref(doc);

	/* A required probe missing degrades the daemon. */
	f->probes[0].attached = false;
	f->probes[0].err = -EPERM;
	f->snap.self.n_attached = 1;
	doc = api_status(&f->snap, "1.2.3-test");
	assert_non_null(doc);
	assert_true(json_is_true(json_object_get(doc, "degraded")));
	assert_int_equal(get_int(doc, "probes_attached"), 1);
	snprintf(err, sizeof(err), "%s", strerror(EPERM));
	assert_string_equal(get_str(json_array_get(json_object_get(doc, "probes"), 0), "error"),
			    err);
	json_decref(doc);
	free(f);
}

static void test_no_kernel_pointer_in_json(void **state)
{
	struct fixture *f = fixture_new();
	json_t *docs[5];
	char id[17];

	api_vm_id(VM_AMD, ID_KEY, id);
	docs[0] = api_vms(&f->snap, f->names, ID_KEY);
	docs[1] = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	docs[2] = api_vm_detail(&f->snap, f->names, ID_KEY, id);
	docs[3] = api_vm_detail(&f->snap, f->names, ID_KEY, "idle");
	docs[4] = api_status(&f->snap, "1.2.3-test");
	for (size_t i = 0; i < 5; i++) {
		char *text;

		assert_non_null(docs[i]);
		text = dump(docs[i]);
		for (size_t v = 0; v < 3; v++)
			assert_no_pointer(text, f->vms[v].vm);
		free(text);
		json_decref(docs[i]);
	}
	free(f);
}

/* ipivtop --connect reads vmm and uuid back; a uuid that is not one, or a vmm that is not a
 * string, is refused; an ipivd from before them (no keys) gives unknown and none. */
static void test_identity_round_trips(void **state)
{
	struct fixture *f = fixture_new();
	json_t *doc = api_vms(&f->snap, f->names, ID_KEY), *web;
	struct ipiv_snapshot snap = {0};
	char(*names)[VM_NAME_MAX], err[200];
	static const char *const bad_uuid[] = {"c7a5fdbd-cdaf-9455-926a-d65c16db180",
					       "c7a5fdbd-cdaf-9455-926a-d65c16db1809\"\n", ""};

	assert_int_equal(api_parse_vms(doc, &snap, &names, NULL, err, sizeof(err)), 0);
	assert_int_equal(snap.vms[0].vmm, VM_VMM_LIBVIRT_QEMU);
	assert_string_equal(snap.vms[0].uuid, "c7a5fdbd-cdaf-9455-926a-d65c16db1809");
	assert_int_equal(snap.vms[1].vmm, VM_VMM_FIRECRACKER);
	assert_string_equal(snap.vms[1].uuid, "");
	assert_int_equal(snap.vms[2].vmm, VM_VMM_UNKNOWN);
	free(snap.vms);
	free(names);

	web = json_array_get(json_object_get(doc, "vms"), 0);
	json_object_set_new(web, "vmm", json_string("kata-qemu-2031"));
	json_object_del(web, "uuid");
	assert_int_equal(api_parse_vms(doc, &snap, &names, NULL, err, sizeof(err)), 0);
	assert_int_equal(snap.vms[0].vmm, VM_VMM_UNKNOWN);
	assert_string_equal(snap.vms[0].uuid, "");
	free(snap.vms);
	free(names);

	for (size_t i = 0; i < sizeof(bad_uuid) / sizeof(bad_uuid[0]); i++) {
		json_object_set_new(web, "uuid", json_string(bad_uuid[i]));
		assert_int_equal(api_parse_vms(doc, &snap, &names, NULL, err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, "vms[0].uuid: not a UUID");
	}
	json_object_set_new(web, "uuid", json_integer(7));
	assert_int_equal(api_parse_vms(doc, &snap, &names, NULL, err, sizeof(err)), -EINVAL);
	json_object_set_new(web, "uuid", json_null());
	json_object_set_new(web, "vmm", json_integer(1));
	assert_int_equal(api_parse_vms(doc, &snap, &names, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "vms[0].vmm: expected a string");
	json_decref(doc);
	free(f);
}

static void test_hostile_name_round_trips(void **state)
{
	struct fixture *f = fixture_new();
	json_t *doc = api_vms(&f->snap, f->names, ID_KEY), *back;
	json_error_t jerr;
	char *text = dump(doc);

	/* The dumped text is valid JSON that gives back the exact name. */
	back = json_loads(text, 0, &jerr);
	if (!back)
		fail_msg("invalid JSON (%s):\n%s", jerr.text, text);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(back, "vms"), 1), "name")),
			    f->names[1]);
	assert_non_null(strstr(text, "\"amd \\\"guest\\\" \\\\ 2\\ncaf\\u00E9\""));
	json_decref(back);
	json_decref(doc);
	free(text);
	free(f);
}

/* Latency histograms: per (kind, sub) VM-wide, merged over vCPUs; quantiles within their
 * stated error; the headline in the summary; unmatched counts by reason. */
static void test_latency_document(void **state)
{
	struct fixture *f = fixture_new();
	struct ipiv_vm_stats *web = &f->vms[0];
	struct ipiv_lat_hist *lat = calloc(3, sizeof(*lat));
	json_t *doc, *eoi, *p50;

	assert_non_null(lat);
	/* send->EOI over x2APIC from two vCPUs: 100 x 10 us and 100 x 20 us; halts */
	lat[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = 0};
	lat[1] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = 1};
	lat[2] = (struct ipiv_lat_hist){.kind = IPIV_LAT_HALT, .sub = 1, .vcpu = 1};
	for (int i = 0; i < 100; i++) {
		latency_add(&lat[0].h, 10000);
		latency_add(&lat[1].h, 20000);
		latency_add(&lat[2].h, 500000);
	}
	web->lat = lat;
	web->n_lat = 3;
	web->latency_enabled = true;
	web->lat_unmatched[IPIV_UNM_NMI] = 7;

	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	assert_non_null(doc);
	eoi = json_object_get(json_object_get(json_object_get(doc, "latency"), "send_to_eoi"),
			      "x2apic_msr");
	assert_non_null(eoi);
	assert_int_equal(json_integer_value(json_object_get(eoi, "count")), 200);
	assert_int_equal(json_integer_value(json_object_get(eoi, "sum_ns")), 3000000);
	p50 = json_object_get(eoi, "p50");
	/* nearest rank 100 of 200 is a 10 us observation */
	assert_true(fabs(json_real_value(json_object_get(p50, "value_ns")) - 10000) <=
		    json_real_value(json_object_get(p50, "error_ns")));
	assert_int_equal(json_array_size(json_object_get(eoi, "buckets")), 2);
	assert_non_null(
		json_object_get(json_object_get(json_object_get(doc, "latency"), "halt"), "true"));
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(doc, "latency_unmatched"),
						   "no_eoi_delivery_mode")),
		7);
	/* per-vCPU histograms (--collector.per-vcpu): each vCPU row has its own send->EOI,
	 * quantiles like the VM's and histograms by stage and path with buckets */
	{
		json_t *rows = json_object_get(doc, "vcpu_rows"), *row;
		static const double want_ns[] = {10000, 20000};

		for (size_t i = 0; i < 2; i++) {
			row = json_array_get(rows, i);
			eoi = json_object_get(row, "send_to_eoi");
			assert_int_equal(json_integer_value(json_object_get(eoi, "count")), 100);
			assert_int_equal(json_integer_value(json_object_get(eoi, "sum_ns")),
					 100 * want_ns[i]);
			for (size_t k = 0; k < 3; k++) {
				static const char *const q[] = {"p50", "p90", "p99"};

				p50 = json_object_get(eoi, q[k]);
				assert_true(fabs(json_real_value(json_object_get(p50, "value_ns")) -
						 want_ns[i]) <=
					    json_real_value(json_object_get(p50, "error_ns")));
			}
			assert_int_equal(
				json_integer_value(json_object_get(
					json_object_get(
						json_object_get(json_object_get(row, "latency"),
								"send_to_eoi"),
						"x2apic_msr"),
					"count")),
				100);
		}
		/* halts are vCPU 1's */
		assert_null(json_object_get(json_object_get(json_array_get(rows, 0), "latency"),
					    "halt"));
		assert_non_null(json_object_get(
			json_object_get(json_object_get(json_array_get(rows, 1), "latency"),
					"halt"),
			"true"));
		/* the non-vCPU row received nothing: null, not zero */
		row = json_array_get(rows, 2);
		assert_true(json_is_null(json_object_get(row, "send_to_eoi")));
		assert_int_equal(json_object_size(json_object_get(row, "latency")), 0);
	}
	json_decref(doc);

	doc = api_vms(&f->snap, f->names, ID_KEY);
	eoi = json_object_get(json_array_get(json_object_get(doc, "vms"), 0), "send_to_eoi");
	assert_int_equal(json_integer_value(json_object_get(eoi, "count")), 200);
	assert_true(json_is_null(
		json_object_get(json_array_get(json_object_get(doc, "vms"), 1), "send_to_eoi")));
	json_decref(doc);

	/* without per-vCPU histograms the rows carry no latency at all */
	for (size_t j = 0; j < 3; j++)
		lat[j].vcpu = IPIV_LAT_VM_WIDE;
	lat[1].h.sum_ns += lat[0].h.sum_ns; /* rows are unique per (kind, sub, vcpu) */
	lat[1].h.count += lat[0].h.count;
	lat[1].h.buckets[hist_bucket(10000)] += lat[0].h.buckets[hist_bucket(10000)];
	web->lat = lat + 1;
	web->n_lat = 2;
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	for (size_t i = 0; i < 3; i++) {
		json_t *row = json_array_get(json_object_get(doc, "vcpu_rows"), i);

		assert_null(json_object_get(row, "send_to_eoi"));
		assert_null(json_object_get(row, "latency"));
	}
	eoi = json_object_get(json_object_get(json_object_get(doc, "latency"), "send_to_eoi"),
			      "x2apic_msr");
	assert_int_equal(json_integer_value(json_object_get(eoi, "count")), 200);
	json_decref(doc);
	free(lat);
	free(f);
}

/* The sender's exits per VM: every one under sender_exit, those KVM's exit fastpath sent also
 * under sender_exit_fastpath (which /metrics has host-wide only). */
static void test_sender_exit_fastpath_document(void **state)
{
	struct fixture *f = fixture_new();
	struct ipiv_vm_stats *web = &f->vms[0];
	struct ipiv_lat_hist lat[2] = {
		{.kind = IPIV_LAT_EXIT, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = IPIV_LAT_VM_WIDE},
		{.kind = IPIV_LAT_EXIT_FASTPATH,
		 .sub = IPIV_PATH_X2APIC_MSR,
		 .vcpu = IPIV_LAT_VM_WIDE},
	};
	json_t *doc, *latency;

	for (int i = 0; i < 5; i++)
		latency_add(&lat[0].h, 1000 + 1000 * i);
	for (int i = 0; i < 3; i++)
		latency_add(&lat[1].h, 1000 + 1000 * i);
	web->lat = lat;
	web->n_lat = 2;
	web->latency_enabled = true;
	doc = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	latency = json_object_get(doc, "latency");
	assert_int_equal(
		json_integer_value(json_object_get(
			json_object_get(json_object_get(latency, "sender_exit"), "x2apic_msr"),
			"count")),
		5);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_object_get(latency, "sender_exit_fastpath"),
						 "x2apic_msr"),
				 "sum_ns")),
			 6000);
	json_decref(doc);
	free(f);
}

/* /api/v1/vms?histograms=send_to_eoi: each summary's send->EOI gets the buckets the detail
 * writes, merged over paths and vCPUs; a VM without observations stays null; without the
 * parameter no buckets; an unknown value is refused. */
static void test_vms_histograms(void **state)
{
	struct fixture *f = fixture_new();
	struct ipiv_lat_hist *lat = calloc(3, sizeof(*lat));
	json_t *doc, *detail, *eoi, *b, *pair;
	unsigned hists = 99;
	size_t i;

	assert_non_null(lat);
	/* send->EOI over two paths and two vCPUs: the list merges all three rows */
	lat[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = 0};
	lat[1] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = 1};
	lat[2] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_XAPIC_MMIO, .vcpu = 1};
	for (int k = 0; k < 50; k++) {
		latency_add(&lat[0].h, 10000);
		latency_add(&lat[1].h, 10000);
		latency_add(&lat[2].h, 40000);
	}
	latency_add(&lat[2].h, 60ull * 1000000000ull); /* the overflow bucket: edge -1 */
	f->vms[0].lat = lat;
	f->vms[0].n_lat = 3;
	f->vms[0].latency_enabled = true;

	assert_int_equal(api_vms_histograms(NULL, &hists), 0);
	assert_int_equal(hists, 0);
	assert_int_equal(api_vms_histograms("send_to_eoi", &hists), 0);
	assert_int_equal(hists, API_VMS_HIST_SEND_TO_EOI);
	assert_int_equal(api_vms_histograms("", &hists), -EINVAL);
	assert_int_equal(api_vms_histograms("SEND_TO_EOI", &hists), -EINVAL);
	assert_int_equal(api_vms_histograms("send_to_eoi,halt", &hists), -EINVAL);

	doc = api_vms_with(&f->snap, f->names, ID_KEY, API_VMS_HIST_SEND_TO_EOI);
	assert_non_null(doc);
	eoi = json_object_get(json_array_get(json_object_get(doc, "vms"), 0), "send_to_eoi");
	assert_int_equal(json_integer_value(json_object_get(eoi, "count")), 151);
	b = json_object_get(eoi, "buckets");
	assert_int_equal(json_array_size(b), 3);
	json_array_foreach(b, i, pair)
	{
		static const json_int_t count[] = {100, 50, 1};

		assert_int_equal(json_integer_value(json_array_get(pair, 1)), count[i]);
	}
	assert_int_equal(json_integer_value(json_array_get(json_array_get(b, 0), 0)),
			 (json_int_t)hist_bucket_hi(hist_bucket(10000)));
	assert_int_equal(json_integer_value(json_array_get(json_array_get(b, 2), 0)), -1);
	/* the same pairs as the detail writes for one path (the encoding is shared) */
	detail = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	assert_true(json_equal(
		json_array_get(b, 0),
		json_array_get(
			json_object_get(
				json_object_get(json_object_get(json_object_get(detail, "latency"),
								"send_to_eoi"),
						"x2apic_msr"),
				"buckets"),
			0)));
	/* no observations: null, as without the parameter */
	assert_true(json_is_null(
		json_object_get(json_array_get(json_object_get(doc, "vms"), 1), "send_to_eoi")));
	json_decref(detail);
	json_decref(doc);

	doc = api_vms(&f->snap, f->names, ID_KEY);
	eoi = json_object_get(json_array_get(json_object_get(doc, "vms"), 0), "send_to_eoi");
	assert_int_equal(json_integer_value(json_object_get(eoi, "count")), 151);
	assert_null(json_object_get(eoi, "buckets"));
	json_decref(doc);
	free(lat);
	free(f);
}

/* Every document of the fixture (with latency on "web"), as clients receive them. */
static void test_golden(void **state)
{
	struct fixture *f = fixture_new();
	struct ipiv_lat_hist *lat = calloc(2, sizeof(*lat));
	json_t *docs[5];
	static const char *const files[5] = {"api-vms.json", "api-vm-web.json", "api-vm-amd.json",
					     "api-status.json", "api-vms-histograms.json"};

	assert_non_null(lat);
	lat[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = IPIV_LAT_VM_WIDE};
	lat[1] = (struct ipiv_lat_hist){.kind = IPIV_LAT_HALT, .sub = 1, .vcpu = IPIV_LAT_VM_WIDE};
	for (int i = 0; i < 100; i++) {
		latency_add(&lat[0].h, 10000 + 100 * i);
		latency_add(&lat[1].h, 500000);
	}
	f->vms[0].lat = lat;
	f->vms[0].n_lat = 2;
	f->vms[0].latency_enabled = true;
	f->vms[0].lat_unmatched[IPIV_UNM_NMI] = 7;
	docs[0] = api_vms(&f->snap, f->names, ID_KEY);
	docs[1] = api_vm_detail(&f->snap, f->names, ID_KEY, "web");
	docs[2] = api_vm_detail(&f->snap, f->names, ID_KEY, f->names[1]);
	docs[3] = api_status(&f->snap, "1.2.3-test");
	docs[4] = api_vms_with(&f->snap, f->names, ID_KEY, API_VMS_HIST_SEND_TO_EOI);
	for (int i = 0; i < 5; i++) {
		char *text = dump(docs[i]);
		size_t len = strlen(text);

		text = realloc(text, len + 2);
		assert_non_null(text);
		memcpy(text + len, "\n", 2);
		golden_check(files[i], text, len + 1);
		free(text);
		json_decref(docs[i]);
	}
	free(lat);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_id_is_stable_and_opaque),
		cmocka_unit_test(test_vms_document),
		cmocka_unit_test(test_vm_detail_document),
		cmocka_unit_test(test_vm_lookup),
		cmocka_unit_test(test_id_wins_over_a_name_that_spells_it),
		cmocka_unit_test(test_status_document),
		cmocka_unit_test(test_no_kernel_pointer_in_json),
		cmocka_unit_test(test_identity_round_trips),
		cmocka_unit_test(test_hostile_name_round_trips),
		cmocka_unit_test(test_latency_document),
		cmocka_unit_test(test_sender_exit_fastpath_document),
		cmocka_unit_test(test_vms_histograms),
		cmocka_unit_test(test_golden),
	};

	return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
