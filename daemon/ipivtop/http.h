/* A minimal HTTP/1.0 GET client over a TCP socket, enough to read ipivd's JSON API: URL
 * parsing ("http://host[:port][/prefix]"), a deadline for the whole request, one-line errors. */
#ifndef IPIV_TOP_HTTP_H
#define IPIV_TOP_HTTP_H

#include <stddef.h>

struct top_url {
	char host[256]; /* as written, without brackets for IPv6 */
	char port[8];
	char prefix[256]; /* path before /api/v1, without a trailing slash ("" for none) */
};

/* Parses URL. Returns 0 or -EINVAL with one line in err, e.g. "https is not supported". */
int top_url_parse(const char *url, struct top_url *out, char *err, size_t err_size);

/*
 * GETs prefix + path from url within timeout_s seconds. On 200 the body is returned in
 * *body (NUL-terminated, free() it) and its length in *len. Returns 0, or a negative errno
 * with one line in err: -ECONNREFUSED ("connection refused"), -ETIMEDOUT, -EHOSTUNREACH
 * (name lookup), -EPROTO (not HTTP, or a status other than 200: -ENOENT for 404).
 */
int top_http_get(const struct top_url *url, const char *path, double timeout_s, char **body,
		 size_t *len, char *err, size_t err_size);

#endif
