/* ipivtop's terminal: curses set-up, colours that degrade to plain attributes (dumb terminals,
 * NO_COLOR), painting canvases clipped to the screen, and a one-line prompt. */
#ifndef IPIV_TOP_SCREEN_H
#define IPIV_TOP_SCREEN_H

#include <stdbool.h>
#include <stddef.h>

#include "canvas.h"

/* Starts curses; colour only if wanted and the terminal has it. Returns 0 or -ENOTTY. */
int top_screen_open(bool want_colour);
void top_screen_close(void);

/* Paints lines [first, first + max_lines) of c from screen row y; returns rows painted. */
int top_screen_paint(const struct top_canvas *c, int y, size_t first, int max_lines);

/* Reads a line at the bottom row after label, starting empty (what is typed is the answer,
 * never appended to a current value: the label shows that). Returns 0, or -ECANCELED on Esc. */
int top_screen_prompt(const char *label, char *buf, size_t size);

#endif
