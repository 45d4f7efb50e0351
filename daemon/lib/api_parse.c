/* Parses ipivd's JSON API documents (written by api.c) back into struct ipiv_snapshot, with
 * one-line errors that name the offending field. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_parse.h"

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
	}
	return -EINVAL;
}

int api_parse_text(const char *text, size_t len, json_t **doc, char *err, size_t err_size)
{
	struct perr e = { err, err_size };
	json_error_t je;

	*doc = json_loadb(text, len, 0, &je);
	if (!*doc)
		return fail(&e, "line %d column %d: %s", je.line, je.column, je.text);
	return 0;
}

static int get_u64(const json_t *o, const char *key, uint64_t *v, const char *where,
		   struct perr *e)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return fail(e, "%s.%s: expected a non-negative integer", where, key);
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

static int get_u32(const json_t *o, const char *key, uint32_t *v, const char *where,
		   struct perr *e)
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

/* {"label": count, ...} into counts[] indexed by the label's enum value. */
static int parse_labelled(const json_t *o, const char *key, uint64_t *counts, unsigned n,
			  const char *(*label)(uint32_t), const char *where, struct perr *e)
{
	json_t *map = json_object_get(o, key), *v;
	const char *name;

	if (!json_is_object(map))
		return fail(e, "%s.%s: expected an object", where, key);
	json_object_foreach(map, name, v) {
		int i = label_index(name, label, n);

		if (i < 0)
			return fail(e, "%s.%s: unknown label \"%.40s\"", where, key, name);
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return fail(e, "%s.%s.%.40s: expected a non-negative integer", where, key,
				    name);
		counts[i] = (uint64_t)json_integer_value(v);
	}
	return 0;
}

static int parse_counts(const json_t *o, struct ipiv_counts *c, const char *where, struct perr *e)
{
	json_t *halt;
	int r;

	if (!json_is_object(o))
		return fail(e, "%s: expected an object", where);
	if ((r = get_u64(o, "sent", &c->sent_total, where, e)) ||
	    (r = get_u64(o, "sent_accel_eligible", &c->sent_accel_eligible, where, e)) ||
	    (r = get_u64(o, "received", &c->received_total, where, e)) ||
	    (r = get_u64(o, "eois", &c->eois, where, e)) ||
	    (r = get_u64(o, "wakeups", &c->wakeups, where, e)) ||
	    (r = get_u64(o, "wakeups_halted", &c->wakeups_waited, where, e)) ||
	    (r = get_u64(o, "exits", &c->exits_total, where, e)))
		return r;
	if ((r = parse_labelled(o, "sent_by_path", c->sent_by_path, IPIV_PATH_COUNT,
				ipiv_path_name, where, e)) ||
	    (r = parse_labelled(o, "received_by_delivery", c->received_by_mode, ICR_DM_COUNT,
				delivery_label, where, e)) ||
	    (r = parse_labelled(o, "avic_incomplete", c->avic_incomplete, IPIV_AVIC_CAUSE_COUNT,
				ipiv_avic_cause_name, where, e)))
		return r;
	halt = json_object_get(o, "halt_seconds");
	if (!json_is_number(halt) || json_number_value(halt) < 0)
		return fail(e, "%s.halt_seconds: expected a non-negative number", where);
	c->halt_ns = (uint64_t)llround(json_number_value(halt) * 1e9);
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

static int parse_summary(const json_t *o, struct ipiv_vm_stats *vm, char name[VM_NAME_MAX],
			 const char *where, struct perr *e)
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
	if ((r = get_u64(o, "pid", &pid, where, e)) || (r = get_bool(o, "alive", &vm->alive, where, e)) ||
	    (r = get_u32(o, "vcpus", &vm->vcpu_count, where, e)))
		return r;
	if (pid > INT32_MAX)
		return fail(e, "%s.pid: out of range", where);
	vm->pid = (int32_t)pid;
	snprintf(sub, sizeof(sub), "%s.counts", where);
	if ((r = parse_counts(json_object_get(o, "counts"), &vm->c, sub, e)))
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
	json_array_foreach(reasons, i, v) {
		int bit = json_is_string(v) ? label_index(json_string_value(v), ipiv_inhibit_name,
							  IPIV_INHIBIT_COUNT)
					    : -1;

		if (bit < 0)
			return fail(e, "%s.reasons[%zu]: not an inhibit reason", sub, i);
		vm->inhibits |= 1ull << bit;
	}
	return 0;
}

