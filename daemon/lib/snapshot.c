// SPDX-License-Identifier: GPL-2.0
/* The collector's maps into a snapshot (snapshot.h): counters, the matrix, the vCPU threads'
 * cached counts, latency histograms, each VM's identity, and the collector's own health. */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector_priv.h"
#include "counters.h"
#include "ipiv.skel.h"
#include "sources.h"

static uint64_t sum_percpu(const uint64_t *values, int ncpus)
{
	uint64_t sum = 0;

	for (int i = 0; i < ncpus; i++)
		sum += values[i];
	return sum;
}

_Static_assert(offsetof(struct ipiv_vm_stats, vm) == 0, "find_by_vm compares the leading vm");

/* The VM's row while snap->vms is sorted by vm (until snapshot_once sorts it by pid). */
static struct ipiv_vm_stats *vm_row(struct ipiv_snapshot *snap, uint64_t vm)
{
	return find_by_vm(snap->vms, snap->n_vms, sizeof(*snap->vms), vm);
}

/* Finds or appends the vCPU row; rows are sorted at the end. */
static struct ipiv_vcpu_stats *vcpu_row(struct ipiv_vm_stats *vm, uint32_t vcpu_id)
{
	struct ipiv_vcpu_stats *grown;

	for (size_t i = 0; i < vm->n_vcpus; i++)
		if (vm->vcpus[i].vcpu_id == vcpu_id)
			return &vm->vcpus[i];
	/* by half again: a realloc per row is quadratic where realloc copies (ASan) */
	grown = vm->vcpus;
	if ((vm->n_vcpus + 1) * sizeof(*grown) > malloc_usable_size(grown))
		grown = realloc(grown, (vm->n_vcpus * 3 / 2 + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	vm->vcpus = grown;
	memset(&grown[vm->n_vcpus], 0, sizeof(*grown));
	grown[vm->n_vcpus].vcpu_id = vcpu_id;
	return &grown[vm->n_vcpus++];
}

static void *append(void *array, size_t *n, size_t size)
{
	char *grown = realloc(array, (*n + 1) * size);

	if (!grown)
		return NULL;
	memset(grown + *n * size, 0, size);
	(*n)++;
	return grown;
}

/* Adds to the VM's (path, class) cell; sorted by snapshot_once once the VM is read whole. */
static int add_send(struct ipiv_vm_stats *vm, uint32_t path, uint32_t icr_class, uint64_t value)
{
	struct ipiv_send_cell *cells;
	size_t i;

	if (!value) /* only non-zero cells are listed */
		return 0;
	/* a VM uses a handful of the 7 x 256 cells */
	for (i = 0; i < vm->n_send_cells; i++)
		if (vm->send_cells[i].path == path && vm->send_cells[i].class == icr_class)
			break;
	if (i == vm->n_send_cells) {
		cells = append(vm->send_cells, &vm->n_send_cells, sizeof(*cells));
		if (!cells)
			return -ENOMEM;
		vm->send_cells = cells;
		cells[i].path = path;
		cells[i].class = icr_class;
	}
	vm->send_cells[i].count += value;
	return 0;
}

/* Adds one counter to the VM total and to its vCPU's row (IPIV_VCPU_NONE's for a VMM thread);
 * the per-VM tables of sends by class, exits by reason and inhibit changes as well. */
static int add_counter(struct ipiv_vm_stats *vm, const struct ipiv_counter_key *key, uint64_t value)
{
	struct ipiv_vcpu_stats *row = vcpu_row(vm, key->vcpu);

	if (!row)
		return -ENOMEM;
	counter_add(&vm->counts, key, value);
	counter_add(&row->counts, key, value);

	if (key->kind == IPIV_CNT_SEND && key->sub < IPIV_PATH_COUNT &&
	    key->sub2 < ICR_CLASS_COUNT) {
		return add_send(vm, key->sub, key->sub2, value);
	} else if (key->kind == IPIV_CNT_EXIT) {
		struct ipiv_exit_cell *exits;
		size_t i;

		for (i = 0; i < vm->n_exits; i++)
			if (vm->exits[i].isa == key->sub && vm->exits[i].reason == key->sub2)
				break;
		if (i == vm->n_exits) {
			exits = append(vm->exits, &vm->n_exits, sizeof(*exits));
			if (!exits)
				return -ENOMEM;
			vm->exits = exits;
			exits[i].isa = key->sub;
			exits[i].reason = key->sub2;
		}
		vm->exits[i].count += value;
	} else if (key->kind == IPIV_CNT_INHIBIT && key->sub < IPIV_INHIBIT_COUNT) {
		if (key->sub2)
			vm->inhibit_set[key->sub] += value;
		else
			vm->inhibit_clear[key->sub] += value;
	}
	return 0;
}

static int vcpu_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct ipiv_vcpu_stats *)a)->vcpu_id;
	uint32_t y = ((const struct ipiv_vcpu_stats *)b)->vcpu_id;

	return x < y ? -1 : x > y; /* IPIV_VCPU_NONE sorts last */
}

