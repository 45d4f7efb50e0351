/* Unit tests for daemon/ipivd/metrics.c: a hand-made collector snapshot (VMX and SVM guests, a
 * hostile VM name, every kind of cell) rendered in both formats and checked line by line,
 * parsed for duplicate series and split families, and fed to `promtool check metrics`. */
#include <errno.h>
#include <math.h>
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

#include <asm/kvm.h> /* the *_VECTOR numbers SVM_EXIT_REASONS uses */
#include <asm/svm.h>
#include <asm/vmx.h>

#include "icr.h"
#include "send_cells.h"
#include "ipiv.h"
#include "ipivd/api.h"
#include "ipivd/metrics.h"
#include "ipivd/metrics_native.h"
#include "metrics.pb-c.h"
#include "naming.h"
#include "golden.h"

/* Kernel addresses as the collector reports them; they must never reach the output. */
#define VM_WEB	0xffff8881a2b3c000ull
#define VM_ODD	0xffff8881a2b3d000ull
#define VM_IDLE 0xffff8881a2b3e000ull

/* A name that needs every label escape, plus a byte that is not UTF-8 and one that is. */
#define ODD_NAME                    \
	"we\"ird\\name\nline2 \xff" \
	" caf\xc3\xa9"
#define ODD_LABEL "we\\\"ird\\\\name\\nline2 \xef\xbf\xbd caf\xc3\xa9"

#define FIXED(vec) ((uint32_t)(vec) | (ICR_DM_FIXED << ICR_DELIVERY_SHIFT))

struct fixture {
	struct ipiv_snapshot snap;
	struct ipiv_vm_stats vms[3];
	struct ipiv_send_cell web_sends[5], odd_sends[1];
	struct ipiv_exit_cell web_exits[4], odd_exits[3];
	struct ipiv_vcpu_stats web_vcpus[3], odd_vcpus[1];
	struct ipiv_matrix_cell web_matrix[3];
	struct ipiv_probe probes[4];
	struct ipiv_prog_stats progs[2];
	struct ipiv_lat_hist host_lat[3];
	const char *names[3];
};

/* web: an Intel guest with x2APIC unicast/multicast, xAPIC NMI broadcast, INIT broadcast
 * and PV sends; odd: an AMD guest with AVIC failures and a hostile name; idle: all zero. */
static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ipiv_vm_stats *web = &f->vms[0], *odd = &f->vms[1], *idle = &f->vms[2];

	assert_non_null(f);
	web->vm = VM_WEB;
	web->pid = 4242;
	snprintf(web->stats_id, sizeof(web->stats_id), "kvm-4242");
	web->alive = true;
	web->vcpu_count = 2;
	web->send_cells = f->web_sends;
	test_add_send(web, f->web_sends, IPIV_PATH_X2APIC_MSR, icr_classify(FIXED(0xfd), 3, 2),
		      1000);
	test_add_send(web, f->web_sends, IPIV_PATH_X2APIC_MSR,
		      icr_classify(FIXED(0xfd) | ICR_DEST_LOGICAL, 0x0001000f, 2), 7);
	test_add_send(web, f->web_sends, IPIV_PATH_XAPIC_MMIO,
		      icr_classify((ICR_DM_NMI << ICR_DELIVERY_SHIFT) |
					   (ICR_SH_ALL_BUT_SELF << ICR_SHORTHAND_SHIFT),
				   0xff, 1),
		      3);
	test_add_send(web, f->web_sends, IPIV_PATH_APIC_WRITE,
		      icr_classify(ICR_DM_INIT << ICR_DELIVERY_SHIFT, 0xffffffffu, 2), 2);
	test_add_send(web, f->web_sends, IPIV_PATH_PV_KVM, icr_classify(FIXED(0xfb), 5, 2), 50);
	web->counts.received_by_delivery[ICR_DM_FIXED] = 900;
	web->counts.received_by_delivery[ICR_DM_NMI] = 3;
	web->counts.received = 903;
	web->counts.eois = 800;
	web->counts.wakeups = 40;
	web->counts.wakeups_halted = 30;
	web->counts.halt_ns = 1500000000ull;
	web->exits = f->web_exits;
	f->web_exits[0] = (struct ipiv_exit_cell){IPIV_ISA_VMX, 12, 30};
	f->web_exits[1] = (struct ipiv_exit_cell){IPIV_ISA_VMX, 32, 1007};
	f->web_exits[2] = (struct ipiv_exit_cell){IPIV_ISA_VMX, 56, 2};
	f->web_exits[3] = (struct ipiv_exit_cell){IPIV_ISA_VMX, 77, 4};
	web->n_exits = 4;
	web->counts.exits = 30 + 1007 + 2 + 4;
	web->inhibits_known = true;
	web->inhibits = (1ull << 8) | (1ull << 13);
	web->inhibit_set[8] = 3;
	web->inhibit_clear[8] = 2;
	web->inhibit_set[13] = 1;
	web->vcpus = f->web_vcpus;
	f->web_vcpus[0] = (struct ipiv_vcpu_stats){.vcpu_id = 0, .tid = 4243};
	f->web_vcpus[0].counts.sent = 600;
	f->web_vcpus[0].counts.received = 300;
	f->web_vcpus[0].counts.wakeups = 25;
	f->web_vcpus[0].apicv_active = IPIV_APICV_ACTIVE;
	f->web_vcpus[1] = (struct ipiv_vcpu_stats){
		.vcpu_id = 1, .tid = 4244, .apicv_active = IPIV_APICV_INACTIVE};
	f->web_vcpus[1].counts.sent = 462;
	f->web_vcpus[1].counts.received = 603;
	f->web_vcpus[1].counts.wakeups = 15;
	f->web_vcpus[2] = (struct ipiv_vcpu_stats){.vcpu_id = IPIV_VCPU_NONE};
	f->web_vcpus[2].counts.received = 0;
	f->web_vcpus[2].counts.sent = 0;
	web->n_vcpus = 3;
	web->matrix = f->web_matrix;
	f->web_matrix[0] = (struct ipiv_matrix_cell){0, 1, 600};
	f->web_matrix[1] = (struct ipiv_matrix_cell){1, 0, 300};
	f->web_matrix[2] = (struct ipiv_matrix_cell){IPIV_VCPU_NONE, 0, 3};
	web->n_matrix = 3;

	odd->vm = VM_ODD;
	odd->pid = 5151;
	odd->alive = true;
	odd->vcpu_count = 1;
	odd->send_cells = f->odd_sends;
	test_add_send(odd, f->odd_sends, IPIV_PATH_AVIC, icr_classify(FIXED(0xec), 0, 1), 20);
	odd->counts.avic_incomplete[IPIV_AVIC_TARGET_NOT_RUNNING] = 20;
	odd->counts.avic_incomplete[IPIV_AVIC_INVALID_TARGET] = 1;
	/* what kernel-patches/' tracepoints count: AVIC on odd, IPIv on web */
	odd->counts.avic_running_set = 40;
	odd->counts.avic_running_cleared = 39;
	odd->counts.state_ns[IPIV_VSTATE_NOT_RUNNING] = 2500000000ull;
	odd->counts.state_ns[IPIV_VSTATE_PREEMPTED] = 250000000ull;
	web->counts.icr_write_traps[IPIV_TRAP_LOGICAL] = 700;
	web->counts.icr_write_traps[IPIV_TRAP_SHORTHAND] = 3;
	web->counts.x2apic_fastpath_handled = 9;
	web->counts.posted_wakeups = 12;
	web->counts.posted_wakeups_ipi = 10;
	web->counts.pi_descriptor_updates[IPIV_PI_MIGRATE] = 4;
	web->counts.pi_descriptor_updates[IPIV_PI_BLOCK] = 12;
	web->counts.state_ns[IPIV_VSTATE_BLOCKED] = 1500000000ull;
	odd->exits = f->odd_exits;
	f->odd_exits[0] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x078, 5};
	f->odd_exits[1] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x07f, 1};
	f->odd_exits[2] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x401, 21};
	odd->n_exits = 3;
	odd->counts.exits = 27;
	odd->vcpus = f->odd_vcpus;
	f->odd_vcpus[0] = (struct ipiv_vcpu_stats){.vcpu_id = 0, .tid = 5152};
	f->odd_vcpus[0].counts.sent = 20;
	odd->n_vcpus = 1;

	idle->vm = VM_IDLE;
	idle->pid = 6000;
	idle->alive = false;

	f->probes[0] = (struct ipiv_probe){"kvm_apic_ipi", "ipiv_apic_ipi", false, true, 0};
	f->probes[1] =
		(struct ipiv_probe){"kvm_apic_accept_irq", "ipiv_apic_accept_irq", false, true, 0};
	f->probes[2] = (struct ipiv_probe){"kvm_avic_incomplete_ipi", "ipiv_avic_incomplete_ipi",
					   true, false, -ENOENT};
	f->probes[3] = (struct ipiv_probe){"kvm_hv_send_ipi", "ipiv_hv_send_ipi", true, true, 0};
	snprintf(f->progs[0].name, sizeof(f->progs[0].name), "ipiv_apic_ipi");
	f->progs[0].run_cnt = 1234;
	f->progs[0].run_time_ns = 2500000;
	snprintf(f->progs[1].name, sizeof(f->progs[1].name), "ipiv_apicv_inhibit_changed");
	f->progs[1].run_cnt = 6;
	f->progs[1].run_time_ns = 3000;

	f->snap.taken_ns = 123456789;
	f->snap.vms = f->vms;
	f->snap.n_vms = 3;
	f->snap.self.probes = f->probes;
	f->snap.self.n_probes = 4;
	f->snap.self.n_attached = 3;
	f->snap.self.progs = f->progs;
	f->snap.self.n_progs = 2;
	f->snap.self.bpf_stats_enabled = true;
	f->snap.self.drops[IPIV_DROP_COUNTERS_FULL] = 5;
	f->snap.self.drops[IPIV_DROP_EOI_DUPLICATE] = 9;
	f->snap.self.vms_discovered = 4;
	f->snap.self.vms_reclaimed = 1;
	f->snap.self.polls = 77;
	/* the sender's exit cost host-wide: x2APIC exits, 3 of 5 sent by the fastpath, and PV */
	f->host_lat[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_EXIT, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = IPIV_LAT_VM_WIDE};
	f->host_lat[1] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_EXIT, .sub = IPIV_PATH_PV_KVM, .vcpu = IPIV_LAT_VM_WIDE};
	f->host_lat[2] = (struct ipiv_lat_hist){.kind = IPIV_LAT_EXIT_FASTPATH,
						.sub = IPIV_PATH_X2APIC_MSR,
						.vcpu = IPIV_LAT_VM_WIDE};
	for (int i = 0; i < 3; i++) {
		latency_add(&f->host_lat[0].h, 900 + 10 * i);
		latency_add(&f->host_lat[2].h, 900 + 10 * i);
	}
	latency_add(&f->host_lat[0].h, 20000);
	latency_add(&f->host_lat[0].h, 300000);
	latency_add(&f->host_lat[1].h, 5000);
	f->snap.host_lat = f->host_lat;
	f->snap.n_host_lat = 3;
	f->names[0] = "web";
	f->names[1] = ODD_NAME;
	f->names[2] = "idle";
	return f;
}