int api_parse_vms(const json_t *doc, struct ipiv_snapshot *snap, char (**names)[VM_NAME_MAX],
		  char *err, size_t err_size)
{
	struct perr e = { err, err_size };
	json_t *arr = json_object_get(doc, "vms"), *o;
	char (*nm)[VM_NAME_MAX];
	struct ipiv_vm_stats *vms;
	size_t i, n;
	int r;

	if (!json_is_array(arr))
		return fail(&e, "vms: expected an array");
	n = json_array_size(arr);
	vms = calloc(n ? n : 1, sizeof(*vms));
	nm = calloc(n ? n : 1, sizeof(*nm));
	if (!vms || !nm) {
		free(vms);
		free(nm);
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	json_array_foreach(arr, i, o) {
		char where[32];

		snprintf(where, sizeof(where), "vms[%zu]", i);
		r = parse_summary(o, &vms[i], nm[i], where, &e);
		if (r) {
			free(vms);
			free(nm);
			return r;
		}
	}
	snap->vms = vms;
	snap->n_vms = n;
	*names = nm;
	return 0;
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
	json_array_foreach(arr, i, c) {
		struct ipiv_send_cell *cell = &vm->send_cells[i];
		const char *path, *dlv, *mode, *sh, *dest;
		char where[40];
		int p, d, m, s;
		bool eligible;
		int r;

		snprintf(where, sizeof(where), "sent_by_class[%zu]", i);
		if (!(path = get_str(c, "path", where, e)) || !(dlv = get_str(c, "delivery", where, e)) ||
		    !(mode = get_str(c, "dest_mode", where, e)) ||
		    !(sh = get_str(c, "shorthand", where, e)) || !(dest = get_str(c, "dest", where, e)))
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
		vm->sent[cell->path][cell->class] = cell->count;
		vm->n_send_cells++;
	}
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
	json_array_foreach(arr, i, x) {
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
	json_array_foreach(arr, i, row) {
		struct ipiv_vcpu_stats *v = &vm->vcpus[i];
		char where[40];
		int r;

		snprintf(where, sizeof(where), "vcpu_rows[%zu]", i);
		if ((r = get_vcpu_id(row, "id", &v->vcpu_id, where, e)) ||
		    (r = get_u32(row, "tid", &v->tid, where, e)) ||
		    (r = parse_counts(row, &v->c, where, e)))
			return r;
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
	json_array_foreach(arr, i, cell) {
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

static int parse_inhibit_changes(const json_t *o, struct ipiv_vm_stats *vm, struct perr *e)
{
	json_t *arr = json_object_get(o, "apicv_inhibit_changes"), *c;
	size_t i;

	if (!json_is_array(arr))
		return fail(e, "apicv_inhibit_changes: expected an array");
	json_array_foreach(arr, i, c) {
		const char *reason;
		char where[48];
		int bit, r;

		snprintf(where, sizeof(where), "apicv_inhibit_changes[%zu]", i);
		if (!(reason = get_str(c, "reason", where, e)))
			return -EINVAL;
		bit = label_index(reason, ipiv_inhibit_name, IPIV_INHIBIT_COUNT);
		if (bit < 0)
			return fail(e, "%s.reason: unknown \"%.40s\"", where, reason);
		if ((r = get_u64(c, "set", &vm->inhibit_set[bit], where, e)) ||
		    (r = get_u64(c, "clear", &vm->inhibit_clear[bit], where, e)))
			return r;
	}
	return 0;
}

void api_parse_vm_free(struct ipiv_vm_stats *vm)
{
	free(vm->send_cells);
	free(vm->exits);
	free(vm->vcpus);
	free(vm->matrix);
	vm->send_cells = NULL;
	vm->exits = NULL;
	vm->vcpus = NULL;
	vm->matrix = NULL;
	vm->n_send_cells = vm->n_exits = vm->n_vcpus = vm->n_matrix = 0;
}

int api_parse_vm_detail(const json_t *doc, struct ipiv_vm_stats *vm, char name[VM_NAME_MAX],
			char *err, size_t err_size)
{
	struct perr e = { err, err_size };
	int r;

	r = parse_summary(doc, vm, name, "vm", &e);
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
	json_array_foreach(arr, i, p) {
		struct ipiv_probe *probe = &self->probes[i];
		const char *name, *prog, *msg;
		char where[32];
		int r;

		snprintf(where, sizeof(where), "probes[%zu]", i);
		if (!(name = get_str(p, "name", where, e)) || !(prog = get_str(p, "program", where, e)))
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
	json_array_foreach(arr, i, p) {
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

int api_parse_status(const json_t *doc, struct ipiv_snapshot *snap, bool *degraded,
		     char *version, size_t version_size, char *err, size_t err_size)
{
	struct perr e = { err, err_size };
	struct ipiv_self_stats self = { 0 };
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
	    (r = parse_labelled(doc, "drops", self.drops, IPIV_DROP_COUNT, ipiv_drop_name, "status",
				&e)) ||
	    (r = parse_probes(doc, &self, &e)) || (r = parse_progs(doc, &self, &e))) {
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
	for (size_t i = 0; i < snap->n_vms; i++)
		api_parse_vm_free(&snap->vms[i]);
	free(snap->vms);
	free_probes(&snap->self);
	free(snap);
}
