/* ipivtop's by-path pane: IPIs/s and totals per path over the VMs the filter shows. */
#include "format.h"
#include "paths.h"

void top_paths_draw(struct top_canvas *c, const struct top_model *m)
{
	double rate[IPIV_PATH_COUNT] = {0}, sent = 0;
	uint64_t total[IPIV_PATH_COUNT] = {0};
	bool valid = false;

	for (size_t i = 0; i < m->n_rows; i++) {
		const struct top_vm_row *row = &m->rows[i];

		if (row->gone || !top_model_visible(m, row))
			continue;
		for (unsigned p = 0; p < IPIV_PATH_COUNT; p++) {
			total[p] += row->total.sent_by_path[p];
			if (row->rate.valid) {
				rate[p] += row->rate.delta.sent_by_path[p] / row->rate.seconds;
				sent += row->rate.delta.sent_by_path[p] / row->rate.seconds;
				valid = true;
			}
		}
	}
	top_canvas_line(c);
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_TITLE, "IPIs by path (VMs shown)");
	top_canvas_fill(c, TOP_A_TITLE);
	top_canvas_line(c);
	top_canvas_fit(c, TOP_A_HEADER, "PATH", 16, TOP_LEFT);
	top_canvas_fit(c, TOP_A_HEADER, "SENT/s", 7, TOP_RIGHT);
	top_canvas_fit(c, TOP_A_HEADER, "SHARE", 7, TOP_RIGHT);
	top_canvas_fit(c, TOP_A_HEADER, "TOTAL", 7, TOP_RIGHT);
	for (unsigned p = 0; p < IPIV_PATH_COUNT; p++) {
		char r[TOP_NUM_MAX], s[TOP_NUM_MAX], t[TOP_NUM_MAX];

		top_humanize(valid ? rate[p] : -1, r);
		top_percent(rate[p], valid ? sent : 0, s);
		top_humanize((double)total[p], t);
		top_canvas_line(c);
		top_canvas_fit(c, TOP_A_NORMAL, ipiv_path_name(p), 16, TOP_LEFT);
		top_canvas_fit(c, TOP_A_NORMAL, r, 7, TOP_RIGHT);
		top_canvas_fit(c, TOP_A_NORMAL, s, 7, TOP_RIGHT);
		top_canvas_fit(c, TOP_A_NORMAL, t, 7, TOP_RIGHT);
	}
}
