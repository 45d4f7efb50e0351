/* ipivd's JSON API documents: VM summaries, one VM in detail, and the collector's health. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "counters.h"
#include "metrics.h"
#include "naming.h"
#include "sources.h"

static uint64_t mix64(uint64_t z)
{
	/* splitmix64's finaliser: a bijection that spreads every input bit */
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void api_vm_id(uint64_t vm, uint64_t key, char out[17])
{
	/* Two keyed rounds: with the second key secret, ids reveal neither an address nor
	 * the XOR of two addresses (one round would give away vm ^ key). */
	uint64_t z = mix64(mix64(vm ^ key) ^ mix64(key ^ 0x6970697664ull));

	snprintf(out, 17, "%016llx", (unsigned long long)z);
}

static json_t *count_json(uint64_t v, bool ns)
{
	return ns ? json_real(v / 1e9) : json_integer((json_int_t)v);
}

/* One field of a counter kind: a count, seconds, or for BY_SUB {"label": count, ...} of
 * the labels that counted. */
static json_t *field_json(const struct counter_kind *k, enum counter_slot slot,
			  const struct ipiv_counts *c)
{
	const struct counter_field *f = &k->field[slot];
	const uint64_t *v = counter_get(c, f);
	json_t *by_sub;

	if (slot != COUNTER_BY_SUB)
		return count_json(*v, f->ns);
	by_sub = json_object();
	for (unsigned sub = k->first_sub; sub < k->n_sub; sub++)
		if (v[sub])
			json_object_set_new(by_sub, k->sub_name(sub), count_json(v[sub], f->ns));
	return by_sub;
}

/* Every field of the counter table (include/ipiv_counters.h) under its name; what the
 * tracepoints of kernel-patches/ count (all zero on a stock kernel) in "patched_tracepoints". */
static json_t *counts_json(const struct ipiv_counts *c)
{
	json_t *o = json_object(), *patched = json_object();

	for (unsigned kind = 0; kind < IPIV_CNT_KIND_COUNT; kind++) {
		const struct counter_kind *k = &counter_kinds[kind];

		for (unsigned slot = 0; slot < COUNTER_SLOTS; slot++)
			if (k->field[slot].name)
				json_object_set_new(k->patched ? patched : o, k->field[slot].name,
						    field_json(k, slot, c));
	}
	json_object_set_new(o, "patched_tracepoints", patched);
	return o;
}

static json_t *inhibits_json(const struct ipiv_inhibit_names *inh, const struct ipiv_vm_stats *vm)
{
	json_t *o = json_object(), *set = json_array();

	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		if (vm->inhibits & (1ull << r))
			json_array_append_new(set, json_string(ipiv_inhibit_name(inh, r)));
	json_object_set_new(o, "known", json_boolean(vm->inhibits_known));
	json_object_set_new(o, "reasons", set);
	/* the bits too: the names are this kernel's, a reader's kernel may name them otherwise */
	json_object_set_new(o, "bitmap", json_integer((json_int_t)vm->inhibits));
	return o;
}

static json_t *quantile_json(const struct latency_hist *h, double q)
{
	struct latency_quantile r = latency_quantile(h, q);

	if (!r.valid)
		return json_null();
	if (r.overflow)
		return json_pack("{s:f, s:n, s:b}", "value_ns", r.value_ns, "error_ns", "overflow",
				 true);
	return json_pack("{s:f, s:f}", "value_ns", r.value_ns, "error_ns", r.error_ns);
}

/* A histogram with its quantiles and non-empty buckets ([upper edge ns, count]). */
static json_t *hist_json(const struct latency_hist *h, bool with_buckets)
{
	json_t *o = json_pack("{s:I, s:I, s:f, s:o, s:o, s:o}", "count", (json_int_t)h->count,
			      "sum_ns", (json_int_t)h->sum_ns, "mean_ns", latency_mean_ns(h), "p50",
			      quantile_json(h, 0.5), "p90", quantile_json(h, 0.9), "p99",
			      quantile_json(h, 0.99));

	if (with_buckets) {
		json_t *b = json_array();

		for (unsigned i = 0; i < HIST_BUCKETS; i++)
			if (h->buckets[i])
				json_array_append_new(
					b, json_pack("[I, I]",
						     i == HIST_BUCKETS - 1
							     ? (json_int_t)-1
							     : (json_int_t)hist_bucket_hi(i),
						     (json_int_t)h->buckets[i]));
		json_object_set_new(o, "buckets", b);
	}
	return o;
}