static int exit_cmp(const void *a, const void *b)
{
	const struct ipiv_exit_cell *x = a, *y = b;

	if (x->isa != y->isa)
		return x->isa < y->isa ? -1 : 1;
	return x->reason < y->reason ? -1 : x->reason > y->reason;
}

static int matrix_cmp(const void *a, const void *b)
{
	const struct ipiv_matrix_cell *x = a, *y = b;

	if (x->src_vcpu != y->src_vcpu)
		return x->src_vcpu < y->src_vcpu ? -1 : 1;
	return x->dst_vcpu < y->dst_vcpu ? -1 : x->dst_vcpu > y->dst_vcpu;
}

static int vm_pid_cmp(const void *a, const void *b)
{
	const struct ipiv_vm_stats *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->vm < y->vm ? -1 : x->vm > y->vm;
}

static int read_counters(struct collector *c, struct ipiv_snapshot *snap, uint64_t *percpu)
{
	int fd = bpf_map__fd(c->skel->maps.counters);
	struct ipiv_counter_key key, *prev = NULL;
	int err;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, percpu)) {
			/* Only a reclaim deletes counter keys, and it does not run during a
			 * snapshot; a key left out otherwise would dip the host totals, which
			 * host_totals_of would then keep as lost counts for good */
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		struct ipiv_vm_stats *vm = vm_row(snap, key.vm);

		if (!vm)
			continue;
		err = add_counter(vm, &key, sum_percpu(percpu, c->ncpus));
		if (err)
			return err;
	}
	return 0;
}

static struct ipiv_lat_hist *lat_row(struct ipiv_vm_stats *vm, const struct ipiv_lat_key *key)
{
	struct ipiv_lat_hist *rows;

	for (size_t i = 0; i < vm->n_lat; i++)
		if (vm->lat[i].kind == key->kind && vm->lat[i].sub == key->sub &&
		    vm->lat[i].vcpu == key->vcpu)
			return &vm->lat[i];
	rows = append(vm->lat, &vm->n_lat, sizeof(*rows));
	if (!rows)
		return NULL;
	vm->lat = rows;
	rows[vm->n_lat - 1].kind = key->kind;
	rows[vm->n_lat - 1].sub = key->sub;
	rows[vm->n_lat - 1].vcpu = key->vcpu;
	return &rows[vm->n_lat - 1];
}

/*
 * The snapshot's rows a histogram of the maps goes to: its own, and for the exits the fastpath
 * sent (IPIV_LAT_EXIT_FASTPATH, which the BPF side records instead of IPIV_LAT_EXIT) the
 * path's IPIV_LAT_EXIT as well, which in a snapshot has every exit that sent an IPI.
 */
static size_t lat_rows_of(const struct ipiv_lat_key *key, struct ipiv_lat_key rows[2])
{
	rows[0] = *key;
	if (key->kind != IPIV_LAT_EXIT_FASTPATH)
		return 1;
	rows[1] = *key;
	rows[1].kind = IPIV_LAT_EXIT;
	return 2;
}

