/* The host-wide diagnosis: runs the rules of diag.c over two snapshots, tracks since when each
 * finding holds, and renders the result as text, JSON and Prometheus series. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diag_report.h"

static const struct diag_finding *result_find(const struct diag_result *res, enum diag_rule_id rule)
{
	for (size_t i = 0; i < res->n_findings; i++)
		if (res->findings[i].rule == rule)
			return &res->findings[i];
	return NULL;
}

static void carry_since(struct diag_result *res, const struct diag_result *before, uint64_t now_ns)
{
	for (size_t i = 0; i < res->n_findings; i++) {
		const struct diag_finding *old =
			before ? result_find(before, res->findings[i].rule) : NULL;

		res->findings[i].since_ns = old && old->since_ns ? old->since_ns : now_ns;
	}
}

static const struct diag_vm_report *report_find_vm(const struct diag_report *r, uint64_t vm)
{
	for (size_t i = 0; r && i < r->n_vms; i++)
		if (r->vms[i].vm == vm)
			return &r->vms[i];
	return NULL;
}

static void copy_inhibits(struct diag_vm_report *vr, const struct ipiv_vm_stats *vm)
{
	vr->inhibits_known = vm->inhibits_known;
	vr->inhibits = vm->inhibits;
	vr->n_timeline = vm->n_timeline < IPIV_TIMELINE ? vm->n_timeline : IPIV_TIMELINE;
	memcpy(vr->timeline, vm->timeline, vr->n_timeline * sizeof(vr->timeline[0]));
	vr->inhibit_changes = 0;
	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		vr->inhibit_changes += vm->inhibit_set[r] + vm->inhibit_clear[r];
}

/* Seconds from an inhibit change to the snapshot; 0 for a change the BPF side stamped after
 * taken_ns (the maps are read after the clock). */
static double change_ago(const struct ipiv_inhibit_change *ch, uint64_t taken_ns)
{
	return taken_ns > ch->ts ? (taken_ns - ch->ts) / 1e9 : 0.0;
}

/* The median of (kind, sub) over the window: the histogram now minus the one at the
 * window's start (counts only grow). */
static struct diag_figure window_median(const struct ipiv_vm_stats *cur,
					const struct ipiv_vm_stats *prev, uint16_t kind,
					uint16_t sub)
{
	struct diag_figure fig = {0};
	struct latency_hist now, then;
	struct latency_quantile q;

	if (!vm_latency(cur, kind, sub, &now))
		return fig;
	if (prev && vm_latency(prev, kind, sub, &then)) {
		for (unsigned b = 0; b < HIST_BUCKETS; b++)
			now.buckets[b] -= now.buckets[b] >= then.buckets[b] ? then.buckets[b]
									    : now.buckets[b];
		now.count = now.count >= then.count ? now.count - then.count : 0;
	}
	q = latency_quantile(&now, 0.5);
	fig.known = q.valid;
	fig.value = q.value_ns;
	fig.samples = now.count;
	return fig;
}

struct diag_latency **diag_latency_inputs(const struct ipiv_snapshot *prev,
					  const struct ipiv_snapshot *cur)
{
	size_t n = cur->n_vms;
	struct diag_latency **ptrs = calloc(n ? n : 1, sizeof(*ptrs) + sizeof(**ptrs));
	struct diag_latency *figs = (struct diag_latency *)(ptrs + (n ? n : 1));

	if (!ptrs)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct ipiv_vm_stats *vm = &cur->vms[i];
		const struct ipiv_vm_stats *old = prev ? snapshot_find_vm(prev, vm->vm) : NULL;

		if (!vm->latency_enabled)
			continue;
		ptrs[i] = &figs[i];
		for (unsigned p = 0; p < IPIV_PATH_COUNT; p++)
			figs[i].exit_ns[p] = window_median(vm, old, IPIV_LAT_EXIT, p);
		figs[i].exit_fastpath_ns =
			window_median(vm, old, IPIV_LAT_EXIT_FASTPATH, IPIV_PATH_X2APIC_MSR);
		figs[i].delivery_ns =
			window_median(vm, old, IPIV_LAT_SEND_ACCEPT, IPIV_LAT_ANY_SUB);
		figs[i].halt_ns = window_median(vm, old, IPIV_LAT_HALT, IPIV_LAT_ANY_SUB);
		figs[i].wakeup_ns =
			window_median(vm, old, IPIV_LAT_ACCEPT_RUN, IPIV_LAT_CASE_HALTED);
		/* whether a running target was preempted is not traced: left unknown */
	}
	return ptrs;
}