static char *render_opts(const struct fixture *f, enum expo_format format,
			 const struct metrics_opts *opts)
{
	struct expo *e = NULL;
	char *body = NULL;
	size_t len = 0;

	assert_int_equal(expo_new(format, &e), 0);
	assert_int_equal(metrics_write(e, &f->snap, f->names, opts, 0.25), 0);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	assert_int_equal(strlen(body), len);
	return body;
}

static char *render(const struct fixture *f, enum expo_format format, bool per_vcpu)
{
	struct metrics_opts opts = {.per_vcpu = per_vcpu,
				    .version = "1.2.3-test",
				    .have_last_scrape = true,
				    .last_scrape_bytes = 4096};

	return render_opts(f, format, &opts);
}

static bool has_line(const char *body, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = body; (p = strstr(p, line)); p++)
		if ((p == body || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define assert_line(body, line)                                                           \
	do {                                                                              \
		if (!has_line((body), (line)))                                            \
			fail_msg("line missing: %s\n--- output ---\n%s", (line), (body)); \
	} while (0)

#define assert_no_line(body, line)                               \
	do {                                                     \
		if (has_line((body), (line)))                    \
			fail_msg("unexpected line: %s", (line)); \
	} while (0)

/* Lines starting with prefix. */
static size_t count_prefix(const char *body, const char *prefix)
{
	size_t n = 0, lp = strlen(prefix);

	for (const char *p = body; *p;) {
		const char *nl = strchr(p, '\n');

		if (!strncmp(p, prefix, lp))
			n++;
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Parses an exposition strictly enough to catch what scrapers reject: every sample's series
 * (name plus label set, labels in the order written) is unique, label values use only the
 * escapes \\ \" \n, every sample belongs to the family whose TYPE came last, and no family
 * TYPE appears twice. Returns the number of samples.
 */
static size_t check_exposition(const char *body, enum expo_format format)
{
	bool om = format == EXPO_OPENMETRICS_1_0_0;
	char *copy = strdup(body), *line, *save = NULL;
	char **series = calloc(strlen(body) / 8 + 1, sizeof(char *));
	char **types = calloc(strlen(body) / 8 + 1, sizeof(char *));
	char family[256] = "", family_type[32] = "";
	size_t n_series = 0, n_types = 0;
	bool eof = false;

	assert_non_null(copy);
	assert_non_null(series);
	assert_non_null(types);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *p = line, *end;
		char name[256];
		size_t nl;

		assert_false(eof);
		if (!strcmp(line, "# EOF")) {
			assert_true(om);
			eof = true;
			continue;
		}
		if (!strncmp(line, "# HELP ", 7))
			continue;
		if (!strncmp(line, "# TYPE ", 7)) {
			assert_int_equal(sscanf(line, "# TYPE %255s %31s", family, family_type), 2);
			types[n_types++] = strdup(family);
			continue;
		}
		assert_int_not_equal(line[0], '#');
		nl = strcspn(p, "{ ");
		assert_true(nl > 0 && nl < sizeof(name));
		memcpy(name, p, nl);
		name[nl] = '\0';
		/* The sample belongs to the last TYPE: same name, or its _total / _info sample,
		 * or a histogram's _bucket, _sum or _count. */
		if (strcmp(name, family)) {
			char want[300];
			size_t fl = strlen(family);
			bool hist_sample =
				!strcmp(family_type, "histogram") && !strncmp(name, family, fl) &&
				(!strcmp(name + fl, "_bucket") || !strcmp(name + fl, "_sum") ||
				 !strcmp(name + fl, "_count"));

			snprintf(want, sizeof(want), "%s%s", family,
				 !strcmp(family_type, "counter") ? "_total"
				 : !strcmp(family_type, "info")	 ? "_info"
								 : "");
			if (!hist_sample && (!om || strcmp(name, want)))
				fail_msg("sample %s outside its family (last TYPE %s)", name,
					 family);
		}
		p += nl;
		if (*p == '{') {
			p++;
			while (*p != '}') {
				size_t ln = strspn(p, "abcdefghijklmnopqrstuvwxyz"
						      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");

				assert_true(ln > 0);
				p += ln;
				assert_int_equal(*p++, '=');
				assert_int_equal(*p++, '"');
				while (*p != '"') {
					assert_int_not_equal(*p, '\0');
					if (*p == '\\') {
						p++;
						assert_non_null(strchr("\\\"n", *p));
						assert_int_not_equal(*p, '\0');
					}
					p++;
				}
				p++;
				if (*p == ',')
					p++;
				else
					assert_int_equal(*p, '}');
			}
			p++;
		}
		end = p;
		assert_int_equal(*p++, ' ');
		assert_true(*p != '\0');
		series[n_series] = strndup(line, (size_t)(end - line));
		n_series++;
	}
	if (om)
		assert_true(eof);

	qsort(series, n_series, sizeof(*series), cmp_str);
	for (size_t i = 1; i < n_series; i++)
		if (!strcmp(series[i - 1], series[i]))
			fail_msg("duplicate series %s", series[i]);
	qsort(types, n_types, sizeof(*types), cmp_str);
	for (size_t i = 1; i < n_types; i++)
		if (!strcmp(types[i - 1], types[i]))
			fail_msg("family %s typed twice", types[i]);
	for (size_t i = 0; i < n_series; i++)
		free(series[i]);
	for (size_t i = 0; i < n_types; i++)
		free(types[i]);
	free(series);
	free(types);
	free(copy);
	return n_series;
}

static void test_exit_reason_names(void **state)
{
	char buf[METRICS_EXIT_REASON_LEN];

	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 12, buf, sizeof(buf)), "hlt");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 1, buf, sizeof(buf)),
			    "external_interrupt");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 32, buf, sizeof(buf)), "msr_write");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 45, buf, sizeof(buf)), "eoi_induced");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 56, buf, sizeof(buf)), "apic_write");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x078, buf, sizeof(buf)), "hlt");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x07c, buf, sizeof(buf)), "msr");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x401, buf, sizeof(buf)),
			    "avic_incomplete_ipi");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x402, buf, sizeof(buf)),
			    "avic_unaccelerated_access");

	/* Every other name the hand-kept table had, unchanged: users' queries name them. */
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 0, buf, sizeof(buf)),
			    "exception_nmi");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 2, buf, sizeof(buf)), "triple_fault");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 7, buf, sizeof(buf)),
			    "interrupt_window");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 8, buf, sizeof(buf)), "nmi_window");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 10, buf, sizeof(buf)), "cpuid");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 18, buf, sizeof(buf)), "vmcall");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 28, buf, sizeof(buf)), "cr_access");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 30, buf, sizeof(buf)),
			    "io_instruction");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 31, buf, sizeof(buf)), "msr_read");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 40, buf, sizeof(buf)),
			    "pause_instruction");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 44, buf, sizeof(buf)), "apic_access");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 48, buf, sizeof(buf)),
			    "ept_violation");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 49, buf, sizeof(buf)),
			    "ept_misconfig");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 52, buf, sizeof(buf)),
			    "preemption_timer");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 85, buf, sizeof(buf)),
			    "msr_write_imm");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x060, buf, sizeof(buf)), "intr");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x061, buf, sizeof(buf)), "nmi");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x064, buf, sizeof(buf)), "vintr");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x072, buf, sizeof(buf)), "cpuid");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x077, buf, sizeof(buf)), "pause");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x07b, buf, sizeof(buf)), "ioio");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x081, buf, sizeof(buf)), "vmmcall");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x400, buf, sizeof(buf)), "npf");

	/* Reasons the hand-kept table lacked, seen as numbers on a real nested SVM host. */
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0, buf, sizeof(buf)), "read_cr0");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 4, buf, sizeof(buf)), "read_cr4");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 16, buf, sizeof(buf)), "write_cr0");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 20, buf, sizeof(buf)), "write_cr4");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 32, buf, sizeof(buf)), "read_dr0");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 48, buf, sizeof(buf)), "write_dr0");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 70, buf, sizeof(buf)), "ud_excp");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 101, buf, sizeof(buf)),
			    "cr0_sel_write");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 115, buf, sizeof(buf)), "rsm");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 137, buf, sizeof(buf)), "wbinvd");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0x07f, buf, sizeof(buf)), "shutdown");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 48, buf, sizeof(buf)),
			    "ept_violation");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 29, buf, sizeof(buf)), "dr_access");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 54, buf, sizeof(buf)), "wbinvd");
	/* SVM_EXIT_ERR is -1: the 0xffffffff a VMEXIT_INVALID leaves in a 32-bit reason */
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0xffffffffu, buf, sizeof(buf)),
			    "invalid_guest_state");

	/* Unknown reasons, and one ISA's codes looked up in the other's table, are numbers. */
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 77, buf, sizeof(buf)), "77");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 0xffff, buf, sizeof(buf)), "65535");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 0x401, buf, sizeof(buf)), "1025");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 12, buf, sizeof(buf)), "12");
	assert_string_equal(metrics_exit_reason(IPIV_ISA_SVM, 0xfffffffeu, buf, sizeof(buf)),
			    "4294967294");
	assert_ptr_equal(metrics_exit_reason(IPIV_ISA_VMX, 77, buf, sizeof(buf)), buf);
	assert_ptr_equal(metrics_exit_reason(IPIV_ISA_VMX, 12, buf, sizeof(buf)), buf);
	/* a name that does not fit the buffer stays a number rather than a cut name */
	assert_string_equal(metrics_exit_reason(IPIV_ISA_VMX, 1, buf, 8), "1");
}

struct kernel_exit_name {
	uint32_t reason;
	const char *name;
};

/* Non-empty, a letter first, then [a-z0-9_] only: a lower-case name, not a number. */
static void assert_label_name(const char *name)
{
	assert_true(name[0] >= 'a' && name[0] <= 'z');
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			fail_msg("exit reason label \"%s\" is not label-safe", name);
}

/* Every reason in the kernel's table gets a name, and two reasons never share one (that
 * would be two series with one label set). */
static void assert_kernel_table(uint32_t isa, const struct kernel_exit_name *t, size_t n)
{
	char(*names)[METRICS_EXIT_REASON_LEN] = calloc(n, sizeof(*names));

	assert_non_null(names);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(metrics_exit_reason(isa, t[i].reason, names[i], sizeof(names[i])),
				 names[i]);
		assert_label_name(names[i]);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(names[i], names[j]) && t[i].reason != t[j].reason)
				fail_msg("exit reasons %u and %u are both \"%s\"", t[j].reason,
					 t[i].reason, names[i]);
	}
	free(names);
}

static void test_exit_reason_kernel_tables(void **state)
{
	static const struct kernel_exit_name vmx[] = {VMX_EXIT_REASONS};
	static const struct kernel_exit_name svm[] = {SVM_EXIT_REASONS};

	assert_kernel_table(IPIV_ISA_VMX, vmx, sizeof(vmx) / sizeof(vmx[0]));
	assert_kernel_table(IPIV_ISA_SVM, svm, sizeof(svm) / sizeof(svm[0]));
}

