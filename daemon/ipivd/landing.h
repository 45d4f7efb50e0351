/* The HTML landing page ipivd serves on "/": name, version and links to its endpoints,
 * with everything inserted HTML-escaped. */
#ifndef IPIV_LANDING_H
#define IPIV_LANDING_H

#include <stddef.h>

struct strbuf;

struct landing_link {
	const char *path; /* a local path: starts with one '/' */
	const char *text;
};

struct landing_page {
	const char *version;
	const char *telemetry_path;	  /* --web.telemetry-path, e.g. "/metrics" */
	const struct landing_link *extra; /* more links after metrics and /api/v1/vms */
	size_t n_extra;
};

/*
 * Renders the page into a malloc()ed body. Returns 0, -EINVAL for a missing field or a path
 * that is not a local one ("//host", "javascript:..."), or -ENOMEM.
 */
int landing_render(const struct landing_page *page, char **html, size_t *len);

/* Appends s with & < > " ' escaped and invalid UTF-8 bytes replaced by U+FFFD. */
void html_escape(struct strbuf *sb, const char *s);

#endif