int diag_evaluate_snapshot(const struct accel_state *host, const struct ipiv_snapshot *prev,
			   const struct ipiv_snapshot *cur, const char *const *names,
			   const struct diag_latency *const *latency,
			   const struct diag_thresholds *th, const struct diag_report *previous,
			   struct diag_report **out)
{
	struct diag_host_inhibits host_inhibits = {.inhibit_names =
							   cur ? &cur->inhibit_names : NULL};
	struct diag_latency **derived = NULL;
	struct diag_report *r;

	if (!cur || !names || !th || !out)
		return -EINVAL;
	if (!latency) {
		derived = diag_latency_inputs(prev, cur);
		if (!derived)
			return -ENOMEM;
		latency = (const struct diag_latency *const *)derived;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		free(derived);
		return -ENOMEM;
	}
	if (cur->n_vms) {
		r->vms = calloc(cur->n_vms, sizeof(*r->vms));
		if (!r->vms) {
			free(r);
			free(derived);
			return -ENOMEM;
		}
	}
	r->taken_ns = cur->taken_ns;
	r->inhibit_names = cur->inhibit_names;
	if (host) {
		r->host_known = true;
		r->host = *host;
	}
	diag_evaluate_host(host, th, &r->host_result);

	for (size_t i = 0; i < cur->n_vms; i++) {
		const struct ipiv_vm_stats *vm = &cur->vms[i];
		const struct ipiv_vm_stats *before = prev ? snapshot_find_vm(prev, vm->vm) : NULL;
		const struct diag_vm_report *old = report_find_vm(previous, vm->vm);
		struct diag_vm_report *vr = &r->vms[r->n_vms++];
		struct diag_vm_input in = {
			.cur = vm,
			.prev = before,
			.latency = latency ? latency[i] : NULL,
			.inhibit_names = &cur->inhibit_names,
		};

		if (before && cur->taken_ns > prev->taken_ns)
			in.window_seconds = (cur->taken_ns - prev->taken_ns) / 1e9;
		vr->vm = vm->vm;
		vr->window_seconds = in.window_seconds;
		vm_name_sanitize(names[i] ? names[i] : "", names[i] ? strlen(names[i]) : 0,
				 vr->name, sizeof(vr->name));
		copy_inhibits(vr, vm);
		diag_evaluate_vm(host, &in, th, &vr->result);
		carry_since(&vr->result, old ? &old->result : NULL, r->taken_ns);
		if (vm->inhibits_known && diag_host_wide_inhibits(host, vm->inhibits)) {
			host_inhibits.vms++;
			host_inhibits.reasons |= diag_host_wide_inhibits(host, vm->inhibits);
		}
	}
	/* what every VM shares is said once, for the host */
	diag_evaluate_host_inhibits(host, &host_inhibits, &r->host_result);
	carry_since(&r->host_result, previous ? &previous->host_result : NULL, r->taken_ns);
	free(derived);
	*out = r;
	return 0;
}

void diag_report_free(struct diag_report *r)
{
	if (!r)
		return;
	free(r->vms);
	free(r);
}

/* ---- text ---- */

/* Writes prefix, a space and text, wrapped at 100 columns; continuation lines start with
 * indent. A word longer than a line is written whole. */