/* Adds one histogram bucket (key, value) of the lat map to its VM's rows of snap. */
static int add_latency(struct ipiv_snapshot *snap, const struct ipiv_lat_key *key,
		       const struct ipiv_lat_value *value)
{
	struct ipiv_vm_stats *vm = vm_row(snap, key->vm);
	struct ipiv_lat_key rows[2];
	struct ipiv_lat_hist *row;
	size_t n_rows;

	if (!vm)
		return 0;
	if (key->kind == IPIV_LAT_UNMATCHED) {
		if (key->sub < IPIV_UNM_COUNT)
			vm->lat_unmatched[key->sub] += value->count;
		return 0;
	}
	/* IPIV_LAT_BINDING keys (a VM's dense slot) are no histogram either */
	if (key->kind >= IPIV_LAT_KIND_COUNT || key->bucket >= HIST_BUCKETS)
		return 0;
	n_rows = lat_rows_of(key, rows);
	for (size_t i = 0; i < n_rows; i++) {
		row = lat_row(vm, &rows[i]);
		if (!row)
			return -ENOMEM;
		row->h.buckets[key->bucket] += value->count;
		row->h.count += value->count;
		row->h.sum_ns += value->sum_ns;
	}
	return 0;
}

/* Adds series s of a VM's dense slot (a VM-wide histogram) to its rows of vm. */
static int add_latency_series(struct ipiv_vm_stats *vm, uint32_t s,
			      const struct ipiv_lat_series *series)
{
	struct ipiv_lat_key key = {.vm = vm->vm, .vcpu = IPIV_LAT_VM_WIDE}, rows[2];
	uint64_t sum = ipiv_lat_series_sum(series);
	struct ipiv_lat_hist *row;
	size_t n_rows;

	ipiv_lat_series_kind(s, &key.kind, &key.sub);
	n_rows = lat_rows_of(&key, rows);
	for (size_t i = 0; i < n_rows; i++) {
		row = lat_row(vm, &rows[i]);
		if (!row)
			return -ENOMEM;
		for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
			uint64_t n = ipiv_lat_series_bucket(series, b);

			row->h.buckets[b] += n;
			row->h.count += n;
		}
		row->h.sum_ns += sum;
	}
	return 0;
}

/*
 * The dense slots (latency_maps.h) into the snapshot's VM rows: a slot's header, the series
 * it marks as used, then the header again. A slot that changed hands in between (its VM was
 * reclaimed and another took it) is left out of this snapshot.
 */
static int read_dense_latency(struct collector *c, struct ipiv_snapshot *snap)
{
	int slots_fd = bpf_map__fd(c->skel->maps.lat_slots);
	int series_fd = bpf_map__fd(c->skel->maps.lat_series);
	struct ipiv_lat_series *series = malloc(IPIV_LAT_SERIES * sizeof(*series));
	int err = 0;

	if (!series)
		return -ENOMEM;
	for (uint32_t i = 0; i < IPIV_LAT_SLOTS && !err; i++) {
		uint32_t used[IPIV_LAT_SERIES], n_used = 0;
		struct ipiv_lat_slot slot, again;
		struct ipiv_vm_stats *vm;

		if (bpf_map_lookup_elem(slots_fd, &i, &slot) || !slot.vm ||
		    !(vm = vm_row(snap, slot.vm)))
			continue;
		for (uint32_t s = 0; s < IPIV_LAT_SERIES && !err; s++) {
			uint32_t elem = i * IPIV_LAT_SERIES + s;

			if (!(slot.series_used & (1ull << s)))
				continue;
			err = bpf_map_lookup_elem(series_fd, &elem, &series[n_used]);
			used[n_used++] = s;
		}
		if (err || bpf_map_lookup_elem(slots_fd, &i, &again) || again.vm != slot.vm)
			continue;
		for (int r = 0; r < IPIV_UNM_COUNT; r++)
			vm->lat_unmatched[r] += again.unmatched[r];
		for (uint32_t k = 0; k < n_used && !err; k++)
			err = add_latency_series(vm, used[k], &series[k]);
	}
	free(series);
	return err;
}

/* Entries of the lat map read per system call. */
#define LAT_BATCH     4096
/* Entries of the lat_hseries map (~4.3 KiB each) read per system call. */
#define HSERIES_BATCH 64

/*
 * Calls each(snap, key, value) for every entry of hash map fd, `batch` entries per system
 * call (batch lookups of hash maps: Linux 5.6+). -ENOSPC when one hash bucket holds more
 * entries than `batch`.
 */
