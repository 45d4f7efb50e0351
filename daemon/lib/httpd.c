/* HTTP server over libmicrohttpd: binds its own socket (so a failure can be named exactly),
 * then hands it to MHD; routes GET/HEAD requests to handlers. See httpd.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"

#define HTTPD_DEFAULT_CONNECTION_LIMIT 64
#define HTTPD_DEFAULT_TIMEOUT_S 10
/* Per-connection memory: request line and headers must fit (MHD answers 414/431 if not). */
#define HTTPD_CONNECTION_MEMORY (32 * 1024)

struct httpd {
	struct MHD_Daemon *mhd;
	int listen_fd; /* ours until MHD serves on its copy */
	uint16_t port;
	struct httpd_route *routes;
	size_t n_routes;
};

struct httpd_request {
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
};

static void set_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!err || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	const char *p;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int httpd_parse_listen_address(const char *spec, struct sockaddr_storage *addr, socklen_t *len,
			       char *err, size_t err_size)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
	struct sockaddr_in *sin = (struct sockaddr_in *)addr;
	const char *colon, *port_str;
	char host[64];
	size_t host_len;
	uint16_t port;

	if (!spec) {
		set_err(err, err_size, "no listen address given");
		return -EINVAL;
	}
	memset(addr, 0, sizeof(*addr));
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':') {
			set_err(err, err_size,
				"listen address \"%s\": want [IPv6]:port, e.g. [::1]:9100", spec);
			return -EINVAL;
		}
		host_len = (size_t)(close - spec - 1);
		port_str = close + 2;
		if (host_len == 0 || host_len >= sizeof(host)) {
			set_err(err, err_size, "listen address \"%s\": bad IPv6 address", spec);
			return -EINVAL;
		}
		memcpy(host, spec + 1, host_len);
		host[host_len] = '\0';
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			set_err(err, err_size,
				"listen address \"%s\": \"%s\" is not an IPv6 address", spec, host);
			return -EINVAL;
		}
		if (parse_port(port_str, &port)) {
			set_err(err, err_size, "listen address \"%s\": bad port \"%s\"", spec,
				port_str);
			return -EINVAL;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}

	colon = strrchr(spec, ':');
	if (!colon) {
		set_err(err, err_size,
			"listen address \"%s\": port missing (want host:port, "
			"[IPv6]:port or :port)",
			spec);
		return -EINVAL;
	}
	host_len = (size_t)(colon - spec);
	if (memchr(spec, ':', host_len)) {
		set_err(err, err_size,
			"listen address \"%s\": IPv6 addresses need brackets, e.g. [::1]:9100",
			spec);
		return -EINVAL;
	}
	if (parse_port(colon + 1, &port)) {
		set_err(err, err_size, "listen address \"%s\": bad port \"%s\"", spec, colon + 1);
		return -EINVAL;
	}
	if (host_len >= sizeof(host)) {
		set_err(err, err_size, "listen address \"%s\": host too long", spec);
		return -EINVAL;
	}
	memcpy(host, spec, host_len);
	host[host_len] = '\0';

	if (host_len == 0) {
		/* Every interface: one dual-stack IPv6 socket (httpd_start falls back to IPv4
		 * where the kernel has no IPv6). */
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		set_err(err, err_size,
			"listen address \"%s\": \"%s\" is not an IPv4 address (names other than "
			"localhost are not resolved)",
			spec, host);
		return -EINVAL;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*len = sizeof(*sin);
	return 0;
}

static int open_listener(const struct sockaddr_storage *addr, socklen_t len)
{
	int fd, one = 1, zero = 0, err;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Lets a restarted daemon bind while old connections sit in TIME_WAIT; a port another
	 * socket listens on is still refused (that takes SO_REUSEPORT on both). */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (addr->ss_family == AF_INET6 &&
	     IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)addr)->sin6_addr) &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    bind(fd, (const struct sockaddr *)addr, len) || listen(fd, 64)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	fprintf(stderr, "httpd: ");
	vfprintf(stderr, fmt, ap);
}