static void print_wrapped(FILE *f, const char *prefix, const char *indent, const char *text)
{
	size_t col = strlen(prefix), ind = strlen(indent);
	bool line_start = false;

	fputs(prefix, f);
	for (;;) {
		size_t word;

		while (*text == ' ')
			text++;
		if (!*text)
			break;
		word = strcspn(text, " ");
		if (!line_start && col + 1 + word > 100 && col > ind) {
			fprintf(f, "\n%s", indent);
			col = ind;
			line_start = true;
		}
		if (!line_start) {
			fputc(' ', f);
			col++;
		}
		fwrite(text, 1, word, f);
		col += word;
		line_start = false;
		text += word;
	}
	fputc('\n', f);
}

static void print_evidence(FILE *f, const struct diag_finding *fd)
{
	char line[2048];
	size_t len = 0;

	for (size_t i = 0; i < fd->n_evidence && len < sizeof(line); i++)
		len += snprintf(line + len, sizeof(line) - len, "%s%s=%s", i ? " " : "",
				fd->evidence[i].name, fd->evidence[i].text);
	print_wrapped(f, "      evidence:", "        ", line);
}

static void print_result(FILE *f, const struct diag_result *res, uint64_t now_ns)
{
	for (size_t i = 0; i < res->n_findings; i++) {
		const struct diag_finding *fd = &res->findings[i];
		char head[128];

		snprintf(head, sizeof(head), "  [%s] %s:", diag_severity_name(fd->severity),
			 diag_rule_name(fd->rule));
		print_wrapped(f, head, "      ", fd->title);
		if (fd->since_ns && now_ns > fd->since_ns)
			fprintf(f, "      for: %.0f s\n", (now_ns - fd->since_ns) / 1e9);
		print_evidence(f, fd);
		print_wrapped(f, "      remedy:", "        ", fd->remedy);
	}
	if (!res->n_findings)
		fprintf(f, "  no findings\n");
	for (size_t i = 0; i < res->n_skipped; i++)
		fprintf(f, "  not evaluated: %s (%s)\n", diag_rule_name(res->skipped[i].rule),
			res->skipped[i].needs);
}

static void print_inhibits(FILE *f, const struct diag_report *r, const struct diag_vm_report *vr)
{
	char reasons[256];

	if (!vr->inhibits_known) {
		fprintf(f, "  APICv inhibits: unknown (no kvm_apicv_inhibit_changed seen, bitmap "
			   "not read)\n");
	} else if (!vr->inhibits) {
		fprintf(f, "  APICv inhibits: none\n");
	} else {
		ipiv_inhibit_list(&r->inhibit_names, vr->inhibits, ",", reasons, sizeof(reasons));
		fprintf(f, "  APICv inhibits: %s (0x%llx)\n", reasons,
			(unsigned long long)vr->inhibits);
	}
	if (!vr->n_timeline) {
		if (vr->inhibit_changes)
			fprintf(f,
				"  APICv inhibit timeline: none recorded (%llu changes counted, "
				"their times not kept)\n",
				(unsigned long long)vr->inhibit_changes);
		else
			fprintf(f, "  APICv inhibit timeline: none recorded\n");
		return;
	}
	if (vr->inhibit_changes > vr->n_timeline)
		fprintf(f, "  APICv inhibit timeline (last %zu of %llu changes, newest last):\n",
			vr->n_timeline, (unsigned long long)vr->inhibit_changes);
	else
		fprintf(f, "  APICv inhibit timeline (newest last):\n");
	for (size_t k = 0; k < vr->n_timeline; k++) {
		const struct ipiv_inhibit_change *ch = &vr->timeline[k];

		fprintf(f, "    %10.3f s  %-5s  %s\n", -change_ago(ch, r->taken_ns),
			ch->set ? "set" : "clear",
			ipiv_inhibit_name(&r->inhibit_names, ch->reason));
	}
}

