/* SPDX-License-Identifier: GPL-2.0 */
/* Where an IPI's time goes, as log-linear histograms (include/hist.h): the sender's ICR
 * write to each target's accept, the accept to the target running again (woken or
 * re-entered), the ICR write to the target's EOI, the sender's exit cost, and halt times.
 * Included by ipiv.bpf.c, which calls the lat_on_*() hooks from its tracepoint programs. */
#ifndef IPIV_LATENCY_BPF_H
#define IPIV_LATENCY_BPF_H

#include "hist.h"

/* Set by the collector between open and load. */
const volatile bool lat_enabled = true;
const volatile bool lat_per_vcpu = false;

/* A traced ICR write is the start of the deliveries that follow it in the same thread
 * within this long (they run in the same call chain; a device interrupt raised by the
 * vCPU thread much later must not be taken for an IPI). */
#define IPIV_SEND_WINDOW_NS 1000000ull

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, IPIV_MAX_LAT);
	__type(key, struct ipiv_lat_key);
	__type(value, struct ipiv_lat_value);
} lat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPIV_MAX_PENDING);
	__type(key, struct ipiv_pending_key);
	__type(value, struct ipiv_pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPIV_MAX_PENDING);
	__type(key, struct ipiv_wake_key);
	__type(value, u64); /* accept time of the first undelivered interrupt */
} wake_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPIV_MAX_PENDING);
	__type(key, struct ipiv_wake_key);
	__type(value, u64); /* time of the posted-interrupt wakeup (kvm_pi_wakeup) */
} pi_pending SEC(".maps");

/* Adds one observation (count, ns) to bucket key of the lat map. */
static __always_inline void lat_add(struct ipiv_lat_key *key, u64 ns)
{
	struct ipiv_lat_value *v = bpf_map_lookup_elem(&lat, key), one = {.count = 1, .sum_ns = ns};
	long err;

	if (!v) {
		err = bpf_map_update_elem(&lat, key, &one, BPF_NOEXIST);
		if (err != -EEXIST) {
			if (err)
				drop(IPIV_DROP_LAT_FULL);
			return;
		}
		v = bpf_map_lookup_elem(&lat, key); /* another CPU inserted it first */
		if (!v)
			return;
	}
	v->count += 1;
	v->sum_ns += ns;
}

static __always_inline void lat_record(u64 vm, u32 vcpu, u16 kind, u16 sub, u64 ns)
{
	struct ipiv_lat_key key = {
	    .vm = vm,
	    .vcpu = lat_per_vcpu ? vcpu : IPIV_LAT_VM_WIDE,
	    .kind = kind,
	    .sub = sub,
	    .bucket = hist_bucket(ns),
	};

	lat_add(&key, ns);
}

static __always_inline void lat_unmatched(u64 vm, u32 vcpu, u16 reason)
{
	struct ipiv_lat_key key = {
	    .vm = vm,
	    .vcpu = lat_per_vcpu ? vcpu : IPIV_LAT_VM_WIDE,
	    .kind = IPIV_LAT_UNMATCHED,
	    .sub = reason,
	};

	lat_add(&key, 0);
}

/* kvm_apic_ipi (or a PV / AVIC send) in the sender's thread. */
static __always_inline void lat_on_send(struct ipiv_thread *t, u32 path, u32 icr_low)
{
	if (!lat_enabled)
		return;
	t->ipi_ts = bpf_ktime_get_ns();
	t->ipi_path = path;
	t->ipi_vector = icr_low & ICR_VECTOR_MASK;
	t->exit_path = path;
	t->exit_sent = 1;
}

/* kvm_apic_accept_irq for target vCPU `target` of VM vm, in the thread t (NULL: not a
 * vCPU thread). Only deliveries that follow a traced send are IPIs to time. */
static __always_inline void lat_on_accept(struct ipiv_thread *t, u64 vm, u32 target, u32 dm,
					  u32 vector)
{
	struct ipiv_pending_key pkey = {.vm = vm, .vcpu = target, .vector = vector};
	struct ipiv_wake_key wkey = {.vm = vm, .vcpu = target};
	struct ipiv_pending p = {};
	u64 now, *waiting;

	if (!lat_enabled || !t || !t->ipi_ts)
		return;
	now = bpf_ktime_get_ns();
	if (now - t->ipi_ts > IPIV_SEND_WINDOW_NS) {
		t->ipi_ts = 0;
		return;
	}
	lat_record(vm, t->vcpu_id, IPIV_LAT_SEND_ACCEPT, t->ipi_path, now - t->ipi_ts);

	/* the first interrupt a target has not run since is the one that wakes it */
	waiting = bpf_map_lookup_elem(&wake_pending, &wkey);
	if (waiting && now - *waiting > IPIV_LAT_STALE_NS) {
		lat_unmatched(vm, target, IPIV_UNM_WAKE_UNSEEN);
		*waiting = now;
	} else if (!waiting && bpf_map_update_elem(&wake_pending, &wkey, &now, BPF_NOEXIST) == -E2BIG) {
		lat_unmatched(vm, target, IPIV_UNM_PENDING_FULL);
	}

	/* only fixed and lowest-priority interrupts end with an EOI */
	if (dm != ICR_DM_FIXED && dm != ICR_DM_LOWEST_PRIO) {
		lat_unmatched(vm, target, IPIV_UNM_NMI);
		return;
	}
	if (bpf_map_lookup_elem(&pending, &pkey))
		lat_unmatched(vm, target, IPIV_UNM_OVERWRITTEN); /* coalesced in the IRR */
	p.send_ts = t->ipi_ts;
	p.path = t->ipi_path;
	if (bpf_map_update_elem(&pending, &pkey, &p, BPF_ANY))
		lat_unmatched(vm, target, IPIV_UNM_PENDING_FULL);
}

