/* A minimal HTTP/1.0 GET client for ipivd's JSON API: one request per connection, read to EOF,
 * the whole exchange bounded by a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

/* Largest response accepted: a host with 1024 VMs in detail stays far below. */
#define HTTP_MAX_RESPONSE (64u << 20)

int top_url_parse(const char *url, struct top_url *u, char *err, size_t err_size)
{
	const char *p = url, *host_end, *port_start = NULL, *path;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (!strncmp(p, "https://", 8)) {
		snprintf(err, err_size, "URL \"%.100s\": https is not supported, use http://", url);
		return -EINVAL;
	}
	if (!strncmp(p, "http://", 7))
		p += 7;
	else if (strstr(p, "://")) {
		snprintf(err, err_size, "URL \"%.100s\": only http:// is supported", url);
		return -EINVAL;
	}
	path = p + strcspn(p, "/?#");
	if (*p == '[') {
		host_end = memchr(p, ']', path - p);
		if (!host_end) {
			snprintf(err, err_size, "URL \"%.100s\": unterminated [IPv6] address", url);
			return -EINVAL;
		}
		n = host_end - p - 1;
		if (n == 0 || n >= sizeof(u->host))
			goto bad_host;
		memcpy(u->host, p + 1, n);
		if (host_end + 1 < path) {
			if (host_end[1] != ':')
				goto bad_host;
			port_start = host_end + 2;
		}
	} else {
		const char *colon = memchr(p, ':', path - p);

		host_end = colon ? colon : path;
		n = host_end - p;
		if (n == 0 || n >= sizeof(u->host))
			goto bad_host;
		memcpy(u->host, p, n);
		if (colon)
			port_start = colon + 1;
	}
	if (port_start) {
		char *end;
		long port;

		n = path - port_start;
		port = strtol(port_start, &end, 10);
		if (n == 0 || n > 5 || end != path || port < 1 || port > 65535) {
			snprintf(err, err_size, "URL \"%.100s\": bad port", url);
			return -EINVAL;
		}
		snprintf(u->port, sizeof(u->port), "%ld", port);
	} else {
		snprintf(u->port, sizeof(u->port), "9712"); /* ipivd's default */
	}
	if (*path && *path != '/') {
		snprintf(err, err_size, "URL \"%.100s\": no query or fragment expected", url);
		return -EINVAL;
	}
	n = strlen(path);
	while (n && path[n - 1] == '/')
		n--;
	if (n >= sizeof(u->prefix) || memchr(path, '?', n) || memchr(path, '#', n) ||
	    strpbrk(path, " \r\n")) {
		snprintf(err, err_size, "URL \"%.100s\": bad path", url);
		return -EINVAL;
	}
	memcpy(u->prefix, path, n);
	return 0;
bad_host:
	snprintf(err, err_size, "URL \"%.100s\": no host, expected http://host:port", url);
	return -EINVAL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, double deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	double left = deadline - now_s();
	int r;

	if (left <= 0)
		return -ETIMEDOUT;
	do
		r = poll(&pfd, 1, (int)(left * 1000) + 1);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

static int connect_to(const struct top_url *u, double deadline, char *err, size_t err_size)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd = -1, r, last = -ECONNREFUSED;

	r = getaddrinfo(u->host, u->port, &hints, &res);
	if (r) {
		snprintf(err, err_size, "cannot resolve %s: %s", u->host, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			last = -errno;
			continue;
		}
		r = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (r < 0 && errno == EINPROGRESS) {
			r = wait_fd(fd, POLLOUT, deadline);
			if (!r && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr)
				r = -soerr;
		} else if (r < 0) {
			r = -errno;
		}
		if (!r)
			break;
		last = r;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, err_size, "cannot reach ipivd at %s:%s: %s", u->host, u->port,
			 last == -ETIMEDOUT ? "timed out" : strerror(-last));
	return fd < 0 ? last : fd;
}

int top_http_get(const struct top_url *u, const char *path, double timeout_s, char **body,
		 size_t *len, char *err, size_t err_size)
{
	double deadline = now_s() + timeout_s;
	char req[1024], *buf = NULL, *hdr_end;
	size_t used = 0, cap = 0, sent = 0, req_len;
	int fd, r = 0, status;

	*body = NULL;
	*len = 0;
	req_len = snprintf(req, sizeof(req),
			   "GET %s%s HTTP/1.0\r\nHost: %s:%s\r\nAccept: application/json\r\n"
			   "User-Agent: ipivtop\r\nConnection: close\r\n\r\n",
			   u->prefix, path, u->host, u->port);
	if (req_len >= sizeof(req)) {
		snprintf(err, err_size, "request path too long");
		return -EINVAL;
	}
	fd = connect_to(u, deadline, err, err_size);
	if (fd < 0)
		return fd;
	while (sent < req_len) {
		ssize_t n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			r = wait_fd(fd, POLLOUT, deadline);
			if (r)
				goto io_error;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto io_error;
		}
		sent += n;
	}
	for (;;) {
		ssize_t n;

		if (cap - used < 4096) {
			char *b;

			cap = cap ? cap * 2 : 16384;
			if (cap > HTTP_MAX_RESPONSE) {
				snprintf(err, err_size, "response from %s:%s larger than %u MiB",
					 u->host, u->port, HTTP_MAX_RESPONSE >> 20);
				r = -EPROTO;
				goto cleanup;
			}
			b = realloc(buf, cap);
			if (!b) {
				r = -ENOMEM;
				snprintf(err, err_size, "out of memory");
				goto cleanup;
			}
			buf = b;
		}
		n = recv(fd, buf + used, cap - used - 1, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			r = wait_fd(fd, POLLIN, deadline);
			if (r)
				goto io_error;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto io_error;
		}
		if (n == 0)
			break;
		used += n;
	}
	close(fd);
	fd = -1;
	if (!buf) {
		snprintf(err, err_size, "%s:%s closed the connection without an answer", u->host,
			 u->port);
		return -EPROTO;
	}
	buf[used] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !(hdr_end = strstr(buf, "\r\n\r\n"))) {
		snprintf(err, err_size, "%s:%s does not speak HTTP", u->host, u->port);
		r = -EPROTO;
		goto cleanup;
	}
	if (status != 200) {
		snprintf(err, err_size, "GET %s%s: HTTP status %d", u->prefix, path, status);
		r = status == 404 ? -ENOENT : -EPROTO;
		goto cleanup;
	}
	hdr_end += 4;
	*len = used - (hdr_end - buf);
	memmove(buf, hdr_end, *len + 1);
	*body = buf;
	return 0;
io_error:
	snprintf(err, err_size, "ipivd at %s:%s: %s", u->host, u->port,
		 r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}
