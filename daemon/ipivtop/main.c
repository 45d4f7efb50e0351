/* ipivtop: the interactive view of IPIs on a KVM host (kvm_stat's keys), and its batch mode.
 * This file is flags, source selection, the loop and the key handlers; screen elements live
 * in the other files of daemon/ipivtop/. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NCURSES_WIDECHAR 1
#include <curses.h>

#include "diag.h"
#include "batch.h"
#include "canvas.h"
#include "drill.h"
#include "format.h"
#include "header.h"
#include "help.h"
#include "http.h"
#include "latency_pane.h"
#include "log.h"
#include "model.h"
#include "paths.h"
#include "screen.h"
#include "source.h"
#include "table.h"

#ifndef IPIV_VERSION
#define IPIV_VERSION "unknown"
#endif

#define HEADER_LINES 5

static volatile sig_atomic_t stop, reopen_log;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* -L only: logrotate moved the file. Elsewhere SIGHUP (the terminal went away) stops. */
static void on_reopen(int sig)
{
	(void)sig;
	reopen_log = 1;
}

static const char usage_text[] =
	"Usage: ipivtop [OPTIONS]\n"
	"Shows the IPIs of every KVM VM on this host, live: rates by VM and path, the share\n"
	"IPIv/AVIC could deliver, send->EOI latency, halted targets, APICv inhibits and the\n"
	"diagnosis findings; Enter shows a VM's vCPUs, latency histograms and findings.\n"
	"\n"
	"  -d, --delay SECS      refresh interval (default 2)\n"
	"      --connect URL     read a running ipivd (http://host:port) instead of loading the\n"
	"                        BPF collector here (which needs root)\n"
	"      --timeout SECS    give up on an ipivd request after this long (default 5)\n"
	"  -f, --filter REGEX    only VMs whose name matches (POSIX extended regex)\n"
	"  -g, --guest NAME      only the VM of this exact name\n"
	"  -p, --pid PID         only the VM of this VMM process\n"
	"  -b, --batch           print plain text instead of the interactive screen\n"
	"  -1, --once            print one interval and exit (-b -n 1)\n"
	"  -l, --log             log mode: a record per VM per interval, each line stamped with\n"
	"                        the time (CSV unless --json), until killed\n"
	"  -L, --log-to-file FILE  -l appending to FILE (the CSV header only when it is empty);\n"
	"                        SIGHUP reopens it (logrotate)\n"
	"  -z, --skip-zero-records  with -b, -1, -l, -L: leave out VMs with nothing counted in\n"
	"                        the interval\n"
	"  -n, --iterations N    batch and log modes: N intervals, then exit (default: until "
	"killed)\n"
	"      --csv             with -b, -l, -L: CSV, one row per VM per interval\n"
	"      --json            with -b, -l, -L: one JSON object per interval per line\n"
	"      --no-color        no colours (also NO_COLOR=1 or a terminal without colours)\n"
	"      --diag.NAME=VALUE a diagnosis threshold, as ipivd takes it (standalone only:\n"
	"                        findings are evaluated here over each refresh interval)\n"
	"  -V, --version         print the version\n"
	"  -h, --help            this text\n"
	"\n"
	"Keys: h help, q quit, f filter by regex, g by guest, p by pid, c clear filters,\n"
	"o/N C S R E F P X L T H D sort, r reset totals, s delay, b IPIs by path, x paths under\n"
	"each VM, arrows/PgUp/PgDn/Home/End move, Enter drill down, l latency stage\n"
	"(drill-down), Esc back. P50/P99 cover the last refresh interval (the title line says\n"
	"when they cannot).\n";

#define usage_error(...) ipiv_usage_error("ipivtop", __VA_ARGS__)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool is_loopback(const char *url)
{
	struct top_url u;
	char err[200];

	if (top_url_parse(url, &u, err, sizeof(err)))
		return false;
	return !strcmp(u.host, "localhost") || !strncmp(u.host, "127.", 4) ||
	       !strcmp(u.host, "::1");
}

/* ---- shared by both modes ---- */

