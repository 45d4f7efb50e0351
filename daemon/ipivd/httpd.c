/* HTTP server over libmicrohttpd: binds its own socket (so a failure can be named exactly),
 * then hands it to MHD; routes GET/HEAD requests to handlers, keeps connections alive (also
 * for pipelined requests) and enforces the limits of struct httpd_limits (a sweeper thread
 * closes connections past the read or write deadline). With a --web.config.file it speaks
 * TLS and checks basic auth, re-reading the file when it changes; responses are gzipped for
 * clients that accept it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <linux/tcp.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "httpd.h"
#include "log.h"
#include "strbuf.h"
#include "webconfig.h"

/* Per-connection memory: request line and headers must fit (MHD answers 414/431 if not). */
#define HTTPD_CONNECTION_MEMORY (32 * 1024)
/* Connections waiting to be accepted while every worker is at its share of MHD's limit. */
#define HTTPD_LISTEN_BACKLOG	1024
/* How often the sweeper looks for connections past the read or write deadline. */
#define HTTPD_SWEEP_MS		250
/* A response still going out after this long has a slow reader (or a slow link): when every
 * connection is being answered, the one answered longest makes room for a newcomer. */
#define HTTPD_SLOW_ANSWER_MS	1000
/* Client errors (hang-ups, oversized or late requests) logged: this many lines per window,
 * then one line saying how many were left out. */
#define HTTPD_LOG_BURST		5
#define HTTPD_LOG_WINDOW_MS	60000
/* Smaller bodies go out as they are: gzip's header and trailer would be most of them. */
#define HTTPD_GZIP_MIN_BYTES	1024

/* One open connection, from MHD's connection-started notice to its closed notice. */
struct httpd_conn {
	struct httpd_conn *prev, *next;
	int fd;
	/* When the request being read began (accept, or the first byte after the previous
	 * response); 0 once it reached a handler, or once the sweeper shut the socket. */
	uint64_t reading_since_ms;
	/* When the handler's response was queued, until it is sent whole; else 0. Never set
	 * while a handler runs: waiting for the manager is no slow client. */
	uint64_t answering_since_ms;
	/* Kept alive between requests, no byte of the next one seen yet (idle_rx: the bytes
	 * the socket had received then): left to the idle timeout, not a slow client. */
	bool idle;
	uint64_t idle_rx;
	char peer[INET6_ADDRSTRLEN];
	/* The web config its TLS session was set up with (a reference), for the client
	 * certificate check during the handshake. */
	struct webconfig *web;
};

struct httpd {
	struct MHD_Daemon *mhd;
	int listen_fd; /* ours until MHD serves on its copy */
	uint16_t port;
	struct httpd_route *routes;
	size_t n_routes;
	struct httpd_limits limits;  /* defaults resolved */
	bool tls;		     /* serving TLS: fixed at start, like the listen address */
	struct webconfig *start_web; /* MHD keeps pointers to its PEM: held until stop */

	pthread_mutex_t lock; /* guards what follows: MHD's workers and the sweeper share it */
	pthread_cond_t wake;
	pthread_t sweeper;
	bool sweeper_running, stopping;
	struct httpd_conn *conns;
	unsigned int n_live; /* on the list and not shut down by us */
	uint64_t log_window_start_ms;
	unsigned int log_lines, log_suppressed;
};

struct httpd_request {
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
};

static const struct httpd_limits default_limits = {
	.max_connections = HTTPD_DEFAULT_MAX_CONNECTIONS,
	.max_connections_per_ip = HTTPD_DEFAULT_MAX_CONNECTIONS_PER_IP,
	.read_timeout_s = HTTPD_DEFAULT_READ_TIMEOUT_S,
	.write_timeout_s = HTTPD_DEFAULT_WRITE_TIMEOUT_S,
	.workers = HTTPD_DEFAULT_WORKERS,
};

/* The client context of a request whose target was too long: its query was dropped unread. */
static char uri_too_long;
/* The client context of a GET or HEAD whose headers were read: answered at the next call. */
static char headers_read;