static int read_batched(int fd, size_t key_size, size_t value_size, __u32 batch,
			struct ipiv_snapshot *snap,
			int (*each)(struct ipiv_snapshot *, const void *, const void *))
{
	char *keys = malloc(batch * key_size), *values = malloc(batch * value_size);
	__u64 cursor = 0; /* the kernel's (a bucket index for hash maps) */
	bool started = false, done = false;
	int err = 0;

	if (!keys || !values)
		err = -ENOMEM;
	while (!done && !err) {
		__u32 count = batch;

		err = bpf_map_lookup_batch(fd, started ? &cursor : NULL, &cursor, keys, values,
					   &count, NULL);
		if (err == -ENOENT) { /* the end; count holds the last entries */
			done = true;
			err = 0;
		} else if (err) {
			break;
		}
		started = true;
		for (__u32 i = 0; i < count && !err; i++)
			err = each(snap, keys + i * key_size, values + i * value_size);
	}
	free(keys);
	free(values);
	return err;
}

/* One lat_hseries element: a VM-wide histogram of a VM without a dense slot. */
static int add_hashed_series(struct ipiv_snapshot *snap, const void *k, const void *v)
{
	const struct ipiv_lat_series_key *key = k;
	struct ipiv_vm_stats *vm = vm_row(snap, key->vm);

	if (!vm || key->series >= IPIV_LAT_SERIES)
		return 0;
	return add_latency_series(vm, key->series, v);
}

static int add_latency_entry(struct ipiv_snapshot *snap, const void *key, const void *value)
{
	return add_latency(snap, key, value);
}

/* The lat map into the snapshot's VM rows, LAT_BATCH entries per system call (a full map
 * holds IPIV_MAX_LAT entries), the dense slots of the VMs that have one and the hashed
 * series of those that have none (HSERIES_BATCH, ~4.3 KiB each, per call). */
static int read_latency(struct collector *c, struct ipiv_snapshot *snap)
{
	int err;

	for (size_t i = 0; i < snap->n_vms; i++)
		snap->vms[i].latency_enabled = !c->opts.no_latency;
	err = read_batched(bpf_map__fd(c->skel->maps.lat), sizeof(struct ipiv_lat_key),
			   sizeof(struct ipiv_lat_value), LAT_BATCH, snap, add_latency_entry);
	if (!err)
		err = read_dense_latency(c, snap);
	if (!err)
		err = read_batched(
			bpf_map__fd(c->skel->maps.lat_hseries), sizeof(struct ipiv_lat_series_key),
			sizeof(struct ipiv_lat_series), HSERIES_BATCH, snap, add_hashed_series);
	for (size_t i = 0; i < snap->n_vms && !err; i++)
		if (snap->vms[i].n_lat)
			qsort(snap->vms[i].lat, snap->vms[i].n_lat, sizeof(*snap->vms[i].lat),
			      ipiv_lat_hist_cmp);
	return err;
}

static int read_matrix(struct collector *c, struct ipiv_snapshot *snap, uint64_t *percpu)
{
	int fd = bpf_map__fd(c->skel->maps.matrix);
	struct ipiv_matrix_key key, *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		struct ipiv_vm_stats *vm = vm_row(snap, key.vm);
		struct ipiv_matrix_cell *cells;

		prev = &key;
		if (!vm || bpf_map_lookup_elem(fd, &key, percpu))
			continue;
		cells = append(vm->matrix, &vm->n_matrix, sizeof(*cells));
		if (!cells)
			return -ENOMEM;
		vm->matrix = cells;
		cells[vm->n_matrix - 1].src_vcpu = key.src_vcpu;
		cells[vm->n_matrix - 1].dst_vcpu = key.dst_vcpu;
		cells[vm->n_matrix - 1].count = sum_percpu(percpu, c->ncpus);
	}
	return 0;
}

