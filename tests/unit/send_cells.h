/* SPDX-License-Identifier: GPL-2.0 */
/* Send cells for hand-made VM rows that tests copy by value (prev = cur, then cur moves on):
 * each change copies the row's cells into a fresh slice of one static pool, so a copy keeps
 * the cells it had and nothing needs freeing. Sorted by (path, class), as vm_sent() wants. */
#ifndef IPIV_TEST_SEND_CELLS_H
#define IPIV_TEST_SEND_CELLS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "icr.h"
#include "snapshot.h"

#define TEST_SEND_POOL 4096

static struct ipiv_send_cell test_send_pool[TEST_SEND_POOL];
static size_t test_send_pool_used;

/* vm's (path, class) cell, added with count 0 if missing; valid until the next call on vm. */
static inline struct ipiv_send_cell *test_send_cell(struct ipiv_vm_stats *vm, uint32_t path,
						    uint32_t icr_class)
{
	const struct ipiv_send_cell key = {.path = path, .class = icr_class};
	size_t n = vm->n_send_cells, at = 0;
	struct ipiv_send_cell *cells = &test_send_pool[test_send_pool_used];
	bool found;

	while (at < n && ipiv_send_cell_cmp(&vm->send_cells[at], &key) < 0)
		at++;
	found = at < n && ipiv_send_cell_cmp(&vm->send_cells[at], &key) == 0;
	if (test_send_pool_used + n + 1 > TEST_SEND_POOL)
		abort(); /* grow TEST_SEND_POOL */
	if (n)
		memcpy(cells, vm->send_cells, n * sizeof(*cells));
	if (!found) {
		memmove(&cells[at + 1], &cells[at], (n - at) * sizeof(*cells));
		cells[at] = key;
		n++;
	}
	test_send_pool_used += n;
	vm->send_cells = cells;
	vm->n_send_cells = n;
	return &cells[at];
}

/* Appends the send cell (path, class, count) to vm, whose cells are the fixture's array
 * cells (in (path, class) order: the caller's job), and adds count to its send totals. */
static inline void test_add_send(struct ipiv_vm_stats *vm, struct ipiv_send_cell *cells,
				 uint32_t path, uint32_t icr_class, uint64_t count)
{
	cells[vm->n_send_cells++] = (struct ipiv_send_cell){path, icr_class, count};
	vm->counts.sent_by_path[path] += count;
	vm->counts.sent += count;
	if (icr_class_accel_eligible(icr_class))
		vm->counts.sent_accel_eligible += count;
}

#endif /* IPIV_TEST_SEND_CELLS_H */