/* The histogram of (kind, sub) over every vCPU (vcpu NULL) or of one vCPU; false if empty. */
static bool lat_of(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub,
		   const uint32_t *vcpu, struct latency_hist *out)
{
	return vcpu ? vm_vcpu_latency(vm, kind, sub, *vcpu, out) : vm_latency(vm, kind, sub, out);
}

/* {"send_to_eoi": {"x2apic_msr": {...}, ...}, ...}: VM-wide over vCPUs (vcpu NULL), or the
 * histograms of one vCPU. */
static json_t *latency_json(const struct ipiv_vm_stats *vm, const uint32_t *vcpu, bool with_buckets)
{
	json_t *o = json_object();

	for (size_t j = 0; j < vm->n_lat; j++) {
		const char *kind = ipiv_lat_kind_name(vm->lat[j].kind), *label, *value;
		struct latency_hist h;
		json_t *per_kind;

		if (vcpu && vm->lat[j].vcpu != *vcpu)
			continue;
		value = ipiv_lat_sub_label(vm->lat[j].kind, vm->lat[j].sub, &label);
		per_kind = json_object_get(o, kind);
		if (!per_kind) {
			per_kind = json_object();
			json_object_set_new(o, kind, per_kind);
		} else if (json_object_get(per_kind, value)) {
			continue; /* another vCPU's row of a (kind, sub) already merged */
		}
		lat_of(vm, vm->lat[j].kind, vm->lat[j].sub, vcpu, &h);
		json_object_set_new(per_kind, value, hist_json(&h, with_buckets));
	}
	return o;
}

/* The figure a table shows: send->EOI over every path, of the VM or of one vCPU; with its
 * buckets when asked. */
static json_t *latency_headline(const struct ipiv_vm_stats *vm, const uint32_t *vcpu,
				bool with_buckets)
{
	struct latency_hist h;

	if (!lat_of(vm, IPIV_LAT_SEND_EOI, IPIV_LAT_ANY_SUB, vcpu, &h))
		return json_null();
	return hist_json(&h, with_buckets);
}

static json_t *vm_summary(const struct ipiv_inhibit_names *inh, const struct ipiv_vm_stats *vm,
			  const char *name, uint64_t key, unsigned hists)
{
	json_t *o = json_object();
	char id[17];

	api_vm_id(vm->vm, key, id);
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "id", json_string(id));
	/* for joins with the VMM's inventory; naming validated the UUID (null: none given) */
	json_object_set_new(o, "vmm", json_string(vm_vmm_name(vm->vmm)));
	json_object_set_new(o, "uuid", vm->uuid[0] ? json_string(vm->uuid) : json_null());
	json_object_set_new(o, "pid", json_integer(vm->pid));
	json_object_set_new(o, "alive", json_boolean(vm->alive));
	json_object_set_new(o, "vcpus", json_integer(vm->vcpu_count));
	json_object_set_new(o, "counts", counts_json(&vm->counts));
	json_object_set_new(o, "apicv_inhibits", inhibits_json(inh, vm));
	json_object_set_new(o, "send_to_eoi",
			    latency_headline(vm, NULL, hists & API_VMS_HIST_SEND_TO_EOI));
	return o;
}

int api_vms_histograms(const char *value, unsigned *hists)
{
	*hists = 0;
	if (!value)
		return 0;
	if (strcmp(value, "send_to_eoi"))
		return -EINVAL;
	*hists = API_VMS_HIST_SEND_TO_EOI;
	return 0;
}

json_t *api_vms_with(const struct ipiv_snapshot *snap, const char *const *names, uint64_t id_key,
		     unsigned hists)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < snap->n_vms; i++)
		json_array_append_new(arr, vm_summary(&snap->inhibit_names, &snap->vms[i], names[i],
						      id_key, hists));
	return json_pack("{s:o}", "vms", arr);
}

json_t *api_vms(const struct ipiv_snapshot *snap, const char *const *names, uint64_t id_key)
{
	return api_vms_with(snap, names, id_key, 0);
}

static json_t *classes_json(const struct ipiv_vm_stats *vm)
{
	json_t *arr = json_array();
	static const char *const dest[] = {"unicast", "multicast", "broadcast"};

	for (size_t j = 0; j < vm->n_send_cells; j++) {
		const struct ipiv_send_cell *c = &vm->send_cells[j];
		unsigned d =
			icr_class_is_broadcast(c->class) ? 2 : icr_class_is_multicast(c->class);

		json_array_append_new(
			arr,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I}", "path",
				  ipiv_path_name(c->path), "delivery",
				  icr_delivery_names[icr_class_delivery(c->class)], "dest_mode",
				  icr_dest_mode_names[icr_class_is_logical(c->class)], "shorthand",
				  icr_shorthand_names[icr_class_shorthand(c->class)], "dest",
				  dest[d], "accel_eligible", icr_class_accel_eligible(c->class),
				  "count", (json_int_t)c->count));
	}
	return arr;
}

