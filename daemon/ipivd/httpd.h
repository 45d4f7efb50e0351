/* A small HTTP server over libmicrohttpd: listen-address parsing in exporter-toolkit syntax,
 * a route table of GET handlers, 404/405/HEAD handling, limits that keep it answering under
 * slow, idle or oversized clients, --web.config.file (TLS, basic auth) and gzip. */
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
 * Handlers run on libmicrohttpd's worker threads (a pool of internal polling threads): several
 * requests may be in handlers at once, concurrently with every other thread of the program,
 * so what they read must be guarded. A handler returns 0, or a negative errno to answer 500.
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

/* What keeps the server answering. A zero field takes its HTTPD_DEFAULT_* value. */
struct httpd_limits {
	/* Open at once, in total. One more closes the connection that has waited longest
	 * for its request (a flood costs a scrape a round trip, not the read deadline). */
	unsigned int max_connections;
	unsigned int max_connections_per_ip; /* open at once from one client address */
	/* A request line and its headers must arrive within this many seconds of the
	 * connection (or the previous response on it): a client trickling bytes is closed.
	 * It is also the idle timeout. */
	unsigned int read_timeout_s;
	/* A response must be taken whole within this many seconds of its request reaching a
	 * handler: a client reading it a few bytes at a time is closed. (A client that reads
	 * nothing meets the idle timeout first.) */
	unsigned int write_timeout_s;
	unsigned int workers; /* polling threads; a handler running blocks only its own */
};

#define HTTPD_DEFAULT_MAX_CONNECTIONS	     512
#define HTTPD_DEFAULT_MAX_CONNECTIONS_PER_IP 32
#define HTTPD_DEFAULT_READ_TIMEOUT_S	     10
#define HTTPD_DEFAULT_WRITE_TIMEOUT_S	     30
#define HTTPD_DEFAULT_WORKERS		     4
/* A longer request target, or more query arguments, is answered 414 unread. */
#define HTTPD_MAX_URI_LEN		     8192
#define HTTPD_MAX_QUERY_ARGS		     64

struct httpd_config {
	/* "host:port", "[v6]:port" or ":port" (every interface, IPv6 and IPv4). host is a
	 * numeric address or "localhost" (127.0.0.1): no DNS lookups. Port 0 picks a free one. */
	const char *listen_address;
	const struct httpd_route *routes; /* copied; the strings must outlive the server */
	size_t n_routes;
	struct httpd_limits limits;
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
/* Stops serving; waits for the handlers running, if any. NULL is fine. */
void httpd_stop(struct httpd *httpd);

/*
 * --web.config.file (exporter-toolkit's format, daemon/ipivd/webconfig.h) for every server
 * started after this: TLS when it names a certificate, basic auth when it lists users. Returns
 * 0 or a negative errno with one line in err naming the file or key at fault. The file (and
 * the certificates it names) is re-read when it changes, checked at each connection and
 * request; a version that fails to load keeps the previous config and logs one line. TLS
 * itself cannot be turned on or off without a restart.
 */
int httpd_web_config_load(const char *path, char *err, size_t err_size);
/* Is the web config loaded one that serves TLS? */
bool httpd_web_config_tls(void);
/* Re-read the file at the next connection or request, changed or not (async-signal-safe:
 * for SIGHUP). */
void httpd_web_config_reload(void);
/* Back to no web config, for servers started after this (tests). */
void httpd_web_config_clear(void);

/* Does an Accept-Encoding header allow gzip (gzip or x-gzip, else *, with q > 0)? */
bool httpd_accepts_gzip(const char *accept_encoding);
/* len bytes as one gzip member (RFC 1952), malloc()ed into out. 0 or a negative errno. */
int httpd_gzip(const char *in, size_t len, char **out, size_t *out_len);

const char *httpd_method(const struct httpd_request *req);
const char *httpd_path(const struct httpd_request *req);
/* A query-string parameter ("?vm=web" → "web"), decoded; NULL when absent. */
const char *httpd_query(const struct httpd_request *req, const char *key);
/* A request header (case-insensitive name); NULL when absent. */
const char *httpd_header(const struct httpd_request *req, const char *name);

#endif
