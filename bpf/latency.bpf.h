/* SPDX-License-Identifier: GPL-2.0 */
/* Where an IPI's time goes, as log-linear histograms (include/hist.h): the sender's ICR
 * write to each target's accept, the accept to the target running again (woken or
 * re-entered), the ICR write to the target's EOI, the sender's exit cost, and halt times.
 * The programs of ipiv.bpf.c call the lat_on_*() hooks; the maps are latency_maps.h's. */
#ifndef IPIV_LATENCY_BPF_H
#define IPIV_LATENCY_BPF_H

#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "count.bpf.h"
#include "hist.h"
#include "icr.h"
#include "ipiv.h"
#include "kvm_types.bpf.h"
#include "latency_maps.h"
#include "maps.bpf.h"

_Static_assert(IPIV_LAT_PATHS == IPIV_PATH_COUNT, "a dense series per path");
_Static_assert(IPIV_LAT_SERIES <= 64, "series_used has a bit per series");
_Static_assert(IPIV_LAT_FASTPATH_PATH == IPIV_PATH_X2APIC_MSR, "the fastpath's dense series");
_Static_assert(IPIV_LAT_SLOTS < IPIV_LAT_NO_SLOT, "a slot + 1 is never IPIV_LAT_NO_SLOT");
_Static_assert(!(IPIV_LAT_SLOT_VCPUS & (IPIV_LAT_SLOT_VCPUS - 1)), "a power of two, as a mask");
_Static_assert(sizeof(struct ipiv_lat_group) == 64, "a bucket group and its sum fill one line");
_Static_assert(sizeof(struct ipiv_lat_series) % 64 == 0, "a series is whole lines");
_Static_assert(IPIV_LAT_GROUPS *IPIV_LAT_GROUP >= HIST_BUCKETS, "every bucket has a group");
_Static_assert(sizeof(struct ipiv_target) == 128, "a target record is two whole lines");
_Static_assert(sizeof(struct ipiv_lat_targets) % 64 == 0, "a slot's targets are whole lines");

/* Set by the collector between open and load. */
const volatile bool lat_enabled = true;
const volatile bool lat_per_vcpu = false;
/* kvm_pi_wakeup is attached: kvm_entry ends a posted-interrupt wakeup's latency */
const volatile bool have_pi_wakeup = false;
/* Record send->accept, which costs a clock read per accept (~50 ns on the hosts of
 * docs/overhead.md); the collector asks for it when it exports or serves that histogram. */
const volatile bool lat_send_accept = true;

/* Where kvm_exit does not fire, a traced ICR write is the start of the deliveries that
 * follow it in the same thread until the jiffies counter has moved on by more than this
 * (1-2 jiffies: 1-2 ms at CONFIG_HZ=1000, 4-8 ms at 250, 10-20 ms at 100; they run in the
 * same call chain, microseconds apart; a device interrupt raised by the vCPU thread much
 * later must not be taken for an IPI, and one of another vector never is). Jiffies, not
 * the clock: reading jiffies is a load, a clock read is not. */
#define IPIV_SEND_WINDOW_JIFFIES 1

/* ---- maps ---- */