static json_t *vm_detail(const struct ipiv_inhibit_names *inh, const struct ipiv_vm_stats *vm,
			 const char *name, uint64_t key)
{
	json_t *o = vm_summary(inh, vm, name, key, 0);
	json_t *exits = json_array(), *vcpus = json_array(), *matrix = json_array();
	json_t *changes = json_array();
	/* only when the collector keys histograms by vCPU (ipivd --collector.per-vcpu): else
	 * the vCPU rows carry none, rather than a VM-wide figure passed off as theirs */
	bool per_vcpu = vm_latency_per_vcpu(vm);

	json_object_set_new(o, "sent_by_class", classes_json(vm));
	for (size_t j = 0; j < vm->n_exits; j++) {
		char num[METRICS_EXIT_REASON_LEN];
		const struct ipiv_exit_cell *x = &vm->exits[j];

		json_array_append_new(
			exits, json_pack("{s:s, s:I, s:s, s:I}", "isa",
					 x->isa == IPIV_ISA_SVM ? "svm" : "vmx", "reason",
					 (json_int_t)x->reason, "name",
					 metrics_exit_reason(x->isa, x->reason, num, sizeof(num)),
					 "count", (json_int_t)x->count));
	}
	for (size_t j = 0; j < vm->n_vcpus; j++) {
		const struct ipiv_vcpu_stats *v = &vm->vcpus[j];
		json_t *row = counts_json(&v->counts);

		json_object_set_new(row, "id",
				    v->vcpu_id == IPIV_VCPU_NONE ? json_null()
								 : json_integer(v->vcpu_id));
		json_object_set_new(row, "tid", json_integer(v->tid));
		json_object_set_new(row, "apic_mode",
				    json_string(ipiv_apic_mode_name(v->apic_mode)));
		json_object_set_new(row, "apicv_active",
				    v->apicv_active == IPIV_APICV_UNKNOWN
					    ? json_null()
					    : json_boolean(v->apicv_active == IPIV_APICV_ACTIVE));
		/* By the vCPU the latency belongs to (include/hist.h): the target for send->EOI;
		 * the row of non-vCPU threads (id null) holds what no vCPU does. */
		if (per_vcpu) {
			json_object_set_new(row, "send_to_eoi",
					    latency_headline(vm, &v->vcpu_id, false));
			json_object_set_new(row, "latency", latency_json(vm, &v->vcpu_id, true));
		}
		json_array_append_new(vcpus, row);
	}
	for (size_t j = 0; j < vm->n_matrix; j++) {
		const struct ipiv_matrix_cell *m = &vm->matrix[j];

		json_array_append_new(matrix, json_pack("{s:o, s:I, s:I}", "src",
							m->src_vcpu == IPIV_VCPU_NONE
								? json_null()
								: json_integer(m->src_vcpu),
							"dst", (json_int_t)m->dst_vcpu, "count",
							(json_int_t)m->count));
	}
	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		if (vm->inhibit_set[r] || vm->inhibit_clear[r])
			json_array_append_new(changes,
					      json_pack("{s:s, s:i, s:I, s:I}", "reason",
							ipiv_inhibit_name(inh, r), "bit", (int)r,
							"set", (json_int_t)vm->inhibit_set[r],
							"clear", (json_int_t)vm->inhibit_clear[r]));
	json_object_set_new(o, "exits_by_reason", exits);
	json_object_set_new(o, "vcpu_rows", vcpus);
	json_object_set_new(o, "matrix", matrix);
	json_object_set_new(o, "apicv_inhibit_changes", changes);
	{
		json_t *tl = json_array();

		for (size_t k = 0; k < vm->n_timeline; k++)
			json_array_append_new(
				tl, json_pack("{s:I, s:s, s:i, s:s}", "monotonic_ns",
					      (json_int_t)vm->timeline[k].ts, "reason",
					      ipiv_inhibit_name(inh, vm->timeline[k].reason), "bit",
					      (int)vm->timeline[k].reason, "action",
					      vm->timeline[k].set ? "set" : "clear"));
		json_object_set_new(o, "apicv_inhibit_timeline", tl);
	}
	json_object_set_new(o, "latency_enabled", json_boolean(vm->latency_enabled));
	json_object_set_new(o, "latency", latency_json(vm, NULL, true));
	{
		json_t *unm = json_object();

		for (unsigned r = 0; r < IPIV_UNM_COUNT; r++)
			json_object_set_new(unm, ipiv_lat_unmatched_name(r),
					    json_integer(vm->lat_unmatched[r]));
		json_object_set_new(o, "latency_unmatched", unm);
	}
	json_object_set_new(o, "latency_note",
			    json_string("quantiles are bucket midpoints: the true value is within "
					"error_ns (at most 1/32 of the value)"));
	return o;
}