/*
 * --web.config.file, shared by every server: set once by httpd_web_config_load before the
 * first httpd_start. It is checked at each connection and request: when the file or one it
 * names changed (or after SIGHUP), it is re-read; a file that fails to load keeps the previous
 * config, with one log line per broken version of the files.
 */
static struct {
	pthread_mutex_t lock; /* guards what follows */
	char *path;
	struct webconfig *current;
	uint64_t failed_stamp;	      /* the files' stamp when a reload last failed */
	volatile sig_atomic_t reload; /* SIGHUP */
} web = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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
	    bind(fd, (const struct sockaddr *)addr, len) || listen(fd, HTTPD_LISTEN_BACKLOG)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/*
 * With httpd->lock held: may one more line about clients be logged? A client that hangs up
 * or sends garbage makes MHD log, and a thousand of them must not flood the journal.
 */
static bool log_budget_locked(struct httpd *httpd, uint64_t now)
{
	if (now - httpd->log_window_start_ms >= HTTPD_LOG_WINDOW_MS) {
		if (httpd->log_suppressed)
			log_warn("httpd", "%u more client errors in %u s not logged",
				 httpd->log_suppressed, HTTPD_LOG_WINDOW_MS / 1000);
		httpd->log_window_start_ms = now;
		httpd->log_lines = 0;
		httpd->log_suppressed = 0;
	}
	if (httpd->log_lines < HTTPD_LOG_BURST) {
		httpd->log_lines++;
		return true;
	}
	httpd->log_suppressed++;
	return false;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	struct httpd *httpd = cls;
	char line[256];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	pthread_mutex_lock(&httpd->lock);
	if (log_budget_locked(httpd, now_ms()))
		log_warn("httpd", "%s", line);
	pthread_mutex_unlock(&httpd->lock);
}

/*
 * The TLS handshake's client certificate check (gnutls_certificate_set_verify_function):
 * MHD makes the connection its sessions' pointer, and the connection's context holds the web
 * config the session was set up with.
 */
static int verify_client_cert(gnutls_session_t session)
{
	struct MHD_Connection *conn = gnutls_session_get_ptr(session);
	const union MHD_ConnectionInfo *info =
		conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
	struct httpd_conn *c = info ? info->socket_context : NULL;

	if (!c || !c->web)
		return -1; /* no config to check against: refuse rather than let it through */
	return webconfig_verify_client(c->web, session);
}

int httpd_web_config_load(const char *path, char *err, size_t err_size)
{
	struct webconfig *wc;
	char *copy;
	int r;

	r = webconfig_load(path, verify_client_cert, &wc, err, err_size);
	if (r)
		return r;
	copy = strdup(path);
	if (!copy) {
		webconfig_put(wc);
		set_err(err, err_size, "%s: out of memory", path);
		return -ENOMEM;
	}
	pthread_mutex_lock(&web.lock);
	free(web.path);
	webconfig_put(web.current);
	web.path = copy;
	web.current = wc;
	web.failed_stamp = 0;
	pthread_mutex_unlock(&web.lock);
	return 0;
}

bool httpd_web_config_tls(void)
{
	bool tls;

	pthread_mutex_lock(&web.lock);
	tls = web.current && web.current->tls;
	pthread_mutex_unlock(&web.lock);
	return tls;
}

void httpd_web_config_reload(void)
{
	web.reload = 1;
}

void httpd_web_config_clear(void)
{
	pthread_mutex_lock(&web.lock);
	webconfig_put(web.current);
	web.current = NULL;
	free(web.path);
	web.path = NULL;
	pthread_mutex_unlock(&web.lock);
}

