/* ipivtop's by-path pane ("b"): the host's IPIs summed over VMs by the path they took to
 * KVM, rate and total. Pure. */
#ifndef IPIV_TOP_PATHS_H
#define IPIV_TOP_PATHS_H

#include "canvas.h"
#include "model.h"

void top_paths_draw(struct top_canvas *c, const struct top_model *m);

#endif