static void print_host(FILE *f, const struct diag_report *r)
{
	const struct accel_state *h = &r->host;

	fprintf(f, "Host\n");
	if (!r->host_known) {
		fprintf(f, "  acceleration state not read\n");
	} else {
		fprintf(f, "  cpu: %s \"%s\" family %d model %d\n", accel_vendor_name(h->vendor),
			h->model_name, h->family, h->model);
		fprintf(f, "  backend: %s, mechanism: %s\n", accel_backend_name(h->backend),
			h->mechanism);
		fprintf(f,
			"  apicv/avic: hardware %s, enabled %s; ipi acceleration: hardware %s, "
			"enabled %s, effective %s\n",
			accel_state_name(h->apicv_hw), accel_state_name(h->apicv_enabled),
			accel_state_name(h->ipiv_hw), accel_state_name(h->ipiv_enabled),
			accel_state_name(h->ipiv_effective));
		fprintf(f, "  why: %s\n", h->why);
		fprintf(f, "  facts:\n");
		for (unsigned i = 0; i < ACCEL_FACT_COUNT; i++) {
			const struct accel_fact *fa = &h->facts[i];
			char state[48];

			snprintf(state, sizeof(state), "%s%s%s%s", accel_state_name(fa->state),
				 fa->value[0] ? " (" : "", fa->value, fa->value[0] ? ")" : "");
			fprintf(f, "    %-36s %-26s %s%s%s\n", accel_fact_name(i), state,
				fa->source, fa->note ? " -- " : "", fa->note ? fa->note : "");
		}
	}
	print_result(f, &r->host_result, r->taken_ns);
}

int diag_report_print(FILE *f, const struct diag_report *r, const char *vm)
{
	bool found = !vm;

	for (size_t i = 0; vm && i < r->n_vms; i++)
		if (!strcmp(r->vms[i].name, vm))
			found = true;
	if (!found)
		return -ENOENT;
	print_host(f, r);
	for (size_t i = 0; i < r->n_vms; i++) {
		const struct diag_vm_report *vr = &r->vms[i];

		if (vm && strcmp(vr->name, vm))
			continue;
		if (vr->window_seconds > 0)
			fprintf(f, "\nVM %s (window %.1f s)\n", vr->name, vr->window_seconds);
		else
			fprintf(f, "\nVM %s (counts since ipivd first saw it)\n", vr->name);
		print_inhibits(f, r, vr);
		print_result(f, &vr->result, r->taken_ns);
	}
	if (!vm && !r->n_vms)
		fprintf(f, "\nNo VMs.\n");
	fflush(f);
	return ferror(f) ? -EIO : 0;
}

/* ---- JSON ---- */

static json_t *result_json_findings(const struct diag_result *res, uint64_t now_ns)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < res->n_findings; i++) {
		const struct diag_finding *fd = &res->findings[i];
		json_t *ev = json_object();

		for (size_t j = 0; j < fd->n_evidence; j++) {
			const struct diag_evidence *e = &fd->evidence[j];

			json_object_set_new(ev, e->name,
					    e->is_number ? json_real(e->value)
							 : json_string(e->text));
		}
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o, s:s, s:f}", "rule",
						     diag_rule_name(fd->rule), "severity",
						     diag_severity_name(fd->severity), "title",
						     fd->title, "evidence", ev, "remedy",
						     fd->remedy, "active_seconds",
						     fd->since_ns && now_ns > fd->since_ns
							     ? (now_ns - fd->since_ns) / 1e9
							     : 0.0));
	}
	return arr;
}

static json_t *result_json_skipped(const struct diag_result *res)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < res->n_skipped; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s}", "rule",
						     diag_rule_name(res->skipped[i].rule), "needs",
						     res->skipped[i].needs));
	return arr;
}