/* With web.lock held: re-reads the file; a failure keeps the config there was. */
static void reload_locked(bool asked)
{
	struct webconfig *wc;
	uint64_t stamp = webconfig_files_stamp(web.current);
	char err[512] = "";

	if (!asked && stamp == web.failed_stamp)
		return; /* this version of the files was refused already */
	if (webconfig_load(web.path, verify_client_cert, &wc, err, sizeof(err)) == 0 &&
	    wc->tls != web.current->tls) {
		snprintf(err, sizeof(err), "%s: TLS can only be turned %s by a restart", web.path,
			 wc->tls ? "on" : "off");
		webconfig_put(wc);
		wc = NULL;
	} else if (wc == NULL && !err[0]) {
		snprintf(err, sizeof(err), "%s: cannot be loaded", web.path);
	}
	if (!wc) {
		web.failed_stamp = stamp;
		log_error("httpd", "web config not reloaded, the previous one stays: %s", err);
		return;
	}
	webconfig_put(web.current);
	web.current = wc;
	web.failed_stamp = 0;
	log_info("httpd", "web config %s reloaded: %s, %zu basic auth users", web.path,
		 wc->tls ? "TLS" : "plain HTTP", wc->n_users);
}

/* The web config now (a reference, or NULL without --web.config.file), re-read if needed. */
static struct webconfig *current_web(void)
{
	struct webconfig *wc;
	bool asked;

	pthread_mutex_lock(&web.lock);
	if (web.current) {
		asked = web.reload;
		web.reload = 0;
		if (asked || webconfig_files_changed(web.current))
			reload_locked(asked);
	}
	wc = webconfig_get(web.current);
	pthread_mutex_unlock(&web.lock);
	return wc;
}

static void format_peer(const struct sockaddr *sa, char *buf, size_t size)
{
	snprintf(buf, size, "?");
	if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, size);
	else if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, size);
}

/* With httpd->lock held: shuts a connection down for MHD's worker to close (it reads end of
 * file). MHD still owns the descriptor, so this happens once. */
static void shut_locked(struct httpd *httpd, struct httpd_conn *c, const char *why, uint64_t now)
{
	shutdown(c->fd, SHUT_RDWR);
	c->fd = -1;
	c->reading_since_ms = 0;
	c->answering_since_ms = 0;
	c->idle = false;
	httpd->n_live--;
	if (why && log_budget_locked(httpd, now))
		log_warn("httpd", "closed a connection from %s: %s", c->peer, why);
}

/*
 * With httpd->lock held, past --web.max-connections: makes room by closing the connection
 * that has waited longest for its request, so that a flood of idle or slow clients from
 * many addresses delays a scrape by one round trip rather than by the read deadline. When
 * every one is being answered, the response that has been going out longest (a second at
 * least) gives way instead, so slow readers cannot hold every connection either. One whose
 * handler is still running is never closed: its time is ours, not the client's.
 */
static void evict_locked(struct httpd *httpd, struct httpd_conn *arrived, uint64_t now)
{
	struct httpd_conn *c, *waiting = NULL, *answering = NULL;

	for (c = httpd->conns; c; c = c->next) {
		if (c == arrived || c->fd < 0)
			continue;
		if (c->reading_since_ms &&
		    (!waiting || c->reading_since_ms < waiting->reading_since_ms))
			waiting = c;
		if (c->answering_since_ms && now - c->answering_since_ms >= HTTPD_SLOW_ANSWER_MS &&
		    (!answering || c->answering_since_ms < answering->answering_since_ms))
			answering = c;
	}
	if (waiting)
		shut_locked(httpd, waiting,
			    "connection limit reached, it waited longest for its request", now);
	else if (answering)
		shut_locked(httpd, answering,
			    "connection limit reached, its response was going out longest", now);
	else /* every other one is being answered: the newcomer waits its turn elsewhere */
		shut_locked(httpd, arrived, "connection limit reached", now);
}

