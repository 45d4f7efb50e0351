/* SPDX-License-Identifier: GPL-2.0 */
/* Map helpers every ipiv BPF header may use, in the manner of libbpf-tools' maps.bpf.h. */
#ifndef IPIV_MAPS_BPF_H
#define IPIV_MAPS_BPF_H

#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#ifndef EEXIST
#define EEXIST 17
#endif

/*
 * The value of key in map, inserted as *init if absent; an insert that loses a race to
 * another CPU finds the key on lookup. NULL if it cannot be inserted (*err < 0: the map is
 * full or cannot allocate) or was deleted meanwhile (*err 0).
 *
 * The update's result is kept in an int, not the long the helper returns: the map
 * operation behind it returns int, and when the helper is inlined on a 64-bit architecture
 * the compiler may not sign-extend it, so a long would hold 4294967279 for -EEXIST and only
 * a zero test would be reliable (libbpf-tools' bpf_map_lookup_or_try_init says the same).
 */
static __always_inline void *lookup_or_insert(void *map, const void *key, const void *init,
					      int *err)
{
	void *v = bpf_map_lookup_elem(map, key);

	*err = 0;
	if (v)
		return v;
	*err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (*err && *err != -EEXIST)
		return NULL;
	*err = 0;
	return bpf_map_lookup_elem(map, key);
}

#endif /* IPIV_MAPS_BPF_H */