static json_t *host_json(const struct diag_report *r)
{
	const struct accel_state *h = &r->host;
	json_t *o, *facts;

	if (!r->host_known)
		return json_pack("{s:b, s:o, s:o}", "known", 0, "findings",
				 result_json_findings(&r->host_result, r->taken_ns),
				 "not_evaluated", result_json_skipped(&r->host_result));
	facts = json_array();
	for (unsigned i = 0; i < ACCEL_FACT_COUNT; i++) {
		const struct accel_fact *fa = &h->facts[i];

		json_array_append_new(
			facts,
			json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s?}", "name", accel_fact_name(i),
				  "state", accel_state_name(fa->state), "value",
				  fa->value[0] ? fa->value : NULL, "source", fa->source, "error",
				  fa->err ? strerror(-fa->err) : NULL, "note", fa->note));
	}
	o = json_pack("{s:b, s:{s:s, s:s, s:s, s:i, s:i}, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
		      "s:s, s:o}",
		      "known", 1, "cpu", "vendor", accel_vendor_name(h->vendor), "vendor_id",
		      h->vendor_id, "model_name", h->model_name, "family", h->family, "model",
		      h->model, "backend", accel_backend_name(h->backend), "mechanism",
		      h->mechanism, "apicv_hardware", accel_state_name(h->apicv_hw),
		      "apicv_enabled", accel_state_name(h->apicv_enabled), "ipiv_hardware",
		      accel_state_name(h->ipiv_hw), "ipiv_enabled",
		      accel_state_name(h->ipiv_enabled), "ipiv_effective",
		      accel_state_name(h->ipiv_effective), "why", h->why, "facts", facts);
	json_object_set_new(o, "findings", result_json_findings(&r->host_result, r->taken_ns));
	json_object_set_new(o, "not_evaluated", result_json_skipped(&r->host_result));
	return o;
}

static json_t *inhibits_json(const struct diag_report *rep, const struct diag_vm_report *vr)
{
	json_t *reasons = json_array();

	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		if (vr->inhibits & (1ull << r))
			json_array_append_new(
				reasons, json_string(ipiv_inhibit_name(&rep->inhibit_names, r)));
	return json_pack("{s:b, s:o, s:o, s:I}", "known", vr->inhibits_known, "bitmap",
			 vr->inhibits_known ? json_integer((json_int_t)vr->inhibits) : json_null(),
			 "reasons", reasons, "changes_counted", (json_int_t)vr->inhibit_changes);
}

static json_t *timeline_json(const struct diag_report *r, const struct diag_vm_report *vr)
{
	json_t *arr = json_array();

	for (size_t k = 0; k < vr->n_timeline; k++) {
		const struct ipiv_inhibit_change *ch = &vr->timeline[k];

		json_array_append_new(arr,
				      json_pack("{s:f, s:s, s:b}", "ago_seconds",
						change_ago(ch, r->taken_ns), "reason",
						ipiv_inhibit_name(&r->inhibit_names, ch->reason),
						"set", ch->set ? 1 : 0));
	}
	return arr;
}

json_t *diag_report_json(const struct diag_report *r, const char *vm)
{
	json_t *vms = json_array();
	bool found = !vm;

	for (size_t i = 0; i < r->n_vms; i++) {
		const struct diag_vm_report *vr = &r->vms[i];

		if (vm && strcmp(vr->name, vm))
			continue;
		found = true;
		json_array_append_new(
			vms, json_pack("{s:s, s:o, s:I, s:I, s:o, s:o, s:o, s:o}", "name", vr->name,
				       "window_seconds",
				       vr->window_seconds > 0 ? json_real(vr->window_seconds)
							      : json_null(),
				       "window_ipis_sent", (json_int_t)vr->result.window_ipis_sent,
				       "window_received", (json_int_t)vr->result.window_received,
				       "apicv_inhibits", inhibits_json(r, vr),
				       "apicv_inhibit_timeline", timeline_json(r, vr), "findings",
				       result_json_findings(&vr->result, r->taken_ns),
				       "not_evaluated", result_json_skipped(&vr->result)));
	}
	if (!found) {
		json_decref(vms);
		return NULL;
	}
	return json_pack("{s:o, s:o}", "host", host_json(r), "vms", vms);
}

/* ---- metrics ---- */