/* Histogram buckets of VMs without a dense slot, per-vCPU histograms, and every VM's binding
 * to its slot. One value per bucket for all CPUs, added to atomically: a per-CPU map would
 * take entries x CPUs x 16 bytes up front (1 GiB at 1024 CPUs). Allocated as buckets fill
 * (~90 bytes each, ~250 per busy VM), so the bound can be generous. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IPIV_MAX_LAT);
	__type(key, struct ipiv_lat_key);
	__type(value, struct ipiv_lat_value);
} lat SEC(".maps");

/* VM-wide histograms of VMs without a dense slot (latency_maps.h), allocated at a
 * histogram's first observation (~4.3 KiB), freed when its VM is reclaimed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IPIV_MAX_LAT_HSERIES);
	__type(key, struct ipiv_lat_series_key);
	__type(value, struct ipiv_lat_series);
} lat_hseries SEC(".maps");

/* Target records outside the dense slots (struct ipiv_target), allocated at a target's first
 * IPI (~200 bytes), freed when its VM is reclaimed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IPIV_MAX_TARGETS);
	__type(key, struct ipiv_target_key);
	__type(value, struct ipiv_target);
} targets SEC(".maps");

/* The dense slots (latency_maps.h): arrays, whose lookups the verifier turns into an index
 * computation, fixed at ~140 KiB per slot (9 MiB for 64). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IPIV_LAT_SLOTS);
	__type(key, u32);
	__type(value, struct ipiv_lat_slot);
} lat_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IPIV_LAT_SLOTS *IPIV_LAT_SERIES);
	__type(key, u32);
	__type(value, struct ipiv_lat_series);
} lat_series SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IPIV_LAT_SLOTS);
	__type(key, u32);
	__type(value, struct ipiv_lat_targets);
} lat_targets SEC(".maps");

/* Zeroes, the source of the updates that clear a freed slot and of a new hashed series: as
 * large as the largest value written (a slot's target records), too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ipiv_lat_targets);
} lat_zero SEC(".maps");

/* ---- dense slots ---- */

/* Whether slot (a slot + 1, as a thread keeps it) names a dense slot. */
static __always_inline bool dense(u32 slot)
{
	return slot - 1 < IPIV_LAT_SLOTS; /* 0 (not known) wraps around */
}

/*
 * VM vm's dense slot + 1, or IPIV_LAT_NO_SLOT: its binding if it has one, else the first
 * free slot, claimed now by compare-and-swap and bound. A VM keeps what it got for its life
 * (a VM that found every slot taken stays on the hash maps after one frees), so its target
 * records are never split between the two. Bound at the VM's first latency event, not at
 * its registration, so that VMs that never run (discovery registers every VM of the host
 * when ipivd starts) leave the slots to those that do; a thread asks once.
 */
static __noinline u32 lat_slot_bind(u64 vm)
{
	struct ipiv_lat_key key = {.vm = vm, .vcpu = IPIV_LAT_VM_WIDE, .kind = IPIV_LAT_BINDING};
	struct ipiv_lat_value bound = {.count = IPIV_LAT_NO_SLOT}, *known;
	struct ipiv_lat_slot *s;
	u32 claimed = IPIV_LAT_SLOTS;
	int err; /* not long: see lookup_or_insert */

	if (!lat_enabled || !vm)
		return IPIV_LAT_NO_SLOT;
	known = bpf_map_lookup_elem(&lat, &key);
	if (known)
		return known->count;
	for (u32 i = 0; i < IPIV_LAT_SLOTS; i++) {
		u32 idx = i;

		s = bpf_map_lookup_elem(&lat_slots, &idx);
		if (!s || s->vm || __sync_val_compare_and_swap(&s->vm, 0, vm))
			continue;
		s->claimed_ns = bpf_ktime_get_ns();
		claimed = i;
		bound.count = i + 1;
		break;
	}
	err = bpf_map_update_elem(&lat, &key, &bound, BPF_NOEXIST);
	if (!err)
		return bound.count;
	/* another CPU bound the VM first, or the map is full: the claimed slot goes back */
	s = bpf_map_lookup_elem(&lat_slots, &claimed);
	if (s) {
		s->claimed_ns = 0;
		asm volatile("" ::: "memory");
		s->vm = 0;
	}
	if (err != -EEXIST) {
		drop(IPIV_DROP_LAT_FULL);
		return IPIV_LAT_NO_SLOT;
	}
	known = bpf_map_lookup_elem(&lat, &key);
	return known ? known->count : IPIV_LAT_NO_SLOT;
}

