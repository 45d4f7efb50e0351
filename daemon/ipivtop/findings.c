/* ipivtop's findings pane: findings with evidence and remedy, wrapped; what was not evaluated. */
#include <stdio.h>
#include <string.h>

#include "findings.h"
#include "format.h"

void top_wrapped(struct top_canvas *c, enum top_attr head_attr, const char *head, int indent,
		 const char *text)
{
	int first_width = c->width - top_display_width(head), width = c->width - indent;
	char line[1024];
	bool first = true;

	top_canvas_line(c);
	top_canvas_put(c, head_attr, head);
	/* Lines too narrow to hold words are still written, a few characters each. */
	if (first_width < 8)
		first_width = 8;
	if (width < 8)
		width = 8;
	while (top_wrap_line(&text, first ? first_width : width, line, sizeof(line))) {
		if (!first) {
			top_canvas_line(c);
			top_canvas_printf(c, TOP_A_NORMAL, "%*s", indent, "");
		}
		top_canvas_put(c, TOP_A_NORMAL, line);
		first = false;
	}
}

enum top_attr top_severity_attr(enum diag_severity s)
{
	return s == DIAG_CRITICAL ? TOP_A_WARN : s == DIAG_WARNING ? TOP_A_CAUTION : TOP_A_NORMAL;
}

static void finding(struct top_canvas *c, const struct diag_finding *fd, uint64_t now_ns)
{
	char head[96], evidence[DIAG_MAX_EVIDENCE * 130];
	size_t len = 0;

	snprintf(head, sizeof(head), "[%s] %s: ", diag_severity_name(fd->severity),
		 diag_rule_name(fd->rule));
	top_wrapped(c, top_severity_attr(fd->severity), head, 4, fd->title);
	if (fd->since_ns && now_ns > fd->since_ns) {
		top_canvas_line(c);
		top_canvas_printf(c, TOP_A_DIM, "    for %.0f s", (now_ns - fd->since_ns) / 1e9);
	}
	evidence[0] = '\0';
	for (size_t i = 0; i < fd->n_evidence && len < sizeof(evidence); i++)
		len += snprintf(evidence + len, sizeof(evidence) - len, "%s%s=%s", i ? " " : "",
				fd->evidence[i].name, fd->evidence[i].text);
	top_wrapped(c, TOP_A_HEADER, "    evidence: ", 6, evidence);
	top_wrapped(c, TOP_A_HEADER, "    remedy: ", 6, fd->remedy);
}

static void skipped(struct top_canvas *c, const struct diag_result *res)
{
	for (size_t i = 0; i < res->n_skipped; i++) {
		char head[96];

		snprintf(head, sizeof(head),
			 "not evaluated: %s: ", diag_rule_name(res->skipped[i].rule));
		top_wrapped(c, TOP_A_DIM, head, 4, res->skipped[i].needs);
	}
}

void top_findings_draw(struct top_canvas *c, const struct diag_report *r, const char *vm,
		       const char *note)
{
	const struct diag_vm_report *vr = NULL;
	char head[160];

	for (size_t i = 0; r && i < r->n_vms; i++)
		if (!strcmp(r->vms[i].name, vm))
			vr = &r->vms[i];
	if (vr && vr->window_seconds > 0)
		snprintf(head, sizeof(head), "Findings (window %.1f s)", vr->window_seconds);
	else
		snprintf(head, sizeof(head), "Findings");
	top_canvas_line(c);
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_TITLE, head);
	top_canvas_fill(c, TOP_A_TITLE);
	if (!vr) {
		top_canvas_line(c);
		top_canvas_printf(c, TOP_A_DIM, "not evaluated yet%s%s", note && *note ? ": " : "",
				  note ? note : "");
		return;
	}
	for (size_t i = 0; i < vr->result.n_findings; i++)
		finding(c, &vr->result.findings[i], r->taken_ns);
	if (!vr->result.n_findings) {
		top_canvas_line(c);
		top_canvas_put(c, TOP_A_GOOD, "no findings");
	}
	for (size_t i = 0; i < r->host_result.n_findings; i++) {
		const struct diag_finding *fd = &r->host_result.findings[i];

		snprintf(head, sizeof(head), "host [%s] %s: ", diag_severity_name(fd->severity),
			 diag_rule_name(fd->rule));
		top_wrapped(c, top_severity_attr(fd->severity), head, 4, fd->title);
	}
	skipped(c, &vr->result);
}