/* MHD_OPTION_NOTIFY_CONNECTION: keeps the list the sweeper walks. MHD calls "closed" before
 * it closes the socket, so a descriptor on the list is always still open. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct httpd *httpd = cls;
	struct httpd_conn *c = *socket_context;
	const union MHD_ConnectionInfo *info;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!c)
			return;
		pthread_mutex_lock(&httpd->lock);
		if (c->fd >= 0)
			httpd->n_live--;
		if (c->prev)
			c->prev->next = c->next;
		else
			httpd->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		pthread_mutex_unlock(&httpd->lock);
		webconfig_put(c->web);
		free(c);
		*socket_context = NULL;
		return;
	}
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!info)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		/* Untracked, it would escape the read deadline: refuse it instead. */
		shutdown(info->connect_fd, SHUT_RDWR);
		return;
	}
	c->fd = info->connect_fd;
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	format_peer(info ? info->client_addr : NULL, c->peer, sizeof(c->peer));
	c->web = httpd->tls ? current_web() : NULL;
	if (c->web && c->web->tls) {
		/* MHD set the session up with the config of the start; the handshake has not
		 * begun, so it takes the current one's certificate, CA and versions instead. */
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		if (!info || !info->tls_session ||
		    gnutls_priority_set(info->tls_session, webconfig_priority(c->web)) < 0 ||
		    gnutls_credentials_set(info->tls_session, GNUTLS_CRD_CERTIFICATE,
					   webconfig_credentials(c->web)) < 0) {
			shutdown(c->fd, SHUT_RDWR);
			webconfig_put(c->web);
			free(c);
			return;
		}
		gnutls_certificate_server_set_request(info->tls_session,
						      webconfig_cert_request(c->web));
	}
	pthread_mutex_lock(&httpd->lock);
	c->reading_since_ms = now_ms();
	c->next = httpd->conns;
	if (c->next)
		c->next->prev = c;
	httpd->conns = c;
	if (++httpd->n_live > httpd->limits.max_connections)
		evict_locked(httpd, c, c->reading_since_ms);
	pthread_mutex_unlock(&httpd->lock);
	*socket_context = c;
}

/* The bytes a TCP socket has received, or 0 where it cannot say. */
static uint64_t bytes_received(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return 0;
	return ti.tcpi_bytes_received;
}

enum conn_state {
	CONN_IDLE,	/* kept alive after a response: the idle timeout's */
	CONN_HANDLING,	/* a handler has the request: no deadline */
	CONN_ANSWERING, /* its response is queued: the write deadline */
};

/* Moves a connection between the deadlines: see enum conn_state. */
static void set_state(struct httpd *httpd, struct MHD_Connection *conn, enum conn_state state)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct httpd_conn *c = info ? info->socket_context : NULL;
	uint64_t now;

	if (!c)
		return;
	now = now_ms();
	pthread_mutex_lock(&httpd->lock);
	if (c->fd >= 0) {
		switch (state) {
		case CONN_IDLE:
			c->idle = true;
			c->idle_rx = bytes_received(c->fd);
			c->reading_since_ms = now;
			c->answering_since_ms = 0;
			break;
		case CONN_HANDLING:
			c->idle = false;
			c->reading_since_ms = 0;
			c->answering_since_ms = 0;
			break;
		case CONN_ANSWERING:
			/* unless the response went out and the connection is idle already */
			if (!c->idle && !c->reading_since_ms)
				c->answering_since_ms = now;
			break;
		}
	}
	pthread_mutex_unlock(&httpd->lock);
}

/* MHD_OPTION_NOTIFY_COMPLETED: a kept-alive connection waits for its next request. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	set_state(cls, conn, CONN_IDLE);
}

/*
 * MHD's idle timeout restarts at every byte, so a client sending one byte every few seconds,
 * or reading its response a few bytes at a time, would hold its connection for ever. Past
 * the read or write deadline, the sweeper shuts the socket down; MHD's worker then reads
 * end-of-file (or fails to send) and closes the connection itself.
 */
