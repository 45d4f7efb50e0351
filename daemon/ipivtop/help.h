/* ipivtop's help screen: the keys and what each column means. Pure. */
#ifndef IPIV_TOP_HELP_H
#define IPIV_TOP_HELP_H

#include "canvas.h"

struct top_key_help {
	const char *keys;
	const char *what;
};

extern const struct top_key_help top_keys[];
extern const unsigned top_n_keys;

void top_help_draw(struct top_canvas *c);

#endif
