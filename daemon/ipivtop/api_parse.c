/* Parses ipivd's JSON API documents (written by api.c) back into struct ipiv_snapshot, with
 * one-line errors that name the offending field. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_parse.h"
#include "counters.h"

struct perr {
	char *buf;
	size_t size;
};

static int fail(struct perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct perr *e, const char *fmt, ...)
{
	va_list ap;

	if (e->buf && e->size) {
		va_start(ap, fmt);
		vsnprintf(e->buf, e->size, fmt, ap);
		va_end(ap);
		for (char *p = e->buf; *p; p++) /* quoted document text: no control characters */
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	}
	return -EINVAL;
}

int api_parse_text(const char *text, size_t len, json_t **doc, char *err, size_t err_size)
{
	struct perr e = {err, err_size};
	json_error_t je;

	*doc = json_loadb(text, len, 0, &je);
	if (!*doc)
		return fail(&e, "line %d column %d: %s", je.line, je.column, je.text);
	return 0;
}

/* A count into *v: an integer, or with ns seconds (a number) into nanoseconds. */
static bool count_value(const json_t *j, bool ns, uint64_t *v)
{
	if (ns ? !json_is_number(j) || json_number_value(j) < 0
	       : !json_is_integer(j) || json_integer_value(j) < 0)
		return false;
	*v = ns ? (uint64_t)llround(json_number_value(j) * 1e9) : (uint64_t)json_integer_value(j);
	return true;
}

static const char *count_type(bool ns)
{
	return ns ? "a non-negative number" : "a non-negative integer";
}

static int get_u64(const json_t *o, const char *key, uint64_t *v, const char *where, struct perr *e)
{
	if (!count_value(json_object_get(o, key), false, v))
		return fail(e, "%s.%s: expected %s", where, key, count_type(false));
	return 0;
}

static int get_u32(const json_t *o, const char *key, uint32_t *v, const char *where, struct perr *e)
{
	uint64_t x;
	int r = get_u64(o, key, &x, where, e);

	if (r)
		return r;
	if (x > UINT32_MAX)
		return fail(e, "%s.%s: %llu is out of range", where, key, (unsigned long long)x);
	*v = (uint32_t)x;
	return 0;
}

static int get_bool(const json_t *o, const char *key, bool *v, const char *where, struct perr *e)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_boolean(j))
		return fail(e, "%s.%s: expected true or false", where, key);
	*v = json_is_true(j);
	return 0;
}

static const char *get_str(const json_t *o, const char *key, const char *where, struct perr *e)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_string(j)) {
		fail(e, "%s.%s: expected a string", where, key);
		return NULL;
	}
	return json_string_value(j);
}

/* Index of name in a label table given as a function, or -1. */
static int label_index(const char *name, const char *(*label)(uint32_t), unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(label(i), name))
			return (int)i;
	return -1;
}

/* A reason given by name only is read with the built-in names (asm/kvm_host.h of 6.18): the
 * ipivd's kernel may number them otherwise, which is why ipivd writes the bits too. */
static const char *builtin_inhibit_name(uint32_t reason)
{
	return ipiv_inhibit_name(NULL, reason);
}

static const char *delivery_label(uint32_t i)
{
	return icr_delivery_names[i];
}

static const char *shorthand_label(uint32_t i)
{
	return icr_shorthand_names[i];
}

static const char *dest_mode_label(uint32_t i)
{
	return icr_dest_mode_names[i];
}

/* The labels of a {"label": count, ...} object: name(first..n-1), or what an older ipivd
 * wrote (before, if not NULL). Names below first (never counted) are refused as an unknown
 * noun ("state"). */
struct labels {
	const char *(*name)(uint32_t);
	unsigned n;
	const char *(*before)(uint32_t);
	unsigned first;
	const char *noun;
};

/* o's {"label": count, ...} at key into counts[] by the label's index; ns: seconds. */
static int parse_labelled(const json_t *o, const char *key, uint64_t *counts,
			  const struct labels *ls, bool ns, const char *where, struct perr *e)
{
	json_t *map = json_object_get(o, key), *v;
	const char *name;

	if (!json_is_object(map))
		return fail(e, "%s.%s: expected an object", where, key);
	json_object_foreach(map, name, v)
	{
		int i = label_index(name, ls->name, ls->n);

		if (i < 0 && ls->before)
			i = label_index(name, ls->before, ls->n);
		if (i < 0)
			return fail(e, "%s.%s: unknown label \"%.40s\"", where, key, name);
		if ((unsigned)i < ls->first)
			return fail(e, "%s.%s: unknown %s \"%.40s\"", where, key, ls->noun, name);
		if (!count_value(v, ns, &counts[i]))
			return fail(e, "%s.%s.%.40s: expected %s", where, key, name,
				    count_type(ns));
	}
	return 0;
}

/* One field of a counter kind; absent (an ipivd older than the kind), it stays 0. */
static int parse_field(const json_t *o, const struct counter_kind *k, enum counter_slot slot,
		       struct ipiv_counts *c, const char *where, struct perr *e)
{
	const struct counter_field *f = &k->field[slot];
	const struct labels ls = {k->sub_name, k->n_sub, k->sub_name_before, k->first_sub,
				  k->label};
	json_t *j = json_object_get(o, f->name);

	if (!j)
		return 0;
	if (slot == COUNTER_BY_SUB)
		return parse_labelled(o, f->name, counter_at(c, f), &ls, f->ns, where, e);
	if (!count_value(j, f->ns, counter_at(c, f)))
		return fail(e, "%s.%s: expected %s", where, f->name, count_type(f->ns));
	return 0;
}

/* "counts" (api.c's counts_json): every field of the counter table, those of kernel-patches/'
 * tracepoints in "patched_tracepoints". */