struct app {
	struct top_source *src;
	struct top_model model;
	struct top_frame frame; /* the latest sample; the header shows its probes */
	struct top_host host;
	double delay_s;
	char msg[256];
	bool msg_is_error;
	/* The message is a sampling error: the next good sample clears it. Answers to keys stay
	 * until the next key says something else. */
	bool msg_from_sample;
	/* batch and log modes */
	struct top_batch_opts batch;
	bool log_mode;
	const char *log_path; /* -L, or NULL: stdout */
	FILE *out;
};

/* Takes a sample into the model; on failure keeps the last numbers and says why. */
static int sample(struct app *a, bool has_detail, uint64_t key, struct top_detail *detail)
{
	struct top_frame f;
	char err[256] = "";
	int r;

	r = top_source_sample(a->src, has_detail, key, &f, err, sizeof(err));
	if (r) {
		snprintf(a->msg, sizeof(a->msg), "%s (retrying)", err);
		a->msg_is_error = true;
		a->msg_from_sample = true;
		return r;
	}
	if (a->msg_from_sample) {
		a->msg[0] = '\0';
		a->msg_is_error = a->msg_from_sample = false;
	}
	r = top_model_update(&a->model, f.snap, (const char(*)[VM_NAME_MAX])f.names, f.latency,
			     f.send_eoi, f.findings);
	if (!r && detail) {
		detail->lat_recorded = f.snap->self.lat_kinds_recorded;
		r = top_detail_update(detail, f.detail, f.snap->taken_ns);
	}
	top_model_sort(&a->model);
	top_frame_free(a->src, &a->frame);
	a->frame = f;
	return r;
}

/* ---- batch ---- */

/* -L: opens (or reopens after SIGHUP) the log for appending; the CSV header goes into a file
 * only while it is empty, so a restart does not repeat it mid-file. */
static int open_log(struct app *a)
{
	if (a->out && a->out != stdout)
		fclose(a->out);
	a->out = stdout;
	a->batch.header = true;
	if (!a->log_path)
		return 0;
	a->out = fopen(a->log_path, "a");
	if (!a->out) {
		fprintf(stderr, "ipivtop: cannot open the log file %s: %s\n", a->log_path,
			strerror(errno));
		return -errno;
	}
	a->batch.header = ftell(a->out) == 0;
	return 0;
}