/* The dense slot of t's VM (+ 1) or IPIV_LAT_NO_SLOT, learnt once per thread. */
static __always_inline u32 lat_slot_of(struct ipiv_thread *t)
{
	u32 slot = t->lat_slot;

	if (!slot) {
		slot = lat_slot_bind(t->vm);
		t->lat_slot = slot;
	}
	return slot;
}

/* Zeroes slot i's histograms, target records and counts, then frees it. */
static __noinline void lat_slot_clear(u32 i)
{
	u32 zero = 0, idx = i;
	struct ipiv_lat_slot *s;
	void *zeroes = bpf_map_lookup_elem(&lat_zero, &zero);

	if (!zeroes)
		return;
	for (u32 series = 0; series < IPIV_LAT_SERIES; series++) {
		u32 elem = i * IPIV_LAT_SERIES + series;

		bpf_map_update_elem(&lat_series, &elem, zeroes, BPF_ANY);
	}
	bpf_map_update_elem(&lat_targets, &idx, zeroes, BPF_ANY);
	s = bpf_map_lookup_elem(&lat_slots, &idx);
	if (!s)
		return;
	for (u32 r = 0; r < IPIV_UNM_COUNT; r++)
		s->unmatched[r] = 0;
	s->series_used = 0;
	s->claimed_ns = 0;
	asm volatile("" ::: "memory"); /* free only once it is clear */
	s->vm = 0;
}

/*
 * Frees the slots of VMs that lost their binding: the collector's reclaim deletes a dead VM's
 * latency keys, its binding among them, and then runs the thread-pruning iterator, whose end
 * calls this. A slot claimed within the grace time may not be bound yet, and is left alone.
 * The collector clears and frees the slots of the VMs it reclaims itself first (discovery.c's
 * free_dead_slots: a new VM may take a dead one's key at once); this catches what it missed.
 */
static __always_inline void lat_free_unbound_slots(void)
{
	u64 now = bpf_ktime_get_ns();

	for (u32 i = 0; i < IPIV_LAT_SLOTS; i++) {
		struct ipiv_lat_key key = {.vcpu = IPIV_LAT_VM_WIDE, .kind = IPIV_LAT_BINDING};
		struct ipiv_lat_value *bound;
		struct ipiv_lat_slot *s;
		u32 idx = i;
		u64 claimed;

		s = bpf_map_lookup_elem(&lat_slots, &idx);
		if (!s || !s->vm)
			continue;
		claimed = s->claimed_ns;
		if (!claimed || (s64)(now - claimed) < (s64)IPIV_LAT_CLAIM_GRACE)
			continue;
		key.vm = s->vm;
		bound = bpf_map_lookup_elem(&lat, &key);
		if (bound && bound->count == i + 1)
			continue;
		lat_slot_clear(i);
	}
}

/* ---- recording ---- */

/* Adds one observation (count, ns) to bucket key of the lat hash. Out of line, as the other
 * paths to the hashes: what the common case runs stays together. */
static __noinline void lat_add(struct ipiv_lat_key *key, u64 ns)
{
	struct ipiv_lat_value zero = {}, *v;
	int err;

	v = lookup_or_insert(&lat, key, &zero, &err);
	if (!v) {
		if (err)
			drop(IPIV_DROP_LAT_FULL);
		return;
	}
	__sync_fetch_and_add(&v->count, 1);
	if (ns)
		__sync_fetch_and_add(&v->sum_ns, ns);
}

/* VM vm's histogram `series` in the lat_hseries hash, made at its first observation (NULL
 * and counted when the map is full). */
static __noinline struct ipiv_lat_series *hashed_series(u64 vm, u32 series)
{
	struct ipiv_lat_series_key key = {.vm = vm, .series = series};
	struct ipiv_lat_series *h = bpf_map_lookup_elem(&lat_hseries, &key);
	u32 zero = 0;
	void *zeroes;
	int err; /* not long: see lookup_or_insert */

	if (h)
		return h;
	zeroes = bpf_map_lookup_elem(&lat_zero, &zero);
	if (!zeroes)
		return NULL;
	h = lookup_or_insert(&lat_hseries, &key, zeroes, &err);
	if (!h && err)
		drop(IPIV_DROP_LAT_FULL);
	return h;
}