static int parse_counts(const json_t *o, struct ipiv_counts *c, const char *where, struct perr *e)
{
	json_t *patched = json_object_get(o, "patched_tracepoints");
	char patched_where[160];
	int r;

	if (!json_is_object(o))
		return fail(e, "%s: expected an object", where);
	snprintf(patched_where, sizeof(patched_where), "%s.patched_tracepoints", where);
	if (patched && !json_is_object(patched))
		return fail(e, "%s: expected an object", patched_where);
	for (unsigned kind = 0; kind < IPIV_CNT_KIND_COUNT; kind++) {
		const struct counter_kind *k = &counter_kinds[kind];
		const struct counter_field *total = &k->field[COUNTER_TOTAL];
		const struct counter_field *when = &k->field[COUNTER_WHEN];
		const char *at = k->patched ? patched_where : where;

		for (unsigned slot = 0; slot < COUNTER_SLOTS; slot++)
			if (k->field[slot].name &&
			    (r = parse_field(k->patched ? patched : o, k, slot, c, at, e)))
				return r;
		if (total->name && when->name && *counter_get(c, when) > *counter_get(c, total))
			return fail(e, "%s: %s exceeds %s", at, when->name, total->name);
	}
	return 0;
}

int api_parse_vm_key(const char *id, uint64_t *key)
{
	char *end;

	if (!id || strlen(id) != 16)
		return -EINVAL;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -EINVAL;
	*key = strtoull(id, &end, 16);
	return 0;
}

void api_vm_key_str(uint64_t key, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)key);
}

static int get_number(const json_t *o, const char *key, double *v, const char *where,
		      struct perr *e)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_number(j) || !(json_number_value(j) >= 0))
		return fail(e, "%s.%s: expected a non-negative number", where, key);
	*v = json_number_value(j);
	return 0;
}

void api_latency_from_hist(const struct latency_hist *h, struct api_latency *out)
{
	memset(out, 0, sizeof(*out));
	out->p50 = latency_quantile(h, 0.5);
	out->p90 = latency_quantile(h, 0.9);
	out->p99 = latency_quantile(h, 0.99);
	if (!h->count)
		return;
	out->known = true;
	out->count = h->count;
	out->sum_ns = h->sum_ns;
	out->mean_ns = latency_mean_ns(h);
}

/* {"value_ns": v, "error_ns": e} or {"value_ns": v, "error_ns": null, "overflow": true}, or
 * null for an empty histogram. */
static int parse_quantile(const json_t *o, const char *key, double q, struct latency_quantile *out,
			  const char *where, struct perr *e)
{
	json_t *j = json_object_get(o, key), *ovf;
	char sub[128];
	int r;

	memset(out, 0, sizeof(*out));
	out->q = q;
	if (json_is_null(j))
		return 0;
	snprintf(sub, sizeof(sub), "%s.%s", where, key);
	if (!json_is_object(j))
		return fail(e, "%s: expected an object or null", sub);
	if ((r = get_number(j, "value_ns", &out->value_ns, sub, e)))
		return r;
	ovf = json_object_get(j, "overflow");
	if (ovf && !json_is_boolean(ovf))
		return fail(e, "%s.overflow: expected true or false", sub);
	out->overflow = json_is_true(ovf);
	if (!out->overflow && (r = get_number(j, "error_ns", &out->error_ns, sub, e)))
		return r;
	out->valid = true;
	return 0;
}

/* count, sum_ns, mean_ns and the quantiles of one histogram object. */
static int parse_latency_figures(const json_t *o, struct api_latency *out, const char *where,
				 struct perr *e)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(o))
		return fail(e, "%s: expected an object", where);
	if ((r = get_u64(o, "count", &out->count, where, e)) ||
	    (r = get_u64(o, "sum_ns", &out->sum_ns, where, e)) ||
	    (r = get_number(o, "mean_ns", &out->mean_ns, where, e)) ||
	    (r = parse_quantile(o, "p50", 0.5, &out->p50, where, e)) ||
	    (r = parse_quantile(o, "p90", 0.9, &out->p90, where, e)) ||
	    (r = parse_quantile(o, "p99", 0.99, &out->p99, where, e)))
		return r;
	out->known = out->count > 0;
	return 0;
}

static int parse_hist(const json_t *o, struct latency_hist *h, const char *where, struct perr *e);

static int parse_summary(const json_t *o, struct ipiv_vm_stats *vm, char name[VM_NAME_MAX],
			 struct api_latency *send_to_eoi, struct api_hist *hist, const char *where,
			 struct perr *e)
{
	char sub[96];
	const char *s;
	json_t *inh, *reasons, *v;
	uint64_t pid;
	size_t i;
	int r;

	if (!json_is_object(o))
		return fail(e, "%s: expected an object", where);
	if (!(s = get_str(o, "name", where, e)))
		return -EINVAL;
	vm_name_sanitize(s, strlen(s), name, VM_NAME_MAX);
	if (!(s = get_str(o, "id", where, e)))
		return -EINVAL;
	if (api_parse_vm_key(s, &vm->vm))
		return fail(e, "%s.id: \"%.40s\" is not 16 hex digits", where, s);
	/* Who runs it: an older ipivd wrote neither; a VMM newer than us reads as unknown. */
	v = json_object_get(o, "vmm");
	if (v && !json_is_string(v))
		return fail(e, "%s.vmm: expected a string", where);
	vm->vmm = v ? (uint8_t)vm_vmm_from_name(json_string_value(v)) : VM_VMM_UNKNOWN;
	v = json_object_get(o, "uuid");
	if (v && !json_is_null(v) &&
	    !(json_is_string(v) &&
	      vm_uuid_parse(json_string_value(v), json_string_length(v), vm->uuid)))
		return fail(e, "%s.uuid: not a UUID", where);
	if ((r = get_u64(o, "pid", &pid, where, e)) ||
	    (r = get_bool(o, "alive", &vm->alive, where, e)) ||
	    (r = get_u32(o, "vcpus", &vm->vcpu_count, where, e)))
		return r;
	if (pid > INT32_MAX)
		return fail(e, "%s.pid: out of range", where);
	vm->pid = (int32_t)pid;
	snprintf(sub, sizeof(sub), "%s.counts", where);
	if ((r = parse_counts(json_object_get(o, "counts"), &vm->counts, sub, e)))
		return r;
	snprintf(sub, sizeof(sub), "%s.apicv_inhibits", where);
	inh = json_object_get(o, "apicv_inhibits");
	if (!json_is_object(inh))
		return fail(e, "%s: expected an object", sub);
	if ((r = get_bool(inh, "known", &vm->inhibits_known, sub, e)))
		return r;
	reasons = json_object_get(inh, "reasons");
	if (!json_is_array(reasons))
		return fail(e, "%s.reasons: expected an array", sub);
	vm->inhibits = 0;
	/* the names are the ipivd's kernel's, the bits are not: use them where given */
	if (json_object_get(inh, "bitmap")) {
		if ((r = get_u64(inh, "bitmap", &vm->inhibits, sub, e)))
			return r;
	} else {
		json_array_foreach(reasons, i, v)
		{
			int bit = json_is_string(v)
					  ? label_index(json_string_value(v), builtin_inhibit_name,
							IPIV_INHIBIT_COUNT)
					  : -1;

			if (bit < 0)
				return fail(e, "%s.reasons[%zu]: not an inhibit reason", sub, i);
			vm->inhibits |= 1ull << bit;
		}
	}
	/* An ipivd from before latency has no such field: the figures are unknown. */
	memset(send_to_eoi, 0, sizeof(*send_to_eoi));
	v = json_object_get(o, "send_to_eoi");
	if (v && !json_is_null(v)) {
		snprintf(sub, sizeof(sub), "%s.send_to_eoi", where);
		if ((r = parse_latency_figures(v, send_to_eoi, sub, e)))
			return r;
		/* ?histograms=send_to_eoi: the buckets as the detail writes them */
		if (json_object_get(v, "buckets")) {
			if ((r = parse_hist(v, &hist->hist, sub, e)))
				return r;
			hist->known = true;
		}
	}
	return 0;
}