static const struct httpd_route *find_route(const struct httpd *httpd, const char *path)
{
	const struct httpd_route *best = NULL;
	size_t i, best_len = 0, len;

	for (i = 0; i < httpd->n_routes; i++) {
		const struct httpd_route *r = &httpd->routes[i];

		len = strlen(r->path);
		if (!r->prefix && strcmp(r->path, path) == 0)
			return r;
		if (r->prefix && strncmp(r->path, path, len) == 0 && len > best_len) {
			best = r;
			best_len = len;
		}
	}
	return best;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status,
			       const char *content_type, char *body, size_t len, const char *allow)
{
	struct MHD_Response *response;
	enum MHD_Result ret;

	if (body)
		response = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	else
		response = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!response) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
	if (allow)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, response);
	MHD_destroy_response(response);
	return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned int status,
				    const char *text, const char *allow)
{
	char *body = strdup(text);

	return respond(conn, status, "text/plain; charset=utf-8", body, body ? strlen(body) : 0,
		       allow);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct httpd *httpd = cls;
	const struct httpd_route *route;
	struct httpd_request req = {conn, method, url};
	struct httpd_response resp = {MHD_HTTP_OK, "text/plain; charset=utf-8", NULL, 0};
	char text[128];
	int err;

	/* Answered on the first call, before any request body is read: nothing we serve
	 * takes one, and a 405 is best sent without reading it. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n",
				    "GET, HEAD");
	route = find_route(httpd, url);
	if (!route)
		return respond_text(conn, MHD_HTTP_NOT_FOUND, "Not Found\n", NULL);
	err = route->handler(&req, &resp, route->ctx);
	if (err < 0) {
		free(resp.body);
		snprintf(text, sizeof(text), "Internal Server Error: %s\n", strerror(-err));
		return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text, NULL);
	}
	return respond(conn, resp.status, resp.content_type ? resp.content_type : "text/plain",
		       resp.body, resp.body ? resp.len : 0, NULL);
}

static void format_address(const struct sockaddr_storage *addr, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(sin->sin_port));
	}
}

int httpd_start(const struct httpd_config *config, struct httpd **out, char *err, size_t err_size)
{
	struct sockaddr_storage addr, bound;
	socklen_t len, bound_len = sizeof(bound);
	struct httpd *httpd = NULL;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	char where[INET6_ADDRSTRLEN + 16];
	size_t i;
	int ret, mhd_fd;

	if (!config || !out || (config->n_routes && !config->routes)) {
		set_err(err, err_size, "httpd: bad configuration");
		return -EINVAL;
	}
	for (i = 0; i < config->n_routes; i++) {
		if (!config->routes[i].path || config->routes[i].path[0] != '/' ||
		    !config->routes[i].handler) {
			set_err(err, err_size, "httpd: route %zu has no /path or no handler", i);
			return -EINVAL;
		}
	}
	ret = httpd_parse_listen_address(config->listen_address, &addr, &len, err, err_size);
	if (ret)
		return ret;

	httpd = calloc(1, sizeof(*httpd));
	if (!httpd) {
		ret = -ENOMEM;
		goto fail;
	}
	httpd->listen_fd = -1;
	httpd->routes = calloc(config->n_routes + 1, sizeof(*httpd->routes));
	if (!httpd->routes) {
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(httpd->routes, config->routes, config->n_routes * sizeof(*httpd->routes));
	httpd->n_routes = config->n_routes;

	ret = open_listener(&addr, len);
	if (ret == -EAFNOSUPPORT && addr.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&addr)->sin6_addr)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&addr;
		uint16_t port = ((struct sockaddr_in6 *)&addr)->sin6_port;

		fprintf(stderr, "httpd: no IPv6 in this kernel; listening on IPv4 only\n");
		memset(&addr, 0, sizeof(addr));
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = port;
		len = sizeof(*sin);
		ret = open_listener(&addr, len);
	}
	format_address(&addr, where, sizeof(where));
	if (ret < 0) {
		set_err(err, err_size, "cannot listen on %s: %s%s", where, strerror(-ret),
			ret == -EADDRINUSE ? " (another process has this port)" : "");
		goto fail;
	}
	httpd->listen_fd = ret;
	if (getsockname(httpd->listen_fd, (struct sockaddr *)&bound, &bound_len) == 0)
		httpd->port =
		    ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						      : ((struct sockaddr_in *)&bound)->sin_port);
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	/* MHD closes the listen socket it is given when it stops, but may or may not when it
	 * fails to start: give it a copy, so our own descriptor is closed exactly once. */
	mhd_fd = fcntl(httpd->listen_fd, F_DUPFD_CLOEXEC, 0);
	if (mhd_fd < 0) {
		ret = -errno;
		set_err(err, err_size, "cannot listen on %s: %s", where, strerror(-ret));
		goto fail;
	}
	httpd->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, httpd, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
	    MHD_OPTION_LISTEN_SOCKET, mhd_fd, MHD_OPTION_CONNECTION_LIMIT,
	    config->connection_limit ? config->connection_limit : HTTPD_DEFAULT_CONNECTION_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    config->timeout_s ? config->timeout_s : HTTPD_DEFAULT_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_CONNECTION_MEMORY, MHD_OPTION_END);
	if (!httpd->mhd) {
		ret = -EIO;
		set_err(err, err_size, "cannot start libmicrohttpd on %s", where);
		goto fail;
	}
	close(httpd->listen_fd);
	httpd->listen_fd = -1;
	*out = httpd;
	return 0;
fail:
	if (httpd) {
		if (httpd->listen_fd >= 0)
			close(httpd->listen_fd);
		free(httpd->routes);
		free(httpd);
	}
	return ret;
}

uint16_t httpd_port(const struct httpd *httpd)
{
	return httpd->port;
}

void httpd_stop(struct httpd *httpd)
{
	if (!httpd)
		return;
	MHD_stop_daemon(httpd->mhd); /* closes the listen socket */
	free(httpd->routes);
	free(httpd);
}

const char *httpd_method(const struct httpd_request *req)
{
	return req->method;
}

const char *httpd_path(const struct httpd_request *req)
{
	return req->path;
}

const char *httpd_query(const struct httpd_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *httpd_header(const struct httpd_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}