/* One observation of ns in bucket (< HIST_BUCKETS) of series h: its group's line only.
 * True when it was the bucket's first. */
static __always_inline bool series_add(struct ipiv_lat_series *h, u32 bucket, u64 ns)
{
	u32 g = bucket / IPIV_LAT_GROUP, in_group = bucket % IPIV_LAT_GROUP;
	struct ipiv_lat_group *group;
	bool first;

	/* Bounded again for the verifier, which does not follow divisions: opaque to the
	 * compiler, which would fold the tests away (bucket < HIST_BUCKETS at the caller). */
	barrier_var(g);
	barrier_var(in_group);
	if (g >= IPIV_LAT_GROUPS || in_group >= IPIV_LAT_GROUP)
		return false;
	group = &h->group[g];
	first = !__sync_fetch_and_add(&group->buckets[in_group], 1);
	if (ns)
		__sync_fetch_and_add(&group->sum_ns, ns);
	return first;
}

/* One observation of ns in histogram (kind, sub) of VM vm, whose dense slot is slot:
 * VM-wide, in the slot's series when it has one, else in its lat_hseries element; per
 * vCPU, in the lat hash's buckets. */
static __always_inline void lat_record(u32 slot, u64 vm, u32 vcpu, u16 kind, u16 sub, u64 ns)
{
	u32 series = ipiv_lat_series_of(kind, sub), bucket = hist_bucket(ns);
	struct ipiv_lat_key key = {
		.vm = vm,
		.vcpu = lat_per_vcpu ? vcpu : IPIV_LAT_VM_WIDE,
		.kind = kind,
		.sub = sub,
		.bucket = bucket,
	};
	struct ipiv_lat_series *h;

	if (!lat_per_vcpu && series < IPIV_LAT_SERIES && bucket < HIST_BUCKETS) {
		if (!dense(slot)) {
			h = hashed_series(vm, series);
			if (h)
				series_add(h, bucket, ns);
			return;
		}
		u32 idx = (slot - 1) * IPIV_LAT_SERIES + series;

		h = bpf_map_lookup_elem(&lat_series, &idx);
		if (h) {
			/* a bucket's first observation marks the series for the collector */
			if (series_add(h, bucket, ns)) {
				u32 header = slot - 1;
				struct ipiv_lat_slot *s = bpf_map_lookup_elem(&lat_slots, &header);

				if (s)
					__sync_fetch_and_or(&s->series_used, 1ull << series);
			}
			return;
		}
	}
	lat_add(&key, ns);
}

static __always_inline void lat_unmatched(u32 slot, u64 vm, u32 vcpu, u16 reason)
{
	struct ipiv_lat_key key = {
		.vm = vm,
		.vcpu = lat_per_vcpu ? vcpu : IPIV_LAT_VM_WIDE,
		.kind = IPIV_LAT_UNMATCHED,
		.sub = reason,
	};

	if (dense(slot) && reason < IPIV_UNM_COUNT) {
		u32 idx = slot - 1;
		struct ipiv_lat_slot *s = bpf_map_lookup_elem(&lat_slots, &idx);

		if (s) {
			__sync_fetch_and_add(&s->unmatched[reason], 1);
			return;
		}
	}
	lat_add(&key, 0);
}

/* ---- hooks ---- */

/* A thread becomes a vCPU of t->vm: its first latency event learns that VM's slot. */
static __always_inline void lat_on_thread(struct ipiv_thread *t)
{
	t->lat_slot = 0;
}

/* kvm_apic_ipi (or a PV / AVIC send) in the sender's thread: what every target's accept
 * needs, taken once per send. */