static void stamp(struct app *a)
{
	time_t t = time(NULL);
	struct tm tm;

	a->batch.timestamp[0] = '\0';
	if (a->log_mode && gmtime_r(&t, &tm))
		strftime(a->batch.timestamp, sizeof(a->batch.timestamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int run_batch(struct app *a, enum top_batch_format fmt, unsigned iterations)
{
	double start = now_s(), next;
	int r;

	if (open_log(a))
		return 1;

	r = sample(a, false, 0, NULL);
	if (r) {
		fprintf(stderr, "ipivtop: %s\n", a->msg);
		return 1;
	}
	next = start + a->delay_s;
	for (unsigned i = 1; !iterations || i <= iterations; i++) {
		while (!stop && now_s() < next) {
			double left = next - now_s();

			usleep(left > 0.2 ? 200000 : (useconds_t)(left * 1e6) + 1);
		}
		if (stop)
			break;
		next += a->delay_s;
		if (sample(a, false, 0, NULL)) {
			fprintf(stderr, "ipivtop: %s\n", a->msg);
			return 1;
		}
		if (reopen_log) {
			reopen_log = 0;
			if (open_log(a))
				return 1;
		}
		stamp(a);
		if (top_batch_write(a->out, fmt, &a->batch, i, now_s() - start, &a->model)) {
			fprintf(stderr, "ipivtop: cannot write the output: %s\n", strerror(errno));
			return 1;
		}
		a->batch.header = false;
	}
	return 0;
}

/* ---- interactive ---- */

enum view {
	VIEW_TABLE,
	VIEW_DRILL,
	VIEW_HELP,
};

/* What a key handler asks of the loop. */
enum {
	ACT_NONE = 0,
	ACT_REDRAW = 1,
	ACT_SAMPLE = 2,
	ACT_QUIT = 4,
};

struct ui {
	struct app *app;
	enum view view, before_help;
	const struct top_vm_row **visible;
	size_t n_visible, cap_visible;
	size_t cursor, first;
	bool has_cursor_key;
	uint64_t cursor_key;
	bool show_paths;
	bool show_children; /* "x": each VM's paths under it */
	bool drilling;
	struct top_detail detail;
	/* Scrolling panes (drill-down, help): the first line shown, and the size of the pane
	 * and of its content at the last draw, which bound the next move. */
	size_t scroll, pane_lines, pane_page;
	size_t saved_scroll; /* the drill-down's, while the help is shown */
	double next_sample;
};

static int table_rows_on_screen(const struct ui *ui)
{
	int rows = LINES - HEADER_LINES - 2 - (ui->show_paths ? 3 + IPIV_PATH_COUNT : 0);

	return rows > 1 ? rows : 1;
}

/* Screen lines of visible row i: the row and, with "x", its children. */
static size_t row_lines(const struct ui *ui, size_t i)
{
	return 1 + (ui->show_children ? top_table_children(ui->visible[i], NULL) : 0);
}

/* Re-lists the visible rows and keeps the cursor on the same VM after a sort or a sample. */
static void relist(struct ui *ui)
{
	struct top_model *m = &ui->app->model;

	if (ui->cap_visible < m->n_rows + 1) {
		const struct top_vm_row **v = realloc(ui->visible, (m->n_rows + 1) * sizeof(*v));

		if (!v)
			return;
		ui->visible = v;
		ui->cap_visible = m->n_rows + 1;
	}
	ui->n_visible = top_table_visible(m, ui->visible, ui->cap_visible);
	if (ui->has_cursor_key)
		for (size_t i = 0; i < ui->n_visible; i++)
			if (ui->visible[i]->key == ui->cursor_key)
				ui->cursor = i;
	if (ui->cursor >= ui->n_visible)
		ui->cursor = ui->n_visible ? ui->n_visible - 1 : 0;
	if (ui->cursor < ui->first)
		ui->first = ui->cursor;
	/* the cursor's row on the screen, child rows above it counted */
	for (;;) {
		size_t lines = 0;

		for (size_t i = ui->first; i <= ui->cursor && i < ui->n_visible; i++)
			lines += i == ui->cursor ? 1 : row_lines(ui, i);
		if (lines <= (size_t)table_rows_on_screen(ui) || ui->first >= ui->cursor)
			break;
		ui->first++;
	}
}

static void draw(struct ui *ui)
{
	struct app *a = ui->app;
	struct top_header h = {
		.source = a->src->what,
		.version = a->frame.snap && a->frame.version[0] ? a->frame.version : IPIV_VERSION,
		.delay_s = a->delay_s,
		.host = &a->host,
		.frame = &a->frame,
		.model = &a->model,
		.message = a->msg[0] ? a->msg : NULL,
		.message_is_error = a->msg_is_error,
	};
	struct top_canvas c;
	int y = 0;

	erase();
	if (ui->view == VIEW_HELP) {
		top_canvas_init(&c, COLS);
		top_help_draw(&c);
		ui->pane_lines = c.n_lines;
		ui->pane_page = LINES > 0 ? (size_t)LINES : 1;
		ui->scroll = top_scroll_clamp((long)ui->scroll, ui->pane_lines, ui->pane_page);
		top_screen_paint(&c, 0, ui->scroll, LINES);
		top_canvas_free(&c);
		refresh();
		return;
	}
	top_canvas_init(&c, COLS);
	top_header_draw(&c, &h);
	y += top_screen_paint(&c, y, 0, HEADER_LINES);
	top_canvas_free(&c);

	top_canvas_init(&c, COLS);
	if (ui->view == VIEW_DRILL) {
		const struct top_vm_row *row = top_model_find(&a->model, ui->detail.key);

		top_drill_draw(&c, &ui->detail, row, a->frame.findings, a->frame.findings_note);
		ui->pane_lines = c.n_lines;
		ui->pane_page = LINES - y - 1 > 0 ? (size_t)(LINES - y - 1) : 1;
		ui->scroll = top_scroll_clamp((long)ui->scroll, ui->pane_lines, ui->pane_page);
		top_screen_paint(&c, y, ui->scroll, LINES - y - 1);
	} else {
		struct top_layout l;
		int rows = table_rows_on_screen(ui);

		top_table_layout(COLS, &l);
		top_table_header(&c, &l, a->model.sort);
		for (size_t i = ui->first; i < ui->n_visible && c.n_lines <= (size_t)rows; i++) {
			enum ipiv_path paths[IPIV_PATH_COUNT];
			size_t n =
				ui->show_children ? top_table_children(ui->visible[i], paths) : 0;

			top_table_row(&c, &l, ui->visible[i], i == ui->cursor);
			for (size_t k = 0; k < n; k++)
				top_table_child(&c, &l, ui->visible[i], paths[k], k + 1 == n);
		}
		if (!ui->n_visible) {
			top_canvas_line(&c);
			top_canvas_put(&c, TOP_A_DIM,
				       a->model.n_rows ? "no VM matches the filter"
						       : "no KVM VM on this host yet");
		}
		y += top_screen_paint(&c, y, 0, rows + 1);
		top_canvas_free(&c);
		top_canvas_init(&c, COLS);
		if (ui->show_paths) {
			top_paths_draw(&c, &a->model);
			top_screen_paint(&c, LINES - 1 - (int)c.n_lines, 0, (int)c.n_lines);
		}
	}
	top_canvas_free(&c);
	top_canvas_init(&c, COLS);
	top_canvas_line(&c);
	top_canvas_put(&c, TOP_A_DIM,
		       ui->view == VIEW_DRILL ? "Esc back  q quit  r reset  s delay  h help"
					      : "h help  q quit  f/g/p filter  c clear  o sort  r "
						"reset  s delay  b/x paths  "
						"Enter VM");
	top_screen_paint(&c, LINES - 1, 0, 1);
	top_canvas_free(&c);
	refresh();
}

static int key_sort(struct ui *ui, int sort)
{
	struct top_model *m = &ui->app->model;

	if ((int)m->sort == sort)
		m->ascending = !m->ascending;
	else {
		m->sort = sort;
		m->ascending = sort == TOP_SORT_NAME;
	}
	top_model_sort(m);
	return ACT_REDRAW;
}

static int key_next_sort(struct ui *ui)
{
	struct top_model *m = &ui->app->model;
	int next = m->sort;

	/* The next sortable column that is on the screen's column list. */
	for (int i = 0; i < TOP_COL_COUNT; i++)
		if (top_columns[i].sort == (int)m->sort) {
			for (int j = 1; j <= TOP_COL_COUNT; j++) {
				int c = (i + j) % TOP_COL_COUNT;

				if (top_columns[c].sort >= 0) {
					next = top_columns[c].sort;
					break;
				}
			}
			break;
		}
	m->sort = next;
	m->ascending = next == TOP_SORT_NAME;
	top_model_sort(m);
	return ACT_REDRAW;
}

static void say(struct app *a, bool is_error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct app *a, bool is_error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->msg, sizeof(a->msg), fmt, ap);
	va_end(ap);
	a->msg_is_error = is_error;
	a->msg_from_sample = false;
}

static int key_filter(struct ui *ui)
{
	struct app *a = ui->app;
	char buf[128], err[160];

	if (top_screen_prompt("filter VMs by name (regex, empty: all): ", buf, sizeof(buf)))
		return ACT_REDRAW;
	if (top_model_set_filter(&a->model, buf, err, sizeof(err)))
		say(a, true, "bad filter /%.80s/: %s; filter unchanged", buf, err);
	else
		say(a, false, "%s", "");
	ui->first = 0;
	return ACT_REDRAW;
}

/* The prompt starts empty, the current value in its label: typing replaces it, and Enter
 * alone keeps it. */
static int key_delay(struct ui *ui)
{
	struct app *a = ui->app;
	char buf[32], label[80];
	double d;

	snprintf(label, sizeof(label),
		 "refresh delay in seconds (now %g, Enter keeps it): ", a->delay_s);
	if (top_screen_prompt(label, buf, sizeof(buf)) || !buf[strspn(buf, " ")])
		return ACT_REDRAW;
	if (!top_parse_seconds(buf, 0.1, &d)) {
		say(a, true, "bad delay \"%.20s\": a number from 0.1 to 86400; still %gs", buf,
		    a->delay_s);
		return ACT_REDRAW;
	}
	a->delay_s = d;
	a->src->diag_window_s = d;
	say(a, false, "refresh every %gs", d);
	ui->next_sample = now_s() + d;
	return ACT_REDRAW;
}

/* kvm_stat's "g": a guest by name, or by pid when the answer is a number. A filter that
 * would hide every VM is refused, and the old one kept. */
static int key_guest(struct ui *ui)
{
	struct app *a = ui->app;
	char buf[VM_NAME_MAX], shown[VM_NAME_MAX * 2];
	int32_t pid;

	if (top_screen_prompt("filter by guest (VM name or VMM pid, empty: all): ", buf,
			      sizeof(buf)))
		return ACT_REDRAW;
	top_sanitize(buf, shown, sizeof(shown));
	if (!buf[0]) {
		top_model_set_guest(&a->model, NULL);
		top_model_set_pid(&a->model, 0);
		say(a, false, "guest filter cleared");
	} else if (top_parse_pid(buf, &pid) && top_model_has_pid(&a->model, pid)) {
		top_model_set_guest(&a->model, NULL);
		top_model_set_pid(&a->model, pid);
		say(a, false, "showing the VM of pid %d", pid);
	} else if (top_model_has_guest(&a->model, buf)) {
		top_model_set_pid(&a->model, 0);
		top_model_set_guest(&a->model, buf);
		say(a, false, "showing VM %.100s", shown);
	} else {
		say(a, true, "no VM named or with pid \"%.100s\"; filter unchanged", shown);
	}
	ui->first = 0;
	return ACT_REDRAW;
}

/* kvm_stat's "p": a VMM pid. */
static int key_pid(struct ui *ui)
{
	struct app *a = ui->app;
	char buf[32];
	int32_t pid;

	if (top_screen_prompt("filter by VMM pid (empty: all): ", buf, sizeof(buf)))
		return ACT_REDRAW;
	if (!buf[strspn(buf, " ")]) {
		top_model_set_pid(&a->model, 0);
		say(a, false, "pid filter cleared");
	} else if (!top_parse_pid(buf, &pid)) {
		say(a, true, "bad pid \"%.20s\": a number from 1 to 2147483647; filter unchanged",
		    buf);
	} else if (!top_model_has_pid(&a->model, pid)) {
		say(a, true, "no VM with pid %d; filter unchanged", pid);
	} else {
		top_model_set_pid(&a->model, pid);
		say(a, false, "showing the VM of pid %d", pid);
	}
	ui->first = 0;
	return ACT_REDRAW;
}

static void move_cursor(struct ui *ui, long delta)
{
	long c = (long)ui->cursor + delta;

	if (ui->view != VIEW_TABLE) { /* a scrolling pane: stops at its last full page */
		ui->scroll =
			top_scroll_clamp((long)ui->scroll + delta, ui->pane_lines, ui->pane_page);
		return;
	}
	if (c >= (long)ui->n_visible)
		c = (long)ui->n_visible - 1;
	if (c < 0)
		c = 0;
	ui->cursor = (size_t)c;
	if (ui->n_visible)
		ui->cursor_key = ui->visible[ui->cursor]->key, ui->has_cursor_key = true;
}

/* The cursor keys, the same in every view: true when ch was one. */
static bool key_move(struct ui *ui, int ch, int page)
{
	switch (ch) {
	case KEY_UP: move_cursor(ui, -1); return true;
	case KEY_DOWN: move_cursor(ui, 1); return true;
	case KEY_PPAGE: move_cursor(ui, -page); return true;
	case KEY_NPAGE: move_cursor(ui, page); return true;
	case KEY_HOME: move_cursor(ui, LONG_MIN / 2); return true;
	case KEY_END: move_cursor(ui, LONG_MAX / 2); return true;
	}
	return false;
}

static int handle_key(struct ui *ui, int ch)
{
	struct app *a = ui->app;
	int page = table_rows_on_screen(ui), sort;

	if (ui->view != VIEW_TABLE)
		page = ui->pane_page > 1 ? (int)ui->pane_page : 1;
	if (key_move(ui, ch, page) || ch == KEY_RESIZE)
		return ACT_REDRAW;
	if (ui->view == VIEW_HELP) {
		ui->view = ui->before_help;
		ui->scroll = ui->saved_scroll;
		return ch == 'q' ? ACT_QUIT : ACT_REDRAW;
	}
	switch (ch) {
	case 'q': return ACT_QUIT;
	case 'h':
	case '?':
		ui->before_help = ui->view;
		ui->saved_scroll = ui->scroll;
		ui->scroll = 0;
		ui->view = VIEW_HELP;
		return ACT_REDRAW;
	case 'f': return key_filter(ui);
	case 'g': return key_guest(ui);
	case 'p': return key_pid(ui);
	case 'c':
		top_model_clear_filters(&a->model);
		say(a, false, "filters cleared");
		ui->first = 0;
		return ACT_REDRAW;
	case 'o': return key_next_sort(ui);
	case 'r':
		top_model_reset(&a->model);
		if (ui->view == VIEW_DRILL && top_detail_reset(&ui->detail)) {
			say(a, true, "out of memory: the latency histogram was not reset");
			return ACT_REDRAW;
		}
		say(a, false, "totals reset%s",
		    ui->view == VIEW_DRILL ? ", latency histogram since now" : "");
		return ACT_REDRAW;
	case 's': return key_delay(ui);
	case 'b': ui->show_paths = !ui->show_paths; return ACT_REDRAW;
	case 'x':
		if (ui->view != VIEW_TABLE)
			return ACT_NONE;
		ui->show_children = !ui->show_children;
		return ACT_REDRAW;
	case 'l':
		if (ui->view != VIEW_DRILL)
			return ACT_NONE;
		ui->detail.stage = top_lat_next_stage(ui->detail.stage);
		return ACT_REDRAW;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (ui->view != VIEW_TABLE || !ui->n_visible)
			return ACT_NONE;
		ui->view = VIEW_DRILL;
		ui->drilling = true;
		ui->scroll = 0;
		top_detail_free(&ui->detail);
		top_detail_init(&ui->detail, ui->visible[ui->cursor]->key);
		ui->detail.since_reset = a->model.reset_ns != 0;
		return ACT_SAMPLE; /* fetch the detail now, rates follow at the next sample */
	case 27:		   /* Esc */
	case KEY_BACKSPACE:
	case 127:
		if (ui->view != VIEW_DRILL)
			return ACT_NONE;
		ui->view = VIEW_TABLE;
		ui->drilling = false;
		ui->scroll = 0;
		top_detail_free(&ui->detail);
		return ACT_REDRAW;
	}
	sort = top_table_sort_for_key(ch);
	if (sort >= 0 && ui->view == VIEW_TABLE)
		return key_sort(ui, sort);
	return ACT_NONE;
}

static int run_interactive(struct app *a, bool colour)
{
	struct ui ui = {.app = a};
	int r;

	if (top_screen_open(colour)) {
		fprintf(stderr, "ipivtop: cannot start the terminal (TERM=%s); try -b\n",
			getenv("TERM") ? getenv("TERM") : "unset");
		return 1;
	}
	sample(a, false, 0, NULL);
	relist(&ui);
	ui.next_sample = now_s() + a->delay_s;
	draw(&ui);
	while (!stop) {
		double left = ui.next_sample - now_s();
		int ch, act = ACT_NONE;

		timeout(left > 0 ? (int)(left * 1000) + 1 : 0);
		ch = getch();
		if (ch != ERR)
			act = handle_key(&ui, ch);
		if (act & ACT_QUIT)
			break;
		if (ch == ERR || (act & ACT_SAMPLE) || now_s() >= ui.next_sample) {
			sample(a, ui.drilling, ui.detail.key, ui.drilling ? &ui.detail : NULL);
			if (ch == ERR || now_s() >= ui.next_sample)
				ui.next_sample = now_s() + a->delay_s;
			act |= ACT_REDRAW;
		}
		if (act & ACT_REDRAW) {
			relist(&ui);
			draw(&ui);
		}
	}
	top_screen_close();
	top_detail_free(&ui.detail);
	free(ui.visible);
	r = 0;
	return r;
}

int main(int argc, char **argv)
{
	enum { OPT_CONNECT = 256, OPT_TIMEOUT, OPT_CSV, OPT_JSON, OPT_NO_COLOR, OPT_PROC };
	static const struct option longopts[] = {
		{"delay", required_argument, NULL, 'd'},
		{"connect", required_argument, NULL, OPT_CONNECT},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"filter", required_argument, NULL, 'f'},
		{"guest", required_argument, NULL, 'g'},
		{"pid", required_argument, NULL, 'p'},
		{"batch", no_argument, NULL, 'b'},
		{"once", no_argument, NULL, '1'},
		{"log", no_argument, NULL, 'l'},
		{"log-to-file", required_argument, NULL, 'L'},
		{"skip-zero-records", no_argument, NULL, 'z'},
		{"iterations", required_argument, NULL, 'n'},
		{"csv", no_argument, NULL, OPT_CSV},
		{"json", no_argument, NULL, OPT_JSON},
		{"no-color", no_argument, NULL, OPT_NO_COLOR},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{"proc-root", required_argument, NULL, OPT_PROC}, /* tests */
		{0},
	};
	struct app a = {.delay_s = 2};
	enum top_batch_format fmt = TOP_BATCH_TEXT;
	const char *connect = NULL, *filter = NULL, *proc_root = NULL, *guest = NULL;
	const char *no_color = getenv("NO_COLOR");
	bool batch = false, fmt_set = false, colour = !(no_color && *no_color), once = false;
	int32_t pid = 0;
	double timeout_s = 5;
	unsigned long iterations = 0;
	struct sigaction sa = {.sa_handler = on_signal};
	struct diag_thresholds th;
	bool th_set = false;
	char err[256], *end;
	int c, r;

	diag_thresholds_default(&th);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:f:g:p:b1lL:zn:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (!top_parse_seconds(optarg, 0.1, &a.delay_s))
				usage_error("--delay \"%s\": expected seconds from 0.1 to 86400",
					    optarg);
			break;
		case OPT_CONNECT: connect = optarg; break;
		case OPT_TIMEOUT:
			if (!top_parse_seconds(optarg, 0.1, &timeout_s))
				usage_error("--timeout \"%s\": expected seconds from 0.1 to 86400",
					    optarg);
			break;
		case 'f': filter = optarg; break;
		case 'g':
			if (!*optarg)
				usage_error("%s", "--guest needs a VM name");
			guest = optarg;
			break;
		case 'p':
			if (!top_parse_pid(optarg, &pid))
				usage_error(
					"--pid \"%s\": expected a process id from 1 to 2147483647",
					optarg);
			break;
		case 'b': batch = true; break;
		case '1': once = true; break;
		case 'l': a.log_mode = true; break;
		case 'L':
			if (!*optarg)
				usage_error("%s", "--log-to-file needs a file name");
			a.log_mode = true;
			a.log_path = optarg;
			break;
		case 'z': a.batch.skip_zero = true; break;
		case 'n':
			errno = 0;
			iterations = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || *optarg == '-' || !iterations ||
			    iterations > 1000000000)
				usage_error("--iterations \"%s\": expected a positive number",
					    optarg);
			break;
		case OPT_CSV:
		case OPT_JSON:
			if (fmt_set)
				usage_error("%s: choose one of --csv and --json", argv[optind - 1]);
			fmt = c == OPT_CSV ? TOP_BATCH_CSV : TOP_BATCH_JSON;
			fmt_set = true;
			break;
		case OPT_NO_COLOR: colour = false; break;
		case OPT_PROC: {
			char dot[PATH_MAX]; /* "<dir>/." exists only for a directory */

			if (snprintf(dot, sizeof(dot), "%s/.", optarg) >= (int)sizeof(dot) ||
			    access(dot, F_OK))
				usage_error("--proc-root '%s' is not a directory", optarg);
			proc_root = optarg;
			break;
		}
		case 'V': printf("ipivtop %s\n", IPIV_VERSION); return 0;
		case 'h':
			fputs(usage_text, stdout);
			diag_thresholds_usage(stdout);
			return 0;
		case ':': usage_error("%s needs a value", argv[optind - 1]); break;
		case '?':
			/* --diag.<threshold>=value: the table in diag.c knows the names */
			if (!strncmp(argv[optind - 1], "--diag.", 7)) {
				if (diag_threshold_parse(&th, argv[optind - 1], err, sizeof(err)) <
				    0)
					usage_error("%s", err);
				th_set = true;
				break;
			}
			usage_error("unknown option %s", argv[optind - 1]);
			break;
		default: usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument \"%s\"", argv[optind]);
	if (once && (a.log_mode || iterations))
		usage_error("%s", a.log_mode ? "choose one of -1 and -l/-L"
					     : "-1 prints one interval: no -n");
	if (once) {
		batch = true;
		iterations = 1;
	}
	if (a.log_mode) {
		batch = true;
		if (!fmt_set)
			fmt = TOP_BATCH_CSV;
	}
	if (!batch && (fmt_set || iterations || a.batch.skip_zero))
		usage_error("%s", fmt_set      ? "--csv and --json need -b, -l or -L"
				  : iterations ? "-n needs -b, -l or -L"
					       : "-z needs -b, -1, -l or -L");
	if (connect && th_set)
		usage_error("%s", "--diag.* thresholds are for standalone mode; with --connect, "
				  "ipivd's own apply");

	setlocale(LC_ALL, "");
	top_format_set_utf8(!strcmp(nl_langinfo(CODESET), "UTF-8"));
	top_model_init(&a.model);
	if (filter && top_model_set_filter(&a.model, filter, err, sizeof(err))) {
		fprintf(stderr, "ipivtop: --filter \"%s\": %s (see ipivtop --help)\n", filter, err);
		return 2;
	}
	top_model_set_guest(&a.model, guest);
	top_model_set_pid(&a.model, pid);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (a.log_path)
		sigaction(SIGHUP, &(struct sigaction){.sa_handler = on_reopen}, NULL);
	else
		sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (connect) {
		r = top_source_remote_open(&a.src, connect, timeout_s, err, sizeof(err));
		if (r) {
			fprintf(stderr, "ipivtop: %s\n", err);
			return 1;
		}
	} else {
		if (geteuid() != 0) {
			fprintf(stderr,
				"ipivtop: loading the BPF collector needs root; run as root "
				"or use --connect http://HOST:9712 to read a running ipivd\n");
			return 1;
		}
		r = top_source_local_open(&a.src, proc_root, &th);
		if (r)
			return 1; /* collector_open said what was missing */
	}
	a.src->diag_window_s = a.delay_s;
	a.src->shown = &a.model;
	/* A remote ipivd's host is not this one: its facts are only shown for loopback. */
	if (!connect || is_loopback(connect))
		top_host_read("", &a.host);
	else
		a.host.known = false;

	r = batch ? run_batch(&a, fmt, (unsigned)iterations) : run_interactive(&a, colour);
	if (a.out && a.out != stdout)
		fclose(a.out);
	top_frame_free(a.src, &a.frame);
	top_source_close(a.src);
	top_model_free(&a.model);
	return r;
}