/* Accepted mode 3 is KVM's PV kick; an ICR write of mode 3 keeps the ICR's "reserved3". */
static void test_pv_kick_delivery(void **state)
{
	struct fixture *f = fixture_new();
	char *body;

	f->vms[1].counts.received_by_delivery[ICR_DM_PV_KICK] = 14;
	f->odd_sends[0].class = icr_classify(ICR_DM_RESERVED3 << ICR_DELIVERY_SHIFT, 0, 1);
	body = render(f, EXPO_TEXT_0_0_4, false);
	assert_line(body,
		    "ipiv_interrupts_accepted_total{vm=\"" ODD_LABEL "\",delivery=\"pv_kick\"} 14");
	assert_line(body, "ipiv_ipis_sent_total{vm=\"" ODD_LABEL "\",path=\"avic_incomplete\","
			  "delivery=\"reserved3\",dest_mode=\"physical\",shorthand=\"none\","
			  "dest=\"unicast\"} 20");
	assert_null(strstr(body, "delivery=\"reserved3\"} 14"));
	free(body);
	free(f);
}

/* ipiv_vm_info's sample of fixture VM i, its vm label as written: its id (key 0, as render
 * gives), its VMM, and its UUID when it has one. */
static const char *vm_info_line(const struct fixture *f, size_t i, const char *vm_label, char *line,
				size_t size)
{
	const struct ipiv_vm_stats *vm = &f->vms[i];
	char id[17];

	api_vm_id(vm->vm, 0, id);
	snprintf(line, size, "ipiv_vm_info{vm=\"%s\",vm_id=\"%s\",vmm=\"%s\"%s%s%s} 1", vm_label,
		 id, vm_vmm_name(vm->vmm), vm->uuid[0] ? ",uuid=\"" : "", vm->uuid,
		 vm->uuid[0] ? "\"" : "");
	return line;
}

static void test_vm_families(void **state)
{
	struct fixture *f = fixture_new();
	char *body, line[256];

	f->vms[0].vmm = VM_VMM_LIBVIRT_QEMU;
	snprintf(f->vms[0].uuid, sizeof(f->vms[0].uuid), "0b6e0f7e-1d3a-4c55-8d2f-9a1b2c3d4e5f");
	body = render(f, EXPO_TEXT_0_0_4, false);
	assert_line(body, "# TYPE ipiv_vm_info gauge");
	assert_line(body, vm_info_line(f, 0, "web", line, sizeof(line)));
	assert_non_null(strstr(line, ",vmm=\"libvirt-qemu\",uuid=\"0b6e0f7e-1d3a-4c55-8d2f-"));
	assert_line(body, vm_info_line(f, 2, "idle", line, sizeof(line)));
	assert_non_null(strstr(line, ",vmm=\"unknown\"} 1")); /* no uuid label: none given */
	assert_line(body, "# TYPE ipiv_vm_vcpus gauge");
	assert_line(body, "ipiv_vm_vcpus{vm=\"web\"} 2.0");
	assert_line(body, "ipiv_vm_vcpus{vm=\"idle\"} 0.0");
	assert_int_equal(count_prefix(body, "ipiv_vm_info{"), 3);
	assert_int_equal(count_prefix(body, "ipiv_vm_vcpus{"), 3);
	/* A PID is never a label value, and kernel addresses never appear. */
	assert_null(strstr(body, "4242"));
	assert_null(strstr(body, "5151"));
	assert_null(strstr(body, "ffff8881"));
	assert_null(strstr(body, "kvm-4242"));
	free(body);
	free(f);
}

/* sum without (path, delivery, dest_mode, shorthand, dest) (ipiv_ipis_sent_total{vm=label,
 * delivery="fixed", dest_mode="physical", shorthand="none", dest!="broadcast"}) in body;
 * label is the escaped label value. */