static __always_inline void lat_on_send(struct ipiv_thread *t, u32 path, u32 icr_low)
{
	if (!lat_enabled)
		return;
	/* APICv is VM-wide (its inhibits are), so the sender's state is its targets': read at
	 * each send, as inhibits come and go (tests, with no vCPU pointer, set it), through the
	 * apic pointer the thread keeps, which saves a dependent read. Where APICv is off for
	 * good (apicv_off) it stays INACTIVE, what the read would find. */
	if (t->apic_ptr && !t->apicv_off)
		t->apicv = apicv_of_apic((struct kvm_lapic___ipiv *)t->apic_ptr);
	else if (!t->apic_ptr && t->vcpu_ptr)
		t->apicv = apicv_of((struct kvm_vcpu___ipiv *)t->vcpu_ptr);
	t->ipi_ts = bpf_ktime_get_ns();
	t->ipi_jiffies = (u32)bpf_jiffies64();
	t->ipi_path = path;
	t->ipi_vector = icr_low & ICR_VECTOR_MASK;
	t->exit_path = path;
	t->exit_sent = 1;
}

/* The record of target vCPU vcpu of VM vm in the targets hash, with create made at its first
 * use (NULL and counted when the map is full). */
static __noinline struct ipiv_target *hashed_target(u32 slot, u64 vm, u32 vcpu, bool create)
{
	struct ipiv_target_key key = {.vm = vm, .vcpu = vcpu};
	struct ipiv_target zero = {}, *tg;
	int err;

	if (!create)
		return bpf_map_lookup_elem(&targets, &key);
	tg = lookup_or_insert(&targets, &key, &zero, &err);
	if (!tg && err) {
		drop(IPIV_DROP_TARGETS_FULL); /* host-wide, as every full map: the alert's */
		lat_unmatched(slot, vm, vcpu, IPIV_UNM_PENDING_FULL);
	}
	return tg;
}

/* The record of target vCPU vcpu of VM vm: in its dense slot, else in the targets hash. */
static __always_inline struct ipiv_target *target_of(u32 slot, u64 vm, u32 vcpu, bool create)
{
	if (dense(slot) && vcpu < IPIV_LAT_SLOT_VCPUS) {
		u32 idx = slot - 1;
		struct ipiv_lat_targets *block = bpf_map_lookup_elem(&lat_targets, &idx);

		if (!block)
			return NULL;
		/* The verifier must see the pointer tested before the index is added and the
		 * index bounded in the register it is added from: the mask is a no-op after the
		 * test above, which the compiler would otherwise fold both ways. */
		barrier_var(block);
		barrier_var(vcpu);
		return &block->vcpu[vcpu & (IPIV_LAT_SLOT_VCPUS - 1)];
	}
	return hashed_target(slot, vm, vcpu, create);
}

/* A wait that began with APICv/AVIC active: the interrupt was posted, and a target running
 * in the guest took it without any exit. Kept in the bit of the start time (1 ns). */
#define WAIT_POSTED 1ull

/* Older than the stale limit. Signed: a time another CPU has just taken can be after now. */
static __always_inline bool stale(u64 now, u64 since)
{
	return (s64)(now - since) > (s64)IPIV_LAT_STALE_NS;
}

/* Starts the wait *since at start unless one is running; a wait older than the stale limit
 * was never seen to end and starts over. */
static __always_inline void wait_starts(u64 *since, u64 start, u32 slot, u64 vm, u32 vcpu)
{
	u64 old = *since;

	if (old && stale(start, old)) {
		if (__sync_val_compare_and_swap(since, old, start) == old) {
			lat_unmatched(slot, vm, vcpu, IPIV_UNM_WAKE_UNSEEN);
			return;
		}
		old = *since; /* the target ran (0) or another sender started over */
	}
	if (!old)
		__sync_val_compare_and_swap(since, 0, start); /* lost: another sender started it */
}