static int read_identity(struct collector *c, struct ipiv_snapshot *snap,
			 const struct ipiv_thread_rec *recs, size_t n_recs)
{
	int vms_fd = bpf_map__fd(c->skel->maps.vms);

	for (size_t i = 0; i < snap->n_vms; i++) {
		struct ipiv_vm_stats *vm = &snap->vms[i];
		struct vm_seen *seen = seen_find(c, vm->vm);
		struct ipiv_vm state;

		const struct vm_found *found = found_find(c, vm->vm);

		vm->alive = seen && !seen->missing;
		if (found) {
			vm->vcpu_count = found->vcpus;
			vm->pid = (int32_t)found->tgid;
		}
		if (bpf_map_lookup_elem(vms_fd, &vm->vm, &state))
			continue;
		if (state.tgid)
			vm->pid = (int32_t)state.tgid;
		memcpy(vm->stats_id, state.stats_id, sizeof(vm->stats_id));
		vm->stats_id[sizeof(vm->stats_id) - 1] = '\0';
		vm->cmdline_len = state.cmdline_len <= sizeof(vm->cmdline) ? state.cmdline_len : 0;
		memcpy(vm->cmdline, state.cmdline, vm->cmdline_len);
		vm->cmdline_cut = state.cmdline_cut;
		vm->inhibits_known = state.inhibits_known;
		vm->inhibits = state.inhibits;
		/* the ring's valid slots, oldest first */
		{
			uint32_t n =
				state.n_changes < IPIV_TIMELINE ? state.n_changes : IPIV_TIMELINE;

			for (uint32_t k = 0; k < n; k++)
				vm->timeline[k] = state.changes[(state.n_changes - n + k) &
								(IPIV_TIMELINE - 1)];
			vm->n_timeline = n;
		}
	}
	/* each vCPU as its file showed it at the last discovery: APICv state, APIC mode and
	 * the thread that last ran it, also once that thread has exited */
	for (size_t i = 0; i < c->n_found_vcpus; i++) {
		const struct vcpu_found *f = &c->found_vcpus[i];
		struct ipiv_vm_stats *vm = vm_row(snap, f->vm);
		struct ipiv_vcpu_stats *row;

		if (!vm)
			continue;
		row = vcpu_row(vm, f->vcpu_id);
		if (!row)
			return -ENOMEM;
		row->tid = f->tid;
		row->apicv_active = f->apicv;
		row->apic_mode = f->apic_mode;
	}
	/* the live vCPU threads: their tid and the APIC mode of their last IPI are newer */
	for (size_t i = 0; i < n_recs; i++) {
		const struct ipiv_thread *thread = &recs[i].t;
		struct ipiv_vm_stats *vm = vm_row(snap, thread->vm);
		struct ipiv_vcpu_stats *row;

		if (!vm || thread->vcpu_id == IPIV_VCPU_NONE)
			continue;
		row = vcpu_row(vm, thread->vcpu_id);
		if (!row)
			return -ENOMEM;
		row->tid = recs[i].tid;
		if (thread->apic_mode != IPIV_APIC_UNKNOWN)
			row->apic_mode = thread->apic_mode;
		if (!vm->pid)
			vm->pid = (int32_t)thread->tgid;
	}
	return 0;
}

/* Adds n to the (src, dst) cell of vm's matrix. */
static int matrix_add(struct ipiv_vm_stats *vm, uint32_t src, uint32_t dst, uint64_t n)
{
	struct ipiv_matrix_cell *cells;

	for (size_t i = 0; i < vm->n_matrix; i++)
		if (vm->matrix[i].src_vcpu == src && vm->matrix[i].dst_vcpu == dst) {
			vm->matrix[i].count += n;
			return 0;
		}
	cells = append(vm->matrix, &vm->n_matrix, sizeof(*cells));
	if (!cells)
		return -ENOMEM;
	vm->matrix = cells;
	cells[vm->n_matrix - 1] = (struct ipiv_matrix_cell){src, dst, n};
	return 0;
}

/* The counts vCPU threads keep in their own storage (include/ipiv.h, IPIV_THREAD_CACHE),
 * added to what the maps hold. */
static int read_thread_caches(struct ipiv_snapshot *snap, const struct ipiv_thread_rec *recs,
			      size_t n_recs)
{
	for (size_t i = 0; i < n_recs; i++)
		for (int k = 0; k < IPIV_THREAD_CACHE; k++) {
			const struct ipiv_cache_entry *e = &recs[i].t.cache[k];
			struct ipiv_vm_stats *vm;
			int err;

			if (e->state != IPIV_CACHE_VALID || !e->n ||
			    !(vm = vm_row(snap, e->key.vm)))
				continue;
			if (e->key.kind == IPIV_CNT_MATRIX_CELL)
				err = matrix_add(vm, e->key.sub2, e->key.vcpu, e->n);
			else
				err = add_counter(vm, &e->key, e->n);
			if (err)
				return err;
		}
	return 0;
}

