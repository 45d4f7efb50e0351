/* The HTML landing page for "/"; see landing.h. */
#include <errno.h>
#include <stdbool.h>

#include "landing.h"
#include "strbuf.h"

void html_escape(struct strbuf *sb, const char *s)
{
	static const struct strbuf_escape html[] = {
		{'&', "&amp;"}, {'<', "&lt;"}, {'>', "&gt;"}, {'"', "&quot;"}, {'\'', "&#39;"},
	};

	strbuf_put_escaped(sb, s, html, sizeof(html) / sizeof(html[0]));
}

/* Only same-origin paths become links: "//host" would leave the site. */
static bool local_path(const char *path)
{
	return path && path[0] == '/' && path[1] != '/' && path[1] != '\\';
}

static void put_link(struct strbuf *sb, const char *path, const char *text)
{
	strbuf_puts(sb, "<li><a href=\"");
	html_escape(sb, path);
	strbuf_puts(sb, "\">");
	html_escape(sb, text);
	strbuf_puts(sb, "</a></li>\n");
}

int landing_render(const struct landing_page *page, char **html, size_t *len)
{
	struct strbuf sb = {0};
	size_t i;

	if (!page || !html || !page->version || !local_path(page->telemetry_path) ||
	    (page->n_extra && !page->extra))
		return -EINVAL;
	for (i = 0; i < page->n_extra; i++) {
		if (!local_path(page->extra[i].path) || !page->extra[i].text)
			return -EINVAL;
	}

	strbuf_puts(&sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
			 "<title>ipivd</title>\n</head>\n<body>\n<h1>ipivd</h1>\n"
			 "<p>Per-VM inter-processor interrupt metrics from KVM. Version ");
	html_escape(&sb, page->version);
	strbuf_puts(&sb, ".</p>\n<ul>\n");
	put_link(&sb, page->telemetry_path, "Metrics");
	put_link(&sb, "/api/v1/vms", "VMs (JSON)");
	for (i = 0; i < page->n_extra; i++)
		put_link(&sb, page->extra[i].path, page->extra[i].text);
	strbuf_puts(&sb, "</ul>\n</body>\n</html>\n");

	*html = strbuf_steal(&sb, len);
	return *html ? 0 : -ENOMEM;
}
