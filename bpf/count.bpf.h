/* SPDX-License-Identifier: GPL-2.0 */
/* Counting: the per-CPU counter and matrix maps, the drop counters, and a vCPU thread's
 * counter cache in its task storage (struct ipiv_thread), which takes the first
 * IPIV_THREAD_CACHE keys a thread counts with no map lookup and moves to the maps when the
 * thread exits. */
#ifndef IPIV_COUNT_BPF_H
#define IPIV_COUNT_BPF_H

#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "ipiv.h"
#include "maps.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, IPIV_MAX_COUNTERS);
	__type(key, struct ipiv_counter_key);
	__type(value, u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, IPIV_MAX_MATRIX);
	__type(key, struct ipiv_matrix_key);
	__type(value, u64);
} matrix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IPIV_DROP_COUNT);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

/* Thread exits move cached counts to the maps between these two increments; a collector
 * read that saw them change (or differ) retries, so a moving count is never seen twice
 * or not at all. */
__u64 flush_begin = 0;
__u64 flush_end = 0;

static __always_inline void drop(u32 reason)
{
	u64 *count = bpf_map_lookup_elem(&drops, &reason);

	if (count)
		*count += 1;
}

/* Per-CPU add. */
static __always_inline void percpu_add(void *map, void *key, u64 n, u32 full_reason)
{
	u64 zero = 0, *count;
	int err;

	count = lookup_or_insert(map, key, &zero, &err);
	if (count)
		*count += n;
	else if (err)
		drop(full_reason);
}

/*
 * Adds n to key in the thread's cache: an entry holding key, else a free one, claimed by
 * compare-and-swap so that a program nested in a hard IRQ of this thread (whose current
 * task is this one) cannot take it too; a duplicate key in two entries is harmless, both
 * are summed. False when t is not a vCPU thread, its cache is being flushed, or it is full.
 */
static __always_inline bool cache_add(struct ipiv_thread *t, u64 vm, u32 vcpu, u16 kind, u16 sub,
				      u32 sub2, u64 n)
{
	if (!t || t->exited)
		return false;
#pragma unroll
	for (int i = 0; i < IPIV_THREAD_CACHE; i++) {
		struct ipiv_cache_entry *e = &t->cache[i];
		u32 state = e->state;

		if (state == IPIV_CACHE_VALID && e->key.kind == kind && e->key.vm == vm &&
		    e->key.vcpu == vcpu && e->key.sub == sub && e->key.sub2 == sub2) {
			__sync_fetch_and_add(&e->n, n);
			return true;
		}
		if (state == IPIV_CACHE_FREE &&
		    __sync_val_compare_and_swap(&e->state, IPIV_CACHE_FREE, IPIV_CACHE_FILLING) ==
			    IPIV_CACHE_FREE) {
			e->key.vm = vm;
			e->key.vcpu = vcpu;
			e->key.kind = kind;
			e->key.sub = sub;
			e->key.sub2 = sub2;
			e->n = n;
			asm volatile("" ::: "memory"); /* published after it is whole */
			e->state = IPIV_CACHE_VALID;
			return true;
		}
	}
	return false;
}

static __always_inline void count_in_map(u64 vm, u32 vcpu, u16 kind, u16 sub, u32 sub2, u64 n)
{
	struct ipiv_counter_key key = {
		.vm = vm,
		.vcpu = vcpu,
		.kind = kind,
		.sub = sub,
		.sub2 = sub2,
		.pad = 0,
	};

	percpu_add(&counters, &key, n, IPIV_DROP_COUNTERS_FULL);
}

/* Counts into the thread t's cache if it can (t may be NULL), else into the map. */
static __always_inline void count(struct ipiv_thread *t, u64 vm, u32 vcpu, u16 kind, u16 sub,
				  u32 sub2, u64 n)
{
	if (!cache_add(t, vm, vcpu, kind, sub, sub2, n))
		count_in_map(vm, vcpu, kind, sub, sub2, n);
}

static __always_inline void matrix_in_map(u64 vm, u32 src, u32 dst, u64 n)
{
	struct ipiv_matrix_key key = {.vm = vm, .src_vcpu = src, .dst_vcpu = dst};

	percpu_add(&matrix, &key, n, IPIV_DROP_MATRIX_FULL);
}

static __always_inline void count_matrix(struct ipiv_thread *t, u64 vm, u32 src, u32 dst)
{
	if (!cache_add(t, vm, dst, IPIV_CNT_MATRIX_CELL, 0, src, 1))
		matrix_in_map(vm, src, dst, 1);
}

/*
 * Moves a thread's cached counts to the maps (thread exit, or a thread taking another
 * VM's vCPU). The collector retries a read that overlaps this (flush_begin/flush_end).
 */
static __noinline void flush_cache(struct ipiv_thread *t)
{
	if (!t)
		return;
	__sync_fetch_and_add(&flush_begin, 1);
	for (int i = 0; i < IPIV_THREAD_CACHE; i++) {
		struct ipiv_cache_entry *e = &t->cache[i];
		u64 n;

		if (e->state != IPIV_CACHE_VALID)
			continue;
		n = __sync_lock_test_and_set(&e->n, 0);
		if (e->key.kind == IPIV_CNT_MATRIX_CELL)
			matrix_in_map(e->key.vm, e->key.sub2, e->key.vcpu, n);
		else
			count_in_map(e->key.vm, e->key.vcpu, e->key.kind, e->key.sub, e->key.sub2,
				     n);
		e->state = IPIV_CACHE_FREE;
	}
	__sync_fetch_and_add(&flush_end, 1);
}

#endif /* IPIV_COUNT_BPF_H */