static uint64_t eligible_sum(const char *body, const char *label)
{
	static const char *const want[] = {"delivery=\"fixed\",", "dest_mode=\"physical\",",
					   "shorthand=\"none\","};
	char prefix[256];
	size_t lp =
		(size_t)snprintf(prefix, sizeof(prefix), "ipiv_ipis_sent_total{vm=\"%s\",", label);
	uint64_t sum = 0;

	for (const char *p = body; *p;) {
		const char *nl = strchr(p, '\n');
		const char *end = strchr(p, '}');
		bool match = !strncmp(p, prefix, lp) && end && (!nl || end < nl);

		for (size_t i = 0; match && i < sizeof(want) / sizeof(want[0]); i++) {
			const char *hit = strstr(p + lp, want[i]);

			match = hit && hit < end;
		}
		if (match) {
			const char *broadcast = strstr(p + lp, "dest=\"broadcast\"");

			if (!broadcast || broadcast > end)
				sum += strtoull(end + 1, NULL, 10);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return sum;
}

static void test_send_families(void **state)
{
	struct fixture *f = fixture_new();
	char *body = render(f, EXPO_TEXT_0_0_4, false);

	assert_line(body, "# TYPE ipiv_ipis_sent_total counter");
	assert_line(body, "ipiv_ipis_sent_total{vm=\"web\",path=\"x2apic_msr\",delivery=\"fixed\","
			  "dest_mode=\"physical\",shorthand=\"none\",dest=\"unicast\"} 1000");
	assert_line(body, "ipiv_ipis_sent_total{vm=\"web\",path=\"x2apic_msr\",delivery=\"fixed\","
			  "dest_mode=\"logical\",shorthand=\"none\",dest=\"multicast\"} 7");
	assert_line(body,
		    "ipiv_ipis_sent_total{vm=\"web\",path=\"xapic_mmio\",delivery=\"nmi\","
		    "dest_mode=\"physical\",shorthand=\"all_but_self\",dest=\"broadcast\"} 3");
	assert_line(body, "ipiv_ipis_sent_total{vm=\"web\",path=\"apic_write_trap\","
			  "delivery=\"init\",dest_mode=\"physical\",shorthand=\"none\","
			  "dest=\"broadcast\"} 2");
	assert_line(body, "ipiv_ipis_sent_total{vm=\"web\",path=\"pv_kvm\",delivery=\"fixed\","
			  "dest_mode=\"physical\",shorthand=\"none\",dest=\"unicast\"} 50");
	assert_line(body, "ipiv_ipis_sent_total{vm=\"" ODD_LABEL "\",path=\"avic_incomplete\","
			  "delivery=\"fixed\",dest_mode=\"physical\",shorthand=\"none\","
			  "dest=\"unicast\"} 20");
	/* Only non-zero cells: the idle VM sends nothing. */
	assert_int_equal(count_prefix(body, "ipiv_ipis_sent_total{"), 6);

	/* No ipiv_ipis_sent_accel_eligible_total: the query docs/metrics.md gives for it, run on
	 * the labels written, is each VM's sent_accel_eligible */
	assert_null(strstr(body, "accel_eligible"));
	assert_int_equal(eligible_sum(body, "web"), f->vms[0].counts.sent_accel_eligible);
	assert_int_equal(eligible_sum(body, "web"), 1050);
	assert_int_equal(eligible_sum(body, ODD_LABEL), f->vms[1].counts.sent_accel_eligible);
	assert_int_equal(eligible_sum(body, ODD_LABEL), 20);
	assert_int_equal(f->vms[2].counts.sent_accel_eligible, 0);
	assert_int_equal(eligible_sum(body, "idle"), 0);
	free(body);
	free(f);
}

static void test_receive_and_halt_families(void **state)
{
	struct fixture *f = fixture_new();
	char *body = render(f, EXPO_TEXT_0_0_4, false);

	assert_line(body, "# TYPE ipiv_interrupts_accepted_total counter");
	assert_line(body, "ipiv_interrupts_accepted_total{vm=\"web\",delivery=\"fixed\"} 900");
	assert_line(body, "ipiv_interrupts_accepted_total{vm=\"web\",delivery=\"nmi\"} 3");
	/* fixed is always there (a zero rate is information); other modes only when seen */
	assert_line(body, "ipiv_interrupts_accepted_total{vm=\"idle\",delivery=\"fixed\"} 0");
	assert_int_equal(count_prefix(body, "ipiv_interrupts_accepted_total{"), 4);

	assert_line(body, "# TYPE ipiv_eois_total counter");
	assert_line(body, "ipiv_eois_total{vm=\"web\"} 800");
	assert_line(body, "ipiv_eois_total{vm=\"idle\"} 0");

	assert_line(body, "# TYPE ipiv_vcpu_wakeups_total counter");
	assert_line(body, "ipiv_vcpu_wakeups_total{vm=\"web\",halted=\"true\"} 30");
	assert_line(body, "ipiv_vcpu_wakeups_total{vm=\"web\",halted=\"false\"} 10");
	assert_line(body, "ipiv_vcpu_wakeups_total{vm=\"idle\",halted=\"false\"} 0");

	assert_line(body, "# TYPE ipiv_vcpu_halt_seconds_total counter");
	assert_line(body, "ipiv_vcpu_halt_seconds_total{vm=\"web\"} 1.5");
	assert_line(body, "ipiv_vcpu_halt_seconds_total{vm=\"idle\"} 0.0");
	free(body);
	free(f);
}

/* Families of the kernel-patches/ tracepoints: series only where something was counted. */
static void test_patched_families(void **state)
{
	struct fixture *f = fixture_new();
	char *body = render(f, EXPO_TEXT_0_0_4, false);

	assert_line(body, "# TYPE ipiv_icr_write_traps_total counter");
	assert_line(body, "ipiv_icr_write_traps_total{vm=\"web\",reason=\"logical\"} 700");
	assert_line(body, "ipiv_icr_write_traps_total{vm=\"web\",reason=\"shorthand\"} 3");
	assert_int_equal(count_prefix(body, "ipiv_icr_write_traps_total{"), 2);
	assert_line(body, "ipiv_x2apic_icr_fastpath_total{vm=\"web\",handled=\"true\"} 9");
	assert_line(body, "ipiv_x2apic_icr_fastpath_total{vm=\"web\",handled=\"false\"} 0");
	assert_line(body, "ipiv_posted_interrupt_wakeups_total{vm=\"web\",vector=\"ipi\"} 10");
	assert_line(body, "ipiv_posted_interrupt_wakeups_total{vm=\"web\",vector=\"other\"} 2");
	assert_line(body, "ipiv_posted_interrupt_descriptor_updates_total{vm=\"web\","
			  "trigger=\"migrate\"} 4");
	assert_line(body, "ipiv_posted_interrupt_descriptor_updates_total{vm=\"web\","
			  "trigger=\"block\"} 12");
	assert_int_equal(count_prefix(body, "ipiv_posted_interrupt_descriptor_updates_total{"), 2);
	assert_line(body, "ipiv_vcpu_state_seconds_total{vm=\"web\",state=\"blocked\"} 1.5");
	assert_line(body, "ipiv_vcpu_state_seconds_total{vm=\"" ODD_LABEL
			  "\",state=\"not_running\"} 2.5");
	assert_line(body,
		    "ipiv_vcpu_state_seconds_total{vm=\"" ODD_LABEL "\",state=\"preempted\"} 0.25");
	assert_int_equal(count_prefix(body, "ipiv_vcpu_state_seconds_total{"), 3);
	assert_line(body,
		    "ipiv_avic_running_changes_total{vm=\"" ODD_LABEL "\",running=\"true\"} 40");
	assert_line(body,
		    "ipiv_avic_running_changes_total{vm=\"" ODD_LABEL "\",running=\"false\"} 39");
	/* APICv by vCPU: web knows both of its vCPUs, one active (the other is ipiv_vm_vcpus
	 * minus this); the others know none, so have no series */
	assert_line(body, "# TYPE ipiv_vm_vcpus_apicv_active gauge");
	assert_line(body, "ipiv_vm_vcpus_apicv_active{vm=\"web\"} 1.0");
	assert_int_equal(count_prefix(body, "ipiv_vm_vcpus_apicv_active{"), 1);
	free(body);
	/* none active is a 0, not a missing series (IpivAccelerationLost tests for it) */
	f->web_vcpus[0].apicv_active = IPIV_APICV_INACTIVE;
	body = render(f, EXPO_TEXT_0_0_4, false);
	assert_line(body, "ipiv_vm_vcpus_apicv_active{vm=\"web\"} 0.0");
	/* the idle VM counted nothing: no series of these families at all */
	assert_null(strstr(body, "ipiv_icr_write_traps_total{vm=\"idle\""));
	assert_null(strstr(body, "ipiv_vcpu_state_seconds_total{vm=\"idle\""));
	free(body);
	free(f);
}

static void test_exit_avic_and_inhibit_families(void **state)
{
	struct fixture *f = fixture_new();
	char *body = render(f, EXPO_TEXT_0_0_4, false);

	assert_line(body, "# TYPE ipiv_avic_incomplete_ipis_total counter");
	assert_line(body, "ipiv_avic_incomplete_ipis_total{vm=\"" ODD_LABEL
			  "\",cause=\"target_not_running\"} 20");
	assert_line(body, "ipiv_avic_incomplete_ipis_total{vm=\"" ODD_LABEL
			  "\",cause=\"invalid_target\"} 1");
	assert_int_equal(count_prefix(body, "ipiv_avic_incomplete_ipis_total{"), 2);

	assert_line(body, "# TYPE ipiv_vm_exits_total counter");
	assert_line(body, "ipiv_vm_exits_total{vm=\"web\",isa=\"vmx\",reason=\"hlt\"} 30");
	assert_line(body, "ipiv_vm_exits_total{vm=\"web\",isa=\"vmx\",reason=\"msr_write\"} 1007");
	assert_line(body, "ipiv_vm_exits_total{vm=\"web\",isa=\"vmx\",reason=\"apic_write\"} 2");
	assert_line(body, "ipiv_vm_exits_total{vm=\"web\",isa=\"vmx\",reason=\"77\"} 4");
	assert_line(body, "ipiv_vm_exits_total{vm=\"" ODD_LABEL "\",isa=\"svm\",reason=\"hlt\"} 5");
	/* SVM_EXIT_SHUTDOWN: a number before ipivd used the kernel's table */
	assert_line(body,
		    "ipiv_vm_exits_total{vm=\"" ODD_LABEL "\",isa=\"svm\",reason=\"shutdown\"} 1");
	assert_line(body, "ipiv_vm_exits_total{vm=\"" ODD_LABEL
			  "\",isa=\"svm\",reason=\"avic_incomplete_ipi\"} 21");
	assert_int_equal(count_prefix(body, "ipiv_vm_exits_total{"), 7);

	/* Currently set reasons only, and only for VMs whose inhibits are known. */
	assert_line(body, "# TYPE ipiv_apicv_inhibited gauge");
	assert_line(body, "ipiv_apicv_inhibited{vm=\"web\",reason=\"irqwin\"} 1.0");
	assert_line(body, "ipiv_apicv_inhibited{vm=\"web\",reason=\"reason_13\"} 1.0");
	assert_int_equal(count_prefix(body, "ipiv_apicv_inhibited{"), 2);

	assert_line(body, "# TYPE ipiv_apicv_inhibit_changes_total counter");
	assert_line(body, "ipiv_apicv_inhibit_changes_total{vm=\"web\",reason=\"irqwin\","
			  "action=\"set\"} 3");
	assert_line(body, "ipiv_apicv_inhibit_changes_total{vm=\"web\",reason=\"irqwin\","
			  "action=\"clear\"} 2");
	assert_line(body, "ipiv_apicv_inhibit_changes_total{vm=\"web\",reason=\"reason_13\","
			  "action=\"set\"} 1");
	assert_int_equal(count_prefix(body, "ipiv_apicv_inhibit_changes_total{"), 3);
	free(body);
	free(f);
}

static void test_inhibits_unknown_means_no_series(void **state)
{
	struct fixture *f = fixture_new();
	char *body;

	/* A bitmap with bits but never confirmed by the tracepoint is not exposed. */
	f->vms[1].inhibits = 1;
	body = render(f, EXPO_TEXT_0_0_4, false);
	assert_null(strstr(body, "ipiv_apicv_inhibited{vm=\"" ODD_LABEL));
	assert_line(body, "# TYPE ipiv_apicv_inhibited gauge");
	free(body);
	free(f);
}

static void test_per_vcpu_families_only_with_flag(void **state)
{
	static const char *const per_vcpu[] = {"ipiv_vcpu_ipis_sent",
					       "ipiv_vcpu_interrupts_accepted",
					       "ipiv_vcpu_halt_wakeups", "ipiv_ipi_matrix"};
	struct fixture *f = fixture_new();
	char *off = render(f, EXPO_TEXT_0_0_4, false);
	char *on = render(f, EXPO_TEXT_0_0_4, true);

	for (size_t i = 0; i < 4; i++)
		assert_null(strstr(off, per_vcpu[i]));
	assert_null(strstr(off, "vcpu=\""));
	assert_null(strstr(off, "src=\""));

	assert_line(on, "# TYPE ipiv_vcpu_ipis_sent_total counter");
	assert_line(on, "ipiv_vcpu_ipis_sent_total{vm=\"web\",vcpu=\"0\"} 600");
	assert_line(on, "ipiv_vcpu_ipis_sent_total{vm=\"web\",vcpu=\"1\"} 462");
	assert_line(on, "ipiv_vcpu_ipis_sent_total{vm=\"web\",vcpu=\"none\"} 0");
	assert_line(on, "ipiv_vcpu_ipis_sent_total{vm=\"" ODD_LABEL "\",vcpu=\"0\"} 20");
	assert_int_equal(count_prefix(on, "ipiv_vcpu_ipis_sent_total{"), 4);
	assert_line(on, "# TYPE ipiv_vcpu_interrupts_accepted_total counter");
	assert_line(on, "ipiv_vcpu_interrupts_accepted_total{vm=\"web\",vcpu=\"0\"} 300");
	assert_line(on, "ipiv_vcpu_interrupts_accepted_total{vm=\"web\",vcpu=\"1\"} 603");
	assert_line(on, "ipiv_vcpu_interrupts_accepted_total{vm=\"web\",vcpu=\"none\"} 0");
	assert_line(on, "# TYPE ipiv_vcpu_halt_wakeups_total counter");
	assert_line(on, "ipiv_vcpu_halt_wakeups_total{vm=\"web\",vcpu=\"0\"} 25");
	assert_line(on, "ipiv_vcpu_halt_wakeups_total{vm=\"web\",vcpu=\"1\"} 15");
	/* The VM without vCPU rows has none; the row for "no vCPU" is never 4294967295. */
	assert_null(strstr(on, "vm=\"idle\",vcpu="));
	assert_null(strstr(on, "4294967295"));

	assert_line(on, "# TYPE ipiv_ipi_matrix_total counter");
	assert_line(on, "ipiv_ipi_matrix_total{vm=\"web\",src=\"0\",dst=\"1\"} 600");
	assert_line(on, "ipiv_ipi_matrix_total{vm=\"web\",src=\"1\",dst=\"0\"} 300");
	assert_line(on, "ipiv_ipi_matrix_total{vm=\"web\",src=\"none\",dst=\"0\"} 3");
	assert_int_equal(count_prefix(on, "ipiv_ipi_matrix_total{"), 3);

	/* Everything else is the same with and without the flag. */
	assert_int_equal(check_exposition(on, EXPO_TEXT_0_0_4),
			 check_exposition(off, EXPO_TEXT_0_0_4) + 3 * 4 + 3);
	free(off);
	free(on);
	free(f);
}

static void test_self_families(void **state)
{
	struct fixture *f = fixture_new();
	char *body = render(f, EXPO_TEXT_0_0_4, false);

	assert_line(body, "# TYPE ipiv_build_info gauge");
	assert_line(body, "ipiv_build_info{version=\"1.2.3-test\"} 1");
	assert_line(body, "# TYPE ipiv_probe_attached gauge");
	assert_line(body, "ipiv_probe_attached{probe=\"kvm_apic_ipi\",optional=\"false\"} 1.0");
	assert_line(body,
		    "ipiv_probe_attached{probe=\"kvm_apic_accept_irq\",optional=\"false\"} 1.0");
	assert_line(body,
		    "ipiv_probe_attached{probe=\"kvm_avic_incomplete_ipi\",optional=\"true\"} 0.0");
	assert_line(body, "ipiv_probe_attached{probe=\"kvm_hv_send_ipi\",optional=\"true\"} 1.0");
	/* An optional probe missing (AVIC on Intel) is not a degradation. */
	assert_line(body, "# TYPE ipiv_degraded gauge");
	assert_line(body, "ipiv_degraded 0.0");

	assert_line(body, "# TYPE ipiv_bpf_program_runs_total counter");
	assert_line(body, "ipiv_bpf_program_runs_total{program=\"ipiv_apic_ipi\"} 1234");
	assert_line(body, "ipiv_bpf_program_runs_total{program=\"ipiv_apicv_inhibit_changed\"} 6");
	assert_line(body, "# TYPE ipiv_bpf_program_run_seconds_total counter");
	assert_line(body, "ipiv_bpf_program_run_seconds_total{program=\"ipiv_apic_ipi\"} 0.0025");
	assert_line(body,
		    "ipiv_bpf_program_run_seconds_total{program=\"ipiv_apicv_inhibit_changed\"}"
		    " 3.0e-06");
	assert_line(body, "# TYPE ipiv_bpf_stats_enabled gauge");
	assert_line(body, "ipiv_bpf_stats_enabled 1.0");

	/* Every drop reason is listed, zero or not, so a rate() never starts from nothing. */
	assert_line(body, "# TYPE ipiv_events_dropped_total counter");
	assert_line(body, "ipiv_events_dropped_total{reason=\"threads_map_full\"} 0");
	assert_line(body, "ipiv_events_dropped_total{reason=\"mms_map_full\"} 0");
	assert_line(body, "ipiv_events_dropped_total{reason=\"vms_map_full\"} 0");
	assert_line(body, "ipiv_events_dropped_total{reason=\"counters_map_full\"} 5");
	assert_line(body, "ipiv_events_dropped_total{reason=\"matrix_map_full\"} 0");
	assert_line(body, "ipiv_events_dropped_total{reason=\"no_identity\"} 0");
	assert_line(body, "ipiv_events_dropped_total{reason=\"eoi_duplicate\"} 9");
	assert_int_equal(count_prefix(body, "ipiv_events_dropped_total{"), IPIV_DROP_COUNT);

	assert_line(body, "# TYPE ipiv_vms gauge");
	assert_line(body, "ipiv_vms 3.0");
	assert_line(body, "# TYPE ipiv_vms_discovered_total counter");
	assert_line(body, "ipiv_vms_discovered_total 4");
	assert_line(body, "# TYPE ipiv_vms_reclaimed_total counter");
	assert_line(body, "ipiv_vms_reclaimed_total 1");
	assert_line(body, "# TYPE ipiv_discovery_polls_total counter");
	assert_line(body, "ipiv_discovery_polls_total 77");
	assert_line(body, "# TYPE ipiv_scrape_duration_seconds gauge");
	assert_line(body, "ipiv_scrape_duration_seconds 0.25");
	assert_line(body, "# TYPE ipiv_scrape_bytes gauge");
	assert_line(body, "ipiv_scrape_bytes 4096.0");
	free(body);
	free(f);
}

/* The first scrape has no previous one to time or size: the families have no sample. */
static void test_first_scrape_has_no_scrape_figures(void **state)
{
	struct fixture *f = fixture_new();
	struct metrics_opts opts = {.version = "1.2.3-test"};
	char *body = render_opts(f, EXPO_TEXT_0_0_4, &opts);

	assert_int_equal(count_prefix(body, "ipiv_scrape_duration_seconds "), 0);
	assert_int_equal(count_prefix(body, "ipiv_scrape_bytes "), 0);
	free(body);
	free(f);
}

static void test_missing_required_probe_degrades(void **state)
{
	struct fixture *f = fixture_new();
	struct metrics_opts opts = {.per_vcpu = false, .version = NULL};
	struct expo *e = NULL;
	char *body;
	size_t len;

	f->probes[1].attached = false;
	f->probes[1].err = -ENOENT;
	f->snap.self.n_attached = 2;
	f->snap.self.bpf_stats_enabled = false;
	assert_int_equal(expo_new(EXPO_TEXT_0_0_4, &e), 0);
	assert_int_equal(metrics_write(e, &f->snap, f->names, &opts, 0), 0);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	assert_line(body,
		    "ipiv_probe_attached{probe=\"kvm_apic_accept_irq\",optional=\"false\"} 0.0");
	assert_line(body, "ipiv_degraded 1.0");
	assert_no_line(body, "ipiv_degraded 0.0");
	assert_line(body, "ipiv_bpf_stats_enabled 0.0");
	/* No version given: the build info still has one. */
	assert_line(body, "ipiv_build_info{version=\"unknown\"} 1");
	free(body);
	free(f);
}

static void test_empty_snapshot(void **state)
{
	struct ipiv_snapshot snap = {0};
	struct metrics_opts opts = {.per_vcpu = true, .version = "x"};
	struct expo *e = NULL;
	char *body;
	size_t len;

	assert_int_equal(expo_new(EXPO_TEXT_0_0_4, &e), 0);
	assert_int_equal(metrics_write(e, &snap, NULL, &opts, 0), 0);
	assert_int_equal(expo_finish(e, &body, &len), 0);
	expo_free(e);
	assert_line(body, "ipiv_vms 0.0");
	assert_line(body, "ipiv_degraded 0.0");
	assert_null(strstr(body, "vm=\""));
	check_exposition(body, EXPO_TEXT_0_0_4);
	free(body);
}

static void test_hostile_names_are_escaped(void **state)
{
	struct fixture *f = fixture_new();
	char *body = render(f, EXPO_TEXT_0_0_4, true), line[256];

	assert_line(body, vm_info_line(f, 1, ODD_LABEL, line, sizeof(line)));
	assert_line(body, "ipiv_eois_total{vm=\"" ODD_LABEL "\"} 0");
	/* The raw bytes never appear: no bare quote-in-value, no 0xff, no raw newline split. */
	assert_null(strstr(body, "\xff"));
	assert_null(strstr(body, "we\"ird"));
	assert_null(strstr(body, "\nline2"));
	assert_int_equal(count_prefix(body, "line2"), 0);
	check_exposition(body, EXPO_TEXT_0_0_4);
	free(body);
	free(f);
}

static void test_no_duplicate_series_text(void **state)
{
	struct fixture *f = fixture_new();
	char *body = render(f, EXPO_TEXT_0_0_4, true);
	size_t n = check_exposition(body, EXPO_TEXT_0_0_4);

	/* 3 vm_info + 3 vcpus + 6 sends + 4 accepted + 3 eois + 6 wakeups + 3 halt + 2 avic +
	 * 7 exits + 2 inhibited + 3 changes + 3 x 4 per-vCPU rows + 3 matrix + 1 build +
	 * 4 probes + 1 degraded + 2 + 2 programs + 1 + 8 drops + 5 counts; and of the patched
	 * tracepoints 2 traps + 2 fastpath + 2 PI wakeups + 2 PI updates + 3 state times +
	 * 2 AVIC IsRunning; 1 APICv-active vCPU gauge; host totals: sends by every path + 4;
	 * the previous scrape's bytes; 3 host-wide sender-exit histograms of 10 bounds, +Inf,
	 * _sum and _count. */
	assert_int_equal(n, 3 + 3 + 6 + 4 + 3 + 6 + 3 + 2 + 7 + 2 + 3 + 12 + 3 + 1 + 4 + 1 + 2 + 2 +
				    1 + IPIV_DROP_COUNT + 5 + 2 + 2 + 2 + 2 + 3 + 2 + 1 +
				    IPIV_PATH_COUNT + 4 + 1 + 3 * 13);
	free(body);
	free(f);
}

/* Host totals come from the snapshot's (exited VMs included), with no vm label; an exited
 * VM's final series are marked and not counted as watched. */
static void test_host_totals_and_exited_vms(void **state)
{
	struct fixture *f = fixture_new();
	char *body;

	f->snap.host.sent_by_path[IPIV_PATH_X2APIC_MSR] = 123456;
	f->snap.host.received = 99;
	f->snap.host.exits = 7;
	f->vms[1].exited = true;
	f->vms[1].alive = false;
	body = render(f, EXPO_TEXT_0_0_4, false);
	assert_line(body, "ipiv_host_ipis_sent_total{path=\"x2apic_msr\"} 123456");
	assert_line(body, "ipiv_host_ipis_sent_total{path=\"pv_hyperv\"} 0");
	assert_line(body, "ipiv_host_interrupts_accepted_total 99");
	assert_line(body, "ipiv_host_vm_exits_total 7");
	assert_int_equal(count_prefix(body, "ipiv_vm_exited{"), 1);
	assert_line(body, "ipiv_vms 2.0");
	free(body);
	free(f);
}

/* The sender's exit cost host-wide, by path and fastpath: the fastpath's exits, the rest of
 * the path's ("false" where a fexit on the fastpath attached, or on paths without one,
 * "unknown" for x2APIC exits where none did), summing to the path's; no vm label. */
static void test_host_sender_exit(void **state)
{
	struct fixture *f = fixture_new();
	const char *fam = "ipiv_host_ipi_sender_exit_seconds";
	struct ipiv_probe probes[5];
	char line[256], *body;

	/* the fixture's host-wide exits: 5 on x2APIC (3 by the fastpath), 1 on PV */
	body = render(f, EXPO_TEXT_0_0_4, false);
	snprintf(line, sizeof(line), "%s_count{path=\"x2apic_msr\",fastpath=\"true\"} 3", fam);
	assert_line(body, line);
	snprintf(line, sizeof(line), "%s_count{path=\"x2apic_msr\",fastpath=\"false\"} 2", fam);
	assert_line(body, line);
	snprintf(line, sizeof(line), "%s_count{path=\"pv_kvm\",fastpath=\"false\"} 1", fam);
	assert_line(body, line);
	/* the slow path's two: 20 us and 300 us, the sum exact */
	snprintf(line, sizeof(line), "%s_sum{path=\"x2apic_msr\",fastpath=\"false\"} 0.00032", fam);
	assert_line(body, line);
	snprintf(line, sizeof(line),
		 "%s_bucket{path=\"x2apic_msr\",fastpath=\"true\",le=\"1.023e-06\"} 3", fam);
	assert_line(body, line);
	assert_int_equal(count_prefix(body, "ipiv_host_ipi_sender_exit_seconds_count{"), 3);
	free(body);

	/* no fastpath exits: x2APIC exits are "unknown" without a fexit on the fastpath ... */
	f->snap.n_host_lat = 2;
	body = render(f, EXPO_TEXT_0_0_4, false);
	snprintf(line, sizeof(line), "%s_count{path=\"x2apic_msr\",fastpath=\"unknown\"} 5", fam);
	assert_line(body, line);
	snprintf(line, sizeof(line), "%s_count{path=\"pv_kvm\",fastpath=\"false\"} 1", fam);
	assert_line(body, line);
	assert_int_equal(count_prefix(body, "ipiv_host_ipi_sender_exit_seconds_count{"), 2);
	free(body);
	/* ... and the slow path's with one (SVM without next-RIP save: never offered) */
	memcpy(probes, f->probes, sizeof(f->probes));
	probes[4] = (struct ipiv_probe){"fexit/handle_fastpath_set_msr_irqoff",
					"ipiv_fastpath_set_msr", true, true, 0};
	f->snap.self.probes = probes;
	f->snap.self.n_probes = 5;
	body = render(f, EXPO_TEXT_0_0_4, false);
	snprintf(line, sizeof(line), "%s_count{path=\"x2apic_msr\",fastpath=\"false\"} 5", fam);
	assert_line(body, line);
	assert_null(strstr(body, ",fastpath=\"unknown\"}"));
	free(body);

	/* no latency at all: the family, empty */
	f->snap.n_host_lat = 0;
	body = render(f, EXPO_TEXT_0_0_4, false);
	assert_int_equal(count_prefix(body, "ipiv_host_ipi_sender_exit_seconds_"), 0);
	assert_non_null(strstr(body, "# TYPE ipiv_host_ipi_sender_exit_seconds histogram\n"));
	free(body);
	free(f);
}

static void test_openmetrics(void **state)
{
	struct fixture *f = fixture_new();
	char *om = render(f, EXPO_OPENMETRICS_1_0_0, true);
	char *text = render(f, EXPO_TEXT_0_0_4, true);
	size_t len = strlen(om);
	char line[256];

	assert_true(len > 6);
	assert_string_equal(om + len - 6, "# EOF\n");
	assert_int_equal(count_prefix(om, "# EOF"), 1);
	/* Family names without suffixes in TYPE lines; samples carry them. */
	assert_line(om, "# TYPE ipiv_ipis_sent counter");
	assert_line(om, "ipiv_ipis_sent_total{vm=\"web\",path=\"x2apic_msr\",delivery=\"fixed\","
			"dest_mode=\"physical\",shorthand=\"none\",dest=\"unicast\"} 1000");
	assert_line(om, "# TYPE ipiv_vm info");
	assert_line(om, vm_info_line(f, 1, ODD_LABEL, line, sizeof(line)));
	assert_line(om, "# TYPE ipiv_build info");
	assert_line(om, "ipiv_build_info{version=\"1.2.3-test\"} 1");
	assert_line(om, "# TYPE ipiv_vcpu_halt_seconds counter");
	assert_line(om, "ipiv_vcpu_halt_seconds_total{vm=\"web\"} 1.5");
	assert_line(om, "# TYPE ipiv_degraded gauge");
	assert_line(om, "ipiv_degraded 0.0");
	assert_line(om, "# TYPE ipiv_ipi_matrix counter");
	assert_line(om, "ipiv_ipi_matrix_total{vm=\"web\",src=\"none\",dst=\"0\"} 3");
	assert_line(om, "ipiv_vm_exits_total{vm=\"web\",isa=\"vmx\",reason=\"77\"} 4");
	assert_null(strstr(om, "_total counter"));
	assert_null(strstr(om, "_info gauge"));
	/* OpenMetrics escapes quotes in HELP too. */
	assert_null(strstr(om, "(\"none\""));
	/* Same samples in both formats. */
	assert_int_equal(check_exposition(om, EXPO_OPENMETRICS_1_0_0),
			 check_exposition(text, EXPO_TEXT_0_0_4));
	free(om);
	free(text);
	free(f);
}

static void test_promtool_accepts_text(void **state)
{
	char out_path[] = "/tmp/ipiv-metrics-promtool-XXXXXX", cmd[256], out[8192];
	struct fixture *f = fixture_new();
	char *body = render(f, EXPO_TEXT_0_0_4, true);
	int fd = mkstemp(out_path), status;
	FILE *p;
	ssize_t n;

	assert_true(fd >= 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics >%s 2>&1", out_path);
	p = popen(cmd, "w");
	assert_non_null(p);
	assert_int_equal(fwrite(body, 1, strlen(body), p), strlen(body));
	status = pclose(p);
	n = read(fd, out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(out_path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out[0])
		fail_msg("promtool check metrics rejected the output:\n%s\n--- body ---\n%s", out,
			 body);
	free(body);
	free(f);
}

/* le values of family's _bucket lines whose labels start with prefix, in order, joined. */
static void le_set(const char *body, const char *prefix, char *out, size_t size)
{
	size_t plen = strlen(prefix), len = 0;

	out[0] = '\0';
	for (const char *p = body; (p = strstr(p, prefix)); p += plen) {
		const char *le = strstr(p, "le=\"");
		const char *nl = strchr(p, '\n');

		if ((p != body && p[-1] != '\n') || !le || (nl && le > nl))
			continue;
		len += (size_t)snprintf(out + len, size - len, "%.*s,",
					(int)(strchr(le + 4, '"') - (le + 4)), le + 4);
		assert_true(len < size);
	}
}

/* Every series of a histogram family has the layout's every bucket, whatever its own
 * observations span, so sum by (le) across VMs and paths is a histogram again. */
static void test_histogram_buckets_are_fixed(void **state)
{
	struct fixture *f = fixture_new();
	struct ipiv_lat_hist web[2] = {0}, odd[1] = {0};
	struct metrics_opts opts = {.version = "t"};
	static char a[16384], b[16384], c[16384];
	const double *le;
	size_t n;
	char *body;

	web[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = IPIV_LAT_VM_WIDE};
	web[1] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_PV_KVM, .vcpu = IPIV_LAT_VM_WIDE};
	odd[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_AVIC, .vcpu = IPIV_LAT_VM_WIDE};
	latency_add(&web[0].h, 2000);	   /* 2 us */
	latency_add(&web[1].h, 300000000); /* 0.3 s */
	latency_add(&odd[0].h, 40);	   /* 40 ns */
	f->vms[0].lat = web;
	f->vms[0].n_lat = 2;
	f->vms[1].lat = odd;
	f->vms[1].n_lat = 1;
	for (enum latency_layout l = 0; l < LATENCY_LAYOUT_COUNT; l++) {
		opts.buckets = l;
		body = render_opts(f, EXPO_TEXT_0_0_4, &opts);
		le_set(body, "ipiv_ipi_send_to_eoi_seconds_bucket{vm=\"web\",path=\"x2apic_msr\"",
		       a, sizeof(a));
		le_set(body, "ipiv_ipi_send_to_eoi_seconds_bucket{vm=\"web\",path=\"pv_kvm\"", b,
		       sizeof(b));
		le_set(body,
		       "ipiv_ipi_send_to_eoi_seconds_bucket{vm=\"" ODD_LABEL
		       "\",path=\"avic_incomplete\"",
		       c, sizeof(c));
		assert_string_equal(a, b);
		assert_string_equal(a, c);
		n = latency_layout_bounds(l, &le);
		{
			size_t commas = 0;

			for (const char *p = a; *p; p++)
				commas += *p == ',';
			assert_int_equal(commas, n + 1); /* every bound and +Inf */
		}
		free(body);
	}
	free(f);
}

/* ---- the protobuf exposition and its native histograms ---- */

typedef Io__Prometheus__Client__MetricFamily pb_family;
typedef Io__Prometheus__Client__Histogram pb_histogram;

/* The families of a delimited protobuf body (at most max). */
static size_t pb_decode(const char *body, size_t len, pb_family **out, size_t max)
{
	const uint8_t *p = (const uint8_t *)body, *end = p + len;
	size_t n = 0;

	while (p < end) {
		uint64_t size = 0;
		unsigned shift = 0;

		do {
			assert_true(p < end && shift < 64);
			size |= (uint64_t)(*p & 0x7f) << shift;
			shift += 7;
		} while (*p++ & 0x80);
		assert_true(size <= (uint64_t)(end - p) && n < max);
		out[n] = io__prometheus__client__metric_family__unpack(NULL, size, p);
		assert_non_null(out[n]);
		n++;
		p += size;
	}
	return n;
}

static char *render_pb(const struct fixture *f, const struct metrics_opts *opts, size_t *len)
{
	struct expo *e = NULL;
	char *body = NULL;

	assert_int_equal(expo_new(EXPO_PROTOBUF_DELIMITED, &e), 0);
	assert_int_equal(metrics_write(e, &f->snap, f->names, opts, 0.25), 0);
	assert_int_equal(expo_finish(e, &body, len), 0);
	expo_free(e);
	return body;
}

/* Samples of each family in a text 0.0.4 body: "name count" per TYPE line with samples
 * (histograms counted by their _count lines), in order. */
static size_t text_families(const char *body, char names[][128], size_t *samples, size_t max)
{
	char type[32];
	size_t n = 0;

	for (const char *p = body; *p;) {
		const char *nl = strchr(p, '\n');
		size_t ln = nl ? (size_t)(nl - p) : strlen(p);

		if (!strncmp(p, "# TYPE ", 7)) {
			assert_true(n < max);
			assert_int_equal(sscanf(p, "# TYPE %127s %31s", names[n], type), 2);
			samples[n++] = 0;
		} else if (p[0] != '#' && n) {
			size_t fl = strlen(names[n - 1]);
			const char *rest = p + fl;

			if (!strncmp(p, names[n - 1], fl) &&
			    (!strncmp(rest, "_count", 6) || *rest == '{' || *rest == ' '))
				samples[n - 1]++;
		}
		p += ln + (nl != NULL);
	}
	return n;
}

/* Every family with a sample in the text format is in the protobuf one, under the same
 * sample name, with as many series; histograms carry native buckets too. */
static void test_protobuf_has_every_family(void **state)
{
	struct fixture *f = fixture_new();
	struct ipiv_lat_hist web[1] = {0};
	struct metrics_opts opts = {.per_vcpu = true, .version = "t", .have_last_scrape = true};
	static char names[256][128];
	size_t samples[256], n_text, n_pb, len, j = 0;
	pb_family *fam[256];
	char *text, *pb;

	web[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = IPIV_LAT_VM_WIDE};
	latency_add(&web[0].h, 2000);
	latency_add(&web[0].h, 30);
	f->vms[0].lat = web;
	f->vms[0].n_lat = 1;
	f->snap.n_host_lat = 0; /* the one histogram below is web's */
	text = render_opts(f, EXPO_TEXT_0_0_4, &opts);
	pb = render_pb(f, &opts, &len);
	n_text = text_families(text, names, samples, 256);
	n_pb = pb_decode(pb, len, fam, 256);
	for (size_t i = 0; i < n_text; i++) {
		if (!samples[i])
			continue;
		assert_true(j < n_pb);
		assert_string_equal(fam[j]->name, names[i]);
		assert_int_equal(fam[j]->n_metric, samples[i]);
		if (fam[j]->type == IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM) {
			const pb_histogram *h = fam[j]->metric[0]->histogram;

			assert_true(h->has_schema && h->schema == METRICS_NATIVE_SCHEMA);
			assert_int_equal(h->zero_count, 1);
			assert_int_equal(h->sample_count, 2);
			assert_int_equal(h->n_positive_span, 1);
			assert_int_equal(h->positive_span[0]->offset,
					 metrics_native_index(hist_bucket(2000)));
			assert_int_equal(h->n_bucket, latency_layout_bounds(LATENCY_LAYOUT_COARSE,
									    &(const double *){0}));
		}
		j++;
	}
	assert_int_equal(j, n_pb);
	assert_true(n_pb > 40);
	for (size_t i = 0; i < n_pb; i++)
		io__prometheus__client__metric_family__free_unpacked(fam[i], NULL);
	free(text);
	free(pb);
	free(f);
}

/* Each hist.h bucket's native bucket holds its midpoint, the mapping ascends, and every
 * value of the bucket is within METRICS_NATIVE_MAX_RATIO of every value of the native
 * bucket: the error docs/metrics.md states, checked for all 448 buckets. */
static void test_native_mapping_error(void **state)
{
	const double base = pow(2, 1.0 / (1 << METRICS_NATIVE_SCHEMA));
	double worst = 1;

	for (uint32_t b = 1; b < HIST_BUCKETS - 1; b++) {
		int32_t i = metrics_native_index(b);
		double lower = pow(base, i - 1), upper = pow(base, i);
		double lo = hist_bucket_lo(b) / 1e9, hi = hist_bucket_hi(b) / 1e9;
		double mid = (lo + hi) / 2;

		assert_true(mid > lower && mid <= upper);
		if (b > 1)
			assert_true(i >= metrics_native_index(b - 1));
		else
			assert_true(lower > hist_bucket_hi(0) / 1e9); /* clear of the zero bucket */
		worst = fmax(worst, fmax(upper / lo, hi / lower));
	}
	assert_true(worst <= METRICS_NATIVE_MAX_RATIO);
	assert_true(worst > METRICS_NATIVE_MAX_RATIO - 0.001); /* the bound is tight */
}

/* histogram_quantile() as Prometheus computes it over native buckets: the bucket where the
 * cumulative count reaches q * count, linear within it; the zero bucket spans [0, its
 * threshold] when there are no negative buckets. */
static double native_quantile(const pb_histogram *h, double q)
{
	double rank = q * (double)h->sample_count, seen = (double)h->zero_count;
	double base = pow(2, pow(2, -h->schema));
	size_t d = 0;
	int64_t count = 0, index = 0;

	if (seen >= rank)
		return h->zero_threshold * (h->zero_count ? rank / (double)h->zero_count : 0);
	for (size_t s = 0; s < h->n_positive_span; s++) {
		index += h->positive_span[s]->offset;
		for (uint32_t k = 0; k < h->positive_span[s]->length; k++, index++) {
			count += h->positive_delta[d++];
			if (count && seen + (double)count >= rank) {
				double lower = pow(base, (double)index - 1),
				       upper = pow(base, index);

				return lower + (upper - lower) * (rank - seen) / (double)count;
			}
			seen += (double)count;
		}
	}
	fail_msg("rank %g beyond the native buckets", rank);
	return NAN;
}

/* The same over classic buckets (histogram_quantile over _bucket): the first bucket's lower
 * bound is 0, and a rank past the last finite bound gets that bound. */
static double classic_quantile(const pb_histogram *h, double q)
{
	double rank = q * (double)h->sample_count, lower = 0, below = 0;

	for (size_t i = 0; i < h->n_bucket; i++) {
		double cum = (double)h->bucket[i]->cumulative_count;

		if (cum >= rank)
			return lower +
			       (h->bucket[i]->upper_bound - lower) * (rank - below) / (cum - below);
		lower = h->bucket[i]->upper_bound;
		below = cum;
	}
	return lower;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A known histogram (log-uniform from 40 ns to 50 ms, from a fixed generator) through the
 * protobuf format: quantiles from its native buckets, from its classic buckets (every
 * layout) and ipivd's own (latency_quantile, as /api/v1 reports them) each agree with the
 * observations' true quantile within their bucket errors. */
static void test_native_and_classic_quantiles(void **state)
{
	enum { N = 20000 };
	static uint64_t values[N];
	const double qs[] = {0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999};
	struct fixture *f = fixture_new();
	struct ipiv_lat_hist web[1] = {0};
	uint64_t state_rng = 42;

	web[0] = (struct ipiv_lat_hist){
		.kind = IPIV_LAT_SEND_EOI, .sub = IPIV_PATH_X2APIC_MSR, .vcpu = IPIV_LAT_VM_WIDE};
	for (size_t i = 0; i < N; i++) {
		double u;

		state_rng = state_rng * 6364136223846793005ull + 1442695040888963407ull;
		u = (double)(state_rng >> 11) / (double)(1ull << 53);
		values[i] = (uint64_t)(40 * pow(50e6 / 40, u));
		latency_add(&web[0].h, values[i]);
	}
	qsort(values, N, sizeof(values[0]), cmp_u64);
	f->vms[0].lat = web;
	f->vms[0].n_lat = 1;

	for (enum latency_layout l = 0; l < LATENCY_LAYOUT_COUNT; l++) {
		struct metrics_opts opts = {.version = "t", .buckets = l};
		const pb_histogram *h = NULL;
		pb_family *fam[256];
		size_t len, n;
		char *pb = render_pb(f, &opts, &len);

		n = pb_decode(pb, len, fam, 256);
		for (size_t i = 0; i < n; i++)
			if (!strcmp(fam[i]->name, "ipiv_ipi_send_to_eoi_seconds"))
				h = fam[i]->metric[0]->histogram;
		assert_non_null(h);
		assert_int_equal(h->sample_count, N);
		for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
			double q = qs[k];
			double truth = (double)values[(size_t)ceil(q * N) - 1];
			struct latency_quantile own = latency_quantile(&web[0].h, q);
			double native = native_quantile(h, q) * 1e9;
			double classic = classic_quantile(h, q), lo = 0, hi = INFINITY;

			/* ipivd's quantile: its bucket's midpoint, within half the bucket width */
			assert_true(fabs(own.value_ns - truth) <= own.error_ns + 0.5);
			/* native: within the mapping's ratio (the zero bucket: within it) */
			if (truth > hist_bucket_hi(0)) {
				if (native / truth > METRICS_NATIVE_MAX_RATIO ||
				    truth / native > METRICS_NATIVE_MAX_RATIO)
					fail_msg("layout %d q=%g: native %g ns, true %g ns", l, q,
						 native, truth);
			} else {
				assert_true(native <= hist_bucket_hi(0) + 1e-6);
			}
			/* classic: in the classic bucket that holds the true value */
			for (size_t i = 0; i < h->n_bucket && hi == INFINITY; i++) {
				if (truth / 1e9 <= h->bucket[i]->upper_bound)
					hi = h->bucket[i]->upper_bound;
				else
					lo = h->bucket[i]->upper_bound;
			}
			if (hi == INFINITY)
				hi = lo; /* above the last bound: Prometheus answers that bound */
			if (classic < lo * (1 - 1e-12) || classic > hi * (1 + 1e-12))
				fail_msg(
					"layout %d q=%g: classic %g s outside [%g, %g], true %g ns",
					l, q, classic, lo, hi, truth);
		}
		for (size_t i = 0; i < n; i++)
			io__prometheus__client__metric_family__free_unpacked(fam[i], NULL);
		free(pb);
	}
	free(f);
}

/* Sample lines (not comments) that contain needle. */
static size_t count_lines_containing(const char *body, const char *needle)
{
	size_t n = 0;

	for (const char *p = body; *p;) {
		const char *nl = strchr(p, '\n');
		const char *hit = strstr(p, needle);

		if (p[0] != '#' && hit && (!nl || hit < nl))
			n++;
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

/* The five histogram families, in the order ipivd writes them. */
static const char *const lat_families[] = {
	"ipiv_ipi_send_to_accept_seconds", "ipiv_ipi_accept_to_running_seconds",
	"ipiv_ipi_send_to_eoi_seconds",	   "ipiv_ipi_sender_exit_seconds",
	"ipiv_vcpu_halt_duration_seconds",
};
#define LAT_EOI_ONLY (1u << 2)
#define LAT_ALL	     0x1fu

/* Histograms in every family on two paths (targets halted and running, halts ended both
 * ways), and the fastpath's exits of the first path (an x2APIC one), which the JSON API has
 * but no per-VM family: sorted by (kind, sub) as the collector leaves them. lat holds 11. */
#define EVERY_FAMILY 11
static size_t every_family(struct ipiv_lat_hist *lat, const uint16_t paths[2])
{
	size_t n = 0;

	for (uint16_t kind = 0; kind < IPIV_LAT_UNMATCHED; kind++)
		for (uint16_t i = 0; i < (kind == IPIV_LAT_EXIT_FASTPATH ? 1 : 2); i++) {
			uint16_t sub =
				kind == IPIV_LAT_ACCEPT_RUN || kind == IPIV_LAT_HALT ? i : paths[i];

			lat[n] = (struct ipiv_lat_hist){
				.kind = kind, .sub = sub, .vcpu = IPIV_LAT_VM_WIDE};
			latency_add(&lat[n++].h, 1000 + 1000 * i);
		}
	return n;
}

/* Which of lat_families a text or OpenMetrics body declares (bit i: lat_families[i]). */
static unsigned text_histograms(const char *body)
{
	unsigned mask = 0;

	for (unsigned i = 0; i < sizeof(lat_families) / sizeof(lat_families[0]); i++) {
		char type[128];

		snprintf(type, sizeof(type), "# TYPE %s histogram\n", lat_families[i]);
		if (strstr(body, type))
			mask |= 1u << i;
	}
	return mask;
}

/* What the VM named vm costs in a protobuf body: its series with native histograms, with
 * classic ones (a histogram of n bounds is n + 3 series: +Inf, _sum, _count), its
 * histograms, and which of lat_families it has. */
struct vm_cost {
	size_t native, classic, hists;
	unsigned families;
};

static struct vm_cost pb_vm_cost(const struct fixture *f, const struct metrics_opts *opts,
				 const char *vm)
{
	struct vm_cost c = {0};
	pb_family *fam[256];
	size_t len, n;
	char *pb = render_pb(f, opts, &len);

	n = pb_decode(pb, len, fam, 256);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < fam[i]->n_metric; j++) {
			const Io__Prometheus__Client__Metric *m = fam[i]->metric[j];
			bool ours = false;

			for (size_t k = 0; k < m->n_label; k++)
				ours |= !strcmp(m->label[k]->name, "vm") &&
					!strcmp(m->label[k]->value, vm);
			if (!ours)
				continue;
			c.native++;
			c.classic += m->histogram ? m->histogram->n_bucket + 3 : 1;
			c.hists += m->histogram != NULL;
		}
		for (unsigned k = 0; k < sizeof(lat_families) / sizeof(lat_families[0]); k++)
			if (!strcmp(fam[i]->name, lat_families[k]))
				c.families |= 1u << k;
		io__prometheus__client__metric_family__free_unpacked(fam[i], NULL);
	}
	free(pb);
	return c;
}

/* --collector.vm-histograms: eoi (the default) leaves only send_to_eoi among the latency
 * histograms, all keeps the five, --collector.per-vcpu implies all; the same families and
 * series in text, OpenMetrics and protobuf. Bad values are refused. */
static void test_vm_histograms_flag(void **state)
{
	const uint16_t paths[] = {IPIV_PATH_X2APIC_MSR, IPIV_PATH_PV_KVM};
	const struct {
		bool per_vcpu;
		enum metrics_vm_histograms which;
		unsigned want;
	} cases[] = {
		{false, METRICS_VM_HISTOGRAMS_EOI, LAT_EOI_ONLY},
		{false, METRICS_VM_HISTOGRAMS_ALL, LAT_ALL},
		{true, METRICS_VM_HISTOGRAMS_EOI, LAT_ALL},
	};
	const char *bad[] = {"", "EOI", "all ", "none", "send_to_eoi", NULL};
	struct fixture *f = fixture_new();
	struct ipiv_lat_hist lat[EVERY_FAMILY] = {0};
	enum metrics_vm_histograms which = METRICS_VM_HISTOGRAMS_ALL;

	assert_int_equal(metrics_vm_histograms_parse("eoi", &which), 0);
	assert_int_equal(which, METRICS_VM_HISTOGRAMS_EOI);
	assert_int_equal(metrics_vm_histograms_parse("all", &which), 0);
	assert_int_equal(which, METRICS_VM_HISTOGRAMS_ALL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(metrics_vm_histograms_parse(bad[i], &which), -EINVAL);
		assert_int_equal(which, METRICS_VM_HISTOGRAMS_ALL); /* untouched */
	}

	f->vms[0].lat = lat;
	f->vms[0].n_lat = every_family(lat, paths);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_opts opts = {.per_vcpu = cases[i].per_vcpu,
					    .vm_histograms = cases[i].which,
					    .version = "t",
					    .have_last_scrape = true};
		char *text = render_opts(f, EXPO_TEXT_0_0_4, &opts);
		char *om = render_opts(f, EXPO_OPENMETRICS_1_0_0, &opts);
		struct vm_cost c = pb_vm_cost(f, &opts, "web");

		assert_int_equal(text_histograms(text), cases[i].want);
		assert_int_equal(text_histograms(om), cases[i].want);
		assert_int_equal(c.families, cases[i].want);
		/* two series (paths, targets, halted) in each family */
		assert_int_equal(c.hists, 2 * (size_t)__builtin_popcount(cases[i].want));
		assert_int_equal(count_lines_containing(text, "vm=\"web\""), c.classic);
		assert_int_equal(count_lines_containing(om, "vm=\"web\""), c.classic);
		free(text);
		free(om);
	}
	free(f);
}

/* What the budget VM's host lets ipivd count beyond the stock tracepoints. */
enum budget_host {
	BUDGET_NO_FEXIT, /* fexit on KVM functions forbidden, as on the measured host */
	BUDGET_INTEL,	 /* fexit permitted, VMX with APICv, IPIv off (the worst case) */
	BUDGET_AMD,	 /* fexit permitted, SVM with AVIC */
};
#define BUDGET_HOSTS (BUDGET_AMD + 1)

/* Each fexit family of the budget VM, the series a host fills in it (kernel-patches/'
 * ipiv_posted_interrupt_wakeups_total is not among them: no stock kernel has it). */
static const struct {
	const char *family;
	size_t series[BUDGET_HOSTS]; /* by enum budget_host */
} budget_fexit[] = {
	{"ipiv_x2apic_icr_fastpath_total{", {0, 2, 2}},
	{"ipiv_vcpu_state_seconds_total{", {0, 2, 2}},
	{"ipiv_posted_interrupt_descriptor_updates_total{", {0, IPIV_PI_TRIGGER_COUNT, 0}},
	{"ipiv_icr_write_traps_total{", {0, 1, 0}},
	{"ipiv_avic_running_changes_total{", {0, 0, 2}},
};

/* g's web VM as the busiest realistic VM (test_series_budget) on host, with the histograms
 * lat[0..n_lat). */
static void budget_vm(struct fixture *g, struct ipiv_lat_hist *lat, size_t n_lat,
		      enum budget_host host)
{
	struct ipiv_vm_stats *vm = &g->vms[0];
	struct ipiv_counts *c = &vm->counts;

	memset(c->sent_by_path, 0, sizeof(c->sent_by_path));
	c->sent = c->sent_accel_eligible = 0;
	vm->n_send_cells = 0;
	test_add_send(vm, g->web_sends, IPIV_PATH_X2APIC_MSR, icr_classify(FIXED(0xfd), 3, 2),
		      1000);
	test_add_send(vm, g->web_sends, IPIV_PATH_X2APIC_MSR,
		      icr_classify(FIXED(0xfd) | ICR_DEST_LOGICAL, 0x0001000f, 2), 7);
	test_add_send(vm, g->web_sends, IPIV_PATH_PV_KVM, icr_classify(FIXED(0xfb), 5, 2), 50);
	/* the counters that need fexit or kernel-patches/ (.patched in ipiv_counters.h) start
	 * empty; the host fills those it has */
	memset(c->icr_write_traps, 0, sizeof(c->icr_write_traps));
	memset(c->pi_descriptor_updates, 0, sizeof(c->pi_descriptor_updates));
	memset(c->state_ns, 0, sizeof(c->state_ns));
	c->x2apic_fastpath_handled = c->x2apic_fastpath_missed = 0;
	c->avic_running_set = c->avic_running_cleared = 0;
	c->posted_wakeups = c->posted_wakeups_ipi = 0;
	switch (host) {
	case BUDGET_NO_FEXIT: break;
	case BUDGET_INTEL:
		c->x2apic_fastpath_handled = 900;
		c->x2apic_fastpath_missed = 100;
		c->state_ns[IPIV_VSTATE_BLOCKED] = 1500000000ull;
		c->state_ns[IPIV_VSTATE_PREEMPTED] = 20000000ull;
		for (unsigned t = 0; t < IPIV_PI_TRIGGER_COUNT; t++)
			c->pi_descriptor_updates[t] = 10 + t;
		/* While APICv is on, the guest's ICR writes no longer exit as WRMSR: each one
		 * IPIv does not deliver is an APIC-write trap, counted as a send on
		 * apic_write_trap and as a trap by reason. The worst case is APICv without IPIv
		 * (a CPU without it, kvm_intel enable_ipiv=0): both classes trap, and with IPIv
		 * off (or a KVM without tertiary controls, which predates IPIv) both as
		 * ipiv_inactive (icr_trap_reason() in bpf/ipiv.bpf.c). */
		test_add_send(vm, g->web_sends, IPIV_PATH_APIC_WRITE,
			      icr_classify(FIXED(0xfd), 3, 2), 40);
		test_add_send(vm, g->web_sends, IPIV_PATH_APIC_WRITE,
			      icr_classify(FIXED(0xfd) | ICR_DEST_LOGICAL, 0x0001000f, 2), 7);
		c->icr_write_traps[IPIV_TRAP_IPIV_INACTIVE] = 47;
		break;
	case BUDGET_AMD:
		c->x2apic_fastpath_handled = 900;
		c->x2apic_fastpath_missed = 100;
		c->state_ns[IPIV_VSTATE_PREEMPTED] = 20000000ull;
		c->state_ns[IPIV_VSTATE_NOT_RUNNING] = 1500000000ull;
		c->avic_running_set = 40;
		c->avic_running_cleared = 39;
		/* as many exit reasons as on Intel, SVM's */
		g->web_exits[0] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x078, 30};
		g->web_exits[1] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x07c, 1007};
		g->web_exits[2] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x401, 2};
		g->web_exits[3] = (struct ipiv_exit_cell){IPIV_ISA_SVM, 0x402, 4};
		break;
	}
	/* in (path, class) order, as snapshots keep them (the trapped sends came last) */
	qsort(vm->send_cells, vm->n_send_cells, sizeof(*vm->send_cells), ipiv_send_cell_cmp);
	vm->lat_unmatched[IPIV_UNM_OVERWRITTEN] = 3;
	vm->lat_unmatched[IPIV_UNM_WAKE_UNSEEN] = 1;
	vm->lat = lat;
	vm->n_lat = n_lat;
}