/* Fills the slot this CPU claimed (IPIV_IRQ_FILLING) and publishes it. */
static __always_inline void irq_fill(struct ipiv_target_irq *irq, u32 vector, u64 send_ts, u32 path)
{
	irq->send_ts = send_ts;
	irq->path = path;
	asm volatile("" ::: "memory"); /* published after it is whole */
	irq->state = IPIV_IRQ_VALID | vector;
}

/*
 * Keeps the delivery of vector to the target, sent at send_ts by path, until its EOI. A
 * vector already waiting was coalesced in the IRR: the newer send takes its slot over.
 * Otherwise it claims a free slot, or the first whose delivery went stale without an EOI.
 * Two senders of one vector to one target in the same instant can each claim a slot; the
 * spare one is matched by a later EOI of that vector or goes stale, and is counted either
 * way.
 */
static __always_inline void irq_pending(struct ipiv_target *tg, u32 slot, u64 vm, u32 vcpu,
					u32 vector, u64 send_ts, u32 path, u64 now)
{
	u32 want = IPIV_IRQ_VALID | vector;

#pragma unroll
	for (int i = 0; i < IPIV_TARGET_IRQS; i++) {
		struct ipiv_target_irq *irq = &tg->irq[i];
		u32 state = irq->state;

		if (!state || (state & IPIV_IRQ_VECTOR) != vector)
			continue;
		if (state != want) { /* another sender is filling it at this instant */
			lat_unmatched(slot, vm, vcpu, IPIV_UNM_OVERWRITTEN);
			return;
		}
		if (__sync_val_compare_and_swap(&irq->state, want, IPIV_IRQ_FILLING | vector) ==
		    want) {
			lat_unmatched(slot, vm, vcpu, IPIV_UNM_OVERWRITTEN);
			irq_fill(irq, vector, send_ts, path);
			return;
		}
		break; /* its EOI took it meanwhile: this one is a new delivery */
	}
#pragma unroll
	for (int i = 0; i < IPIV_TARGET_IRQS; i++) {
		struct ipiv_target_irq *irq = &tg->irq[i];
		u32 state = irq->state;

		if (state && !((state & IPIV_IRQ_VALID) && stale(now, irq->send_ts)))
			continue;
		if (__sync_val_compare_and_swap(&irq->state, state, IPIV_IRQ_FILLING | vector) !=
		    state)
			continue;
		if (state) /* its EOI never came */
			lat_unmatched(slot, vm, vcpu, IPIV_UNM_STALE);
		irq_fill(irq, vector, send_ts, path);
		return;
	}
	lat_unmatched(slot, vm, vcpu, IPIV_UNM_SLOTS_FULL);
}

/* kvm_apic_accept_irq for target vCPU `target` of VM vm, in the thread t (NULL: not a
 * vCPU thread). Only deliveries that follow a traced send are IPIs to time. The target's
 * wait and its pending EOI start at the send's time, which the accept follows in the same
 * exit: a clock read is most of what an accept would cost on some hosts. The accept reads
 * the clock only for send->accept, when recorded, and for a posted delivery, whose wait
 * starts at the accept: it ends as delivered in the guest when the target exited after
 * that (lat_wait_ends), and a target that exited between the send and the accept was not
 * in the guest then. */