static void *sweep(void *arg)
{
	struct httpd *httpd = arg;
	uint64_t read_ms = (uint64_t)httpd->limits.read_timeout_s * 1000, now;
	uint64_t write_ms = (uint64_t)httpd->limits.write_timeout_s * 1000;
	struct httpd_conn *c;
	struct timespec next;
	char late_request[64], late_response[64];

	snprintf(late_request, sizeof(late_request), "no whole request within %u s",
		 httpd->limits.read_timeout_s);
	snprintf(late_response, sizeof(late_response), "response not taken whole within %u s",
		 httpd->limits.write_timeout_s);
	pthread_mutex_lock(&httpd->lock);
	while (!httpd->stopping) {
		now = now_ms();
		for (c = httpd->conns; c; c = c->next) {
			/* the next request's first byte starts its read deadline */
			if (c->idle && bytes_received(c->fd) != c->idle_rx) {
				c->idle = false;
				c->reading_since_ms = now;
			}
			if (c->reading_since_ms && now - c->reading_since_ms >= read_ms)
				shut_locked(httpd, c, c->idle ? NULL : late_request, now);
			else if (c->answering_since_ms && now - c->answering_since_ms >= write_ms)
				shut_locked(httpd, c, late_response, now);
		}
		if (httpd->log_suppressed &&
		    now - httpd->log_window_start_ms >= HTTPD_LOG_WINDOW_MS)
			log_budget_locked(httpd, now); /* says how many were left out */
		clock_gettime(CLOCK_MONOTONIC, &next);
		next.tv_nsec += HTTPD_SWEEP_MS * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&httpd->wake, &httpd->lock, &next);
	}
	pthread_mutex_unlock(&httpd->lock);
	return NULL;
}

/*
 * MHD_OPTION_URI_LOG_CALLBACK, called with the request target before MHD splits its query.
 * MHD 0.9.75 stores every query argument in the connection's memory pool, and when one does
 * not fit it queues a 431 that its state machine then loses: the client gets no answer and
 * holds the connection until the timeout. A target past our limits has its query cut off
 * here (uri points into MHD's read buffer, parsed after this call) and is answered 414.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	char *query = uri ? strchr(uri, '?') : NULL;
	unsigned int n_args = 1;
	const char *p;

	if (!uri)
		return NULL;
	for (p = query; p && *p && n_args <= HTTPD_MAX_QUERY_ARGS; p++)
		n_args += *p == '&';
	if (n_args <= HTTPD_MAX_QUERY_ARGS && strlen(uri) <= HTTPD_MAX_URI_LEN)
		return NULL;
	if (query)
		query[1] = '\0';
	return &uri_too_long;
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

/* A response with the headers every one carries: its type, nosniff, the web config's. */
static struct MHD_Response *make_response(const struct webconfig *wc, const char *content_type,
					  char *body, size_t len)
{
	struct MHD_Response *response;
	bool nosniff_set = false;

	if (body)
		response = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	else
		response = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!response) {
		free(body);
		return NULL;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (size_t i = 0; wc && i < wc->n_headers; i++) {
		MHD_add_response_header(response, wc->headers[i].name, wc->headers[i].value);
		nosniff_set |= !strcmp(wc->headers[i].name, "X-Content-Type-Options");
	}
	if (!nosniff_set)
		MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
	return response;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned int status,
			     struct MHD_Response *response)
{
	enum MHD_Result ret;

	if (!response)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, response);
	MHD_destroy_response(response);
	return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, const struct webconfig *wc,
				    unsigned int status, const char *text, const char *allow)
{
	char *body = strdup(text);
	struct MHD_Response *response =
		make_response(wc, "text/plain; charset=utf-8", body, body ? strlen(body) : 0);

	if (response && allow)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
	return queue(conn, status, response);
}

bool httpd_accepts_gzip(const char *accept_encoding)
{
	double q_gzip = -1, q_any = -1;
	const char *p = accept_encoding;

	while (p && *p) {
		size_t len = strcspn(p, ",");
		const char *end = p + len, *name = p, *param;
		size_t name_len;
		double q = 1;

		while (name < end && (*name == ' ' || *name == '\t'))
			name++;
		name_len = strcspn(name, ";, \t");
		if (name + name_len > end)
			name_len = (size_t)(end - name);
		for (param = memchr(name, ';', (size_t)(end - name)); param && param < end;
		     param = memchr(param + 1, ';', (size_t)(end - param - 1))) {
			const char *v = param + 1;
			char *num_end;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			if (end - v > 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
				q = strtod(v + 2, &num_end);
				if (num_end == v + 2 || q < 0 || q > 1)
					q = 0; /* unparsable weight: not acceptable */
			}
		}
		if ((name_len == 4 && !strncasecmp(name, "gzip", 4)) ||
		    (name_len == 6 && !strncasecmp(name, "x-gzip", 6)))
			q_gzip = q;
		else if (name_len == 1 && name[0] == '*')
			q_any = q;
		p = *end ? end + 1 : end;
	}
	return q_gzip >= 0 ? q_gzip > 0 : q_any > 0;
}