/* The series budget (docs/metrics.md#series-budget): 60 series per VM in default mode, in
 * every format, classic text included. The busiest realistic VM: an x2APIC guest that also
 * sends PV IPIs (two paths, three ICR classes) to halting targets, with the fixture's web
 * VM's exit reasons and inhibits, two unmatched reasons and histograms in every family on
 * both paths, on a host without fexit, on Intel hosts and on an AMD host that permit it
 * (every fexit counter of the ISA filled; on Intel the ICR writes APICv traps, sent on a
 * third path): C + 2 x (B + 3) in default mode. Then, with the
 * five families on the fixture's web VM (four paths, given histograms on two): C + H x
 * (B + 3) classic, C + H native, and the per-vCPU bound. */
static void test_series_budget(void **state)
{
	static const char *const host_names[BUDGET_HOSTS] = {"no fexit", "Intel, fexit",
							     "AMD, fexit"};
	const uint16_t two_paths[] = {IPIV_PATH_X2APIC_MSR, IPIV_PATH_PV_KVM};
	struct fixture *f = fixture_new();
	struct ipiv_vm_stats *web = &f->vms[0];
	struct ipiv_lat_hist lat[EVERY_FAMILY] = {0};
	struct metrics_opts opts = {.version = "t", .have_last_scrape = true};
	const double *le;
	size_t bounds = latency_layout_bounds(LATENCY_LAYOUT_COARSE, &le);
	size_t text, text_vcpu;
	struct vm_cost c;
	char *body;

	web->lat = lat;
	web->n_lat = every_family(lat, two_paths);

	/* the busiest realistic VM, in default mode, on each kind of host */
	for (enum budget_host host = BUDGET_NO_FEXIT; host < BUDGET_HOSTS; host++) {
		bool intel = host == BUDGET_INTEL;
		struct fixture *g = fixture_new();

		budget_vm(g, lat, web->n_lat, host);
		c = pb_vm_cost(g, &opts, "web");
		body = render_opts(g, EXPO_TEXT_0_0_4, &opts);
		text = count_lines_containing(body, "vm=\"web\"");
		print_message("busiest realistic VM, default mode, %s: %zu series in classic text "
			      "(C = %zu), %zu with native histograms\n",
			      host_names[host], text, c.native - c.hists, c.native);
		for (size_t i = 0; i < sizeof(budget_fexit) / sizeof(budget_fexit[0]); i++) {
			char prefix[128];

			snprintf(prefix, sizeof(prefix), "%svm=\"web\"", budget_fexit[i].family);
			assert_int_equal(count_prefix(body, prefix), budget_fexit[i].series[host]);
		}
		assert_int_equal(count_prefix(body, "ipiv_ipis_sent_total{vm=\"web\","
						    "path=\"apic_write_trap\""),
				 intel ? 2 : 0);
		assert_int_equal(c.hists, 2);
		assert_int_equal(text, c.native - c.hists + c.hists * (bounds + 3));
		if (text > 60)
			fail_msg("the busiest realistic VM (%s) costs %zu series in classic text",
				 host_names[host], text);
		free(body);
		free(g);
	}

	/* every family on the fixture's web VM */
	opts.vm_histograms = METRICS_VM_HISTOGRAMS_ALL;
	c = pb_vm_cost(f, &opts, "web");
	assert_int_equal(web->n_lat, EVERY_FAMILY);
	assert_int_equal(c.hists, web->n_lat - 1); /* the fastpath's exits: host-wide only */
	if (c.native > 60)
		fail_msg("web costs %zu series with native histograms", c.native);
	assert_int_equal(c.classic, c.native - c.hists + c.hists * (bounds + 3));
	body = render_opts(f, EXPO_TEXT_0_0_4, &opts);
	text = count_lines_containing(body, "vm=\"web\"");
	assert_int_equal(text, c.classic);
	free(body);

	/* per-vCPU mode adds at most 3 (V + 1) + V (V + 1) */
	opts.per_vcpu = true;
	body = render_opts(f, EXPO_TEXT_0_0_4, &opts);
	text_vcpu = count_lines_containing(body, "vm=\"web\"");
	{
		size_t v = web->vcpu_count;

		print_message("web, every family: %zu series with native histograms, %zu classic, "
			      "%zu with --collector.per-vcpu\n",
			      c.native, c.classic, text_vcpu);
		assert_true(text_vcpu > text);
		assert_true(text_vcpu - text <= 3 * (v + 1) + v * (v + 1));
	}
	free(body);
	free(f);
}