static __always_inline void lat_on_accept(struct ipiv_thread *t, u64 vm, u32 target, u32 dm,
					  u32 vector)
{
	struct ipiv_target *tg;
	u32 slot;
	u64 now, accepted;
	bool posted;

	if (!lat_enabled || !t || !t->ipi_ts)
		return;
	/* Inside a traced exit the send's deliveries are exactly those before the next
	 * kvm_entry (which clears ipi_ts), however long a loaded host takes between the
	 * targets of one multicast; without exit tracing only the window bounds them. */
	if (!t->in_exit && (u32)bpf_jiffies64() - t->ipi_jiffies > IPIV_SEND_WINDOW_JIFFIES) {
		t->ipi_ts = 0;
		return;
	}
	/* another vector (a timer KVM injects before the next entry) is not this send's */
	if ((dm == ICR_DM_FIXED || dm == ICR_DM_LOWEST_PRIO) &&
	    (vector & IPIV_IRQ_VECTOR) != t->ipi_vector)
		return;
	slot = lat_slot_of(t);
	posted = t->apicv == IPIV_APICV_ACTIVE;
	accepted = lat_send_accept || posted ? bpf_ktime_get_ns() : 0;
	if (lat_send_accept)
		lat_record(slot, vm, t->vcpu_id, IPIV_LAT_SEND_ACCEPT, t->ipi_path,
			   accepted - t->ipi_ts);
	tg = target_of(slot, vm, target, true);
	if (!tg)
		return;
	now = t->ipi_ts;
	/* the first interrupt a target has not run since is the one that wakes it */
	wait_starts(&tg->wake_since, posted ? accepted | WAIT_POSTED : now & ~WAIT_POSTED, slot, vm,
		    target);
	/* only fixed and lowest-priority interrupts end with an EOI */
	if (dm != ICR_DM_FIXED && dm != ICR_DM_LOWEST_PRIO) {
		lat_unmatched(slot, vm, target, IPIV_UNM_NMI);
		return;
	}
	/* with APICv/AVIC the EOI of an edge-triggered interrupt is virtualized: no kvm_eoi */
	if (t->apicv == IPIV_APICV_ACTIVE) {
		lat_unmatched(slot, vm, target, IPIV_UNM_EOI_VIRTUALIZED);
		return;
	}
	irq_pending(tg, slot, vm, target, vector & IPIV_IRQ_VECTOR, t->ipi_ts, t->ipi_path, now);
}

/* kvm_eoi of vector on vCPU vcpu of VM vm, in the target's thread t (NULL: not known). */
static __always_inline void lat_on_eoi(struct ipiv_thread *t, u64 vm, u32 vcpu, u32 vector)
{
	struct ipiv_target *tg;
	u32 want = IPIV_IRQ_VALID | (vector & IPIV_IRQ_VECTOR), slot;

	if (!lat_enabled)
		return;
	slot = t ? lat_slot_of(t) : lat_slot_bind(vm);
	tg = target_of(slot, vm, vcpu, false);
	if (tg) {
#pragma unroll
		for (int i = 0; i < IPIV_TARGET_IRQS; i++) {
			struct ipiv_target_irq *irq = &tg->irq[i];
			u64 send_ts, now;
			u32 path;

			if (irq->state != want)
				continue;
			send_ts = irq->send_ts;
			path = irq->path;
			if (__sync_val_compare_and_swap(&irq->state, want, 0) != want)
				continue; /* a concurrent EOI of the same vector took it */
			now = bpf_ktime_get_ns();
			if (stale(now, send_ts))
				lat_unmatched(slot, vm, vcpu, IPIV_UNM_STALE);
			else /* per vCPU: the target, whose interrupts took that long */
				lat_record(slot, vm, vcpu, IPIV_LAT_SEND_EOI, path, now - send_ts);
			return;
		}
	}
	lat_unmatched(slot, vm, vcpu, IPIV_UNM_EOI_UNSENT);
}

/*
 * The target runs again: the wait in *since (since an accept, or since a posted-interrupt
 * wakeup) ends, recorded as accept->running case how. A posted interrupt the target took
 * while in the guest is no wait for its next entry or wakeup: it exited after the accept
 * (last_exit), so it was in the guest then, and the delivery itself has no host-side time.
 */