int httpd_gzip(const char *in, size_t len, char **out, size_t *out_len)
{
	z_stream zs = {0};
	size_t bound;
	char *buf;
	int r;

	if (len > UINT32_MAX) /* zlib counts in 32 bits */
		return -EFBIG;
	/* 15 + 16: a gzip header and trailer around the deflate stream. */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	bound = deflateBound(&zs, len);
	buf = malloc(bound);
	if (!buf) {
		deflateEnd(&zs);
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)buf;
	zs.avail_out = (uInt)bound;
	r = deflate(&zs, Z_FINISH);
	deflateEnd(&zs);
	if (r != Z_STREAM_END) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*out_len = zs.total_out;
	return 0;
}

/* Basic auth against the web config's users: true when there are none or they match. */
static bool authorized(struct MHD_Connection *conn, struct webconfig *wc)
{
	char *user, *password = NULL;
	bool ok;

	if (!wc || !wc->n_users)
		return true;
	user = MHD_basic_auth_get_username_password(conn, &password);
	ok = user && password && webconfig_check_password(wc, user, password);
	if (password) {
		explicit_bzero(password, strlen(password));
		MHD_free(password);
	}
	if (user)
		MHD_free(user);
	return ok;
}

static enum MHD_Result answer(struct httpd *httpd, struct MHD_Connection *conn,
			      struct webconfig *wc, const char *url, const char *method)
{
	const struct httpd_route *route;
	struct httpd_request req = {conn, method, url};
	struct httpd_response resp = {MHD_HTTP_OK, "text/plain; charset=utf-8", NULL, 0};
	struct MHD_Response *response;
	bool gzipped = false;
	char text[128];
	int err;

	if (!authorized(conn, wc)) {
		const char *denied = "Unauthorized\n";

		response = make_response(wc, "text/plain; charset=utf-8", strdup(denied),
					 strlen(denied));
		if (response)
			MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
						"Basic realm=\"ipivd\", charset=\"UTF-8\"");
		return queue(conn, MHD_HTTP_UNAUTHORIZED, response);
	}
	/* Answered on the first call, before any request body is read (answered_early). */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(conn, wc, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n",
				    "GET, HEAD");
	route = find_route(httpd, url);
	if (!route)
		return respond_text(conn, wc, MHD_HTTP_NOT_FOUND, "Not Found\n", NULL);
	err = route->handler(&req, &resp, route->ctx);
	if (err < 0) {
		free(resp.body);
		snprintf(text, sizeof(text), "Internal Server Error: %s\n", strerror(-err));
		return respond_text(conn, wc, MHD_HTTP_INTERNAL_SERVER_ERROR, text, NULL);
	}
	if (resp.body && resp.len >= HTTPD_GZIP_MIN_BYTES &&
	    httpd_accepts_gzip(httpd_header(&req, MHD_HTTP_HEADER_ACCEPT_ENCODING))) {
		char *packed;
		size_t packed_len;

		if (httpd_gzip(resp.body, resp.len, &packed, &packed_len) == 0) {
			free(resp.body);
			resp.body = packed;
			resp.len = packed_len;
			gzipped = true;
		}
	}
	response = make_response(wc, resp.content_type ? resp.content_type : "text/plain",
				 resp.body, resp.body ? resp.len : 0);
	if (response) {
		/* a cache must not hand a gzipped body to a client that did not ask for one */
		MHD_add_response_header(response, MHD_HTTP_HEADER_VARY,
					MHD_HTTP_HEADER_ACCEPT_ENCODING);
		if (gzipped)
			MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	}
	return queue(conn, resp.status, response);
}

