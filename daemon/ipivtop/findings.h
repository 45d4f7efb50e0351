/* ipivtop's findings pane: a VM's diagnosis findings with severity, title, evidence and
 * remedy wrapped to the width, the host's findings, and the rules that could not be
 * evaluated with what they need. Pure. */
#ifndef IPIV_TOP_FINDINGS_H
#define IPIV_TOP_FINDINGS_H

#include "diag_report.h"
#include "canvas.h"

/* Writes text wrapped at the canvas width: the first line starts with head (in head_attr),
 * the next ones with indent spaces. */
void top_wrapped(struct top_canvas *c, enum top_attr head_attr, const char *head, int indent,
		 const char *text);

/* Attribute of a severity: critical WARN, warning CAUTION, info NORMAL. */
enum top_attr top_severity_attr(enum diag_severity s);

/* Draws the pane for the VM named vm in r. r NULL: nothing evaluated, note says why. */
void top_findings_draw(struct top_canvas *c, const struct diag_report *r, const char *vm,
		       const char *note);

#endif
