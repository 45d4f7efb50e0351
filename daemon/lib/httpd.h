/* A small HTTP server over libmicrohttpd: listen-address parsing in exporter-toolkit syntax,
 * a route table of GET handlers, 404/405/HEAD handling and request limits. */
#ifndef IPIV_HTTPD_H
#define IPIV_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct httpd;
struct httpd_request;

/* What a handler produces. status and content_type come preset to 200 and text/plain. */
struct httpd_response {
	unsigned int status;
	const char *content_type; /* must stay valid after the handler returns (a literal) */
	char *body;		  /* malloc()ed; the server frees it, also when the handler fails */
	size_t len;
};

/*
 * Handlers run on libmicrohttpd's internal polling thread (MHD_USE_INTERNAL_POLLING_THREAD):
 * one request at a time, but concurrently with every other thread of the program, so what
 * they read must be guarded. A handler returns 0, or a negative errno to answer 500.
 * Only GET and HEAD reach handlers; HEAD gets the GET response's headers without its body.
 */
typedef int (*httpd_handler_fn)(const struct httpd_request *req, struct httpd_response *resp,
				void *ctx);

struct httpd_route {
	const char *path; /* exact path, or a prefix when prefix is set ("/api/v1/vms/") */
	bool prefix;
	httpd_handler_fn handler;
	void *ctx;
};

struct httpd_config {
	/* "host:port", "[v6]:port" or ":port" (every interface, IPv6 and IPv4). host is a
	 * numeric address or "localhost" (127.0.0.1): no DNS lookups. Port 0 picks a free one. */
	const char *listen_address;
	const struct httpd_route *routes; /* copied; the strings must outlive the server */
	size_t n_routes;
	unsigned int connection_limit; /* 0: 64 */
	unsigned int timeout_s;	       /* idle connections closed after this; 0: 10 */
};

/*
 * Parses a listen address. Returns 0 or -EINVAL, with a one-line reason in err (if given)
 * such as: listen address "::1:80": IPv6 addresses need brackets, e.g. [::1]:9100.
 */
int httpd_parse_listen_address(const char *spec, struct sockaddr_storage *addr, socklen_t *len,
			       char *err, size_t err_size);

/*
 * Binds, listens and starts serving. Returns 0 or a negative errno (-EINVAL for a bad
 * address, -EADDRINUSE for a port in use, -EACCES for a privileged port...), with a one-line
 * reason naming the address in err (if given).
 */
int httpd_start(const struct httpd_config *config, struct httpd **out, char *err, size_t err_size);
/* The port actually bound (useful after port 0). */
uint16_t httpd_port(const struct httpd *httpd);
/* Stops serving; waits for the handler running, if any. NULL is fine. */
void httpd_stop(struct httpd *httpd);

const char *httpd_method(const struct httpd_request *req);
const char *httpd_path(const struct httpd_request *req);
/* A query-string parameter ("?vm=web" → "web"), decoded; NULL when absent. */
const char *httpd_query(const struct httpd_request *req, const char *key);
/* A request header (case-insensitive name); NULL when absent. */
const char *httpd_header(const struct httpd_request *req, const char *name);

#endif
