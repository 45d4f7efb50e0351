/* Unit tests for daemon/ipivd/httpd.c: real requests over loopback sockets (200, 404, 405,
 * HEAD, query parameters, handler failure, prefix routes, idle timeout, keep-alive and
 * pipelined requests), the limits (read deadline against a trickling client, write deadline
 * against a slow reader, per-address limit, eviction when full, also of slow readers, 4xx
 * for oversized requests, a blocked handler or a slow reader not blocking others,
 * rate-limited logging), the listen address errors a user can make, including a port
 * already in use, gzip by Accept-Encoding, and basic auth and headers from a
 * --web.config.file that is re-read. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <pthread.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "ipivd/httpd.h"
#include "log.h"

static int hello(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	resp->body = strdup(ctx);
	if (!resp->body)
		return -ENOMEM;
	resp->len = strlen(resp->body);
	resp->content_type = "text/html; charset=utf-8";
	return 0;
}

static int echo_query(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	const char *vm = httpd_query(req, "vm"), *accept = httpd_header(req, "accept");

	if (asprintf(&resp->body, "vm=%s accept=%s path=%s method=%s", vm ? vm : "(none)",
		     accept ? accept : "(none)", httpd_path(req), httpd_method(req)) < 0)
		return -ENOMEM;
	resp->len = strlen(resp->body);
	resp->status = 202;
	return 0;
}

static int failing(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	resp->body = strdup("partial"); /* must be freed by the server, not sent */
	resp->len = 7;
	return -ENOSPC;
}

/* /block holds its worker until the test lets it go (or 10 s pass). */
static pthread_mutex_t block_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_cond = PTHREAD_COND_INITIALIZER;
static bool block_entered, block_released;

static int blocking(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&block_lock);
	block_entered = true;
	pthread_cond_broadcast(&block_cond);
	while (!block_released && pthread_cond_timedwait(&block_cond, &block_lock, &until) == 0)
		;
	pthread_mutex_unlock(&block_lock);
	return hello(req, resp, "released");
}

/* /sleep takes 2 s to answer, as /metrics might waiting for the manager during a poll. */
static int sleepy(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	usleep(2000 * 1000);
	return hello(req, resp, "slept");
}

/* A body worth compressing, the same every time: 100 lines of 60 bytes. */
static int big(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	FILE *f = open_memstream(&resp->body, &resp->len);

	if (!f)
		return -ENOMEM;
	for (int i = 0; i < 100; i++)
		fprintf(f, "ipiv_series{vm=\"vm-%02d\",path=\"x2apic_msr\"} %20d\n", i % 7,
			i * 7919);
	return fclose(f) ? -ENOMEM : 0;
}

/* A body no socket buffer holds: 8 MiB, a slow reader takes hours over it. */
#define HUGE_BYTES (8 << 20)

static int huge(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	resp->body = malloc(HUGE_BYTES);
	if (!resp->body)
		return -ENOMEM;
	memset(resp->body, 'h', HUGE_BYTES);
	resp->len = HUGE_BYTES;
	return 0;
}

static const struct httpd_route routes[] = {
	{"/", false, hello, "<h1>home</h1>"},
	{"/echo", false, echo_query, NULL},
	{"/fail", false, failing, NULL},
	{"/api/v1/vms/", true, echo_query, NULL},
	{"/api/v1/vms/special", false, hello, "exact wins"},
	{"/block", false, blocking, NULL},
	{"/big", false, big, NULL},
	{"/huge", false, huge, NULL},
	{"/sleep", false, sleepy, NULL},
};

struct reply {
	int status;
	char headers[8192];
	char body[8192];
	size_t body_len;
};

/* A connection to port on 127.0.0.1 from the loopback address src (e.g. "127.0.0.2"). */
static int connect_from(const char *src, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {10, 0};

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, src, &sin.sin_addr), 1);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		fail_msg("bind to %s: %s", src, strerror(errno));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		fail_msg("connect to port %u: %s", port, strerror(errno));
	return fd;
}

static int connect_to(int family, uint16_t port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {10, 0};

	assert_true(fd >= 0);
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	}
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	if (connect(fd, (struct sockaddr *)&ss, len) != 0)
		fail_msg("connect to port %u: %s", port, strerror(errno));
	return fd;
}

/* Sends one raw HTTP/1.0 request and reads the reply to the end (the server closes). */
static void request_on(int fd, const char *raw, struct reply *r)
{
	char buf[8192], *sep;
	size_t n = 0;
	ssize_t got;

	assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
	while (n < sizeof(buf) - 1 && (got = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)got;
	close(fd);
	buf[n] = '\0';
	assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &r->status), 1);
	sep = strstr(buf, "\r\n\r\n");
	assert_non_null(sep);
	*sep = '\0';
	snprintf(r->headers, sizeof(r->headers), "%s", buf);
	r->body_len = n - (size_t)(sep + 4 - buf);
	memcpy(r->body, sep + 4, r->body_len);
	r->body[r->body_len] = '\0';
}

static void request(int family, uint16_t port, const char *raw, struct reply *r)
{
	request_on(connect_to(family, port), raw, r);
}

/* A kept-alive connection and what was read from it beyond the responses taken. */
struct stream {
	int fd;
	char buf[32768];
	size_t have;
};

/* The next response on a kept-alive connection, its body as long as its Content-Length says
 * (none after a HEAD). Fails the test if the connection ends first. */
