// SPDX-License-Identifier: GPL-2.0
/* Queries on a snapshot (snapshot.h), and freeing and copying its parts. Plain C: no
 * libbpf, no maps; tests drive it with hand-made snapshots. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

/* struct ipiv_counts is all uint64_t */
void counts_add(struct ipiv_counts *dst, const struct ipiv_counts *src)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;

	for (size_t i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

void vm_stats_free(struct ipiv_vm_stats *vm)
{
	free(vm->send_cells);
	free(vm->exits);
	free(vm->vcpus);
	free(vm->lat);
	free(vm->matrix);
	vm->send_cells = NULL;
	vm->n_send_cells = 0;
	vm->exits = NULL;
	vm->n_exits = 0;
	vm->vcpus = NULL;
	vm->n_vcpus = 0;
	vm->lat = NULL;
	vm->n_lat = 0;
	vm->matrix = NULL;
	vm->n_matrix = 0;
}

static void *dup_array(const void *src, size_t n, size_t size, int *err)
{
	void *p;

	if (!n)
		return NULL;
	p = malloc(n * size);
	if (!p)
		*err = -ENOMEM;
	else
		memcpy(p, src, n * size);
	return p;
}

int vm_stats_copy(struct ipiv_vm_stats *dst, const struct ipiv_vm_stats *src)
{
	int err = 0;

	*dst = *src;
	dst->send_cells =
		dup_array(src->send_cells, src->n_send_cells, sizeof(*src->send_cells), &err);
	dst->exits = dup_array(src->exits, src->n_exits, sizeof(*src->exits), &err);
	dst->vcpus = dup_array(src->vcpus, src->n_vcpus, sizeof(*src->vcpus), &err);
	dst->lat = dup_array(src->lat, src->n_lat, sizeof(*src->lat), &err);
	dst->matrix = dup_array(src->matrix, src->n_matrix, sizeof(*src->matrix), &err);
	if (err)
		vm_stats_free(dst);
	return err;
}

int ipiv_lat_hist_cmp(const void *a, const void *b)
{
	const struct ipiv_lat_hist *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	return x->vcpu < y->vcpu ? -1 : x->vcpu > y->vcpu;
}

/* The rows of (kind, sub) of vcpu (NULL: every row) merged into *out; false if empty. */
static bool merge_latency(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub,
			  const uint32_t *vcpu, struct latency_hist *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < vm->n_lat; i++)
		if (vm->lat[i].kind == kind && (sub == IPIV_LAT_ANY_SUB || vm->lat[i].sub == sub) &&
		    (!vcpu || vm->lat[i].vcpu == *vcpu))
			latency_merge(out, &vm->lat[i].h);
	return out->count > 0;
}

bool vm_latency(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub,
		struct latency_hist *out)
{
	return merge_latency(vm, kind, sub, NULL, out);
}

bool vm_vcpu_latency(const struct ipiv_vm_stats *vm, uint16_t kind, uint16_t sub, uint32_t vcpu,
		     struct latency_hist *out)
{
	return merge_latency(vm, kind, sub, &vcpu, out);
}

static struct ipiv_lat_hist *find_lat(struct ipiv_lat_hist *rows, size_t n, uint16_t kind,
				      uint16_t sub)
{
	const struct ipiv_lat_hist key = {.kind = kind, .sub = sub, .vcpu = IPIV_LAT_VM_WIDE};

	return n ? bsearch(&key, rows, n, sizeof(key), ipiv_lat_hist_cmp) : NULL;
}

int host_latency_add(struct ipiv_lat_hist **rows, size_t *n, const struct ipiv_vm_stats *vm)
{
	for (size_t i = 0; i < vm->n_lat; i++) {
		const struct ipiv_lat_hist *from = &vm->lat[i];
		struct ipiv_lat_hist *row, *grown;

		if (!ipiv_lat_host_wide(from->kind) || !from->h.count)
			continue;
		row = find_lat(*rows, *n, from->kind, from->sub);
		if (!row) {
			grown = realloc(*rows, (*n + 1) * sizeof(*grown));
			if (!grown)
				return -ENOMEM;
			*rows = grown;
			row = &grown[(*n)++];
			memset(row, 0, sizeof(*row));
			row->kind = from->kind;
			row->sub = from->sub;
			row->vcpu = IPIV_LAT_VM_WIDE;
			/* a handful of rows: sorted again at once, so find_lat can bsearch */
			qsort(*rows, *n, sizeof(**rows), ipiv_lat_hist_cmp);
			row = find_lat(*rows, *n, from->kind, from->sub);
		}
		latency_merge(&row->h, &from->h);
	}
	return 0;
}

const struct latency_hist *host_latency(const struct ipiv_snapshot *snap, uint16_t kind,
					uint16_t sub)
{
	const struct ipiv_lat_hist *row = find_lat(snap->host_lat, snap->n_host_lat, kind, sub);

	return row ? &row->h : NULL;
}

bool vm_latency_per_vcpu(const struct ipiv_vm_stats *vm)
{
	for (size_t i = 0; i < vm->n_lat; i++)
		if (vm->lat[i].vcpu != IPIV_LAT_VM_WIDE)
			return true;
	return false;
}

void collector_snapshot_free(struct ipiv_snapshot *snap)
{
	if (!snap)
		return;
	for (size_t i = 0; i < snap->n_vms; i++)
		vm_stats_free(&snap->vms[i]);
	free(snap->vms);
	free(snap->host_lat);
	free(snap->self.probes);
	free(snap->self.progs);
	free(snap);
}

const struct ipiv_vm_stats *snapshot_find_vm(const struct ipiv_snapshot *snap, uint64_t vm)
{
	for (size_t i = 0; i < snap->n_vms; i++)
		if (snap->vms[i].vm == vm)
			return &snap->vms[i];
	return NULL;
}

const struct ipiv_vcpu_stats *vm_find_vcpu(const struct ipiv_vm_stats *vm, uint32_t vcpu_id)
{
	for (size_t i = 0; i < vm->n_vcpus; i++)
		if (vm->vcpus[i].vcpu_id == vcpu_id)
			return &vm->vcpus[i];
	return NULL;
}

int ipiv_send_cell_cmp(const void *a, const void *b)
{
	const struct ipiv_send_cell *x = a, *y = b;

	if (x->path != y->path)
		return x->path < y->path ? -1 : 1;
	return x->class < y->class ? -1 : x->class > y->class;
}

uint64_t vm_sent(const struct ipiv_vm_stats *vm, unsigned path, unsigned icr_class)
{
	const struct ipiv_send_cell key = {.path = path, .class = icr_class};
	const struct ipiv_send_cell *cell;

	if (!vm->n_send_cells) /* send_cells may be NULL, which bsearch must not get */
		return 0;
	cell = bsearch(&key, vm->send_cells, vm->n_send_cells, sizeof(key), ipiv_send_cell_cmp);
	return cell ? cell->count : 0;
}
