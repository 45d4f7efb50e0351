/* ipivtop's terminal: curses, colour or plain attributes, clipped painting, prompts. */
#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "screen.h"

static bool colour;
static attr_t attrs[TOP_A_COUNT];

static void plain_attrs(void)
{
	attrs[TOP_A_NORMAL] = A_NORMAL;
	attrs[TOP_A_TITLE] = A_BOLD;
	attrs[TOP_A_HEADER] = A_UNDERLINE;
	attrs[TOP_A_SORTED] = A_UNDERLINE | A_BOLD;
	attrs[TOP_A_SELECTED] = A_REVERSE;
	attrs[TOP_A_DIM] = A_DIM;
	attrs[TOP_A_WARN] = A_BOLD;
	attrs[TOP_A_CAUTION] = A_UNDERLINE;
	attrs[TOP_A_GOOD] = A_NORMAL;
	attrs[TOP_A_HEAT1] = A_NORMAL;
	attrs[TOP_A_HEAT2] = A_NORMAL;
	attrs[TOP_A_HEAT3] = A_BOLD;
	attrs[TOP_A_HEAT4] = A_BOLD | A_REVERSE;
}

static void colour_attrs(void)
{
	static const short pairs[][3] = {
		/* attr, fg, bg */
		{TOP_A_TITLE, COLOR_WHITE, COLOR_BLUE},
		{TOP_A_HEADER, COLOR_BLACK, COLOR_CYAN},
		{TOP_A_SORTED, COLOR_BLACK, COLOR_YELLOW},
		{TOP_A_WARN, COLOR_RED, -1},
		{TOP_A_CAUTION, COLOR_YELLOW, -1},
		{TOP_A_GOOD, COLOR_GREEN, -1},
		{TOP_A_HEAT1, COLOR_BLUE, -1},
		{TOP_A_HEAT2, COLOR_CYAN, -1},
		{TOP_A_HEAT3, COLOR_YELLOW, -1},
		{TOP_A_HEAT4, COLOR_RED, -1},
	};

	start_color();
	use_default_colors();
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		init_pair((short)(i + 1), pairs[i][1], pairs[i][2]);
		attrs[pairs[i][0]] = COLOR_PAIR(i + 1);
	}
	attrs[TOP_A_TITLE] |= A_BOLD;
	attrs[TOP_A_SORTED] |= A_BOLD;
	attrs[TOP_A_WARN] |= A_BOLD;
	attrs[TOP_A_HEAT4] |= A_BOLD;
}

int top_screen_open(bool want_colour)
{
	if (!initscr())
		return -ENOTTY;
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	set_escdelay(25);
	plain_attrs();
	colour = want_colour && has_colors();
	if (colour)
		colour_attrs();
	return 0;
}

void top_screen_close(void)
{
	endwin();
}

int top_screen_paint(const struct top_canvas *c, int y, size_t first, int max_lines)
{
	int painted = 0;

	for (size_t i = first; i < c->n_lines && painted < max_lines && y < LINES; i++) {
		const struct top_line *l = &c->lines[i];
		int col = 0;

		move(y, 0);
		clrtoeol();
		for (size_t r = 0; r < l->n_runs && col < COLS; r++) {
			size_t end = r + 1 < l->n_runs ? l->runs[r + 1].start : l->text.len;
			size_t len = end - l->runs[r].start;
			char *run = malloc(len + 1), fitted[4096];
			int w;

			if (!run)
				break;
			memcpy(run, l->text.buf + l->runs[r].start, len);
			run[len] = '\0';
			w = top_display_width(run);
			if (col + w > COLS) { /* clip: curses would wrap to the next row */
				top_fit(run, COLS - col, TOP_LEFT, fitted, sizeof(fitted));
				w = COLS - col;
			} else {
				snprintf(fitted, sizeof(fitted), "%s", run);
			}
			attrset(attrs[l->runs[r].attr]);
			mvaddstr(y, col, fitted);
			col += w;
			free(run);
		}
		attrset(A_NORMAL);
		y++;
		painted++;
	}
	return painted;
}

int top_screen_prompt(const char *label, char *buf, size_t size)
{
	size_t len = 0;
	int ch;

	buf[0] = '\0';
	curs_set(1);
	for (;;) {
		move(LINES - 1, 0);
		clrtoeol();
		attrset(attrs[TOP_A_TITLE]);
		addstr(label);
		attrset(A_NORMAL);
		addstr(buf);
		refresh();
		timeout(-1);
		ch = getch();
		if (ch == 27) {
			curs_set(0);
			return -ECANCELED;
		}
		if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
			break;
		if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
			/* drop a whole UTF-8 character */
			while (len && ((unsigned char)buf[len - 1] & 0xc0) == 0x80)
				len--;
			if (len)
				len--;
			buf[len] = '\0';
		} else if (ch >= 0x20 && ch < 0x100 && len + 1 < size) {
			buf[len++] = (char)ch;
			buf[len] = '\0';
		}
	}
	curs_set(0);
	return 0;
}