static void next_response(struct stream *st, bool head, struct reply *r)
{
	size_t head_len = 0, body_len = 0;
	const char *length;
	char *sep;
	ssize_t got;

	for (;;) {
		st->buf[st->have] = '\0';
		sep = strstr(st->buf, "\r\n\r\n");
		if (sep) {
			head_len = (size_t)(sep + 4 - st->buf);
			*sep = '\0';
			length = strcasestr(st->buf, "\r\nContent-Length:");
			body_len = length && !head ? strtoul(length + 17, NULL, 10) : 0;
			*sep = '\r';
			if (st->have >= head_len + body_len)
				break;
		}
		assert_true(st->have < sizeof(st->buf) - 1);
		got = read(st->fd, st->buf + st->have, sizeof(st->buf) - 1 - st->have);
		if (got <= 0)
			fail_msg("the connection ended %zu bytes into a response: %s", st->have,
				 st->buf);
		st->have += (size_t)got;
	}
	assert_int_equal(sscanf(st->buf, "HTTP/1.1 %d", &r->status), 1);
	assert_true(head_len - 4 < sizeof(r->headers) && body_len < sizeof(r->body));
	memcpy(r->headers, st->buf, head_len - 4);
	r->headers[head_len - 4] = '\0';
	memcpy(r->body, st->buf + head_len, body_len);
	r->body[body_len] = '\0';
	r->body_len = body_len;
	st->have -= head_len + body_len;
	memmove(st->buf, st->buf + head_len + body_len, st->have);
}

/* GET /huge on a connection whose client advertises the smallest receive window the kernel
 * allows: a reader that takes its 8 MiB slowly, or not at all. */
static int start_huge(uint16_t port)
{
	const char *get = "GET /huge HTTP/1.1\r\nHost: x\r\n\r\n";
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), smallest = 1;
	struct timeval tv = {10, 0};

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* set before connecting: the window scale is agreed in the handshake */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &smallest, sizeof(smallest)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		fail_msg("connect to port %u: %s", port, strerror(errno));
	assert_int_equal(write(fd, get, strlen(get)), (ssize_t)strlen(get));
	return fd;
}

/* Reads a connection to its end as fast as it comes; the bytes read. Fails the test if the
 * server neither sends nor closes for 10 s. */
static size_t drain(int fd)
{
	static char buf[1 << 16];
	struct timeval tv = {10, 0};
	size_t total = 0;
	ssize_t got;

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)got;
	if (got < 0 && errno != ECONNRESET)
		fail_msg("the server left the connection open (%s after %zu bytes)",
			 strerror(errno), total);
	close(fd);
	return total;
}

static uint64_t elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - since->tv_sec) * 1000 +
	       (uint64_t)((now.tv_nsec - since->tv_nsec) / 1000000);
}

static struct httpd *start(const char *address)
{
	const struct httpd_config config = {
		.listen_address = address,
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(routes[0]),
		.limits = {.max_connections = 16,
			   .max_connections_per_ip = 8,
			   .read_timeout_s = 1,
			   .workers = 2},
	};
	struct httpd *httpd = NULL;
	char err[256] = "";

	if (httpd_start(&config, &httpd, err, sizeof(err)) != 0)
		fail_msg("httpd_start(%s): %s", address, err);
	assert_true(httpd_port(httpd) > 0);
	return httpd;
}