static __always_inline void lat_wait_ends(u64 *since, u32 slot, u64 vm, u32 vcpu, u16 how,
					  u64 last_exit)
{
	u64 start, now;

	if (!*since)
		return; /* the common case, without a locked instruction */
	start = __sync_lock_test_and_set(since, 0);
	if (!start)
		return;
	now = bpf_ktime_get_ns();
	if ((start & WAIT_POSTED) && last_exit > start)
		lat_unmatched(slot, vm, vcpu, IPIV_UNM_IN_GUEST);
	else if (stale(now, start))
		lat_unmatched(slot, vm, vcpu, IPIV_UNM_WAKE_UNSEEN);
	else
		lat_record(slot, vm, vcpu, IPIV_LAT_ACCEPT_RUN, how, now - start);
}

/* kvm_vcpu_wakeup in the vCPU's thread: the halt time, and the wake of a pending IPI. */
static __always_inline void lat_on_wakeup(struct ipiv_thread *t, u64 ns, bool waited)
{
	struct ipiv_target *tg;
	u32 slot;

	if (!lat_enabled)
		return;
	slot = lat_slot_of(t);
	lat_record(slot, t->vm, t->vcpu_id, IPIV_LAT_HALT, waited, ns);
	tg = target_of(slot, t->vm, t->vcpu_id, false);
	if (tg)
		lat_wait_ends(&tg->wake_since, slot, t->vm, t->vcpu_id, IPIV_LAT_CASE_HALTED,
			      t->exit_ts);
}

static __always_inline void lat_on_exit(struct ipiv_thread *t)
{
	if (!lat_enabled)
		return;
	t->exit_ts = bpf_ktime_get_ns();
	t->exit_sent = 0;
	t->exit_fast = 0;
}

/* fexit on KVM's WRMSR exit fastpath, which runs after kvm_exit and before the next
 * kvm_entry: it sent this exit's ICR write. */
static __always_inline void lat_on_fastpath(struct ipiv_thread *t)
{
	t->exit_fast = 1;
}

/* kvm_entry: the end of the sender's exit, and a running target's delivery. An exit whose IPI
 * the fastpath sent is recorded apart (IPIV_LAT_EXIT_FASTPATH), once: the collector adds it
 * back into the path's IPIV_LAT_EXIT. */
static __always_inline void lat_on_entry(struct ipiv_thread *t)
{
	struct ipiv_target *tg;
	u32 slot;

	if (!lat_enabled)
		return;
	slot = lat_slot_of(t);
	if (t->exit_sent && t->exit_ts)
		lat_record(slot, t->vm, t->vcpu_id,
			   t->exit_fast ? IPIV_LAT_EXIT_FASTPATH : IPIV_LAT_EXIT, t->exit_path,
			   bpf_ktime_get_ns() - t->exit_ts);
	t->exit_sent = 0;
	t->exit_fast = 0;
	t->ipi_ts = 0;
	tg = target_of(slot, t->vm, t->vcpu_id, false);
	if (!tg)
		return;
	lat_wait_ends(&tg->wake_since, slot, t->vm, t->vcpu_id, IPIV_LAT_CASE_RUNNING, t->exit_ts);
	if (have_pi_wakeup)
		lat_wait_ends(&tg->pi_since, slot, t->vm, t->vcpu_id, IPIV_LAT_CASE_POSTED, 0);
}

/* kvm_pi_wakeup: a posted interrupt woke vCPU vcpu; its next kvm_entry ends the wait. A
 * second wakeup before the vCPU ran keeps the first, which it waited since. Hard IRQ
 * context, not the vCPU's thread: the slot comes from the VM's binding. */
static __always_inline void lat_on_pi_wakeup(u64 vm, u32 vcpu)
{
	struct ipiv_target *tg;
	u32 slot;

	if (!lat_enabled)
		return;
	slot = lat_slot_bind(vm);
	tg = target_of(slot, vm, vcpu, true);
	if (tg)
		wait_starts(&tg->pi_since, bpf_ktime_get_ns() & ~WAIT_POSTED, slot, vm, vcpu);
}

#endif /* IPIV_LATENCY_BPF_H */