int api_parse_vms_hists(const json_t *doc, struct ipiv_snapshot *snap, char (**names)[VM_NAME_MAX],
			struct api_latency **send_to_eoi, struct api_hist **hists, char *err,
			size_t err_size)
{
	struct perr e = {err, err_size};
	json_t *arr = json_object_get(doc, "vms"), *o;
	char(*nm)[VM_NAME_MAX];
	struct ipiv_vm_stats *vms;
	struct api_latency *lat;
	struct api_hist *hs, one;
	size_t i, n;
	int r;

	if (!json_is_array(arr))
		return fail(&e, "vms: expected an array");
	n = json_array_size(arr);
	vms = calloc(n ? n : 1, sizeof(*vms));
	nm = calloc(n ? n : 1, sizeof(*nm));
	lat = calloc(n ? n : 1, sizeof(*lat));
	hs = hists ? calloc(n ? n : 1, sizeof(*hs)) : NULL;
	if (!vms || !nm || !lat || (hists && !hs)) {
		free(vms);
		free(nm);
		free(lat);
		free(hs);
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	json_array_foreach(arr, i, o)
	{
		char where[32];

		snprintf(where, sizeof(where), "vms[%zu]", i);
		memset(&one, 0, sizeof(one));
		r = parse_summary(o, &vms[i], nm[i], &lat[i], hs ? &hs[i] : &one, where, &e);
		if (r) {
			free(vms);
			free(nm);
			free(lat);
			free(hs);
			return r;
		}
	}
	snap->vms = vms;
	snap->n_vms = n;
	*names = nm;
	if (send_to_eoi)
		*send_to_eoi = lat;
	else
		free(lat);
	if (hists)
		*hists = hs;
	return 0;
}

int api_parse_vms(const json_t *doc, struct ipiv_snapshot *snap, char (**names)[VM_NAME_MAX],
		  struct api_latency **send_to_eoi, char *err, size_t err_size)
{
	return api_parse_vms_hists(doc, snap, names, send_to_eoi, NULL, err, err_size);
}

static int parse_classes(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *arr = json_object_get(o, "sent_by_class"), *c;
	size_t i;

	if (!json_is_array(arr))
		return fail(e, "sent_by_class: expected an array");
	vm->send_cells = calloc(json_array_size(arr) + 1, sizeof(*vm->send_cells));
	if (!vm->send_cells)
		return -ENOMEM;
	json_array_foreach(arr, i, c)
	{
		struct ipiv_send_cell *cell = &vm->send_cells[i];
		const char *path, *dlv, *mode, *sh, *dest;
		char where[40];
		int p, d, m, s;
		bool eligible;
		int r;

		snprintf(where, sizeof(where), "sent_by_class[%zu]", i);
		if (!(path = get_str(c, "path", where, e)) ||
		    !(dlv = get_str(c, "delivery", where, e)) ||
		    !(mode = get_str(c, "dest_mode", where, e)) ||
		    !(sh = get_str(c, "shorthand", where, e)) ||
		    !(dest = get_str(c, "dest", where, e)))
			return -EINVAL;
		if ((r = get_u64(c, "count", &cell->count, where, e)) ||
		    (r = get_bool(c, "accel_eligible", &eligible, where, e)))
			return r;
		p = label_index(path, ipiv_path_name, IPIV_PATH_COUNT);
		d = label_index(dlv, delivery_label, ICR_DM_COUNT);
		m = label_index(mode, dest_mode_label, 2);
		s = label_index(sh, shorthand_label, ICR_SH_COUNT);
		if (p < 0 || d < 0 || m < 0 || s < 0)
			return fail(e, "%s: unknown path or ICR class", where);
		cell->path = (uint32_t)p;
		cell->class = (uint32_t)d | (m ? ICR_CLASS_LOGICAL : 0) |
			      ((uint32_t)s << ICR_CLASS_SH_SHIFT);
		if (!strcmp(dest, "broadcast"))
			cell->class |= ICR_CLASS_BROADCAST;
		else if (!strcmp(dest, "multicast"))
			cell->class |= ICR_CLASS_MULTICAST;
		else if (strcmp(dest, "unicast"))
			return fail(e, "%s.dest: unknown destination \"%.20s\"", where, dest);
		vm->n_send_cells++;
	}
	/* ipivd lists them in this order; vm_sent() needs it from any source */
	qsort(vm->send_cells, vm->n_send_cells, sizeof(*vm->send_cells), ipiv_send_cell_cmp);
	return 0;
}

static int parse_exits(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *arr = json_object_get(o, "exits_by_reason"), *x;
	size_t i;

	if (!json_is_array(arr))
		return fail(e, "exits_by_reason: expected an array");
	vm->exits = calloc(json_array_size(arr) + 1, sizeof(*vm->exits));
	if (!vm->exits)
		return -ENOMEM;
	json_array_foreach(arr, i, x)
	{
		struct ipiv_exit_cell *cell = &vm->exits[i];
		const char *isa;
		char where[40];
		int r;

		snprintf(where, sizeof(where), "exits_by_reason[%zu]", i);
		if (!(isa = get_str(x, "isa", where, e)))
			return -EINVAL;
		if (!strcmp(isa, "svm"))
			cell->isa = IPIV_ISA_SVM;
		else if (!strcmp(isa, "vmx"))
			cell->isa = IPIV_ISA_VMX;
		else
			return fail(e, "%s.isa: expected \"vmx\" or \"svm\"", where);
		if ((r = get_u32(x, "reason", &cell->reason, where, e)) ||
		    (r = get_u64(x, "count", &cell->count, where, e)))
			return r;
		vm->n_exits++;
	}
	return 0;
}

/* A vCPU id: an integer, or null for the row of non-vCPU threads. */
static int get_vcpu_id(const json_t *o, const char *key, uint32_t *id, const char *where,
		       struct perr *e)
{
	if (json_is_null(json_object_get(o, key))) {
		*id = IPIV_VCPU_NONE;
		return 0;
	}
	return get_u32(o, key, id, where, e);
}

static int parse_vcpus(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *arr = json_object_get(o, "vcpu_rows"), *row;
	size_t i;

	if (!json_is_array(arr))
		return fail(e, "vcpu_rows: expected an array");
	vm->vcpus = calloc(json_array_size(arr) + 1, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	json_array_foreach(arr, i, row)
	{
		struct ipiv_vcpu_stats *v = &vm->vcpus[i];
		json_t *apicv;
		char where[40];
		int r;

		snprintf(where, sizeof(where), "vcpu_rows[%zu]", i);
		if ((r = get_vcpu_id(row, "id", &v->vcpu_id, where, e)) ||
		    (r = get_u32(row, "tid", &v->tid, where, e)) ||
		    (r = parse_counts(row, &v->counts, where, e)))
			return r;
		/* absent (an older ipivd) or null: not known */
		apicv = json_object_get(row, "apicv_active");
		if (apicv && !json_is_null(apicv) && !json_is_boolean(apicv))
			return fail(e, "%s.apicv_active: expected true, false or null", where);
		v->apicv_active = json_is_true(apicv)	 ? IPIV_APICV_ACTIVE
				  : json_is_false(apicv) ? IPIV_APICV_INACTIVE
							 : IPIV_APICV_UNKNOWN;
		vm->n_vcpus++;
	}
	return 0;
}

static int parse_matrix(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *arr = json_object_get(o, "matrix"), *cell;
	size_t i;

	if (!json_is_array(arr))
		return fail(e, "matrix: expected an array");
	vm->matrix = calloc(json_array_size(arr) + 1, sizeof(*vm->matrix));
	if (!vm->matrix)
		return -ENOMEM;
	json_array_foreach(arr, i, cell)
	{
		struct ipiv_matrix_cell *m = &vm->matrix[i];
		char where[40];
		int r;

		snprintf(where, sizeof(where), "matrix[%zu]", i);
		if ((r = get_vcpu_id(cell, "src", &m->src_vcpu, where, e)) ||
		    (r = get_u32(cell, "dst", &m->dst_vcpu, where, e)) ||
		    (r = get_u64(cell, "count", &m->count, where, e)))
			return r;
		vm->n_matrix++;
	}
	return 0;
}

/* The inhibit bit of a change: its "bit" (ipivd names reasons as its kernel does, which may
 * not be this one's), else its "reason" name as this build knows them; -1 after fail(). */
static int inhibit_bit(const json_t *c, const char *reason, const char *where, struct perr *e)
{
	json_t *b = json_object_get(c, "bit");
	int bit;

	if (b) {
		if (json_is_integer(b) && json_integer_value(b) >= 0 &&
		    json_integer_value(b) < IPIV_INHIBIT_COUNT)
			return (int)json_integer_value(b);
		fail(e, "%s.bit: expected 0..%d", where, IPIV_INHIBIT_COUNT - 1);
		return -1;
	}
	bit = label_index(reason, builtin_inhibit_name, IPIV_INHIBIT_COUNT);
	if (bit < 0)
		fail(e, "%s.reason: unknown \"%.40s\"", where, reason);
	return bit;
}

static int parse_inhibit_changes(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *arr = json_object_get(o, "apicv_inhibit_changes"), *c;
	size_t i;

	if (!json_is_array(arr))
		return fail(e, "apicv_inhibit_changes: expected an array");
	json_array_foreach(arr, i, c)
	{
		const char *reason;
		char where[48];
		int bit, r;

		snprintf(where, sizeof(where), "apicv_inhibit_changes[%zu]", i);
		if (!(reason = get_str(c, "reason", where, e)))
			return -EINVAL;
		if ((bit = inhibit_bit(c, reason, where, e)) < 0)
			return -EINVAL;
		if ((r = get_u64(c, "set", &vm->inhibit_set[bit], where, e)) ||
		    (r = get_u64(c, "clear", &vm->inhibit_clear[bit], where, e)))
			return r;
	}
	return 0;
}

/* "apicv_inhibit_timeline": optional (an older ipivd has none), oldest first. */
static int parse_inhibit_timeline(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *arr = json_object_get(o, "apicv_inhibit_timeline"), *c;
	size_t i;

	vm->n_timeline = 0;
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return fail(e, "apicv_inhibit_timeline: expected an array");
	json_array_foreach(arr, i, c)
	{
		struct ipiv_inhibit_change *ch;
		const char *reason, *action;
		char where[48];
		int bit, r;

		snprintf(where, sizeof(where), "apicv_inhibit_timeline[%zu]", i);
		if (i >= IPIV_TIMELINE)
			return fail(e, "%s: more than %d changes", where, IPIV_TIMELINE);
		ch = &vm->timeline[i];
		if (!(reason = get_str(c, "reason", where, e)) ||
		    !(action = get_str(c, "action", where, e)))
			return -EINVAL;
		if ((bit = inhibit_bit(c, reason, where, e)) < 0)
			return -EINVAL;
		if (strcmp(action, "set") && strcmp(action, "clear"))
			return fail(e, "%s.action: \"%.20s\" is neither set nor clear", where,
				    action);
		uint64_t ts;

		if ((r = get_u64(c, "monotonic_ns", &ts, where, e)))
			return r;
		ch->ts = ts;
		ch->reason = bit;
		ch->set = !strcmp(action, "set");
		vm->n_timeline = i + 1;
	}
	return 0;
}

/* How many subs a latency kind has (include/hist.h). */
static unsigned lat_subs(unsigned kind)
{
	switch (kind) {
	case IPIV_LAT_ACCEPT_RUN: return IPIV_LAT_CASE_COUNT;
	case IPIV_LAT_HALT: return 2;
	default: return IPIV_PATH_COUNT;
	}
}

static int lat_sub_index(unsigned kind, const char *name)
{
	const char *label;

	for (unsigned sub = 0; sub < lat_subs(kind); sub++)
		if (!strcmp(ipiv_lat_sub_label(kind, sub, &label), name))
			return (int)sub;
	return -1;
}

/* One histogram: its figures, and buckets [[upper edge ns or -1 for overflow, count], ...]
 * whose counts add up to count. */
static int parse_hist(const json_t *o, struct latency_hist *h, const char *where, struct perr *e)
{
	struct api_latency fig;
	json_t *arr, *pair;
	size_t i;
	int r;

	if ((r = parse_latency_figures(o, &fig, where, e)))
		return r;
	arr = json_object_get(o, "buckets");
	if (!json_is_array(arr))
		return fail(e, "%s.buckets: expected an array", where);
	memset(h, 0, sizeof(*h));
	json_array_foreach(arr, i, pair)
	{
		json_t *edge = json_array_get(pair, 0), *n = json_array_get(pair, 1);
		json_int_t le;
		unsigned b;

		if (json_array_size(pair) != 2 || !json_is_integer(edge) || !json_is_integer(n) ||
		    json_integer_value(n) < 0)
			return fail(e, "%s.buckets[%zu]: expected [upper edge ns, count]", where,
				    i);
		le = json_integer_value(edge);
		if (le == -1) {
			b = HIST_BUCKETS - 1;
		} else {
			b = le >= 0 ? hist_bucket((uint64_t)le) : 0;
			if (le < 0 || b == HIST_BUCKETS - 1 || hist_bucket_hi(b) != (uint64_t)le)
				return fail(e, "%s.buckets[%zu]: %lld ns is not a bucket edge",
					    where, i, (long long)le);
		}
		if (h->buckets[b])
			return fail(e, "%s.buckets[%zu]: bucket listed twice", where, i);
		h->buckets[b] = (uint64_t)json_integer_value(n);
		h->count += h->buckets[b];
	}
	if (h->count != fig.count)
		return fail(e, "%s: the buckets hold %llu observations, count says %llu", where,
			    (unsigned long long)h->count, (unsigned long long)fig.count);
	h->sum_ns = fig.sum_ns;
	return 0;
}

/* {kind: {sub: histogram}} (the object under "latency") appended to rows[*n] on, each row
 * given vcpu; the caller sized rows by the subs the object lists. */
static int parse_lat_object(const json_t *lat, uint32_t vcpu, struct ipiv_lat_hist *rows, size_t *n,
			    const char *where, struct perr *e)
{
	json_t *per_kind, *hist;
	const char *kname, *sname;
	int r;

	if (!json_is_object(lat))
		return fail(e, "%s: expected an object", where);
	json_object_foreach((json_t *)lat, kname, per_kind)
	{
		int kind = label_index(kname, ipiv_lat_kind_name, IPIV_LAT_UNMATCHED);

		if (kind < 0)
			return fail(e, "%s: unknown stage \"%.40s\"", where, kname);
		if (!json_is_object(per_kind))
			return fail(e, "%s.%s: expected an object", where, kname);
		json_object_foreach(per_kind, sname, hist)
		{
			struct ipiv_lat_hist *row = &rows[*n];
			int sub = lat_sub_index((unsigned)kind, sname);
			char sub_where[128];

			snprintf(sub_where, sizeof(sub_where), "%s.%s.%.40s", where, kname, sname);
			if (sub < 0)
				return fail(e, "%s: unknown label", sub_where);
			row->kind = (uint16_t)kind;
			row->sub = (uint16_t)sub;
			row->vcpu = vcpu;
			if ((r = parse_hist(hist, &row->h, sub_where, e)))
				return r;
			(*n)++;
		}
	}
	return 0;
}

/* How many histograms a {kind: {sub: histogram}} object lists (0 if it is not one). */
static size_t lat_object_size(const json_t *lat)
{
	const char *kname;
	json_t *per_kind;
	size_t n = 0;

	if (!json_is_object(lat))
		return 0;
	json_object_foreach((json_t *)lat, kname, per_kind) n +=
		json_is_object(per_kind) ? json_object_size(per_kind) : 0;
	return n;
}

/* Takes part out of whole, bucket by bucket; false when whole does not hold all of it. */
static bool hist_take(struct latency_hist *whole, const struct latency_hist *part)
{
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		if (part->buckets[b] > whole->buckets[b])
			return false;
	if (part->sum_ns > whole->sum_ns)
		return false;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		whole->buckets[b] -= part->buckets[b];
	whole->count -= part->count;
	whole->sum_ns -= part->sum_ns;
	return true;
}

static struct ipiv_lat_hist *find_lat_row(struct ipiv_lat_hist *rows, size_t n, uint16_t kind,
					  uint16_t sub, uint32_t vcpu)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].kind == kind && rows[i].sub == sub && rows[i].vcpu == vcpu)
			return &rows[i];
	return NULL;
}