static int read_self(struct collector *c, struct ipiv_self_stats *self, uint64_t *percpu)
{
	int drops_fd = bpf_map__fd(c->skel->maps.drops);
	struct bpf_program *prog;
	size_t n = 0;

	self->probes = calloc(c->n_probes, sizeof(*self->probes));
	if (!self->probes)
		return -ENOMEM;
	/* a fastpath fexit says which exits it sent */
	bool fastpath = ipiv_quantity_attached(c->probes, c->n_probes, "x2apic_fastpath");

	if (!c->opts.no_latency)
		for (uint32_t k = 0; k < IPIV_LAT_UNMATCHED; k++)
			if ((k != IPIV_LAT_SEND_ACCEPT || c->opts.send_accept_latency) &&
			    (k != IPIV_LAT_EXIT_FASTPATH || fastpath))
				self->lat_kinds_recorded |= 1u << k;
	memcpy(self->probes, c->probes, c->n_probes * sizeof(*c->probes));
	self->n_probes = c->n_probes;
	for (size_t i = 0; i < c->n_probes; i++)
		self->n_attached += c->probes[i].attached;

	for (uint32_t r = 0; r < IPIV_DROP_COUNT; r++)
		if (!bpf_map_lookup_elem(drops_fd, &r, percpu))
			self->drops[r] = sum_percpu(percpu, c->ncpus);

	bpf_object__for_each_program(prog, c->skel->obj) n++;
	self->progs = calloc(n ? n : 1, sizeof(*self->progs));
	if (!self->progs)
		return -ENOMEM;
	bpf_object__for_each_program(prog, c->skel->obj)
	{
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		struct ipiv_prog_stats *ps = &self->progs[self->n_progs++];

		/* The kernel keeps 15 characters of a name, which makes two of ours equal;
		 * the object knows the whole one. */
		snprintf(ps->name, sizeof(ps->name), "%s", bpf_program__name(prog));
		ps->run_cnt = info.run_cnt;
		ps->run_time_ns = info.run_time_ns;
	}
	self->bpf_stats_enabled = c->stats_fd >= 0;
	self->vms_discovered = c->vms_discovered;
	self->vms_reclaimed = c->vms_reclaimed;
	self->polls = c->polls;
	self->last_poll_err = c->last_poll_err;
	return 0;
}

/* One attempt at a snapshot; -EAGAIN when a thread moved its cached counts to the maps
 * while they were read (each count would then be seen twice or not at all). */
/* Appends copies of the retired VMs' final counts to snap (already in its host totals). */
static int add_retired(const struct collector *c, struct ipiv_snapshot *snap)
{
	struct ipiv_vm_stats *vms;
	int err;

	if (!c->n_retired)
		return 0;
	vms = realloc(snap->vms, (snap->n_vms + c->n_retired) * sizeof(*vms));
	if (!vms)
		return -ENOMEM;
	snap->vms = vms;
	for (size_t i = 0; i < c->n_retired; i++) {
		err = vm_stats_copy(&snap->vms[snap->n_vms], &c->retired[i].stats);
		if (err)
			return err;
		snap->n_vms++;
	}
	return 0;
}

/*
 * The host totals: the reclaimed VMs' and those of the VMs in the maps, monotonic for ipivd's
 * life. A live VM's count can fall when the counters map is full and a thread's cached counts
 * find no room as it exits (counters_map_full): those events were counted and given out
 * before, so the host totals keep them (host_kept) rather than fall, which Prometheus would
 * take for a reset. The VM's own series show the loss.
 */
static void host_totals_of(struct collector *c, struct ipiv_snapshot *snap)
{
	uint64_t *host = (uint64_t *)&snap->host, *last = (uint64_t *)&c->host_last;
	uint64_t *kept = (uint64_t *)&c->host_kept;

	_Static_assert(sizeof(struct ipiv_counts) % sizeof(uint64_t) == 0,
		       "the counts are 64-bit counters only");
	snap->host = c->gone;
	for (size_t i = 0; i < snap->n_vms; i++)
		counts_add(&snap->host, &snap->vms[i].counts);
	for (size_t i = 0; i < sizeof(snap->host) / sizeof(uint64_t); i++) {
		if (host[i] + kept[i] < last[i])
			kept[i] = last[i] - host[i];
		host[i] += kept[i];
		last[i] = host[i];
	}
}

/* The host-wide histograms: the reclaimed VMs' (c->gone_lat) and those of the VMs in the maps
 * (the retired ones are among the former). */