/* kvm_eoi of vector on vCPU vcpu of VM vm, in the target's thread. */
static __always_inline void lat_on_eoi(u64 vm, u32 vcpu, u32 vector)
{
	struct ipiv_pending_key pkey = {.vm = vm, .vcpu = vcpu, .vector = vector};
	struct ipiv_pending *p;
	u64 now;

	if (!lat_enabled)
		return;
	p = bpf_map_lookup_elem(&pending, &pkey);
	if (!p) {
		lat_unmatched(vm, vcpu, IPIV_UNM_EOI_UNSENT);
		return;
	}
	now = bpf_ktime_get_ns();
	if (now - p->send_ts > IPIV_LAT_STALE_NS)
		lat_unmatched(vm, vcpu, IPIV_UNM_STALE);
	else	/* per vCPU: the target, whose interrupts took that long */
		lat_record(vm, vcpu, IPIV_LAT_SEND_EOI, p->path, now - p->send_ts);
	bpf_map_delete_elem(&pending, &pkey);
}

/* The target runs again: the wait it had in waits (wake_pending: since an accept;
 * pi_pending: since a posted-interrupt wakeup) ends, recorded as accept->running case how. */
static __always_inline void lat_wait_ends(void *waits, u64 vm, u32 vcpu, u16 how)
{
	struct ipiv_wake_key wkey = {.vm = vm, .vcpu = vcpu};
	u64 *since = bpf_map_lookup_elem(waits, &wkey);
	u64 now;

	if (!since)
		return;
	now = bpf_ktime_get_ns();
	if (now - *since > IPIV_LAT_STALE_NS)
		lat_unmatched(vm, vcpu, IPIV_UNM_WAKE_UNSEEN);
	else
		lat_record(vm, vcpu, IPIV_LAT_ACCEPT_RUN, how, now - *since);
	bpf_map_delete_elem(waits, &wkey);
}

/* The target runs again: woken from halt (halted) or entering the guest (running). */
static __always_inline void lat_target_runs(u64 vm, u32 vcpu, u16 how)
{
	lat_wait_ends(&wake_pending, vm, vcpu, how);
}

/* kvm_vcpu_wakeup in the vCPU's thread: the halt time, and the wake of a pending IPI. */
static __always_inline void lat_on_wakeup(struct ipiv_thread *t, u64 ns, bool waited)
{
	if (!lat_enabled)
		return;
	lat_record(t->vm, t->vcpu_id, IPIV_LAT_HALT, waited, ns);
	lat_target_runs(t->vm, t->vcpu_id, IPIV_LAT_CASE_HALTED);
}

static __always_inline void lat_on_exit(struct ipiv_thread *t)
{
	if (!lat_enabled)
		return;
	t->exit_ts = bpf_ktime_get_ns();
	t->exit_sent = 0;
}

/* kvm_entry: the end of the sender's exit, and a running target's delivery. */
static __always_inline void lat_on_entry(struct ipiv_thread *t)
{
	if (!lat_enabled)
		return;
	if (t->exit_sent && t->exit_ts)
		lat_record(t->vm, t->vcpu_id, IPIV_LAT_EXIT, t->exit_path,
			   bpf_ktime_get_ns() - t->exit_ts);
	t->exit_sent = 0;
	t->ipi_ts = 0;
	lat_target_runs(t->vm, t->vcpu_id, IPIV_LAT_CASE_RUNNING);
	if (have_pi_wakeup)
		lat_wait_ends(&pi_pending, t->vm, t->vcpu_id, IPIV_LAT_CASE_POSTED);
}

/* kvm_pi_wakeup: a posted interrupt woke vCPU vcpu; its next kvm_entry ends the wait. */
static __always_inline void lat_on_pi_wakeup(u64 vm, u32 vcpu)
{
	struct ipiv_wake_key wkey = {.vm = vm, .vcpu = vcpu};
	u64 now;

	if (!lat_enabled)
		return;
	now = bpf_ktime_get_ns();
	/* a second wakeup before the vCPU ran keeps the first, which it waited since */
	if (bpf_map_update_elem(&pi_pending, &wkey, &now, BPF_NOEXIST) == -E2BIG)
		lat_unmatched(vm, vcpu, IPIV_UNM_PENDING_FULL);
}

#endif /* IPIV_LATENCY_BPF_H */