static void test_get_routes_and_404(void **state)
{
	struct httpd *httpd = start("127.0.0.1:0");
	uint16_t port = httpd_port(httpd);
	struct reply r;

	request(AF_INET, port, "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "<h1>home</h1>");
	assert_non_null(strcasestr(r.headers, "\r\nContent-Type: text/html; charset=utf-8"));
	assert_non_null(strcasestr(r.headers, "\r\nContent-Length: 13"));

	request(AF_INET, port, "GET /nope HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "Not Found\n");
	request(AF_INET, port, "GET /echo/more HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 404);

	request(AF_INET, port, "GET /echo?vm=web%20one&x=1 HTTP/1.0\r\nAccept: text/plain\r\n\r\n",
		&r);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body, "vm=web one accept=text/plain path=/echo method=GET");
	request(AF_INET, port, "GET /echo HTTP/1.0\r\n\r\n", &r);
	assert_string_equal(r.body, "vm=(none) accept=(none) path=/echo method=GET");

	request(AF_INET, port, "GET /api/v1/vms/web HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 202);
	assert_non_null(strstr(r.body, "path=/api/v1/vms/web "));
	request(AF_INET, port, "GET /api/v1/vms/special HTTP/1.0\r\n\r\n", &r);
	assert_string_equal(r.body, "exact wins");
	request(AF_INET, port, "GET /api/v1/vms HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 404);

	request(AF_INET, port, "GET /fail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, strerror(ENOSPC)));
	assert_null(strstr(r.body, "partial"));
	httpd_stop(httpd);
}

static void test_head_and_other_methods(void **state)
{
	struct httpd *httpd = start("127.0.0.1:0");
	uint16_t port = httpd_port(httpd);
	struct reply r;

	request(AF_INET, port, "HEAD / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	assert_non_null(strcasestr(r.headers, "\r\nContent-Length: 13"));
	assert_non_null(strcasestr(r.headers, "\r\nContent-Type: text/html"));

	request(AF_INET, port, "POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.headers, "\r\nAllow: GET, HEAD"));
	request(AF_INET, port, "DELETE /nope HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	request(AF_INET, port, "PUT /echo HTTP/1.0\r\nContent-Length: 0\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	httpd_stop(httpd);
}

static void test_keep_alive_and_pipelined_requests(void **state)
{
	struct httpd *httpd = start("127.0.0.1:0");
	uint16_t port = httpd_port(httpd);
	const char *four = "GET /echo?vm=one HTTP/1.1\r\nHost: x\r\n\r\n"
			   "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n"
			   "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
			   "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *last = "GET /echo?vm=two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	const char *post_first = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
				 "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct stream st = {.fd = connect_to(AF_INET, port)};
	struct reply r;
	char c;

	/* Four requests in one write: four answers in order, the connection kept alive. */
	assert_int_equal(write(st.fd, four, strlen(four)), (ssize_t)strlen(four));
	next_response(&st, false, &r);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body, "vm=one accept=(none) path=/echo method=GET");
	assert_null(strcasestr(r.headers, "\r\nConnection: close"));
	next_response(&st, true, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strcasestr(r.headers, "\r\nVary: Accept-Encoding"));
	next_response(&st, false, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "Not Found\n");
	next_response(&st, false, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "<h1>home</h1>");
	assert_int_equal(st.have, 0);

	/* Later on the same connection, until the client asks to close. */
	assert_int_equal(write(st.fd, last, strlen(last)), (ssize_t)strlen(last));
	next_response(&st, false, &r);
	assert_string_equal(r.body, "vm=two accept=(none) path=/echo method=GET");
	assert_non_null(strcasestr(r.headers, "\r\nConnection: close"));
	assert_int_equal(read(st.fd, &c, 1), 0);
	close(st.fd);

	/* A request answered before its body is read (405) is the last on its connection: the
	 * answer says so, and what was pipelined behind it is not read. */
	st = (struct stream){.fd = connect_to(AF_INET, port)};
	assert_int_equal(write(st.fd, post_first, strlen(post_first)), (ssize_t)strlen(post_first));
	next_response(&st, false, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.headers, "\r\nConnection: close"));
	assert_int_equal(st.have, 0);
	assert_int_equal(read(st.fd, &c, 1), 0);
	close(st.fd);
	httpd_stop(httpd);
}

static void test_idle_connection_is_closed(void **state)
{
	struct httpd *httpd = start("127.0.0.1:0"); /* timeout 1 s */
	int fd = connect_to(AF_INET, httpd_port(httpd));
	char c;

	/* Half a request, then silence: the server hangs up instead of waiting forever
	 * (the read would fail with EAGAIN after 10 s otherwise). */
	assert_int_equal(write(fd, "GET / HT", 8), 8);
	assert_int_equal(read(fd, &c, 1), 0);
	close(fd);
	httpd_stop(httpd);
}

static void test_trickling_client_is_closed(void **state)
{
	struct httpd *httpd = start("127.0.0.1:0"); /* read deadline 1 s */
	int fd = connect_to(AF_INET, httpd_port(httpd));
	const char *partial = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa";
	struct timeval tv = {0, 200 * 1000};
	size_t sent = 0;
	ssize_t got;
	char c;

	/* A byte every 200 ms keeps MHD's idle timer (1 s) from ever firing; only the read
	 * deadline ends it. The loop would trickle for 10 s. */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	for (; sent < strlen(partial); sent++) {
		if (send(fd, partial + sent, 1, MSG_NOSIGNAL) != 1)
			break;
		got = read(fd, &c, 1);
		if (got == 0 || (got < 0 && errno != EAGAIN))
			break;
	}
	if (sent == strlen(partial))
		fail_msg("a client trickling a byte every 200 ms was never closed");
	assert_true(sent >= 3);
	close(fd);
	httpd_stop(httpd);
}

static void test_oversized_requests_get_4xx(void **state)
{
	struct httpd *httpd = start("127.0.0.1:0");
	uint16_t port = httpd_port(httpd);
	size_t size = 64 * 1024, i, n;
	char *raw = malloc(size);
	struct reply r;

	assert_non_null(raw);
	/* The most query arguments served, then one more, then MHD's pool overflow (which
	 * used to leave the client without an answer until the timeout). */
	for (i = 0; i < 3; i++) {
		const unsigned int args[] = {HTTPD_MAX_QUERY_ARGS, HTTPD_MAX_QUERY_ARGS + 1, 5000};
		unsigned int a;

		n = (size_t)snprintf(raw, size, "GET /echo?vm=x");
		for (a = 1; a < args[i]; a++)
			n += (size_t)snprintf(raw + n, size - n, "&a%u=1", a);
		snprintf(raw + n, size - n, " HTTP/1.0\r\n\r\n");
		request(AF_INET, port, raw, &r);
		assert_int_equal(r.status, i == 0 ? 202 : 414);
		if (i == 1)
			assert_non_null(strstr(r.body, "query arguments"));
	}

	n = (size_t)snprintf(raw, size, "GET /echo?");
	memset(raw + n, '&', 16000);
	snprintf(raw + n + 16000, size - n - 16000, " HTTP/1.0\r\n\r\n");
	request(AF_INET, port, raw, &r);
	assert_int_equal(r.status, 414);

	n = (size_t)snprintf(raw, size, "GET /");
	memset(raw + n, 'a', HTTPD_MAX_URI_LEN);
	snprintf(raw + n + HTTPD_MAX_URI_LEN, size - n - HTTPD_MAX_URI_LEN, " HTTP/1.0\r\n\r\n");
	request(AF_INET, port, raw, &r);
	assert_int_equal(r.status, 414);

	n = (size_t)snprintf(raw, size, "GET / HTTP/1.0\r\n");
	for (i = 0; i < 1000; i++)
		n += (size_t)snprintf(raw + n, size - n, "X-H%zu: y\r\n", i);
	snprintf(raw + n, size - n, "\r\n");
	request(AF_INET, port, raw, &r);
	assert_int_equal(r.status, 431);

	/* Still serving, on the same worker too. */
	request(AF_INET, port, "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	free(raw);
	httpd_stop(httpd);
}

static void test_per_address_limit(void **state)
{
	const struct httpd_config config = {
		.listen_address = "127.0.0.1:0",
		.routes = routes,
		.n_routes = 1,
		.limits = {.max_connections = 16,
			   .max_connections_per_ip = 4,
			   .read_timeout_s = 30},
	};
	struct httpd *httpd = NULL;
	int held[4], fd;
	char err[256] = "", c;
	struct reply r;
	size_t i;

	if (httpd_start(&config, &httpd, err, sizeof(err)) != 0)
		fail_msg("httpd_start: %s", err);
	for (i = 0; i < 4; i++)
		held[i] = connect_from("127.0.0.2", httpd_port(httpd));
	/* One more from that address is closed unanswered; another address is served. */
	fd = connect_from("127.0.0.2", httpd_port(httpd));
	(void)!write(fd, "GET / HTTP/1.0\r\n\r\n", 18);
	assert_true(read(fd, &c, 1) <= 0);
	close(fd);
	request_on(connect_from("127.0.0.3", httpd_port(httpd)), "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	/* Once one of the four goes, that address gets a slot back. */
	request_on(held[0], "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	for (i = 1; i < 4; i++)
		close(held[i]);
	httpd_stop(httpd);
}

static void test_full_server_evicts_longest_waiting(void **state)
{
	const struct httpd_config config = {
		.listen_address = "127.0.0.1:0",
		.routes = routes,
		.n_routes = 1,
		.limits = {.max_connections = 4, .max_connections_per_ip = 4, .read_timeout_s = 30},
	};
	struct httpd *httpd = NULL;
	int held[4];
	char err[256] = "", c;
	struct reply r;
	size_t i;

	if (httpd_start(&config, &httpd, err, sizeof(err)) != 0)
		fail_msg("httpd_start: %s", err);
	for (i = 0; i < 4; i++) {
		held[i] = connect_from("127.0.0.2", httpd_port(httpd));
		usleep(20 * 1000); /* so that held[0] has surely waited longest */
	}
	/* Full: a newcomer is served all the same, and the oldest idle one makes room. */
	request_on(connect_from("127.0.0.3", httpd_port(httpd)), "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(read(held[0], &c, 1) <= 0);
	request_on(held[3], "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	for (i = 0; i < 3; i++)
		close(held[i]);
	httpd_stop(httpd);
}

static void test_slow_reader_is_closed_and_blocks_no_one(void **state)
{
	/* One worker: the slow reader and the others share it. */
	const struct httpd_config config = {
		.listen_address = "127.0.0.1:0",
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(routes[0]),
		.limits = {.max_connections = 16,
			   .max_connections_per_ip = 8,
			   .read_timeout_s = 30,
			   .write_timeout_s = 1,
			   .workers = 1},
	};
	struct httpd *httpd = NULL;
	struct timespec start;
	size_t taken = 0, rest;
	char err[256] = "", buf[64];
	struct reply r;
	ssize_t got;
	int fd, served = 0;

	if (httpd_start(&config, &httpd, err, sizeof(err)) != 0)
		fail_msg("httpd_start: %s", err);
	fd = start_huge(httpd_port(httpd));
	/* 64 bytes every 100 ms for 2.5 s, past the write deadline (1 s) and the sweep after
	 * it; the idle timeout (30 s) never fires. Others are answered meanwhile. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (elapsed_ms(&start) < 2500) {
		usleep(100 * 1000);
		got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (got > 0)
			taken += (size_t)got;
		else if (got == 0 || errno != EAGAIN)
			break;
		if (taken && served < 3) {
			request(AF_INET, httpd_port(httpd), "GET / HTTP/1.0\r\n\r\n", &r);
			assert_int_equal(r.status, 200);
			served++;
		}
	}
	assert_int_equal(served, 3);
	/* What was still on its way, read at full speed: the response ends short. */
	rest = drain(fd);
	print_message("slow reader: %zu bytes slowly, %zu more, of %d\n", taken, rest, HUGE_BYTES);
	assert_true(taken > 0);
	assert_true(taken + rest < HUGE_BYTES / 2);
	httpd_stop(httpd);
}

static void test_full_server_evicts_slowest_reader(void **state)
{
	const struct httpd_config config = {
		.listen_address = "127.0.0.1:0",
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(routes[0]),
		.limits = {.max_connections = 2, .max_connections_per_ip = 2, .read_timeout_s = 30},
	};
	struct httpd *httpd = NULL;
	char err[256] = "", c;
	struct reply r;
	int fd[2], i;

	if (httpd_start(&config, &httpd, err, sizeof(err)) != 0)
		fail_msg("httpd_start: %s", err);
	/* Both connections are being answered, and take nothing. */
	for (i = 0; i < 2; i++) {
		fd[i] = start_huge(httpd_port(httpd));
		assert_int_equal(read(fd[i], &c, 1), 1);
		usleep(100 * 1000); /* so that fd[0] has surely been answered longest */
	}
	usleep(1100 * 1000);
	/* Full of responses going out for over a second: the oldest gives way. */
	request_on(connect_from("127.0.0.3", httpd_port(httpd)), "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(drain(fd[0]) < HUGE_BYTES / 2);
	close(fd[1]);
	httpd_stop(httpd);
}

static void *get_block(void *arg)
{
	struct reply *r = arg;

	request(AF_INET, *(uint16_t *)r->headers, "GET /block HTTP/1.0\r\n\r\n", r);
	return NULL;
}

static void test_blocked_handler_does_not_block_others(void **state)
{
	struct httpd *httpd = start("127.0.0.1:0"); /* 2 workers */
	uint16_t port = httpd_port(httpd);
	struct reply blocked, r;
	pthread_t client;

	memcpy(blocked.headers, &port, sizeof(port));
	block_entered = block_released = false;
	assert_int_equal(pthread_create(&client, NULL, get_block, &blocked), 0);
	pthread_mutex_lock(&block_lock);
	while (!block_entered)
		pthread_cond_wait(&block_cond, &block_lock);
	pthread_mutex_unlock(&block_lock);

	request(AF_INET, port, "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);

	pthread_mutex_lock(&block_lock);
	block_released = true;
	pthread_cond_broadcast(&block_cond);
	pthread_mutex_unlock(&block_lock);
	pthread_join(client, NULL);
	assert_int_equal(blocked.status, 200);
	assert_string_equal(blocked.body, "released");
	httpd_stop(httpd);
}

/* Reads the connection in st->fd to its end into st->buf (no asserts: not the test's thread). */
static void *read_to_end(void *arg)
{
	struct stream *st = arg;
	ssize_t got;

	while (st->have < sizeof(st->buf) - 1 &&
	       (got = read(st->fd, st->buf + st->have, sizeof(st->buf) - 1 - st->have)) > 0)
		st->have += (size_t)got;
	st->buf[st->have] = '\0';
	return NULL;
}

/* GET /sleep on a new connection, read to its end by a thread of its own. */
static void start_sleep(uint16_t port, struct stream *st, pthread_t *reader)
{
	const char *get = "GET /sleep HTTP/1.0\r\n\r\n";

	*st = (struct stream){.fd = connect_to(AF_INET, port)};
	assert_int_equal(write(st->fd, get, strlen(get)), (ssize_t)strlen(get));
	assert_int_equal(pthread_create(reader, NULL, read_to_end, st), 0);
}

/* ...and its response, which must be whole. */
static void finish_sleep(struct stream *st, pthread_t reader)
{
	pthread_join(reader, NULL);
	close(st->fd);
	if (!strstr(st->buf, " 200 ") || !strstr(st->buf, "\r\n\r\nslept"))
		fail_msg("GET /sleep was cut short: '%s'", st->buf);
}

/*
 * A handler's own time is no slow client's: a response taking 2 s to build (as /metrics
 * waiting for the manager) is not past the write deadline (1 s), which starts once the
 * response is queued ...
 */
static void test_slow_handler_is_no_slow_reader(void **state)
{
	const struct httpd_config config = {
		.listen_address = "127.0.0.1:0",
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(routes[0]),
		.limits = {.max_connections = 16,
			   .max_connections_per_ip = 8,
			   .read_timeout_s = 30,
			   .write_timeout_s = 1},
	};
	static struct stream slept;
	struct httpd *httpd = NULL;
	char err[256] = "";
	pthread_t reader;

	if (httpd_start(&config, &httpd, err, sizeof(err)) != 0)
		fail_msg("httpd_start: %s", err);
	start_sleep(httpd_port(httpd), &slept, &reader);
	finish_sleep(&slept, reader);
	httpd_stop(httpd);
}

/*
 * ... nor is it given up to make room when the server is full: of a response 2 s in the
 * making and a slow reader's going out for over a second, the reader's gives way.
 */
static void test_full_server_never_evicts_a_running_handler(void **state)
{
	const struct httpd_config config = {
		.listen_address = "127.0.0.1:0",
		.routes = routes,
		.n_routes = sizeof(routes) / sizeof(routes[0]),
		.limits = {.max_connections = 2,
			   .max_connections_per_ip = 2,
			   .read_timeout_s = 30,
			   .workers = 2},
	};
	static struct stream slept;
	struct httpd *httpd = NULL;
	char err[256] = "", c;
	pthread_t reader;
	struct reply r;
	int fd;

	if (httpd_start(&config, &httpd, err, sizeof(err)) != 0)
		fail_msg("httpd_start: %s", err);
	/* the handler holds one worker; the other takes the slow reader, then the newcomer */
	start_sleep(httpd_port(httpd), &slept, &reader);
	usleep(100 * 1000);
	fd = start_huge(httpd_port(httpd));
	assert_int_equal(read(fd, &c, 1), 1);
	usleep(1200 * 1000);
	request_on(connect_from("127.0.0.3", httpd_port(httpd)), "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(drain(fd) < HUGE_BYTES / 2);
	finish_sleep(&slept, reader);
	httpd_stop(httpd);
}

/* The lines of log_fd (a file that was stderr) from component=httpd that hold what. */
static int count_log_lines(int log_fd, const char *what)
{
	char line[512];
	int lines = 0;
	FILE *f = fdopen(dup(log_fd), "r");

	assert_non_null(f);
	rewind(f);
	while (fgets(line, sizeof(line), f))
		lines += strstr(line, " component=httpd ") && strstr(line, what);
	fclose(f);
	return lines;
}

/*
 * Kept alive between scrapes is not a slow request: a connection that sent nothing after
 * its response is closed at the idle timeout without a line in the log, while one trickling
 * its next request is closed at the read deadline and logged as ever.
 */
static void test_idle_keep_alive_is_not_logged(void **state)
{
	const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	char path[] = "/tmp/test_httpd_log.XXXXXX", c;
	int log_fd = mkstemp(path), saved = dup(STDERR_FILENO), i, closed = 0, idle_lines;
	struct timeval tv = {0, 200 * 1000};
	struct stream st[4];
	struct httpd *httpd;
	struct reply r;
	size_t sent;
	ssize_t got;

	assert_true(log_fd >= 0 && saved >= 0);
	assert_int_equal(ipiv_log_set_format("logfmt"), 0);
	fflush(stderr);
	dup2(log_fd, STDERR_FILENO);
	httpd = start("127.0.0.1:0"); /* read deadline and idle timeout 1 s */
	for (i = 0; i < 4; i++) {
		st[i] = (struct stream){.fd = connect_to(AF_INET, httpd_port(httpd))};
		assert_int_equal(write(st[i].fd, get, strlen(get)), (ssize_t)strlen(get));
		next_response(&st[i], false, &r);
		assert_int_equal(r.status, 200);
		usleep(60 * 1000); /* spread over the sweeper's period */
	}
	for (i = 0; i < 4; i++) {
		closed += read(st[i].fd, &c, 1) == 0; /* closed, not left open */
		close(st[i].fd);
	}
	idle_lines = count_log_lines(log_fd, "msg=");

	/* Kept alive, then the next request a byte every 200 ms: the read deadline ends it. */
	st[0] = (struct stream){.fd = connect_to(AF_INET, httpd_port(httpd))};
	assert_int_equal(write(st[0].fd, get, strlen(get)), (ssize_t)strlen(get));
	next_response(&st[0], false, &r);
	assert_int_equal(setsockopt(st[0].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	for (sent = 0; sent < strlen(get) - 1; sent++) {
		if (send(st[0].fd, get + sent, 1, MSG_NOSIGNAL) != 1)
			break;
		got = read(st[0].fd, &c, 1);
		if (got == 0 || (got < 0 && errno != EAGAIN))
			break;
	}
	close(st[0].fd);
	httpd_stop(httpd);
	fflush(stderr);
	dup2(saved, STDERR_FILENO); /* before any assert: a failing one ends the test */
	close(saved);
	assert_int_equal(closed, 4);
	assert_int_equal(idle_lines, 0);
	assert_true(sent < strlen(get) - 1);
	assert_int_equal(count_log_lines(log_fd, "no whole request within 1 s"), 1);
	close(log_fd);
	unlink(path);
}

static void test_client_errors_are_rate_limited(void **state)
{
	char path[] = "/tmp/test_httpd_log.XXXXXX", line[512];
	int log_fd = mkstemp(path), saved = dup(STDERR_FILENO), fd, i, lines = 0;
	struct httpd *httpd;
	FILE *f;

	assert_true(log_fd >= 0 && saved >= 0);
	assert_int_equal(ipiv_log_set_format("logfmt"), 0); /* as ipivd's main picks it */
	fflush(stderr);
	dup2(log_fd, STDERR_FILENO);
	httpd = start("127.0.0.1:0");
	/* Each hangs up in the middle of its request: MHD has something to say every time. */
	for (i = 0; i < 40; i++) {
		fd = connect_to(AF_INET, httpd_port(httpd));
		assert_int_equal(write(fd, "GET / HT", 8), 8);
		usleep(2000);
		close(fd);
	}
	usleep(100 * 1000);
	httpd_stop(httpd);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	f = fdopen(log_fd, "r");
	assert_non_null(f);
	rewind(f);
	while (fgets(line, sizeof(line), f))
		lines += strstr(line, " component=httpd ") != NULL;
	fclose(f);
	unlink(path);
	assert_true(lines >= 1);
	assert_true(lines <= 5);
}

static void test_ipv6_and_all_interfaces(void **state)
{
	const struct httpd_config config = {"[::1]:0", routes, 1, {0}};
	struct httpd *httpd = NULL;
	char err[256] = "";
	struct reply r;
	int ret;

	/* Every interface: dual stack, so IPv4 loopback reaches it. */
	httpd = start(":0");
	request(AF_INET, httpd_port(httpd), "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	httpd_stop(httpd);

	ret = httpd_start(&config, &httpd, err, sizeof(err));
	if (ret == -EADDRNOTAVAIL || ret == -EAFNOSUPPORT) {
		print_message("no IPv6 loopback here (%s): [::1] not tried\n", err);
		return;
	}
	assert_int_equal(ret, 0);
	request(AF_INET6, httpd_port(httpd), "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	httpd_stop(httpd);
}

static void test_port_in_use(void **state)
{
	struct httpd *first = start("127.0.0.1:0"), *second = NULL;
	char address[64], err[256] = "";
	struct httpd_config config = {address, routes, 1, {0}};

	snprintf(address, sizeof(address), "127.0.0.1:%u", httpd_port(first));
	assert_int_equal(httpd_start(&config, &second, err, sizeof(err)), -EADDRINUSE);
	assert_null(second);
	assert_non_null(strstr(err, address));
	assert_non_null(strstr(err, "in use"));
	assert_null(strchr(err, '\n'));
	httpd_stop(first);

	/* Once the first server is gone, the port is free again at once. */
	assert_int_equal(httpd_start(&config, &second, err, sizeof(err)), 0);
	httpd_stop(second);
	httpd_stop(NULL);
}

static void test_bad_listen_addresses(void **state)
{
	static const char *const bad[] = {
		"",	      "9100",		"localhost",	 "127.0.0.1",
		"127.0.0.1:", ":99999",		":-1",		 ":9x",
		":123456",    "::1:9100",	"[::1:9100",	 "[::1]9100",
		"[]:9100",    "[127.0.0.1]:80", "256.0.0.1:80",	 "example.com:80",
		"1.2.3:80",   "[::1]:",		" 127.0.0.1:80", "127.0.0.1:+80",
	};
	static const char *const good[] = {"127.0.0.1:9100", "localhost:0", ":0",
					   "[::]:80",	     "[::1]:65535", "0.0.0.0:1"};
	struct sockaddr_storage ss;
	socklen_t len;
	struct httpd *httpd = NULL;
	struct httpd_config config = {NULL, routes, 1, {0}};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (httpd_parse_listen_address(bad[i], &ss, &len, err, sizeof(err)) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_true(strlen(err) > 0);
		assert_null(strchr(err, '\n'));
		config.listen_address = bad[i];
		assert_int_equal(httpd_start(&config, &httpd, NULL, 0), -EINVAL);
		assert_null(httpd);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (httpd_parse_listen_address(good[i], &ss, &len, err, sizeof(err)) != 0)
			fail_msg("\"%s\" was refused: %s", good[i], err);
	}
	assert_int_equal(httpd_parse_listen_address("localhost:9100", &ss, &len, NULL, 0), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9100);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), INADDR_LOOPBACK);

	httpd_parse_listen_address("::1:9100", &ss, &len, err, sizeof(err));
	assert_non_null(strstr(err, "brackets"));
	httpd_parse_listen_address("127.0.0.1", &ss, &len, err, sizeof(err));
	assert_non_null(strstr(err, "port missing"));
}

static void test_bad_routes_are_refused(void **state)
{
	const struct httpd_route no_slash[] = {{"metrics", false, hello, NULL}};
	const struct httpd_route no_handler[] = {{"/metrics", false, NULL, NULL}};
	struct httpd_config config = {"127.0.0.1:0", no_slash, 1, {0}};
	struct httpd *httpd = NULL;

	assert_int_equal(httpd_start(&config, &httpd, NULL, 0), -EINVAL);
	config.routes = no_handler;
	assert_int_equal(httpd_start(&config, &httpd, NULL, 0), -EINVAL);
	config.routes = NULL;
	assert_int_equal(httpd_start(&config, &httpd, NULL, 0), -EINVAL);
	assert_int_equal(httpd_start(NULL, &httpd, NULL, 0), -EINVAL);
	assert_null(httpd);
}

/* gunzip of a whole body; returns its length, or -1 if it is not one gzip member. */
static ssize_t gunzip(const char *in, size_t len, char *out, size_t size)
{
	z_stream zs = {0};
	ssize_t n = -1;

	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)size;
	if (inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.avail_in == 0)
		n = (ssize_t)zs.total_out;
	inflateEnd(&zs);
	return n;
}

static void test_gzip_by_accept_encoding(void **state)
{
	struct httpd *httpd = start("127.0.0.1:0");
	uint16_t port = httpd_port(httpd);
	struct reply plain, packed, r;
	char unpacked[8192];
	ssize_t n;

	request(AF_INET, port, "GET /big HTTP/1.0\r\n\r\n", &plain);
	assert_int_equal(plain.status, 200);
	assert_true(plain.body_len >= 6000);
	assert_null(strcasestr(plain.headers, "Content-Encoding"));
	assert_non_null(strcasestr(plain.headers, "\r\nVary: Accept-Encoding"));

	request(AF_INET, port, "GET /big HTTP/1.0\r\nAccept-Encoding: deflate, gzip\r\n\r\n",
		&packed);
	assert_int_equal(packed.status, 200);
	assert_non_null(strcasestr(packed.headers, "\r\nContent-Encoding: gzip"));
	assert_non_null(strcasestr(packed.headers, "\r\nVary: Accept-Encoding"));
	assert_true(packed.body_len < plain.body_len / 4);
	n = gunzip(packed.body, packed.body_len, unpacked, sizeof(unpacked));
	assert_int_equal(n, (ssize_t)plain.body_len);
	assert_memory_equal(unpacked, plain.body, plain.body_len);

	/* HEAD: the gzipped response's headers, no body */
	request(AF_INET, port, "HEAD /big HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n", &r);
	assert_int_equal(r.body_len, 0);
	assert_non_null(strcasestr(r.headers, "\r\nContent-Encoding: gzip"));
	/* refused, or a body too small to gain: as it is */
	request(AF_INET, port, "GET /big HTTP/1.0\r\nAccept-Encoding: gzip;q=0, *\r\n\r\n", &r);
	assert_int_equal(r.body_len, plain.body_len);
	assert_null(strcasestr(r.headers, "Content-Encoding"));
	request(AF_INET, port, "GET / HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n", &r);
	assert_string_equal(r.body, "<h1>home</h1>");
	/* errors are not compressed */
	request(AF_INET, port, "GET /nope HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n", &r);
	assert_string_equal(r.body, "Not Found\n");
	httpd_stop(httpd);
}

static void test_accepts_gzip(void **state)
{
	static const struct {
		const char *header;
		bool gzip;
	} cases[] = {
		{NULL, false},
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"gzip;q=0.001", true},
		{"*", true},
		{"*;q=0", false},
		{"br, *", true},
		{"gzip;q=0, *", false}, /* named wins over * */
		{"identity", false},
		{"gzipper", false},
		{"br;q=1, deflate", false},
		{" gzip ", true},
		{"gzip;q=x", false},
		{"gzip;level=1;q=0", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (httpd_accepts_gzip(cases[i].header) != cases[i].gzip)
			fail_msg("Accept-Encoding \"%s\": want %s", cases[i].header,
				 cases[i].gzip ? "gzip" : "none");
}

/* Writes the web config in one rename, so the server sees a new file or the old one. */
static void put_web_config(const char *path, const char *text)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* bcrypt at cost 4 of "pw-one" and "pw-two"; the base64 of alice with each */
#define HASH_PW_ONE  "$2b$04$sQlE0QtaiH0LrKGj/c3WrObkE1EQvZEaPuVB1fLz61f6SDQwpX2YW"
#define HASH_PW_TWO  "$2b$04$laEsIDtkJhylp82UdCG4GeqU/uRPHV53EsNUjI.F/jGQh7MtYOaQi"
#define ALICE_PW_ONE "Authorization: Basic YWxpY2U6cHctb25l\r\n"
#define ALICE_PW_TWO "Authorization: Basic YWxpY2U6cHctdHdv\r\n"
#define ALICE_WRONG  "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"

static void test_basic_auth_from_web_config(void **state)
{
	char dir[] = "/tmp/test_httpd.XXXXXX", path[64], err[512] = "", cmd[96];
	struct httpd *httpd;
	struct reply r;
	uint16_t port;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/web.yml", dir);
	put_web_config(path, "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
			     "basic_auth_users:\n  alice: " HASH_PW_ONE "\n");
	if (httpd_web_config_load(path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_false(httpd_web_config_tls());
	httpd = start("127.0.0.1:0");
	port = httpd_port(httpd);

	request(AF_INET, port, "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 401);
	assert_non_null(strcasestr(r.headers, "\r\nWWW-Authenticate: Basic realm=\"ipivd\""));
	assert_non_null(strcasestr(r.headers, "\r\nX-Frame-Options: deny"));
	assert_null(strstr(r.body, "home"));
	request(AF_INET, port, "GET /nope HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 401); /* what exists is not told before auth */
	request(AF_INET, port, "GET / HTTP/1.0\r\n" ALICE_WRONG "\r\n", &r);
	assert_int_equal(r.status, 401);
	request(AF_INET, port, "GET / HTTP/1.0\r\nAuthorization: Bearer x\r\n\r\n", &r);
	assert_int_equal(r.status, 401);
	request(AF_INET, port, "GET / HTTP/1.0\r\n" ALICE_PW_ONE "\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "<h1>home</h1>");
	assert_non_null(strcasestr(r.headers, "\r\nX-Frame-Options: deny"));

	/* a new password applies at the next request */
	put_web_config(path, "basic_auth_users:\n  alice: " HASH_PW_TWO "\n");
	request(AF_INET, port, "GET / HTTP/1.0\r\n" ALICE_PW_ONE "\r\n", &r);
	assert_int_equal(r.status, 401);
	assert_null(strcasestr(r.headers, "X-Frame-Options"));
	request(AF_INET, port, "GET / HTTP/1.0\r\n" ALICE_PW_TWO "\r\n", &r);
	assert_int_equal(r.status, 200);

	/* a broken file, or one that turns TLS on, keeps the config there was */
	put_web_config(path, "basic_auth_users:\n  alice: plaintext\n");
	request(AF_INET, port, "GET / HTTP/1.0\r\n" ALICE_PW_TWO "\r\n", &r);
	assert_int_equal(r.status, 200);
	put_web_config(path, "tls_server_config:\n  cert: x\n  key: y\n");
	request(AF_INET, port, "GET / HTTP/1.0\r\n" ALICE_PW_TWO "\r\n", &r);
	assert_int_equal(r.status, 200);
	/* and a file that goes away too */
	unlink(path);
	httpd_web_config_reload();
	request(AF_INET, port, "GET / HTTP/1.0\r\n" ALICE_PW_TWO "\r\n", &r);
	assert_int_equal(r.status, 200);
	/* no users: no authentication */
	put_web_config(path, "http_server_config:\n  http2: false\n");
	request(AF_INET, port, "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);

	httpd_stop(httpd);
	httpd_web_config_clear();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_routes_and_404),
		cmocka_unit_test(test_head_and_other_methods),
		cmocka_unit_test(test_keep_alive_and_pipelined_requests),
		cmocka_unit_test(test_idle_connection_is_closed),
		cmocka_unit_test(test_trickling_client_is_closed),
		cmocka_unit_test(test_oversized_requests_get_4xx),
		cmocka_unit_test(test_per_address_limit),
		cmocka_unit_test(test_full_server_evicts_longest_waiting),
		cmocka_unit_test(test_blocked_handler_does_not_block_others),
		cmocka_unit_test(test_slow_reader_is_closed_and_blocks_no_one),
		cmocka_unit_test(test_full_server_evicts_slowest_reader),
		cmocka_unit_test(test_slow_handler_is_no_slow_reader),
		cmocka_unit_test(test_full_server_never_evicts_a_running_handler),
		cmocka_unit_test(test_idle_keep_alive_is_not_logged),
		cmocka_unit_test(test_client_errors_are_rate_limited),
		cmocka_unit_test(test_ipv6_and_all_interfaces),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_bad_listen_addresses),
		cmocka_unit_test(test_bad_routes_are_refused),
		cmocka_unit_test(test_gzip_by_accept_encoding),
		cmocka_unit_test(test_accepts_gzip),
		cmocka_unit_test(test_basic_auth_from_web_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
