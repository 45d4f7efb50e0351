/* --web.config.file: the YAML format of Prometheus' exporter-toolkit (TLS server certificate,
 * client certificates, basic auth users with bcrypt hashes, response headers), parsed, loaded
 * into GnuTLS credentials, and re-read when the file or a file it names changes. */
#ifndef IPIV_WEBCONFIG_H
#define IPIV_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

/* tls_server_config.client_auth_type: Go's crypto/tls names, in its order. */
enum webconfig_client_auth {
	WEBCONFIG_NO_CLIENT_CERT,
	WEBCONFIG_REQUEST_CLIENT_CERT,
	WEBCONFIG_REQUIRE_ANY_CLIENT_CERT,
	WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN,
	WEBCONFIG_REQUIRE_AND_VERIFY_CLIENT_CERT,
};

/* TLS versions as the file names them: TLS10 is 10. */
#define WEBCONFIG_TLS_MIN_DEFAULT 12
#define WEBCONFIG_TLS_MAX_DEFAULT 13

struct webconfig_user {
	char *name;
	char *hash; /* bcrypt: $2a$, $2b$ or $2y$ */
};

struct webconfig_header {
	char *name; /* one of the five exporter-toolkit allows */
	char *value;
};

/* Where a file the config depends on stood when it was read: a change means a reload. */
struct webconfig_file {
	char *path;
	uint64_t dev, ino, size;
	int64_t mtime_ns;
	int err; /* errno of stat(), or 0 */
};

#define WEBCONFIG_MAX_FILES 4 /* the config itself, cert_file, key_file, client_ca_file */

struct webconfig_runtime;

struct webconfig {
	bool tls;		      /* a certificate was given: the server speaks only TLS */
	char *cert_file, *key_file;   /* resolved against the config file's directory */
	char *client_ca_file;	      /* NULL when not given */
	char *cert, *key, *client_ca; /* PEM: inline, or read from the files by load */
	enum webconfig_client_auth client_auth;
	char **allowed_sans; /* client_allowed_sans: one must match exactly */
	size_t n_allowed_sans;
	unsigned min_version, max_version; /* 10..13 */
	char *priorities;		   /* GnuTLS priority string for the versions and suites */
	struct webconfig_user *users;	   /* basic_auth_users; none: no authentication */
	size_t n_users;
	struct webconfig_header *headers; /* http_server_config.headers */
	size_t n_headers;
	struct webconfig_file files[WEBCONFIG_MAX_FILES];
	size_t n_files;
	struct webconfig_runtime *rt; /* credentials, priority cache, auth cache (load only) */
	int refs;
};

/*
 * Parses the YAML text of a web config. name is what errors call the file; relative file
 * names are resolved against dir (the config file's directory, as exporter-toolkit does).
 * Reads no file. Returns 0, or -EINVAL with one line in err naming the key and its line,
 * e.g. "web.yml: line 3: tls_server_config: unknown key \"cert_fil\"".
 */
int webconfig_parse(const char *text, size_t len, const char *name, const char *dir,
		    struct webconfig **out, char *err, size_t err_size);

/*
 * Reads and parses path, then the files it names, and builds what serving needs: GnuTLS
 * credentials (the key must match the certificate), the priority cache, the client CA.
 * Returns 0 or a negative errno with one line in err naming the file or key at fault.
 * verify, if given, is installed on the credentials when client certificates are checked.
 */
int webconfig_load(const char *path, gnutls_certificate_verify_function *verify,
		   struct webconfig **out, char *err, size_t err_size);

/* References: a loaded config lives until its last holder lets go. NULL is fine. */
struct webconfig *webconfig_get(struct webconfig *wc);
void webconfig_put(struct webconfig *wc);

/* A hash of what stat() says of those files now: equal stamps, nothing changed in between. */
uint64_t webconfig_files_stamp(const struct webconfig *wc);

/* True if a file the config was read from is no longer what it was (or its stat() changed). */
bool webconfig_files_changed(const struct webconfig *wc);

/*
 * Checks a basic-auth user and password against basic_auth_users with crypt(3). A success is
 * remembered (an HMAC of user and password under a key of this config), so a scraper does not
 * pay a bcrypt per request; an unknown user costs a bcrypt too. Returns true if they match.
 */
bool webconfig_check_password(struct webconfig *wc, const char *user, const char *password);

/* For a loaded TLS config: what a session needs. */
gnutls_certificate_credentials_t webconfig_credentials(const struct webconfig *wc);
gnutls_priority_t webconfig_priority(const struct webconfig *wc);
gnutls_certificate_request_t webconfig_cert_request(const struct webconfig *wc);

/*
 * The client certificate check of a handshake, for the verify function: the chain must verify
 * against client_ca (the *Verify* types) and the leaf carry one of client_allowed_sans (when
 * given). Returns 0 to go on, -1 to abort the handshake.
 */
int webconfig_verify_client(const struct webconfig *wc, gnutls_session_t session);

/* The names webconfig_parse knows, for messages and tests. */
const char *webconfig_client_auth_name(enum webconfig_client_auth auth);

#endif
