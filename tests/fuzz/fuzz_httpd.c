/* Fuzzes what ipivd and ipivtop make of HTTP-side text: the request target checks of httpd.c
 * (the 414 limits on length and query arguments, then routing), the Accept header
 * (expo_negotiate), listen addresses and ipivtop's --connect URL. Splitting and decoding the
 * query is libmicrohttpd's, not ours: the harness reaches httpd.c's checks directly (its
 * static functions, by including it) rather than through a server. Properties: each answer
 * agrees with the rule the code documents, restated here; a parsed address prints and
 * parses back to itself; a ", text/plain;q=0" more changes no negotiation.
 *
 * Input: two bytes (little endian): how many bytes of padding end the request target, so
 * that its length limit is reached with small inputs; then the text. */
#include "ipivd/httpd.c"

#include "expo.h"
#include "fuzz.h"
#include "ipivtop/http.h"

#define MAX_PAD (2 * HTTPD_MAX_URI_LEN)

static int ok_handler(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	return 0;
}

/* ipivd's table (manager.c) */
static struct httpd_route routes[] = {
	{.path = "/metrics", .handler = ok_handler},
	{.path = "/api/v1/vms", .handler = ok_handler},
	{.path = "/api/v1/vms/", .prefix = true, .handler = ok_handler},
	{.path = "/api/v1/status", .handler = ok_handler},
	{.path = "/api/v1/findings", .handler = ok_handler},
	{.path = "/", .prefix = true, .handler = ok_handler},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Exact paths win; otherwise the longest matching prefix. */
static void check_route(const char *path)
{
	struct httpd httpd = {.routes = routes, .n_routes = N_ROUTES};
	const struct httpd_route *got = find_route(&httpd, path), *want = NULL;

	for (size_t i = 0; i < N_ROUTES && !(want && !want->prefix); i++) {
		const struct httpd_route *r = &routes[i];

		if (!r->prefix && strcmp(r->path, path) == 0)
			want = r;
		else if (r->prefix && strncmp(r->path, path, strlen(r->path)) == 0 &&
			 (!want || strlen(r->path) > strlen(want->path)))
			want = r;
	}
	FUZZ_CHECK(got == want, "\"%s\" routed to %s, want %s", path, got ? got->path : "none",
		   want ? want->path : "none");
}

/* The target check: over the length or the argument limit, the query is dropped and the
 * request marked for 414; anything else passes untouched, to be routed. */
static void check_target(const char *text, size_t pad)
{
	size_t len = strlen(text);
	char *uri = malloc(len + pad + 2), *before;
	const char *query;
	size_t args = 1;
	bool too_long;
	void *mark;

	FUZZ_CHECK(uri, "%s", "out of memory");
	uri[0] = '/';
	memcpy(uri + 1, text, len);
	memset(uri + 1 + len, 'a', pad);
	uri[1 + len + pad] = '\0';
	before = strdup(uri);
	FUZZ_CHECK(before, "%s", "out of memory");
	query = strchr(before, '?');
	for (const char *p = query; p && *p; p++)
		args += *p == '&';
	too_long = strlen(before) > HTTPD_MAX_URI_LEN || args > HTTPD_MAX_QUERY_ARGS;

	mark = on_uri(NULL, uri, NULL);
	FUZZ_CHECK((mark == &uri_too_long) == too_long, "%zu bytes, %zu arguments: %s",
		   strlen(before), args, mark ? "refused" : "passed");
	if (too_long && query)
		FUZZ_CHECK(strlen(uri) == (size_t)(query - before) + 1 &&
				   uri[strlen(uri) - 1] == '?',
			   "%s", "the query of a refused target was not dropped");
	else
		FUZZ_CHECK(strcmp(uri, before) == 0, "%s", "the target was changed");
	if (!too_long) {
		/* MHD routes the path, without the query */
		if (strchr(uri, '?'))
			*strchr(uri, '?') = '\0';
		check_route(uri);
	}
	free(uri);
	free(before);
}

static void check_accept(const char *accept)
{
	enum expo_format f = expo_negotiate(accept);
	char *more;

	FUZZ_CHECK(f == EXPO_TEXT_0_0_4 || f == EXPO_OPENMETRICS_1_0_0, "format %d", f);
	if (!strcasestr(accept, "openmetrics"))
		FUZZ_CHECK(f == EXPO_TEXT_0_0_4, "\"%s\" gives OpenMetrics", accept);
	FUZZ_CHECK(asprintf(&more, "%s, text/plain;q=0", accept) > 0, "%s", "out of memory");
	FUZZ_CHECK(expo_negotiate(more) == f, "a refused range changes \"%s\"", accept);
	free(more);
	FUZZ_CHECK(asprintf(&more, "text/plain; q=0,%s", accept) > 0, "%s", "out of memory");
	FUZZ_CHECK(expo_negotiate(more) == f, "a refused range before \"%s\" changes it", accept);
	free(more);
}

static void check_listen_address(const char *spec)
{
	struct sockaddr_storage addr, again;
	socklen_t len, len2;
	char err[512] = "", printed[INET6_ADDRSTRLEN + 16];
	int r = httpd_parse_listen_address(spec, &addr, &len, err, sizeof(err));

	FUZZ_CHECK(r == 0 || r == -EINVAL, "returned %d", r);
	if (r) {
		FUZZ_CHECK(err[0], "\"%s\" refused without a reason", spec);
		return;
	}
	FUZZ_CHECK((addr.ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
			   (addr.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6)),
		   "\"%s\": family %d, length %u", spec, addr.ss_family, (unsigned)len);
	format_address(&addr, printed, sizeof(printed));
	r = httpd_parse_listen_address(printed, &again, &len2, err, sizeof(err));
	FUZZ_CHECK(r == 0 && len2 == len && memcmp(&addr, &again, len) == 0,
		   "\"%s\" printed as \"%s\", which reads back differently (%d: %s)", spec, printed,
		   r, err);
}

static void check_url(const char *url)
{
	struct top_url u;
	char err[512] = "", *end;
	long port;
	int r = top_url_parse(url, &u, err, sizeof(err));

	FUZZ_CHECK(r == 0 || r == -EINVAL, "returned %d", r);
	if (r) {
		FUZZ_CHECK(err[0], "\"%s\" refused without a reason", url);
		return;
	}
	FUZZ_CHECK(u.host[0], "\"%s\": no host", url);
	port = strtol(u.port, &end, 10);
	FUZZ_CHECK(!*end && port >= 1 && port <= 65535, "\"%s\": port \"%s\"", url, u.port);
	FUZZ_CHECK(!strpbrk(u.prefix, "?# \r\n"), "\"%s\": prefix \"%s\"", url, u.prefix);
	FUZZ_CHECK(!u.prefix[0] || (u.prefix[0] == '/' && u.prefix[strlen(u.prefix) - 1] != '/'),
		   "\"%s\": prefix \"%s\"", url, u.prefix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pad;
	char *text;

	if (size < 2)
		return 0;
	pad = (data[0] | (size_t)data[1] << 8) % (MAX_PAD + 1);
	text = strndup((const char *)data + 2, size - 2); /* up to a NUL, as MHD hands it */
	FUZZ_CHECK(text, "%s", "out of memory");
	check_target(text, pad);
	check_accept(text);
	check_listen_address(text);
	check_url(text);
	free(text);
	return 0;
}
