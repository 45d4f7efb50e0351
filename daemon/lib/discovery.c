// SPDX-License-Identifier: GPL-2.0
/* The collector's VM discovery (the iter/task_file walk), and what happens to a VM that is
 * gone: its final counts retired into the host totals (and kept for a while), its map
 * entries reclaimed. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector_priv.h"
#include "ipiv.skel.h"
#include "log.h"

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool sorted_has(const uint64_t *keys, size_t n, uint64_t key)
{
	return n && bsearch(&key, keys, n, sizeof(*keys), u64_cmp);
}

int vms_in_maps(struct collector *c, const struct ipiv_thread_rec *recs, size_t n_recs,
		uint64_t **out, size_t *n_out)
{
	size_t n = 0, cap = 64;
	uint64_t *vms = malloc(cap * sizeof(*vms));
	struct ipiv_counter_key ckey, *cprev = NULL;
	uint64_t vkey, *vprev = NULL;

#define ADD_VM(v)                                                               \
	do {                                                                    \
		if (n == cap) {                                                 \
			uint64_t *grown = realloc(vms, 2 * cap * sizeof(*vms)); \
			if (!grown)                                             \
				goto nomem;                                     \
			vms = grown;                                            \
			cap *= 2;                                               \
		}                                                               \
		vms[n++] = (v);                                                 \
	} while (0)

	if (!vms)
		return -ENOMEM;
	while (!bpf_map_get_next_key(bpf_map__fd(c->skel->maps.vms), vprev, &vkey)) {
		ADD_VM(vkey);
		vprev = &vkey;
	}
	while (!bpf_map_get_next_key(bpf_map__fd(c->skel->maps.counters), cprev, &ckey)) {
		ADD_VM(ckey.vm);
		cprev = &ckey;
	}
	for (size_t i = 0; i < n_recs; i++) {
		if (recs[i].t.vm)
			ADD_VM(recs[i].t.vm);
		for (int k = 0; k < IPIV_THREAD_CACHE; k++)
			if (recs[i].t.cache[k].state == IPIV_CACHE_VALID &&
			    recs[i].t.cache[k].key.vm)
				ADD_VM(recs[i].t.cache[k].key.vm);
	}
#undef ADD_VM
	qsort(vms, n, sizeof(*vms), u64_cmp);
	size_t uniq = 0;
	for (size_t i = 0; i < n; i++)
		if (!uniq || vms[uniq - 1] != vms[i])
			vms[uniq++] = vms[i];
	*out = vms;
	*n_out = uniq;
	return 0;
nomem:
	free(vms);
	return -ENOMEM;
}

/* The VM entry key of map fd names: vm_of(key), or with vm_of NULL the first 8 bytes of its
 * value (0 when it is gone). */
static uint64_t entry_vm(int fd, const void *key, uint64_t (*vm_of)(const void *key),
			 unsigned char *value)
{
	uint64_t vm;

	if (vm_of)
		return vm_of(key);
	if (bpf_map_lookup_elem(fd, key, value))
		return 0;
	memcpy(&vm, value, sizeof(vm));
	return vm;
}

/*
 * Deletes every entry of map fd whose VM is in dead (sorted): vm_of(key) names it, or with
 * vm_of NULL the first 8 bytes of the value (value_size bytes). The keys are gathered in one
 * walk and deleted after it: deleting the walk's cursor would restart it from the first key,
 * which made a reclaim cost entries x deleted key reads. A value is read again before its
 * key goes: a new VM may have taken that mm or struct kvm address in between. Gathering
 * that runs out of memory deletes what it has and walks again.
 */
static void delete_entries_of(int fd, size_t key_size, size_t value_size,
			      uint64_t (*vm_of)(const void *key), const uint64_t *dead,
			      size_t n_dead)
{
	unsigned char key[64], next[64], value[512], *doomed = NULL;
	size_t n = 0, cap = 0;
	bool have_key = false, more = true;

	if (key_size > sizeof(key) || (!vm_of && value_size > sizeof(value)))
		return; /* a build-time mistake; the map then grows until full (drops say so) */
	while (more) {
		more = false;
		while (!bpf_map_get_next_key(fd, have_key ? key : NULL, next)) {
			memcpy(key, next, key_size);
			have_key = true;
			if (!sorted_has(dead, n_dead, entry_vm(fd, key, vm_of, value)))
				continue;
			if (n == cap) {
				size_t grown_cap = cap ? 2 * cap : 256;
				unsigned char *grown = realloc(doomed, grown_cap * key_size);

				if (!grown) {
					more = n > 0; /* delete these, then walk again */
					break;
				}
				doomed = grown;
				cap = grown_cap;
			}
			memcpy(doomed + n++ * key_size, key, key_size);
		}
		for (size_t i = 0; i < n; i++) {
			const void *k = doomed + i * key_size;

			if (vm_of || sorted_has(dead, n_dead, entry_vm(fd, k, vm_of, value)))
				bpf_map_delete_elem(fd, k);
		}
		n = 0;
		have_key = false;
	}
	free(doomed);
}

