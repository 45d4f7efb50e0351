/* Unit tests for daemon/ipivd/landing.c: the page's title, version and links, HTML escaping of
 * everything inserted, and refusal of paths that would not stay on the site. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ipivd/landing.h"
#include "strbuf.h"

static char *render(const struct landing_page *page)
{
	char *html = NULL;
	size_t len = 0;

	assert_int_equal(landing_render(page, &html, &len), 0);
	assert_non_null(html);
	assert_int_equal(len, strlen(html));
	return html;
}

static void test_page_has_title_version_and_links(void **state)
{
	const struct landing_link extra[] = {{"/debug/probes", "Probes"}};
	const struct landing_page page = {"0.1.0-4-gdeadbee", "/metrics", extra, 1};
	char *html = render(&page);

	assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	assert_non_null(strstr(html, "<title>ipivd</title>"));
	assert_non_null(strstr(html, "Version 0.1.0-4-gdeadbee."));
	assert_non_null(strstr(html, "<a href=\"/metrics\">Metrics</a>"));
	assert_non_null(strstr(html, "<a href=\"/api/v1/vms\">VMs (JSON)</a>"));
	assert_non_null(strstr(html, "<a href=\"/debug/probes\">Probes</a>"));
	assert_non_null(strstr(html, "</html>\n"));
	free(html);
}

static void test_inserted_text_is_escaped(void **state)
{
	const struct landing_link extra[] = {{"/x?a=1&b=\"2\"", "<script>alert('x')</script>"}};
	const struct landing_page page = {"1.0<b>&\xff", "/m\"><script>", extra, 1};
	char *html = render(&page);

	assert_null(strstr(html, "<script>"));
	assert_null(strstr(html, "<b>"));
	assert_non_null(strstr(html, "Version 1.0&lt;b&gt;&amp;\xef\xbf\xbd."));
	assert_non_null(strstr(html, "href=\"/m&quot;&gt;&lt;script&gt;\""));
	assert_non_null(strstr(html, "href=\"/x?a=1&amp;b=&quot;2&quot;\""));
	assert_non_null(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
	free(html);
}

static void test_html_escape(void **state)
{
	struct strbuf sb = {0};
	char *out;

	html_escape(&sb, "a&b<c>d\"e'f caf\xc3\xa9 \xc0\x80");
	out = strbuf_steal(&sb, NULL);
	assert_string_equal(out,
			    "a&amp;b&lt;c&gt;d&quot;e&#39;f caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd");
	free(out);
}

static void test_refuses_missing_fields_and_foreign_paths(void **state)
{
	const struct landing_link bad_link[] = {{"https://evil.example/", "x"}};
	const struct landing_link no_text[] = {{"/ok", NULL}};
	struct landing_page page = {"1", "/metrics", NULL, 0};
	const char *const bad_paths[] = {
		NULL, "", "metrics", "//evil.example/", "/\\evil", "javascript:alert(1)"};
	char *html = NULL;
	size_t len, i;

	for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		page.telemetry_path = bad_paths[i];
		assert_int_equal(landing_render(&page, &html, &len), -EINVAL);
	}
	page.telemetry_path = "/metrics";
	page.version = NULL;
	assert_int_equal(landing_render(&page, &html, &len), -EINVAL);
	page.version = "1";
	page.n_extra = 1;
	assert_int_equal(landing_render(&page, &html, &len), -EINVAL);
	page.extra = bad_link;
	assert_int_equal(landing_render(&page, &html, &len), -EINVAL);
	page.extra = no_text;
	assert_int_equal(landing_render(&page, &html, &len), -EINVAL);
	assert_int_equal(landing_render(NULL, &html, &len), -EINVAL);
	assert_null(html);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_has_title_version_and_links),
		cmocka_unit_test(test_inserted_text_is_escaped),
		cmocka_unit_test(test_html_escape),
		cmocka_unit_test(test_refuses_missing_fields_and_foreign_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