/* The whole exposition of the fixture, per-vCPU series on, in both formats. */
static void test_golden(void **state)
{
	struct fixture *f = fixture_new();
	char *text = render(f, EXPO_TEXT_0_0_4, true);
	char *om = render(f, EXPO_OPENMETRICS_1_0_0, true);

	golden_check("metrics.prom", text, strlen(text));
	golden_check("metrics.om", om, strlen(om));
	free(text);
	free(om);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_reason_names),
		cmocka_unit_test(test_exit_reason_kernel_tables),
		cmocka_unit_test(test_pv_kick_delivery),
		cmocka_unit_test(test_vm_families),
		cmocka_unit_test(test_send_families),
		cmocka_unit_test(test_receive_and_halt_families),
		cmocka_unit_test(test_exit_avic_and_inhibit_families),
		cmocka_unit_test(test_patched_families),
		cmocka_unit_test(test_inhibits_unknown_means_no_series),
		cmocka_unit_test(test_per_vcpu_families_only_with_flag),
		cmocka_unit_test(test_self_families),
		cmocka_unit_test(test_missing_required_probe_degrades),
		cmocka_unit_test(test_empty_snapshot),
		cmocka_unit_test(test_hostile_names_are_escaped),
		cmocka_unit_test(test_no_duplicate_series_text),
		cmocka_unit_test(test_host_totals_and_exited_vms),
		cmocka_unit_test(test_host_sender_exit),
		cmocka_unit_test(test_first_scrape_has_no_scrape_figures),
		cmocka_unit_test(test_openmetrics),
		cmocka_unit_test(test_histogram_buckets_are_fixed),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_protobuf_has_every_family),
		cmocka_unit_test(test_native_mapping_error),
		cmocka_unit_test(test_native_and_classic_quantiles),
		cmocka_unit_test(test_vm_histograms_flag),
		cmocka_unit_test(test_series_budget),
	};
	const struct CMUnitTest promtool_tests[] = {
		cmocka_unit_test(test_promtool_accepts_text),
	};
	int rc = cmocka_run_group_tests_name("metrics", tests, NULL, NULL);

	if (rc)
		return rc;
	/* The pure tests above always run; only the promtool check needs the tool. */
	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		printf("promtool not installed (Debian: apt-get install prometheus)\n");
		return 77;
	}
	return cmocka_run_group_tests_name("metrics_promtool", promtool_tests, NULL, NULL);
}