/* Deletes every key of map whose VM is in dead (sorted). vm_of returns the key's VM. */
static void delete_keys_of(int fd, size_t key_size, uint64_t (*vm_of)(const void *key),
			   const uint64_t *dead, size_t n_dead)
{
	delete_entries_of(fd, key_size, 0, vm_of, dead, n_dead);
}

static uint64_t vm_of_counter(const void *key)
{
	return ((const struct ipiv_counter_key *)key)->vm;
}

static uint64_t vm_of_matrix(const void *key)
{
	return ((const struct ipiv_matrix_key *)key)->vm;
}

static uint64_t vm_of_vm(const void *key)
{
	return *(const uint64_t *)key;
}

/* Deletes every entry of map whose value starts with the key of a VM in dead (sorted): the
 * mm map, the pointer -> key map and the vCPU state map all lead with it. */
static void delete_values_of(const struct bpf_map *map, const uint64_t *dead, size_t n_dead)
{
	delete_entries_of(bpf_map__fd(map), bpf_map__key_size(map), bpf_map__value_size(map), NULL,
			  dead, n_dead);
}

static void run_iter(struct bpf_link *link);

uint64_t collector_now_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec;
}

static void expire_retired(struct collector *c, uint64_t now)
{
	size_t keep = 0;

	for (size_t i = 0; i < c->n_retired; i++) {
		if (c->retired[i].until_ns > now)
			c->retired[keep++] = c->retired[i];
		else
			vm_stats_free(&c->retired[i].stats);
	}
	c->n_retired = keep;
}

/*
 * The dead VMs' final counts, read before their map entries go: added to the host totals,
 * and kept for the retention window. A VM whose process ended between two polls is here
 * with every count it made (its threads' caches moved to the maps as they exited).
 */
static int retire(struct collector *c, const uint64_t *dead, size_t n_dead)
{
	struct ipiv_snapshot *snap;
	struct retired_vm *more;
	uint64_t until = collector_now_ns() + c->opts.exited_retention_ns;
	int err = collector_snapshot(c, &snap);

	if (err)
		return err;
	more = realloc(c->retired, (c->n_retired + n_dead) * sizeof(*more));
	if (!more && n_dead) {
		collector_snapshot_free(snap);
		return -ENOMEM;
	}
	c->retired = more;
	for (size_t i = 0; i < snap->n_vms; i++) {
		struct ipiv_vm_stats *vm = &snap->vms[i];

		if (vm->exited || !sorted_has(dead, n_dead, vm->vm))
			continue;
		counts_add(&c->gone, &vm->counts);
		/* not a reason to retire it again later: its counts are in c->gone already */
		if (host_latency_add(&c->gone_lat, &c->n_gone_lat, vm))
			log_warn("collector",
				 "out of memory: the host-wide latency histograms lose "
				 "an exited VM's observations");
		if (!c->opts.exited_retention_ns)
			continue;
		vm->alive = false;
		vm->exited = true;
		/* a key of its own: a new VM at the same address may take the old key */
		vm->vm = IPIV_RETIRED_KEY | c->n_retired_ever++;
		c->retired[c->n_retired].stats = *vm;
		c->retired[c->n_retired++].until_ns = until;
		memset(vm, 0, sizeof(*vm)); /* its arrays belong to the retired entry now */
	}
	collector_snapshot_free(snap);
	return 0;
}

/*
 * The dense latency slots of the dead VMs, cleared and freed before anything of theirs is
 * forgotten: once vm_keys no longer knows a dead VM's kvm address, a new VM there takes the
 * same key, and would be credited with whatever a slot still bound to that key holds. The BPF
 * side frees a slot whose binding is gone only a second after its claim (lat_free_unbound_slots
 * cannot tell an old slot from one whose binding is being written), so a VM reclaimed within
 * a second of its first latency event kept its slot, and a new VM at its address doubled its
 * histograms. No program writes these slots: their VMs are gone.
 */