/* One vCPU row's "send_to_eoi" figures (over every path) against its histograms. */
static int check_vcpu_headline(const json_t *row, const struct ipiv_lat_hist *rows, size_t n,
			       const char *where, struct perr *e)
{
	json_t *head = json_object_get(row, "send_to_eoi");
	struct api_latency fig = {0};
	uint64_t count = 0;
	char sub[96];
	int r;

	snprintf(sub, sizeof(sub), "%s.send_to_eoi", where);
	if (!json_is_null(head) && (r = parse_latency_figures(head, &fig, sub, e)))
		return r;
	for (size_t i = 0; i < n; i++)
		if (rows[i].kind == IPIV_LAT_SEND_EOI)
			count += rows[i].h.count;
	if (fig.count != count)
		return fail(e, "%s: count %llu, but the row's send_to_eoi histograms hold %llu",
			    sub, (unsigned long long)fig.count, (unsigned long long)count);
	return 0;
}

/*
 * Per-vCPU latency (ipivd --collector.per-vcpu): each vCPU row's "latency" becomes lat rows of
 * that vCPU, taken out of the VM-wide rows parse_latency made. What is left of those (a vCPU
 * without a row) stays VM-wide, which is also the id of non-vCPU threads. So vm_latency
 * merges back to the VM-wide figures and each vCPU's rows are its own, as the standalone
 * collector keeps them. Rows without the fields (no per-vCPU latency) leave vm->lat as is.
 */