json_t *api_vm_detail(const struct ipiv_snapshot *snap, const char *const *names, uint64_t id_key,
		      const char *name_or_id)
{
	/* Ids first: names come from VMM command lines, and one that spells another VM's id
	 * must not capture lookups of that id. */
	for (size_t i = 0; i < snap->n_vms; i++) {
		char id[17];

		api_vm_id(snap->vms[i].vm, id_key, id);
		if (!strcmp(id, name_or_id))
			return vm_detail(&snap->inhibit_names, &snap->vms[i], names[i], id_key);
	}
	for (size_t i = 0; i < snap->n_vms; i++)
		if (!strcmp(names[i], name_or_id))
			return vm_detail(&snap->inhibit_names, &snap->vms[i], names[i], id_key);
	return NULL;
}

/* Where each quantity with more than one possible source comes from here (sources.h). */
static json_t *sources_json(const struct ipiv_self_stats *self)
{
	struct ipiv_quantity_source src[IPIV_N_QUANTITIES];
	json_t *o = json_object();

	ipiv_quantity_sources(self->probes, self->n_probes, src);
	for (size_t q = 0; q < IPIV_N_QUANTITIES; q++)
		json_object_set_new(o, src[q].quantity,
				    json_pack("{s:s?, s:s}", "probe", src[q].probe, "kind",
					      ipiv_source_kind_name(src[q].kind)));
	return o;
}

json_t *api_status(const struct ipiv_snapshot *snap, const char *version)
{
	const struct ipiv_self_stats *self = &snap->self;
	json_t *probes = json_array(), *progs = json_array(), *drops = json_object();
	json_t *status;
	bool degraded = false;

	for (size_t i = 0; i < self->n_probes; i++) {
		const struct ipiv_probe *p = &self->probes[i];

		json_array_append_new(
			probes, json_pack("{s:s, s:s, s:b, s:b, s:s?}", "name", p->name, "program",
					  p->prog, "attached", p->attached, "optional", p->optional,
					  "error", p->attached ? NULL : strerror(-p->err)));
		if (!p->attached && !p->optional)
			degraded = true;
	}
	for (size_t i = 0; i < self->n_progs; i++)
		json_array_append_new(progs,
				      json_pack("{s:s, s:I, s:I}", "name", self->progs[i].name,
						"runs", (json_int_t)self->progs[i].run_cnt,
						"run_ns", (json_int_t)self->progs[i].run_time_ns));
	for (unsigned r = 0; r < IPIV_DROP_COUNT; r++)
		json_object_set_new(drops, ipiv_drop_name(r), json_integer(self->drops[r]));
	status = json_pack("{s:s, s:b, s:I, s:I, s:o, s:o, s:o, s:b, s:I, s:I, s:I, s:s}",
			   "version", version, "degraded", degraded, "probes_attached",
			   (json_int_t)self->n_attached, "probes_total", (json_int_t)self->n_probes,
			   "probes", probes, "programs", progs, "drops", drops, "bpf_stats_enabled",
			   self->bpf_stats_enabled, "vms", (json_int_t)snap->n_vms,
			   "vms_discovered", (json_int_t)self->vms_discovered, "vms_reclaimed",
			   (json_int_t)self->vms_reclaimed, "inhibit_names",
			   ipiv_inhibit_names_source(&snap->inhibit_names));
	if (status) {
		json_t *recorded = json_array();

		/* the latency families this ipivd records: a VM's .latency has only these */
		for (uint32_t k = 0; k < IPIV_LAT_UNMATCHED; k++)
			if (self->lat_kinds_recorded & (1u << k))
				json_array_append_new(recorded, json_string(ipiv_lat_kind_name(k)));
		json_object_set_new(status, "latency_recorded", recorded);
		json_object_set_new(status, "sources", sources_json(self));
	}
	return status;
}