static int write_host(struct expo *e, const struct diag_report *r)
{
	const struct accel_state *h = &r->host;

	EXPO_TRY(expo_begin(
		e, "ipiv_host_accel", EXPO_INFO,
		"The host's IPI acceleration: CPU, KVM backend, mechanism, and whether "
		"APICv/AVIC and IPIv/AVIC IPIs are in hardware, enabled and in effect."));
	if (r->host_known) {
		struct expo_label l[] = {
			EXPO_LABEL("vendor", accel_vendor_name(h->vendor)),
			EXPO_LABEL("model", h->model_name),
			EXPO_LABEL("backend", accel_backend_name(h->backend)),
			EXPO_LABEL("mechanism", h->mechanism),
			EXPO_LABEL("apicv_hardware", accel_state_name(h->apicv_hw)),
			EXPO_LABEL("apicv_enabled", accel_state_name(h->apicv_enabled)),
			EXPO_LABEL("ipiv_hardware", accel_state_name(h->ipiv_hw)),
			EXPO_LABEL("ipiv_enabled", accel_state_name(h->ipiv_enabled)),
			EXPO_LABEL("ipiv_effective", accel_state_name(h->ipiv_effective)),
		};
		EXPO_TRY(expo_info(e, l, sizeof(l) / sizeof(l[0])));
	}
	EXPO_TRY(expo_begin(
		e, "ipiv_host_accel_fact", EXPO_INFO,
		"One fact behind the host's IPI acceleration state, with the file it was "
		"read from; state is unknown when it could not be read."));
	for (unsigned i = 0; r->host_known && i < ACCEL_FACT_COUNT; i++) {
		const struct accel_fact *fa = &h->facts[i];
		struct expo_label l[] = {
			EXPO_LABEL("fact", accel_fact_name(i)),
			EXPO_LABEL("state", accel_state_name(fa->state)),
			EXPO_LABEL("value", fa->value),
			EXPO_LABEL("source", fa->source),
		};
		EXPO_TRY(expo_info(e, l, 4));
	}
	EXPO_TRY(expo_begin(e, "ipiv_host_finding", EXPO_GAUGE,
			    "1 for each diagnosis rule about the host that currently holds."));
	for (size_t i = 0; i < r->host_result.n_findings; i++) {
		const struct diag_finding *fd = &r->host_result.findings[i];
		struct expo_label l[] = {EXPO_LABEL("rule", diag_rule_name(fd->rule)),
					 EXPO_LABEL("severity", diag_severity_name(fd->severity))};

		EXPO_TRY(expo_gauge(e, l, 2, 1));
	}
	return 0;
}

int diag_metrics_write(struct expo *e, const struct diag_report *r)
{
	unsigned not_evaluated[DIAG_RULE_COUNT] = {0};

	EXPO_TRY(write_host(e, r));
	EXPO_TRY(expo_begin(
		e, "ipiv_finding", EXPO_GAUGE,
		"1 for each diagnosis rule that currently holds for a VM (see ipivd diagnose "
		"or /api/v1/findings for evidence and remedy)."));
	for (size_t i = 0; i < r->n_vms; i++)
		for (size_t j = 0; j < r->vms[i].result.n_findings; j++) {
			const struct diag_finding *fd = &r->vms[i].result.findings[j];
			struct expo_label l[] = {
				EXPO_LABEL("vm", r->vms[i].name),
				EXPO_LABEL("rule", diag_rule_name(fd->rule)),
				EXPO_LABEL("severity", diag_severity_name(fd->severity))};

			EXPO_TRY(expo_gauge(e, l, 3, 1));
		}

	for (size_t j = 0; j < r->host_result.n_skipped; j++)
		not_evaluated[r->host_result.skipped[j].rule]++;
	for (size_t i = 0; i < r->n_vms; i++)
		for (size_t j = 0; j < r->vms[i].result.n_skipped; j++)
			not_evaluated[r->vms[i].result.skipped[j].rule]++;
	EXPO_TRY(expo_begin(
		e, "ipiv_diag_rule_not_evaluated", EXPO_GAUGE,
		"Subjects (the host or VMs) a diagnosis rule could not be evaluated for, "
		"for want of its input (latency data, inhibit bitmap, host state)."));
	for (unsigned rule = 0; rule < DIAG_RULE_COUNT; rule++) {
		struct expo_label l[] = {EXPO_LABEL("rule", diag_rule_name(rule))};

		EXPO_TRY(expo_gauge(e, l, 1, not_evaluated[rule]));
	}
	return 0;
}