static int parse_vcpu_latency(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *arr = json_object_get(o, "vcpu_rows"), *row;
	struct ipiv_lat_hist *rows;
	size_t i, n = 0, cap = 0;
	int r = 0;

	json_array_foreach(arr, i, row)
	{
		bool has_lat = json_object_get(row, "latency"),
		     has_head = json_object_get(row, "send_to_eoi");

		if (has_lat != has_head)
			return fail(e, "vcpu_rows[%zu]: latency and send_to_eoi come together", i);
		cap += lat_object_size(json_object_get(row, "latency"));
		n += has_lat;
	}
	if (!n)
		return 0;
	rows = calloc(cap + vm->n_lat + 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	n = 0;
	json_array_foreach(arr, i, row)
	{
		json_t *lat = json_object_get(row, "latency");
		size_t first = n;
		char where[64];

		if (!lat)
			continue;
		snprintf(where, sizeof(where), "vcpu_rows[%zu].latency", i);
		if ((r = parse_lat_object(lat, vm->vcpus[i].vcpu_id, rows, &n, where, e)))
			goto cleanup;
		for (size_t j = first; j < n; j++) {
			struct ipiv_lat_hist *whole = find_lat_row(vm->lat, vm->n_lat, rows[j].kind,
								   rows[j].sub, IPIV_LAT_VM_WIDE);
			const char *label;

			if (!whole || !hist_take(&whole->h, &rows[j].h)) {
				r = fail(e, "%s.%s.%s: more than latency.%s.%s holds", where,
					 ipiv_lat_kind_name(rows[j].kind),
					 ipiv_lat_sub_label(rows[j].kind, rows[j].sub, &label),
					 ipiv_lat_kind_name(rows[j].kind),
					 ipiv_lat_sub_label(rows[j].kind, rows[j].sub, &label));
				goto cleanup;
			}
		}
		snprintf(where, sizeof(where), "vcpu_rows[%zu]", i);
		if ((r = check_vcpu_headline(row, &rows[first], n - first, where, e)))
			goto cleanup;
	}
	for (size_t j = 0; j < vm->n_lat; j++) {
		struct ipiv_lat_hist *left = &vm->lat[j], *none;

		if (!left->h.count && left->h.sum_ns) {
			r = fail(e, "latency.%s: the vCPU rows' sum_ns fall short of it",
				 ipiv_lat_kind_name(left->kind));
			goto cleanup;
		}
		if (!left->h.count)
			continue;
		none = find_lat_row(rows, n, left->kind, left->sub, IPIV_LAT_VM_WIDE);
		if (none)
			latency_merge(&none->h, &left->h);
		else
			rows[n++] = *left;
	}
	qsort(rows, n, sizeof(*rows), ipiv_lat_hist_cmp);
	free(vm->lat);
	vm->lat = rows;
	vm->n_lat = n;
	return 0;
cleanup:
	free(rows);
	return r;
}

/* "latency": {kind: {sub: histogram}} into VM-wide lat rows, "latency_unmatched" and
 * "latency_enabled", then the vCPU rows' latency if any. An ipivd from before latency has
 * none of them: no rows, disabled. */
static int parse_latency(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *lat = json_object_get(o, "latency");
	int r;

	if (!lat && !json_object_get(o, "latency_enabled"))
		return 0;
	if ((r = get_bool(o, "latency_enabled", &vm->latency_enabled, "vm", e)))
		return r;
	if (!json_is_object(lat))
		return fail(e, "latency: expected an object");
	vm->lat = calloc(lat_object_size(lat) + 1, sizeof(*vm->lat));
	if (!vm->lat)
		return -ENOMEM;
	if ((r = parse_lat_object(lat, IPIV_LAT_VM_WIDE, vm->lat, &vm->n_lat, "latency", e)))
		return r;
	qsort(vm->lat, vm->n_lat, sizeof(*vm->lat), ipiv_lat_hist_cmp);
	if ((r = parse_vcpu_latency(o, vm, e)))
		return r;
	if (!json_object_get(o, "latency_unmatched"))
		return 0;
	return parse_labelled(
		o, "latency_unmatched", vm->lat_unmatched,
		&(struct labels){.name = ipiv_lat_unmatched_name, .n = IPIV_UNM_COUNT}, false, "vm",
		e);
}

void api_parse_vm_free(struct ipiv_vm_stats *vm)
{
	vm_stats_free(vm);
}

int api_parse_vm_detail(const json_t *doc, struct ipiv_vm_stats *vm, char name[VM_NAME_MAX],
			char *err, size_t err_size)
{
	struct perr e = {err, err_size};
	struct api_latency headline;
	struct api_hist head_hist = {0};
	int r;

	r = parse_summary(doc, vm, name, &headline, &head_hist, "vm", &e);
	if (!r)
		r = parse_classes(doc, vm, &e);
	if (!r)
		r = parse_exits(doc, vm, &e);
	if (!r)
		r = parse_vcpus(doc, vm, &e);
	if (!r)
		r = parse_matrix(doc, vm, &e);
	if (!r)
		r = parse_inhibit_changes(doc, vm, &e);
	if (!r)
		r = parse_inhibit_timeline(doc, vm, &e);
	if (!r)
		r = parse_latency(doc, vm, &e);
	if (r == -ENOMEM)
		snprintf(err, err_size, "out of memory");
	if (r)
		api_parse_vm_free(vm);
	return r;
}

/* The errno whose message the API printed; api.c writes strerror(-err). */
static int errno_from_message(const char *msg)
{
	for (int i = 1; i < 134; i++)
		if (!strcmp(strerror(i), msg))
			return -i;
	return -EIO;
}

static void free_probes(struct ipiv_self_stats *self)
{
	for (size_t i = 0; i < self->n_probes; i++) {
		free((char *)self->probes[i].name);
		free((char *)self->probes[i].prog);
	}
	free(self->probes);
	free(self->progs);
	self->probes = NULL;
	self->progs = NULL;
	self->n_probes = self->n_progs = 0;
}

static int parse_probes(const json_t *doc, struct ipiv_self_stats *self, struct perr *e)
{
	json_t *arr = json_object_get(doc, "probes"), *p;
	size_t i;

	if (!json_is_array(arr))
		return fail(e, "probes: expected an array");
	self->probes = calloc(json_array_size(arr) + 1, sizeof(*self->probes));
	if (!self->probes)
		return -ENOMEM;
	json_array_foreach(arr, i, p)
	{
		struct ipiv_probe *probe = &self->probes[i];
		const char *name, *prog, *msg;
		char where[32];
		int r;

		snprintf(where, sizeof(where), "probes[%zu]", i);
		if (!(name = get_str(p, "name", where, e)) ||
		    !(prog = get_str(p, "program", where, e)))
			return -EINVAL;
		if ((r = get_bool(p, "attached", &probe->attached, where, e)) ||
		    (r = get_bool(p, "optional", &probe->optional, where, e)))
			return r;
		probe->name = strdup(name);
		probe->prog = strdup(prog);
		self->n_probes++;
		if (!probe->name || !probe->prog)
			return -ENOMEM;
		if (probe->attached) {
			self->n_attached++;
		} else {
			if (!(msg = get_str(p, "error", where, e)))
				return -EINVAL;
			probe->err = errno_from_message(msg);
		}
	}
	return 0;
}

static int parse_progs(const json_t *doc, struct ipiv_self_stats *self, struct perr *e)
{
	json_t *arr = json_object_get(doc, "programs"), *p;
	size_t i;

	if (!json_is_array(arr))
		return fail(e, "programs: expected an array");
	self->progs = calloc(json_array_size(arr) + 1, sizeof(*self->progs));
	if (!self->progs)
		return -ENOMEM;
	json_array_foreach(arr, i, p)
	{
		struct ipiv_prog_stats *prog = &self->progs[i];
		const char *name;
		char where[32];
		int r;

		snprintf(where, sizeof(where), "programs[%zu]", i);
		if (!(name = get_str(p, "name", where, e)))
			return -EINVAL;
		snprintf(prog->name, sizeof(prog->name), "%s", name);
		if ((r = get_u64(p, "runs", &prog->run_cnt, where, e)) ||
		    (r = get_u64(p, "run_ns", &prog->run_time_ns, where, e)))
			return r;
		self->n_progs++;
	}
	return 0;
}

/* "latency_recorded": the latency families that ipivd records, by name; an ipivd from before
 * the list recorded them all. */
static int parse_recorded(const json_t *doc, struct ipiv_self_stats *self, struct perr *e)
{
	const json_t *list = json_object_get(doc, "latency_recorded"), *v;
	size_t i;

	if (!list) {
		self->lat_kinds_recorded = (1u << IPIV_LAT_UNMATCHED) - 1;
		return 0;
	}
	if (!json_is_array(list))
		return fail(e, "status: latency_recorded: expected an array");
	json_array_foreach(list, i, v)
	{
		uint32_t k = 0;

		while (k < IPIV_LAT_UNMATCHED &&
		       (!json_is_string(v) || strcmp(json_string_value(v), ipiv_lat_kind_name(k))))
			k++;
		if (k == IPIV_LAT_UNMATCHED)
			return fail(e, "status: latency_recorded: unknown family");
		self->lat_kinds_recorded |= 1u << k;
	}
	return 0;
}

int api_parse_status(const json_t *doc, struct ipiv_snapshot *snap, bool *degraded, char *version,
		     size_t version_size, char *err, size_t err_size)
{
	struct perr e = {err, err_size};
	struct ipiv_self_stats self = {0};
	const char *ver;
	bool deg = false;
	int r;

	if (!json_is_object(doc))
		return fail(&e, "status: expected an object");
	if (!(ver = get_str(doc, "version", "status", &e)))
		return -EINVAL;
	if ((r = get_bool(doc, "degraded", &deg, "status", &e)) ||
	    (r = get_bool(doc, "bpf_stats_enabled", &self.bpf_stats_enabled, "status", &e)) ||
	    (r = get_u64(doc, "vms_discovered", &self.vms_discovered, "status", &e)) ||
	    (r = get_u64(doc, "vms_reclaimed", &self.vms_reclaimed, "status", &e)) ||
	    (r = parse_labelled(doc, "drops", self.drops,
				&(struct labels){.name = ipiv_drop_name, .n = IPIV_DROP_COUNT},
				false, "status", &e)) ||
	    (r = parse_probes(doc, &self, &e)) || (r = parse_progs(doc, &self, &e)) ||
	    (r = parse_recorded(doc, &self, &e))) {
		if (r == -ENOMEM)
			snprintf(err, err_size, "out of memory");
		free_probes(&self);
		return r;
	}
	free_probes(&snap->self);
	snap->self = self;
	if (degraded)
		*degraded = deg;
	if (version)
		vm_name_sanitize(ver, strlen(ver), version, version_size);
	return 0;
}

void api_parse_snapshot_free(struct ipiv_snapshot *snap)
{
	if (!snap)
		return;
	free_probes(&snap->self); /* the probes' names are the parser's copies */
	collector_snapshot_free(snap);
}

/* ---- /api/v1/findings ---- */

static const char *rule_label(uint32_t i)
{
	return diag_rule_name((enum diag_rule_id)i);
}

static const char *severity_label(uint32_t i)
{
	return diag_severity_name((enum diag_severity)i);
}

/* Copies an untrusted string from the document, control characters dropped. */
static void copy_text(const char *s, char *out, size_t size)
{
	vm_name_sanitize(s, strlen(s), out, size);
}

static int parse_evidence(const json_t *o, struct diag_finding *fd, const char *where,
			  struct perr *e)
{
	json_t *ev = json_object_get(o, "evidence"), *v;
	const char *name;

	if (!json_is_object(ev))
		return fail(e, "%s.evidence: expected an object", where);
	if (json_object_size(ev) > DIAG_MAX_EVIDENCE)
		return fail(e, "%s.evidence: more than %d items", where, DIAG_MAX_EVIDENCE);
	json_object_foreach(ev, name, v)
	{
		struct diag_evidence *d = &fd->evidence[fd->n_evidence++];

		copy_text(name, d->name, sizeof(d->name));
		if (json_is_number(v)) {
			d->is_number = true;
			d->value = json_number_value(v);
			snprintf(d->text, sizeof(d->text), "%g", d->value);
		} else if (json_is_string(v)) {
			copy_text(json_string_value(v), d->text, sizeof(d->text));
		} else {
			return fail(e, "%s.evidence.%.31s: expected a number or a string", where,
				    name);
		}
	}
	return 0;
}

static int parse_finding(const json_t *o, struct diag_finding *fd, uint64_t taken_ns,
			 const char *where, struct perr *e)
{
	const char *rule, *sev, *title, *remedy;
	double active;
	int ri, si, r;

	if (!json_is_object(o))
		return fail(e, "%s: expected an object", where);
	if (!(rule = get_str(o, "rule", where, e)) || !(sev = get_str(o, "severity", where, e)) ||
	    !(title = get_str(o, "title", where, e)) || !(remedy = get_str(o, "remedy", where, e)))
		return -EINVAL;
	ri = label_index(rule, rule_label, DIAG_RULE_COUNT);
	si = label_index(sev, severity_label, DIAG_CRITICAL + 1);
	if (ri < 0)
		return fail(e, "%s.rule: unknown rule \"%.40s\"", where, rule);
	if (si < 0)
		return fail(e, "%s.severity: unknown severity \"%.20s\"", where, sev);
	fd->rule = (enum diag_rule_id)ri;
	fd->severity = (enum diag_severity)si;
	copy_text(title, fd->title, sizeof(fd->title));
	copy_text(remedy, fd->remedy, sizeof(fd->remedy));
	if ((r = get_number(o, "active_seconds", &active, where, e)))
		return r;
	fd->since_ns = taken_ns;
	if (active * 1e9 < (double)taken_ns)
		fd->since_ns = taken_ns - (uint64_t)llround(active * 1e9);
	return parse_evidence(o, fd, where, e);
}

static int keep_string(struct api_findings *af, const char *s, const char **out)
{
	char **strings = realloc(af->strings, (af->n_strings + 1) * sizeof(*strings));
	char *copy;

	if (!strings)
		return -ENOMEM;
	af->strings = strings;
	copy = malloc(strlen(s) + 1);
	if (!copy)
		return -ENOMEM;
	copy_text(s, copy, strlen(s) + 1);
	af->strings[af->n_strings++] = copy;
	*out = copy;
	return 0;
}

/* {"findings": [...], "not_evaluated": [{"rule", "needs"}, ...]} of the host or one VM. */
static int parse_result(const json_t *o, struct diag_result *res, struct api_findings *af,
			uint64_t taken_ns, const char *where, struct perr *e)
{
	json_t *arr = json_object_get(o, "findings"), *x;
	char sub[96];
	size_t i;
	int r;

	if (!json_is_array(arr))
		return fail(e, "%s.findings: expected an array", where);
	if (json_array_size(arr) > DIAG_RULE_COUNT)
		return fail(e, "%s.findings: more than one per rule", where);
	json_array_foreach(arr, i, x)
	{
		snprintf(sub, sizeof(sub), "%s.findings[%zu]", where, i);
		if ((r = parse_finding(x, &res->findings[res->n_findings++], taken_ns, sub, e)))
			return r;
	}
	arr = json_object_get(o, "not_evaluated");
	if (!json_is_array(arr))
		return fail(e, "%s.not_evaluated: expected an array", where);
	if (json_array_size(arr) > DIAG_RULE_COUNT)
		return fail(e, "%s.not_evaluated: more than one per rule", where);
	json_array_foreach(arr, i, x)
	{
		struct diag_skip *skip = &res->skipped[res->n_skipped];
		const char *rule, *needs;
		int ri;

		snprintf(sub, sizeof(sub), "%s.not_evaluated[%zu]", where, i);
		if (!(rule = get_str(x, "rule", sub, e)) || !(needs = get_str(x, "needs", sub, e)))
			return -EINVAL;
		ri = label_index(rule, rule_label, DIAG_RULE_COUNT);
		if (ri < 0)
			return fail(e, "%s.rule: unknown rule \"%.40s\"", sub, rule);
		skip->rule = (enum diag_rule_id)ri;
		if ((r = keep_string(af, needs, &skip->needs)))
			return r;
		res->n_skipped++;
	}
	return 0;
}

void api_findings_free(struct api_findings *af)
{
	if (!af)
		return;
	for (size_t i = 0; i < af->n_strings; i++)
		free(af->strings[i]);
	free(af->strings);
	free(af->report.vms);
	free(af);
}

int api_parse_findings(const json_t *doc, uint64_t taken_ns, struct api_findings **out, char *err,
		       size_t err_size)
{
	struct perr e = {err, err_size};
	struct api_findings *af;
	json_t *host, *vms, *o;
	size_t i;
	int r;

	host = json_object_get(doc, "host");
	vms = json_object_get(doc, "vms");
	if (!json_is_object(host))
		return fail(&e, "host: expected an object");
	if (!json_is_array(vms))
		return fail(&e, "vms: expected an array");
	af = calloc(1, sizeof(*af));
	if (!af || !(af->report.vms = calloc(json_array_size(vms) + 1, sizeof(*af->report.vms)))) {
		free(af);
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	af->report.taken_ns = taken_ns;
	r = parse_result(host, &af->report.host_result, af, taken_ns, "host", &e);
	json_array_foreach(vms, i, o)
	{
		struct diag_vm_report *vr = &af->report.vms[i];
		const char *name;
		json_t *win;
		char where[32];

		if (r)
			break;
		snprintf(where, sizeof(where), "vms[%zu]", i);
		if (!json_is_object(o)) {
			r = fail(&e, "%s: expected an object", where);
			break;
		}
		if (!(name = get_str(o, "name", where, &e))) {
			r = -EINVAL;
			break;
		}
		vm_name_sanitize(name, strlen(name), vr->name, sizeof(vr->name));
		win = json_object_get(o, "window_seconds");
		if (!json_is_null(win) &&
		    (r = get_number(o, "window_seconds", &vr->window_seconds, where, &e)))
			break;
		af->report.n_vms++;
		r = parse_result(o, &vr->result, af, taken_ns, where, &e);
	}
	if (r) {
		if (r == -ENOMEM)
			snprintf(err, err_size, "out of memory");
		api_findings_free(af);
		return r;
	}
	*out = af;
	return 0;
}