static void free_dead_slots(struct collector *c, const uint64_t *dead, size_t n_dead)
{
	static const struct ipiv_lat_series no_series;
	static const struct ipiv_lat_targets no_targets;
	static const struct ipiv_lat_slot no_slot;
	int slots = bpf_map__fd(c->skel->maps.lat_slots);
	int series = bpf_map__fd(c->skel->maps.lat_series);
	int targets = bpf_map__fd(c->skel->maps.lat_targets);

	for (uint32_t i = 0; i < IPIV_LAT_SLOTS; i++) {
		struct ipiv_lat_slot slot;

		if (bpf_map_lookup_elem(slots, &i, &slot) || !slot.vm ||
		    !sorted_has(dead, n_dead, slot.vm))
			continue;
		for (uint32_t s = 0; s < IPIV_LAT_SERIES; s++) {
			uint32_t elem = i * IPIV_LAT_SERIES + s;

			bpf_map_update_elem(series, &elem, &no_series, BPF_ANY);
		}
		bpf_map_update_elem(targets, &i, &no_targets, BPF_ANY);
		bpf_map_update_elem(slots, &i, &no_slot, BPF_ANY); /* free only once it is clear */
	}
}

static void reclaim(struct collector *c, const uint64_t *dead, size_t n_dead)
{
	free_dead_slots(c, dead, n_dead);
	delete_keys_of(bpf_map__fd(c->skel->maps.counters), sizeof(struct ipiv_counter_key),
		       vm_of_counter, dead, n_dead);
	delete_keys_of(bpf_map__fd(c->skel->maps.matrix), sizeof(struct ipiv_matrix_key),
		       vm_of_matrix, dead, n_dead);
	delete_keys_of(bpf_map__fd(c->skel->maps.vms), sizeof(uint64_t), vm_of_vm, dead, n_dead);
	/* latency keys and latency's target records start with the VM key too */
	delete_keys_of(bpf_map__fd(c->skel->maps.lat), sizeof(struct ipiv_lat_key), vm_of_vm, dead,
		       n_dead);
	delete_keys_of(bpf_map__fd(c->skel->maps.lat_hseries), sizeof(struct ipiv_lat_series_key),
		       vm_of_vm, dead, n_dead);
	delete_keys_of(bpf_map__fd(c->skel->maps.targets), sizeof(struct ipiv_target_key), vm_of_vm,
		       dead, n_dead);
	delete_values_of(c->skel->maps.mms, dead, n_dead);
	delete_values_of(c->skel->maps.vcpu_states, dead, n_dead);
	/* the pointer -> key entries of dead VMs: a new VM at that address starts afresh */
	delete_values_of(c->skel->maps.vm_keys, dead, n_dead);
	/* last: the threads of VMs whose vms entry is gone lose their storage */
	run_iter(c->prune_iter);
	c->vms_reclaimed += n_dead;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct ipiv_discovery_rec *x = a, *y = b;

	if (x->vm != y->vm)
		return x->vm < y->vm ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->vcpu_id < y->vcpu_id ? -1 : x->vcpu_id > y->vcpu_id;
}

/* Sums the iterator's records per VM into c->found, sorted by vm. */
static int summarize(struct collector *c, struct ipiv_discovery_rec *recs, size_t n)
{
	struct vm_found *found = calloc(n ? n : 1, sizeof(*found));
	struct vcpu_found *vcpus = calloc(n ? n : 1, sizeof(*vcpus));
	size_t n_found = 0, n_vcpus = 0;

	if (!found || !vcpus) {
		free(found);
		free(vcpus);
		return -ENOMEM;
	}
	qsort(recs, n, sizeof(*recs), rec_cmp);
	for (size_t i = 0; i < n; i++) {
		struct ipiv_discovery_rec *r = &recs[i];
		bool same_vm = i && recs[i - 1].vm == r->vm;

		if (!same_vm)
			found[n_found++].vm = r->vm;
		struct vm_found *f = &found[n_found - 1];

		if (r->kind == IPIV_FILE_VM && !f->tgid)
			f->tgid = r->tgid;
		/* a vCPU fd may be open in several processes or twice in one */
		if (r->kind == IPIV_FILE_VCPU && !(same_vm && recs[i - 1].kind == IPIV_FILE_VCPU &&
						   recs[i - 1].vcpu_id == r->vcpu_id)) {
			f->vcpus++;
			vcpus[n_vcpus++] = (struct vcpu_found){
				.vm = r->vm,
				.vcpu_id = r->vcpu_id,
				.tid = r->vcpu_tid,
				.apicv = (uint8_t)r->apicv_active,
				.apic_mode = (uint8_t)r->apic_mode,
			};
		}
	}
	free(c->found);
	c->found = found;
	c->n_found = n_found;
	free(c->found_vcpus);
	c->found_vcpus = vcpus; /* in rec_cmp order: by (vm, vcpu_id) */
	c->n_found_vcpus = n_vcpus;
	return 0;
}

void *find_by_vm(const void *rows, size_t n, size_t size, uint64_t vm)
{
	return n ? bsearch(&vm, rows, n, size, u64_cmp) : NULL;
}

_Static_assert(offsetof(struct vm_found, vm) == 0, "find_by_vm compares the leading vm");

