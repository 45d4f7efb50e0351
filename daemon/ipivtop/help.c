/* ipivtop's help screen, built from the key table and the column table. */
#include "help.h"
#include "table.h"

const struct top_key_help top_keys[] = {
	{"h, ?", "this help (arrows and pages scroll it, any other key closes it)"},
	{"q", "quit"},
	{"f", "filter VMs by a name regex (POSIX extended; empty clears it)"},
	{"g", "filter by guest: an exact VM name, or a VMM pid (empty clears it)"},
	{"p", "filter by VMM pid (empty clears it)"},
	{"c", "clear every filter (f, g, p)"},
	{"o", "sort by the next column"},
	{"N C S R E F P X L T H D", "sort by that column; again reverses the order"},
	{"r", "reset the cumulative views: totals, and the drill-down's latency histogram"},
	{"s", "set the refresh delay in seconds (Enter alone keeps it)"},
	{"b", "toggle the by-path breakdown of the host's IPIs"},
	{"x", "toggle child rows: each VM's IPIs by path under it"},
	{"Up, Down, PgUp, PgDn, Home, End", "move the cursor (scroll in the drill-down)"},
	{"Enter", "drill down into the VM under the cursor"},
	{"l", "drill-down: the next latency stage (send->accept, accept->running, send->EOI, "
	      "exit, halt)"},
	{"Esc, Backspace", "back to the VM table"},
};

const unsigned top_n_keys = sizeof(top_keys) / sizeof(top_keys[0]);

void top_help_draw(struct top_canvas *c)
{
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_TITLE, "ipivtop help - keys (kvm_stat's, plus navigation)");
	top_canvas_fill(c, TOP_A_TITLE);
	for (unsigned i = 0; i < top_n_keys; i++) {
		top_canvas_line(c);
		top_canvas_fit(c, TOP_A_HEADER, top_keys[i].keys, 32, TOP_LEFT);
		top_canvas_put(c, TOP_A_NORMAL, " ");
		top_canvas_put(c, TOP_A_NORMAL, top_keys[i].what);
	}
	top_canvas_line(c);
	top_canvas_line(c);
	top_canvas_put(c, TOP_A_TITLE, "Columns (rates over the last refresh interval)");
	top_canvas_fill(c, TOP_A_TITLE);
	for (int i = 0; i < TOP_COL_COUNT; i++) {
		char key[4] = "";

		if (top_columns[i].key)
			key[0] = '[', key[1] = top_columns[i].key, key[2] = ']';
		top_canvas_line(c);
		top_canvas_fit(c, TOP_A_HEADER, top_columns[i].header, 8, TOP_LEFT);
		top_canvas_fit(c, TOP_A_NORMAL, key, 4, TOP_LEFT);
		top_canvas_put(c, TOP_A_NORMAL, top_columns[i].help);
	}
	top_canvas_line(c);
	top_canvas_line(c);
	top_canvas_put(
		c, TOP_A_DIM,
		"\"-\": no rate, latency or diagnosis yet, or nothing to divide by; \"n/a\": "
		"not collected on this host or by this version");
}
