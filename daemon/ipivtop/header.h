/* ipivtop's host header: program and source, host CPU, kernel and IPI acceleration state,
 * probes, and the host's totals. Pure: what it shows is passed in. */
#ifndef IPIV_TOP_HEADER_H
#define IPIV_TOP_HEADER_H

#include <stdbool.h>

#include "canvas.h"
#include "model.h"
#include "source.h"

struct top_host {
	bool known;	    /* false: not this host's (--connect to a remote ipivd) */
	char cpu[96];	    /* "AMD EPYC 7B13" */
	char kernel[65];    /* uname release */
	char backend[16];   /* "kvm_intel", "kvm_amd", "kvm_pvm", "none", "unknown" */
	char mechanism[16]; /* "ipiv", "avic", "x2avic", "none" */
	char effective[8];  /* "yes", "no", "unknown": exit-free IPIs in effect */
	char why[160];
};

/* Reads the host's facts under root ("" for this host) through accel.h. */
void top_host_read(const char *root, struct top_host *h);

struct top_header {
	const char *source; /* top_source.what */
	const char *version;
	double delay_s;
	const struct top_host *host;
	const struct top_frame *frame; /* NULL before the first sample */
	const struct top_model *model;
	const char *message; /* a one-line status (error, prompt result) or NULL */
	bool message_is_error;
};

/* Draws the header lines (5) into the canvas. */
void top_header_draw(struct top_canvas *c, const struct top_header *h);

#endif