const struct vm_found *found_find(const struct collector *c, uint64_t vm)
{
	return find_by_vm(c->found, c->n_found, sizeof(*c->found), vm);
}

/* Reads every record of size rec_size an iterator writes into a new array (*out, *n);
 * records are written whole, but read() may split or join them. */
static int read_iter(struct bpf_link *link, size_t rec_size, void **out, size_t *n_out)
{
	size_t n = 0, cap = 16, got = 0;
	char *recs;
	int fd, err = 0;
	ssize_t len;

	*out = NULL;
	*n_out = 0;
	if (!link)
		return -ENOTSUP;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0)
		return -errno;
	recs = malloc(cap * rec_size);
	if (!recs) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n == cap) {
			char *grown = realloc(recs, 2 * cap * rec_size);

			if (!grown) {
				err = -ENOMEM;
				break;
			}
			recs = grown;
			cap *= 2;
		}
		len = read(fd, recs + n * rec_size + got, rec_size - got);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0) {
			err = -errno;
			break;
		}
		if (len == 0)
			break;
		got += len;
		if (got == rec_size) {
			got = 0;
			n++;
		}
	}
	close(fd);
	if (err) {
		free(recs);
		return err;
	}
	*out = recs;
	*n_out = n;
	return 0;
}

/* Runs an iterator for its side effects. */
static void run_iter(struct bpf_link *link)
{
	void *recs;
	size_t n;

	if (!read_iter(link, 1, &recs, &n))
		free(recs);
}

int read_threads(struct collector *c, struct ipiv_thread_rec **recs, size_t *n)
{
	return read_iter(c->threads_iter, sizeof(**recs), (void **)recs, n);
}

/* Runs the discovery iterator (which also registers VMs in the maps). */
static int discover(struct collector *c)
{
	struct ipiv_discovery_rec *recs;
	size_t n;
	int err;

	err = read_iter(c->links[c->n_probes - 1], sizeof(*recs), (void **)&recs, &n);
	if (err)
		return err;
	err = summarize(c, recs, n);
	free(recs);
	return err;
}

struct vm_seen *seen_find(const struct collector *c, uint64_t vm)
{
	for (size_t i = 0; i < c->n_seen; i++)
		if (c->seen[i].vm == vm)
			return &c->seen[i];
	return NULL;
}

size_t collector_vm_pids(const struct collector *c, int *pids, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_found && n < max; i++)
		if (c->found[i].tgid)
			pids[n++] = (int)c->found[i].tgid;
	return n;
}

uint64_t collector_reclaimed(const struct collector *c)
{
	return c->vms_reclaimed;
}

int collector_poll(struct collector *c)
{
	uint64_t *known = NULL, *dead = NULL;
	size_t n_known = 0, n_dead = 0, n_recs = 0;
	struct ipiv_thread_rec *recs = NULL;
	struct vm_seen *seen = NULL;
	int err;

	c->polls++;
	err = discover(c);
	if (!err)
		err = read_threads(c, &recs, &n_recs);
	if (err)
		goto cleanup;
	err = vms_in_maps(c, recs, n_recs, &known, &n_known);
	if (err)
		goto cleanup;
	seen = calloc(n_known ? n_known : 1, sizeof(*seen));
	dead = calloc(n_known ? n_known : 1, sizeof(*dead));
	if (!seen || !dead) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* a VM is reclaimed only after missing reclaim_after discoveries in a row, so one
	 * created between the walk and the map read is not lost */
	for (size_t i = 0; i < n_known; i++) {
		struct vm_seen *old = seen_find(c, known[i]);

		seen[i].vm = known[i];
		/* found by discovery or only in the maps (it lived less than a poll): seen */
		if (!old)
			c->vms_discovered++;
		if (found_find(c, known[i]))
			continue;
		seen[i].missing = (old ? old->missing : 0) + 1;
		if (seen[i].missing >= c->opts.reclaim_after)
			dead[n_dead++] = known[i];
	}
	expire_retired(c, collector_now_ns());
	/* a VM whose final counts cannot be read now is reclaimed at a later poll */
	if (n_dead) {
		qsort(dead, n_dead, sizeof(*dead), u64_cmp);
		err = retire(c, dead, n_dead);
		if (!err) {
			reclaim(c, dead, n_dead);
			/* forgotten: a new VM at a dead one's address may take its key */
			size_t keep = 0;

			for (size_t i = 0; i < n_known; i++)
				if (!sorted_has(dead, n_dead, seen[i].vm))
					seen[keep++] = seen[i];
			n_known = keep;
		}
	}
	free(c->seen);
	c->seen = seen;
	c->n_seen = n_known;
	seen = NULL;
cleanup:
	free(recs);
	c->last_poll_err = err;
	free(known);
	free(dead);
	free(seen);
	return err;
}