static int host_latency_of(const struct collector *c, struct ipiv_snapshot *snap)
{
	if (c->n_gone_lat) {
		snap->host_lat = malloc(c->n_gone_lat * sizeof(*snap->host_lat));
		if (!snap->host_lat)
			return -ENOMEM;
		memcpy(snap->host_lat, c->gone_lat, c->n_gone_lat * sizeof(*snap->host_lat));
		snap->n_host_lat = c->n_gone_lat;
	}
	for (size_t i = 0; i < snap->n_vms; i++) {
		int err = host_latency_add(&snap->host_lat, &snap->n_host_lat, &snap->vms[i]);

		if (err)
			return err;
	}
	return 0;
}

static int snapshot_once(struct collector *c, struct ipiv_snapshot **out, uint64_t *percpu)
{
	uint64_t flushed = __atomic_load_n(&c->skel->bss->flush_end, __ATOMIC_ACQUIRE);
	struct ipiv_snapshot *snap;
	struct ipiv_thread_rec *recs = NULL;
	uint64_t *vms = NULL;
	size_t n_vms = 0, n_recs = 0;
	int err;

	*out = NULL;
	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	snap->taken_ns = collector_now_ns();
	snap->inhibit_names = c->inhibit_names;

	err = read_threads(c, &recs, &n_recs);
	if (!err)
		err = vms_in_maps(c, recs, n_recs, &vms, &n_vms);
	if (err)
		goto cleanup;
	snap->vms = calloc(n_vms ? n_vms : 1, sizeof(*snap->vms));
	if (!snap->vms) {
		err = -ENOMEM;
		goto cleanup;
	}
	snap->n_vms = n_vms;
	for (size_t i = 0; i < n_vms; i++)
		snap->vms[i].vm = vms[i]; /* sorted by vm for vm_row() until the end */

	err = read_identity(c, snap, recs, n_recs);
	if (!err)
		err = read_counters(c, snap, percpu);
	if (!err)
		err = read_matrix(c, snap, percpu);
	if (!err)
		err = read_thread_caches(snap, recs, n_recs);
	if (!err && __atomic_load_n(&c->skel->bss->flush_begin, __ATOMIC_ACQUIRE) != flushed)
		err = -EAGAIN;
	if (!err)
		err = read_latency(c, snap);
	if (!err)
		err = read_self(c, &snap->self, percpu);
	if (err)
		goto cleanup;

	for (size_t i = 0; i < n_vms; i++) {
		struct ipiv_vm_stats *vm = &snap->vms[i];

		if (vm->n_send_cells) /* the JSON API and /metrics list them in this order */
			qsort(vm->send_cells, vm->n_send_cells, sizeof(*vm->send_cells),
			      ipiv_send_cell_cmp);
		if (vm->n_vcpus) /* NULL arrays when empty, and qsort(NULL, 0) is undefined */
			qsort(vm->vcpus, vm->n_vcpus, sizeof(*vm->vcpus), vcpu_cmp);
		if (vm->n_exits)
			qsort(vm->exits, vm->n_exits, sizeof(*vm->exits), exit_cmp);
		if (vm->n_matrix)
			qsort(vm->matrix, vm->n_matrix, sizeof(*vm->matrix), matrix_cmp);
		uint32_t rows = 0;

		for (size_t j = 0; j < vm->n_vcpus; j++)
			rows += vm->vcpus[j].vcpu_id != IPIV_VCPU_NONE;
		if (rows > vm->vcpu_count)
			vm->vcpu_count = rows;
	}
	host_totals_of(c, snap);
	err = host_latency_of(c, snap);
	if (err)
		goto cleanup;
	err = add_retired(c, snap);
	if (err)
		goto cleanup;
	qsort(snap->vms, snap->n_vms, sizeof(*snap->vms), vm_pid_cmp);
	*out = snap;
	snap = NULL;
cleanup:
	collector_snapshot_free(snap);
	free(vms);
	free(recs);
	return err;
}

int collector_snapshot(struct collector *c, struct ipiv_snapshot **out)
{
	uint64_t *percpu = calloc(c->ncpus, sizeof(*percpu));
	int err = -ENOMEM;

	*out = NULL;
	/* thread exits are rare: a retry almost never meets a second one */
	for (int attempt = 0; percpu && attempt < 8; attempt++) {
		err = snapshot_once(c, out, percpu);
		if (err != -EAGAIN)
			break;
	}
	free(percpu);
	return err;
}