/*
 * Is a request answered at the first call, without reading its body? Nothing we serve takes
 * one: other methods get their 405 at once, as does a GET that announces a body (MHD then
 * closes the connection rather than read what follows).
 */
static bool answered_early(struct MHD_Connection *conn, const char *method)
{
	const char *length =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return true;
	return (length && strcmp(length, "0") != 0) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct httpd *httpd = cls;
	struct webconfig *wc;
	enum MHD_Result ret;
	char text[128];

	if (!*con_cls) {
		set_state(httpd, conn, CONN_HANDLING);
		/*
		 * MHD 0.9.75 takes a response queued at this first call, before it has the whole
		 * request, as an early one: it reads nothing more from the connection and closes
		 * it after answering, so a kept-alive client reconnects for every scrape and a
		 * request pipelined behind this one goes unanswered. A GET or HEAD without a body
		 * is whole already: it is answered at the next call, which comes at once.
		 */
		if (!answered_early(conn, method)) {
			*con_cls = &headers_read;
			return MHD_YES;
		}
	} else if (*con_cls == &uri_too_long) {
		set_state(httpd, conn, CONN_HANDLING);
	}
	/* per request, as exporter-toolkit reads it: a changed password applies to the
	 * scraper's kept-alive connection too */
	wc = current_web();
	if (*con_cls == &uri_too_long) {
		snprintf(text, sizeof(text),
			 "URI Too Long: at most %u bytes and %u query arguments\n",
			 HTTPD_MAX_URI_LEN, HTTPD_MAX_QUERY_ARGS);
		ret = respond_text(conn, wc, MHD_HTTP_URI_TOO_LONG, text, NULL);
	} else {
		ret = answer(httpd, conn, wc, url, method);
	}
	webconfig_put(wc);
	/* the response is queued: from now on its pace is the client's */
	set_state(httpd, conn, CONN_ANSWERING);
	return ret;
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

static void stop_sweeper(struct httpd *httpd)
{
	if (!httpd->sweeper_running)
		return;
	pthread_mutex_lock(&httpd->lock);
	httpd->stopping = true;
	pthread_cond_signal(&httpd->wake);
	pthread_mutex_unlock(&httpd->lock);
	pthread_join(httpd->sweeper, NULL);
	httpd->sweeper_running = false;
}

int httpd_start(const struct httpd_config *config, struct httpd **out, char *err, size_t err_size)
{
	struct sockaddr_storage addr, bound;
	socklen_t len, bound_len = sizeof(bound);
	struct httpd *httpd = NULL;
	pthread_condattr_t cond_attr;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	unsigned int mhd_limit;
	char where[INET6_ADDRSTRLEN + 16];
	struct MHD_OptionItem tls_opts[6] = {{MHD_OPTION_END, 0, NULL}};
	struct webconfig *wc = NULL;
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
	/* glibc: neither can fail with these attributes */
	pthread_mutex_init(&httpd->lock, NULL);
	pthread_condattr_init(&cond_attr);
	pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC);
	pthread_cond_init(&httpd->wake, &cond_attr);
	pthread_condattr_destroy(&cond_attr);
	httpd->routes = calloc(config->n_routes + 1, sizeof(*httpd->routes));
	if (!httpd->routes) {
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(httpd->routes, config->routes, config->n_routes * sizeof(*httpd->routes));
	httpd->n_routes = config->n_routes;
	httpd->limits = config->limits;
	if (!httpd->limits.max_connections)
		httpd->limits.max_connections = default_limits.max_connections;
	if (!httpd->limits.max_connections_per_ip)
		httpd->limits.max_connections_per_ip = default_limits.max_connections_per_ip;
	if (!httpd->limits.read_timeout_s)
		httpd->limits.read_timeout_s = default_limits.read_timeout_s;
	if (!httpd->limits.write_timeout_s)
		httpd->limits.write_timeout_s = default_limits.write_timeout_s;
	if (!httpd->limits.workers)
		httpd->limits.workers = default_limits.workers;
	/* MHD gives each worker an equal share of the connections. */
	if (httpd->limits.workers > httpd->limits.max_connections)
		httpd->limits.workers = httpd->limits.max_connections;

	ret = open_listener(&addr, len);
	if (ret == -EAFNOSUPPORT && addr.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&addr)->sin6_addr)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&addr;
		uint16_t port = ((struct sockaddr_in6 *)&addr)->sin6_port;

		log_info("httpd", "no IPv6 in this kernel; listening on IPv4 only");
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
		httpd->port = ntohs(bound.ss_family == AF_INET6
					    ? ((struct sockaddr_in6 *)&bound)->sin6_port
					    : ((struct sockaddr_in *)&bound)->sin_port);
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* Each connection then takes the current config's credentials (on_connection); the
	 * start's are what MHD needs to start. */
	wc = current_web();
	if (wc && wc->tls) {
		struct MHD_OptionItem *o = tls_opts;

		httpd->tls = true;
		flags |= MHD_USE_TLS;
		*o++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, wc->key};
		*o++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, wc->cert};
		*o++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, wc->priorities};
		if (wc->client_ca)
			*o++ = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
						       wc->client_ca};
		*o = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	}

	/* MHD closes the listen socket it is given when it stops, but may or may not when it
	 * fails to start: give it a copy, so our own descriptor is closed exactly once. */
	mhd_fd = fcntl(httpd->listen_fd, F_DUPFD_CLOEXEC, 0);
	if (mhd_fd < 0) {
		ret = -errno;
		set_err(err, err_size, "cannot listen on %s: %s", where, strerror(-ret));
		goto fail;
	}
	/* MHD refuses connections past its own limit (they wait in the backlog); ours evicts
	 * instead, and MHD's is the backstop while evicted ones are being closed. */
	mhd_limit = httpd->limits.max_connections + httpd->limits.max_connections / 2 +
		    httpd->limits.workers;
	/* Started first: the read deadline must hold from the first connection on. */
	ret = -pthread_create(&httpd->sweeper, NULL, sweep, httpd);
	if (ret) {
		close(mhd_fd);
		set_err(err, err_size, "cannot start the HTTP connection sweeper: %s",
			strerror(-ret));
		goto fail;
	}
	httpd->sweeper_running = true;
	httpd->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, httpd, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, httpd,
		MHD_OPTION_LISTEN_SOCKET, mhd_fd, MHD_OPTION_THREAD_POOL_SIZE,
		httpd->limits.workers, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, httpd->limits.max_connections_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, httpd->limits.read_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, httpd, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, httpd, MHD_OPTION_URI_LOG_CALLBACK, on_uri, httpd, MHD_OPTION_ARRAY,
		tls_opts, MHD_OPTION_END);
	httpd->start_web = wc;
	wc = NULL;
	if (!httpd->mhd) {
		ret = -EIO;
		set_err(err, err_size, "cannot start libmicrohttpd on %s (%u workers%s)", where,
			httpd->limits.workers,
			httpd->tls ? ", TLS: is libmicrohttpd built with GnuTLS?" : "");
		goto fail;
	}
	close(httpd->listen_fd);
	httpd->listen_fd = -1;
	*out = httpd;
	return 0;
fail:
	webconfig_put(wc);
	if (httpd) {
		stop_sweeper(httpd);
		if (httpd->listen_fd >= 0)
			close(httpd->listen_fd);
		webconfig_put(httpd->start_web);
		pthread_cond_destroy(&httpd->wake);
		pthread_mutex_destroy(&httpd->lock);
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
	MHD_stop_daemon(httpd->mhd); /* closes the listen socket and every connection */
	stop_sweeper(httpd);
	webconfig_put(httpd->start_web);
	pthread_cond_destroy(&httpd->wake);
	pthread_mutex_destroy(&httpd->lock);
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
