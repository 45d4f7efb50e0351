/* --web.config.file: exporter-toolkit's YAML (libyaml's document API), the files it names read
 * into GnuTLS credentials, and basic-auth checks with crypt(3) behind a cache of successes. */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <yaml.h>

#include "strbuf.h"
#include "webconfig.h"

/* A referenced file larger than this is not a certificate or key. */
#define WEBCONFIG_MAX_FILE_BYTES (1024 * 1024)
/* Successful basic-auth checks remembered per config: a few scrapers' credentials. */
#define AUTH_CACHE_SLOTS	 16
#define AUTH_DIGEST_LEN		 32

struct webconfig_runtime {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t priority;
	pthread_mutex_t auth_lock; /* guards what follows */
	uint8_t auth_key[32];
	uint8_t auth_ok[AUTH_CACHE_SLOTS][AUTH_DIGEST_LEN];
	unsigned int n_auth_ok, next_auth_slot;
};

/* What the file's TLS keys say, gathered before the priority string is built from them. */
struct tls_prio {
	char ciphers[512], kx[128], macs[128], groups[128];
	bool have_suites, have_curves, server_order;
};

/* The TLS keys' nodes, for messages about rules that span keys. */
struct tls_keys {
	struct tls_prio prio;
	yaml_node_t *client_ca_node, *sans_node, *auth_node, *cert_node;
};

struct parse_ctx {
	struct tls_keys tk;
	yaml_document_t *doc;
	const char *name, *dir;
	char *err;
	size_t err_size;
	struct webconfig *wc;
};

static const char *const client_auth_names[] = {
	[WEBCONFIG_NO_CLIENT_CERT] = "NoClientCert",
	[WEBCONFIG_REQUEST_CLIENT_CERT] = "RequestClientCert",
	[WEBCONFIG_REQUIRE_ANY_CLIENT_CERT] = "RequireAnyClientCert",
	[WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN] = "VerifyClientCertIfGiven",
	[WEBCONFIG_REQUIRE_AND_VERIFY_CLIENT_CERT] = "RequireAndVerifyClientCert",
};

const char *webconfig_client_auth_name(enum webconfig_client_auth auth)
{
	return (unsigned)auth < sizeof(client_auth_names) / sizeof(client_auth_names[0])
		       ? client_auth_names[auth]
		       : "?";
}

/* The response headers exporter-toolkit lets a config set, and the values it accepts. */
static const char *const header_names[] = {
	"Content-Security-Policy", "X-Frame-Options",		"X-Content-Type-Options",
	"X-XSS-Protection",	   "Strict-Transport-Security",
};

static int fail(struct parse_ctx *p, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One line: the file, the line of the node at fault, what is wrong. Always -EINVAL. */
static int fail(struct parse_ctx *p, const yaml_node_t *node, const char *fmt, ...)
{
	char what[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (node)
		set_err(p->err, p->err_size, "%s: line %zu: %s", p->name, node->start_mark.line + 1,
			what);
	else
		set_err(p->err, p->err_size, "%s: %s", p->name, what);
	return -EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* YAML's null (empty, ~ or null, unquoted): the key is as good as absent. */
static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = scalar(n);
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static int want_string(struct parse_ctx *p, const yaml_node_t *n, const char *key, char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail(p, n, "%s: want a string", key);
	if (strlen(scalar(n)) != n->data.scalar.length)
		return fail(p, n, "%s: contains a NUL byte", key);
	free(*out);
	*out = is_null(n) ? NULL : strdup(scalar(n));
	if (!is_null(n) && !*out)
		return -ENOMEM;
	return 0;
}

/* The booleans of exporter-toolkit's YAML library, gopkg.in/yaml.v2 (YAML 1.1, its resolve
 * table): these spellings, unquoted. A quoted "true" is a string there, which a bool field
 * refuses, and so does this. */
static int want_bool(struct parse_ctx *p, const yaml_node_t *n, const char *key, bool *out)
{
	static const char *const yes[] = {"y",	  "Y",	  "yes", "Yes", "YES", "true",
					  "True", "TRUE", "on",	 "On",	"ON"};
	static const char *const no[] = {"n",	  "N",	   "no",  "No",	 "NO", "false",
					 "False", "FALSE", "off", "Off", "OFF"};

	if (n->type != YAML_SCALAR_NODE)
		return fail(p, n, "%s: want true or false", key);
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return fail(p, n, "%s: want true or false, unquoted (\"%s\" is a string)", key,
			    scalar(n));
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(scalar(n), yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(scalar(n), no[i])) {
			*out = false;
			return 0;
		}
	}
	return fail(p, n, "%s: want true or false", key);
}

/* A file name, resolved against the config file's directory. */
static int want_path(struct parse_ctx *p, const yaml_node_t *n, const char *key, char **out)
{
	char *name = NULL;
	int r = want_string(p, n, key, &name);

	if (r || !name)
		return r;
	free(*out);
	*out = NULL;
	if (name[0] == '/' || !p->dir || !*p->dir) {
		*out = name;
		return 0;
	}
	r = asprintf(out, "%s/%s", p->dir, name) < 0 ? -ENOMEM : 0;
	free(name);
	return r;
}

/* Walks a mapping's pairs; a key given twice is an error (YAML says keys are unique). */
typedef int (*pair_fn)(struct parse_ctx *p, const char *key, yaml_node_t *key_node,
		       yaml_node_t *value);

static int each_pair(struct parse_ctx *p, yaml_node_t *map, const char *what, pair_fn fn)
{
	yaml_node_pair_t *pair, *other;
	int r;

	if (is_null(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return fail(p, map, "%s: want a mapping of keys to values", what);
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(p->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(p->doc, pair->value);

		if (!k || !v || k->type != YAML_SCALAR_NODE)
			return fail(p, k, "%s: keys must be strings", what);
		for (other = map->data.mapping.pairs.start; other < pair; other++) {
			yaml_node_t *ok = yaml_document_get_node(p->doc, other->key);

			if (ok && ok->type == YAML_SCALAR_NODE && !strcmp(scalar(ok), scalar(k)))
				return fail(p, k, "%s: key \"%s\" is given twice", what, scalar(k));
		}
		r = fn(p, scalar(k), k, v);
		if (r)
			return r;
	}
	return 0;
}

static int parse_version(struct parse_ctx *p, const yaml_node_t *n, const char *key, unsigned *out)
{
	static const char *const names[] = {"TLS10", "TLS11", "TLS12", "TLS13"};

	if (n->type == YAML_SCALAR_NODE)
		for (unsigned i = 0; i < 4; i++)
			if (!strcmp(scalar(n), names[i])) {
				*out = 10 + i;
				return 0;
			}
	return fail(p, n, "tls_server_config: %s: want TLS10, TLS11, TLS12 or TLS13, not \"%s\"",
		    key, n->type == YAML_SCALAR_NODE ? scalar(n) : "(not a string)");
}

/* A string list, each item run through fn (which may append to a priority string). */
typedef int (*item_fn)(struct parse_ctx *p, const yaml_node_t *item, void *arg);

static int each_item(struct parse_ctx *p, yaml_node_t *seq, const char *key, item_fn fn, void *arg)
{
	yaml_node_item_t *it;
	int r;

	if (is_null(seq))
		return 0;
	if (seq->type != YAML_SEQUENCE_NODE)
		return fail(p, seq, "%s: want a list", key);
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, *it);

		if (!item || item->type != YAML_SCALAR_NODE)
			return fail(p, item ? item : seq, "%s: want a list of strings", key);
		r = fn(p, item, arg);
		if (r)
			return r;
	}
	return 0;
}

static void add_once(char *list, size_t size, const char *item)
{
	char tok[48];

	snprintf(tok, sizeof(tok), ":+%s", item);
	if (strstr(list, tok)) /* items are whole names, and each ends the token or a ':' */
		return;
	strncat(list, tok, size - strlen(list) - 1);
}

/*
 * A Go cipher suite name (crypto/tls) as GnuTLS' key exchange, cipher and MAC. GnuTLS takes
 * those as three lists, so the set allowed is their combinations; TLS 1.3 suites name no key
 * exchange, and the ciphers listed also bound TLS 1.3's.
 */
static int add_suite(struct parse_ctx *p, const yaml_node_t *item, void *arg)
{
	static const struct {
		const char *go, *cipher, *mac;
	} tails[] = {
		{"AES_128_CBC_SHA", "AES-128-CBC", "SHA1"},
		{"AES_256_CBC_SHA", "AES-256-CBC", "SHA1"},
		{"AES_128_CBC_SHA256", "AES-128-CBC", "SHA256"},
		{"AES_128_GCM_SHA256", "AES-128-GCM", "AEAD"},
		{"AES_256_GCM_SHA384", "AES-256-GCM", "AEAD"},
		{"CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", "AEAD"},
		{"CHACHA20_POLY1305", "CHACHA20-POLY1305", "AEAD"},
	};
	static const struct {
		const char *go, *kx;
	} kxs[] = {{"ECDHE_ECDSA", "ECDHE-ECDSA"}, {"ECDHE_RSA", "ECDHE-RSA"}, {"RSA", "RSA"}};
	struct tls_prio *tp = arg;
	const char *name = scalar(item), *with, *tail = NULL, *kx = NULL;

	if (strncmp(name, "TLS_", 4))
		goto unknown;
	with = strstr(name, "_WITH_");
	if (with) {
		for (size_t i = 0; i < sizeof(kxs) / sizeof(kxs[0]); i++)
			if ((size_t)(with - name - 4) == strlen(kxs[i].go) &&
			    !strncmp(name + 4, kxs[i].go, strlen(kxs[i].go)))
				kx = kxs[i].kx;
		if (!kx)
			goto unknown;
		tail = with + 6;
	} else {
		tail = name + 4; /* a TLS 1.3 suite: TLS_AES_128_GCM_SHA256 */
	}
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		if (strcmp(tail, tails[i].go))
			continue;
		if (!kx && strcmp(tails[i].mac, "AEAD"))
			goto unknown;
		add_once(tp->ciphers, sizeof(tp->ciphers), tails[i].cipher);
		add_once(tp->macs, sizeof(tp->macs), tails[i].mac);
		if (kx)
			add_once(tp->kx, sizeof(tp->kx), kx);
		tp->have_suites = true;
		return 0;
	}
unknown:
	return fail(p, item,
		    "tls_server_config: cipher_suites: unknown suite \"%s\" (want Go's "
		    "names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)",
		    name);
}

static int add_curve(struct parse_ctx *p, const yaml_node_t *item, void *arg)
{
	static const struct {
		const char *go, *group;
	} curves[] = {{"CurveP256", "GROUP-SECP256R1"},
		      {"CurveP384", "GROUP-SECP384R1"},
		      {"CurveP521", "GROUP-SECP521R1"},
		      {"X25519", "GROUP-X25519"}};
	struct tls_prio *tp = arg;

	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (!strcmp(scalar(item), curves[i].go)) {
			add_once(tp->groups, sizeof(tp->groups), curves[i].group);
			tp->have_curves = true;
			return 0;
		}
	return fail(p, item,
		    "tls_server_config: curve_preferences: unknown curve \"%s\" (want CurveP256, "
		    "CurveP384, CurveP521 or X25519)",
		    scalar(item));
}

static int add_san(struct parse_ctx *p, const yaml_node_t *item, void *arg)
{
	struct webconfig *wc = p->wc;
	char **sans = realloc(wc->allowed_sans, (wc->n_allowed_sans + 1) * sizeof(*sans));

	if (!sans)
		return -ENOMEM;
	wc->allowed_sans = sans;
	sans[wc->n_allowed_sans] = strdup(scalar(item));
	if (!sans[wc->n_allowed_sans])
		return -ENOMEM;
	wc->n_allowed_sans++;
	return 0;
}

static int tls_pair(struct parse_ctx *p, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct webconfig *wc = p->wc;
	struct tls_keys *tk = &p->tk;

	/* nodes that messages about rules spanning keys point at (check_tls) */
	if (!strcmp(key, "cert_file") || !strcmp(key, "cert"))
		tk->cert_node = v;
	else if (!strcmp(key, "client_ca_file") || !strcmp(key, "client_ca"))
		tk->client_ca_node = v;
	else if (!strcmp(key, "client_allowed_sans"))
		tk->sans_node = v;
	else if (!strcmp(key, "client_auth_type"))
		tk->auth_node = v;

	if (!strcmp(key, "cert_file"))
		return want_path(p, v, "tls_server_config: cert_file", &wc->cert_file);
	if (!strcmp(key, "key_file"))
		return want_path(p, v, "tls_server_config: key_file", &wc->key_file);
	if (!strcmp(key, "client_ca_file"))
		return want_path(p, v, "tls_server_config: client_ca_file", &wc->client_ca_file);
	if (!strcmp(key, "cert"))
		return want_string(p, v, "tls_server_config: cert", &wc->cert);
	if (!strcmp(key, "key"))
		return want_string(p, v, "tls_server_config: key", &wc->key);
	if (!strcmp(key, "client_ca"))
		return want_string(p, v, "tls_server_config: client_ca", &wc->client_ca);
	if (!strcmp(key, "client_auth_type")) {
		if (is_null(v))
			return 0;
		for (unsigned i = 0; v->type == YAML_SCALAR_NODE &&
				     i < sizeof(client_auth_names) / sizeof(client_auth_names[0]);
		     i++)
			if (!strcmp(scalar(v), client_auth_names[i])) {
				wc->client_auth = (enum webconfig_client_auth)i;
				return 0;
			}
		return fail(p, v,
			    "tls_server_config: client_auth_type: want NoClientCert, "
			    "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or "
			    "RequireAndVerifyClientCert, not \"%s\"",
			    v->type == YAML_SCALAR_NODE ? scalar(v) : "(not a string)");
	}
	if (!strcmp(key, "min_version"))
		return is_null(v) ? 0 : parse_version(p, v, key, &wc->min_version);
	if (!strcmp(key, "max_version"))
		return is_null(v) ? 0 : parse_version(p, v, key, &wc->max_version);
	if (!strcmp(key, "cipher_suites"))
		return each_item(p, v, "tls_server_config: cipher_suites", add_suite, &tk->prio);
	if (!strcmp(key, "curve_preferences"))
		return each_item(p, v, "tls_server_config: curve_preferences", add_curve,
				 &tk->prio);
	if (!strcmp(key, "prefer_server_cipher_suites"))
		return want_bool(p, v, "tls_server_config: prefer_server_cipher_suites",
				 &tk->prio.server_order);
	if (!strcmp(key, "client_allowed_sans"))
		return each_item(p, v, "tls_server_config: client_allowed_sans", add_san, NULL);
	return fail(p, k, "tls_server_config: unknown key \"%s\"", key);
}

static int header_pair(struct parse_ctx *p, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct webconfig *wc = p->wc;
	struct webconfig_header *h;
	char *value = NULL;
	bool known = false;
	int r;

	for (size_t i = 0; i < sizeof(header_names) / sizeof(header_names[0]); i++)
		known |= !strcmp(key, header_names[i]);
	if (!known)
		return fail(p, k,
			    "http_server_config: headers: \"%s\" cannot be set (want "
			    "Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, "
			    "X-XSS-Protection or Strict-Transport-Security)",
			    key);
	r = want_string(p, v, "http_server_config: headers", &value);
	if (r || !value)
		return r;
	if (strpbrk(value, "\r\n")) {
		free(value);
		return fail(p, v, "http_server_config: headers: %s: a line break in the value",
			    key);
	}
	if ((!strcmp(key, "X-Content-Type-Options") && strcasecmp(value, "nosniff")) ||
	    (!strcmp(key, "X-Frame-Options") && strcasecmp(value, "deny") &&
	     strcasecmp(value, "sameorigin"))) {
		r = fail(p, v, "http_server_config: headers: %s: \"%s\" is not allowed (want %s)",
			 key, value, key[2] == 'C' ? "nosniff" : "deny or sameorigin");
		free(value);
		return r;
	}
	h = realloc(wc->headers, (wc->n_headers + 1) * sizeof(*h));
	if (!h) {
		free(value);
		return -ENOMEM;
	}
	wc->headers = h;
	h[wc->n_headers].name = strdup(key);
	h[wc->n_headers].value = value;
	if (!h[wc->n_headers].name) {
		free(value);
		return -ENOMEM;
	}
	wc->n_headers++;
	return 0;
}

static int http_pair(struct parse_ctx *p, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	bool http2;

	/* ipivd speaks HTTP/1.1 only; the key is accepted so that a shared file loads. */
	if (!strcmp(key, "http2"))
		return is_null(v) ? 0 : want_bool(p, v, "http_server_config: http2", &http2);
	if (!strcmp(key, "headers"))
		return each_pair(p, v, "http_server_config: headers", header_pair);
	return fail(p, k, "http_server_config: unknown key \"%s\"", key);
}

static int user_pair(struct parse_ctx *p, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	struct webconfig *wc = p->wc;
	struct webconfig_user *u;
	char *hash = NULL;
	int r;

	if (!*key || strchr(key, ':'))
		return fail(p, k,
			    "basic_auth_users: \"%s\" cannot be a user name (empty, or has a "
			    "colon)",
			    key);
	r = want_string(p, v, "basic_auth_users", &hash);
	if (r)
		return r;
	if (!hash ||
	    (strncmp(hash, "$2a$", 4) && strncmp(hash, "$2b$", 4) && strncmp(hash, "$2y$", 4)) ||
	    crypt_checksalt(hash) != CRYPT_SALT_OK || strlen(hash) != 60) {
		free(hash);
		return fail(p, v,
			    "basic_auth_users: %s: not a bcrypt hash (want $2y$, $2b$ or $2a$ and "
			    "53 more characters, e.g. from htpasswd -nBC 10 \"\")",
			    key);
	}
	u = realloc(wc->users, (wc->n_users + 1) * sizeof(*u));
	if (!u) {
		free(hash);
		return -ENOMEM;
	}
	wc->users = u;
	u[wc->n_users].name = strdup(key);
	u[wc->n_users].hash = hash;
	if (!u[wc->n_users].name) {
		free(hash);
		return -ENOMEM;
	}
	wc->n_users++;
	return 0;
}

static int top_pair(struct parse_ctx *p, const char *key, yaml_node_t *k, yaml_node_t *v)
{
	if (!strcmp(key, "tls_server_config"))
		return each_pair(p, v, "tls_server_config", tls_pair);
	if (!strcmp(key, "http_server_config"))
		return each_pair(p, v, "http_server_config", http_pair);
	if (!strcmp(key, "basic_auth_users"))
		return each_pair(p, v, "basic_auth_users", user_pair);
	if (!strcmp(key, "rate_limit"))
		return fail(p, k,
			    "rate_limit is not supported by ipivd (--web.max-connections and "
			    "--web.max-connections-per-ip bound what clients can take)");
	return fail(p, k,
		    "unknown key \"%s\" (want tls_server_config, http_server_config or "
		    "basic_auth_users)",
		    key);
}

/* The GnuTLS priority string: versions from min to max, then the suites and curves given. */
static int build_priorities(struct parse_ctx *p, const struct tls_prio *tp)
{
	struct webconfig *wc = p->wc;
	char s[1024];
	int n;

	n = snprintf(s, sizeof(s), "NORMAL:-VERS-ALL");
	for (unsigned v = wc->max_version; v >= wc->min_version && v >= 10; v--)
		n += snprintf(s + n, sizeof(s) - n, ":+VERS-TLS1.%u", v - 10);
	if (tp->have_suites)
		n += snprintf(s + n, sizeof(s) - n, ":-CIPHER-ALL%s:-MAC-ALL%s%s%s", tp->ciphers,
			      tp->macs, tp->kx[0] ? ":-KX-ALL" : "", tp->kx);
	if (tp->have_curves)
		n += snprintf(s + n, sizeof(s) - n, ":-GROUP-ALL%s", tp->groups);
	if (tp->server_order)
		n += snprintf(s + n, sizeof(s) - n, ":%%SERVER_PRECEDENCE");
	if ((size_t)n >= sizeof(s))
		return fail(p, NULL, "tls_server_config: too many cipher suites or curves");
	wc->priorities = strdup(s);
	return wc->priorities ? 0 : -ENOMEM;
}

/* Rules that span keys, as exporter-toolkit checks them. */
static int check_tls(struct parse_ctx *p, const struct tls_keys *tk)
{
	struct webconfig *wc = p->wc;
	bool any_cert = wc->cert_file || wc->cert, any_key = wc->key_file || wc->key;
	bool verify = wc->client_auth == WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN ||
		      wc->client_auth == WEBCONFIG_REQUIRE_AND_VERIFY_CLIENT_CERT;
	bool have_ca = wc->client_ca_file || wc->client_ca;

	if (wc->cert_file && wc->cert)
		return fail(p, tk->cert_node,
			    "tls_server_config: give cert or cert_file, not both");
	if (wc->key_file && wc->key)
		return fail(p, NULL, "tls_server_config: give key or key_file, not both");
	if (wc->client_ca_file && wc->client_ca)
		return fail(p, tk->client_ca_node,
			    "tls_server_config: give client_ca or client_ca_file, not both");
	wc->tls = any_cert || any_key;
	if (!wc->tls) {
		if (have_ca || wc->client_auth != WEBCONFIG_NO_CLIENT_CERT || wc->n_allowed_sans)
			return fail(p, NULL,
				    "tls_server_config: client certificates need a server "
				    "certificate (cert_file and key_file)");
		return 0;
	}
	if (!any_cert)
		return fail(p, NULL, "tls_server_config: key_file given without cert_file");
	if (!any_key)
		return fail(p, tk->cert_node,
			    "tls_server_config: cert_file given without key_file");
	if (verify && !have_ca)
		return fail(p, tk->auth_node,
			    "tls_server_config: client_auth_type %s needs "
			    "client_ca_file",
			    client_auth_names[wc->client_auth]);
	if (have_ca && wc->client_auth == WEBCONFIG_NO_CLIENT_CERT)
		return fail(p, tk->client_ca_node,
			    "tls_server_config: client_ca_file is set but client_auth_type is "
			    "NoClientCert (want RequireAndVerifyClientCert)");
	if (wc->n_allowed_sans && wc->client_auth != WEBCONFIG_REQUIRE_ANY_CLIENT_CERT &&
	    wc->client_auth != WEBCONFIG_REQUIRE_AND_VERIFY_CLIENT_CERT)
		return fail(p, tk->sans_node,
			    "tls_server_config: client_allowed_sans needs client_auth_type "
			    "RequireAnyClientCert or RequireAndVerifyClientCert");
	if (wc->min_version > wc->max_version)
		return fail(p, NULL,
			    "tls_server_config: min_version TLS1%u is above max_version "
			    "TLS1%u",
			    wc->min_version - 10, wc->max_version - 10);
	return build_priorities(p, &tk->prio);
}

static void free_fields(struct webconfig *wc)
{
	free(wc->cert_file);
	free(wc->key_file);
	free(wc->client_ca_file);
	free(wc->cert);
	if (wc->key) {
		explicit_bzero(wc->key, strlen(wc->key));
		free(wc->key);
	}
	free(wc->client_ca);
	for (size_t i = 0; i < wc->n_allowed_sans; i++)
		free(wc->allowed_sans[i]);
	free(wc->allowed_sans);
	free(wc->priorities);
	for (size_t i = 0; i < wc->n_users; i++) {
		free(wc->users[i].name);
		free(wc->users[i].hash);
	}
	free(wc->users);
	for (size_t i = 0; i < wc->n_headers; i++) {
		free(wc->headers[i].name);
		free(wc->headers[i].value);
	}
	free(wc->headers);
	for (size_t i = 0; i < wc->n_files; i++)
		free(wc->files[i].path);
}

static void webconfig_free(struct webconfig *wc)
{
	if (!wc)
		return;
	if (wc->rt) {
		if (wc->rt->cred)
			gnutls_certificate_free_credentials(wc->rt->cred);
		if (wc->rt->priority)
			gnutls_priority_deinit(wc->rt->priority);
		pthread_mutex_destroy(&wc->rt->auth_lock);
		explicit_bzero(wc->rt, sizeof(*wc->rt));
		free(wc->rt);
	}
	free_fields(wc);
	free(wc);
}

int webconfig_parse(const char *text, size_t len, const char *name, const char *dir,
		    struct webconfig **out, char *err, size_t err_size)
{
	struct parse_ctx p = {
		.name = name ? name : "web config", .dir = dir, .err = err, .err_size = err_size};
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct webconfig *wc;
	int r;

	*out = NULL;
	wc = calloc(1, sizeof(*wc));
	if (!wc)
		return -ENOMEM;
	wc->min_version = WEBCONFIG_TLS_MIN_DEFAULT;
	wc->max_version = WEBCONFIG_TLS_MAX_DEFAULT;
	wc->refs = 1;
	p.wc = wc;
	if (!yaml_parser_initialize(&parser)) {
		free(wc);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		set_err(err, err_size, "%s: line %zu: not YAML: %s%s%s", p.name,
			parser.problem_mark.line + 1, parser.problem ? parser.problem : "?",
			parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		free(wc);
		return -EINVAL;
	}
	p.doc = &doc;
	p.tk.prio.server_order = true; /* exporter-toolkit's default */
	root = yaml_document_get_root_node(&doc);
	r = 0;
	if (root && !is_null(root)) {
		if (root->type != YAML_MAPPING_NODE)
			r = fail(&p, root,
				 "want a mapping with tls_server_config, "
				 "http_server_config or basic_auth_users");
		else
			r = each_pair(&p, root, "web config", top_pair);
	}
	if (!r)
		r = check_tls(&p, &p.tk);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (r) {
		if (r == -ENOMEM)
			set_err(err, err_size, "%s: out of memory", p.name);
		webconfig_free(wc);
		return r;
	}
	*out = wc;
	return 0;
}

static int64_t stat_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void file_stat(struct webconfig_file *f)
{
	struct stat st;

	if (stat(f->path, &st)) {
		f->err = errno;
		f->dev = f->ino = f->size = 0;
		f->mtime_ns = 0;
		return;
	}
	f->err = 0;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = (uint64_t)st.st_size;
	f->mtime_ns = stat_mtime_ns(&st);
}

bool webconfig_files_changed(const struct webconfig *wc)
{
	for (size_t i = 0; i < wc->n_files; i++) {
		struct webconfig_file now = {.path = wc->files[i].path};

		file_stat(&now);
		if (now.err != wc->files[i].err || now.dev != wc->files[i].dev ||
		    now.ino != wc->files[i].ino || now.size != wc->files[i].size ||
		    now.mtime_ns != wc->files[i].mtime_ns)
			return true;
	}
	return false;
}

uint64_t webconfig_files_stamp(const struct webconfig *wc)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over each file's stat() now */

	for (size_t i = 0; i < wc->n_files; i++) {
		struct webconfig_file now = {.path = wc->files[i].path};
		uint64_t v[5];

		file_stat(&now);
		v[0] = now.dev;
		v[1] = now.ino;
		v[2] = now.size;
		v[3] = (uint64_t)now.mtime_ns;
		v[4] = (uint64_t)now.err;
		for (size_t j = 0; j < sizeof(v); j++) {
			h ^= ((const unsigned char *)v)[j];
			h *= 1099511628211ull;
		}
	}
	return h;
}

/* Reads a whole (small) file as a string; its stat() before the read goes into the record.
 * what names the key that named the file (NULL: the config file itself). */
static int read_file(struct webconfig *wc, const char *path, const char *what, char **out,
		     size_t *len, char *err, size_t err_size)
{
	struct webconfig_file *f = &wc->files[wc->n_files];
	char *buf = NULL;
	size_t n = 0;
	ssize_t got;
	int fd, r;

	f->path = strdup(path);
	if (!f->path)
		return -ENOMEM;
	wc->n_files++;
	file_stat(f);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (what)
			set_err(err, err_size, "%s %s: %s", what, path, strerror(-r));
		else
			set_err(err, err_size, "%s: %s", path, strerror(-r));
		return r;
	}
	buf = malloc(WEBCONFIG_MAX_FILE_BYTES + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while ((got = read(fd, buf + n, WEBCONFIG_MAX_FILE_BYTES + 1 - n)) > 0)
		n += (size_t)got;
	r = got < 0 ? -errno : 0;
	close(fd);
	if (!r && n > WEBCONFIG_MAX_FILE_BYTES)
		r = -EFBIG;
	if (r) {
		set_err(err, err_size, "%s%s%s: %s", what ? what : "", what ? " " : "", path,
			r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
		free(buf);
		return r;
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

/* Names the file, or says the PEM was inline. */
static const char *source_of(const char *file, const char *key, char *buf, size_t size)
{
	if (file)
		snprintf(buf, size, "%s", file);
	else
		snprintf(buf, size, "tls_server_config.%s (inline)", key);
	return buf;
}

static int load_tls(struct webconfig *wc, const char *name,
		    gnutls_certificate_verify_function *verify, char *err, size_t err_size)
{
	struct webconfig_runtime *rt = wc->rt;
	gnutls_datum_t cert = {(unsigned char *)wc->cert, (unsigned)strlen(wc->cert)};
	gnutls_datum_t key = {(unsigned char *)wc->key, (unsigned)strlen(wc->key)};
	gnutls_x509_crt_t *crts = NULL;
	gnutls_x509_privkey_t pk = NULL;
	unsigned int n_crts = 0;
	const char *errpos = NULL;
	char src[512];
	int r;

	r = gnutls_x509_crt_list_import2(&crts, &n_crts, &cert, GNUTLS_X509_FMT_PEM, 0);
	for (unsigned i = 0; r >= 0 && i < n_crts; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (r < 0 || !n_crts) {
		set_err(err, err_size, "%s: no PEM certificate in it (%s)",
			source_of(wc->cert_file, "cert", src, sizeof(src)),
			r < 0 ? gnutls_strerror(r) : "empty");
		return -EINVAL;
	}
	r = gnutls_x509_privkey_init(&pk);
	if (r >= 0)
		r = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_x509_privkey_deinit(pk);
	if (r < 0) {
		set_err(err, err_size, "%s: not an unencrypted PEM private key (%s)",
			source_of(wc->key_file, "key", src, sizeof(src)), gnutls_strerror(r));
		return -EINVAL;
	}
	if (gnutls_certificate_allocate_credentials(&rt->cred) < 0)
		return -ENOMEM;
	r = gnutls_certificate_set_x509_key_mem2(rt->cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL,
						 0);
	if (r < 0) {
		set_err(err, err_size, "%s and %s: %s",
			source_of(wc->cert_file, "cert", src, sizeof(src)),
			wc->key_file ? wc->key_file : "tls_server_config.key",
			r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH
				? "the key does not belong to the certificate"
				: gnutls_strerror(r));
		return -EINVAL;
	}
	if (wc->client_ca) {
		gnutls_datum_t ca = {(unsigned char *)wc->client_ca,
				     (unsigned)strlen(wc->client_ca)};

		r = gnutls_certificate_set_x509_trust_mem(rt->cred, &ca, GNUTLS_X509_FMT_PEM);
		if (r <= 0) {
			set_err(err, err_size, "%s: no PEM CA certificate in it (%s)",
				source_of(wc->client_ca_file, "client_ca", src, sizeof(src)),
				r < 0 ? gnutls_strerror(r) : "empty");
			return -EINVAL;
		}
	}
	if (verify && wc->client_auth != WEBCONFIG_NO_CLIENT_CERT)
		gnutls_certificate_set_verify_function(rt->cred, verify);
	r = gnutls_priority_init(&rt->priority, wc->priorities, &errpos);
	if (r < 0) {
		set_err(err, err_size,
			"%s: tls_server_config: GnuTLS refuses the versions, suites or curves "
			"(priority \"%s\", at \"%s\")",
			name, wc->priorities, errpos ? errpos : "?");
		rt->priority = NULL;
		return -EINVAL;
	}
	return 0;
}

int webconfig_load(const char *path, gnutls_certificate_verify_function *verify,
		   struct webconfig **out, char *err, size_t err_size)
{
	struct webconfig tmp = {0}, *wc = NULL;
	char *text = NULL, *dir = NULL, *slash;
	size_t len = 0;
	int r;

	*out = NULL;
	r = read_file(&tmp, path, NULL, &text, &len, err, err_size);
	if (r)
		goto cleanup;
	dir = strdup(path);
	if (!dir) {
		r = -ENOMEM;
		goto cleanup;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		dir[0] = '\0';
	r = webconfig_parse(text, len, path, dir, &wc, err, err_size);
	if (r)
		goto cleanup;
	wc->files[0] = tmp.files[0];
	wc->n_files = 1;
	tmp.n_files = 0;
	wc->rt = calloc(1, sizeof(*wc->rt));
	if (!wc->rt) {
		r = -ENOMEM;
		goto cleanup;
	}
	pthread_mutex_init(&wc->rt->auth_lock, NULL);
	r = gnutls_rnd(GNUTLS_RND_KEY, wc->rt->auth_key, sizeof(wc->rt->auth_key));
	if (r < 0) {
		set_err(err, err_size, "%s: no random key for the auth cache: %s", path,
			gnutls_strerror(r));
		r = -EIO;
		goto cleanup;
	}
	if (wc->tls) {
		if (wc->cert_file &&
		    (r = read_file(wc, wc->cert_file, "tls_server_config: cert_file", &wc->cert,
				   NULL, err, err_size)))
			goto cleanup;
		if (wc->key_file && (r = read_file(wc, wc->key_file, "tls_server_config: key_file",
						   &wc->key, NULL, err, err_size)))
			goto cleanup;
		if (wc->client_ca_file &&
		    (r = read_file(wc, wc->client_ca_file, "tls_server_config: client_ca_file",
				   &wc->client_ca, NULL, err, err_size)))
			goto cleanup;
		r = load_tls(wc, path, verify, err, err_size);
		if (r)
			goto cleanup;
	}
	*out = wc;
	wc = NULL;
cleanup:
	if (r == -ENOMEM)
		set_err(err, err_size, "%s: out of memory", path);
	else if (r && err && strncmp(err, path, strlen(path))) {
		/* a file it names, or its TLS material: say which config named it */
		char *what = strdup(err);

		if (what)
			set_err(err, err_size, "%s: %s", path, what);
		free(what);
	}
	for (size_t i = 0; i < tmp.n_files; i++)
		free(tmp.files[i].path);
	webconfig_free(wc);
	free(text);
	free(dir);
	return r;
}

struct webconfig *webconfig_get(struct webconfig *wc)
{
	if (wc)
		__atomic_add_fetch(&wc->refs, 1, __ATOMIC_RELAXED);
	return wc;
}

void webconfig_put(struct webconfig *wc)
{
	if (wc && __atomic_sub_fetch(&wc->refs, 1, __ATOMIC_ACQ_REL) == 0)
		webconfig_free(wc);
}

/* Equal strings, in time that depends on their lengths only. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return !diff;
}

static int auth_digest(const struct webconfig_runtime *rt, const char *user, const char *password,
		       uint8_t out[AUTH_DIGEST_LEN])
{
	size_t lu = strlen(user), lp = strlen(password);
	char *msg = malloc(lu + lp + 1);
	int r;

	if (!msg)
		return -ENOMEM;
	memcpy(msg, user, lu);
	msg[lu] = '\0'; /* user names have no NUL, so (user, password) pairs cannot collide */
	memcpy(msg + lu + 1, password, lp);
	r = gnutls_hmac_fast(GNUTLS_MAC_SHA256, rt->auth_key, sizeof(rt->auth_key), msg,
			     lu + lp + 1, out);
	explicit_bzero(msg, lu + lp + 1);
	free(msg);
	return r < 0 ? -EIO : 0;
}

bool webconfig_check_password(struct webconfig *wc, const char *user, const char *password)
{
	struct webconfig_runtime *rt = wc->rt;
	const struct webconfig_user *u = NULL;
	uint8_t digest[AUTH_DIGEST_LEN];
	struct crypt_data *cd;
	bool cached = false, ok;
	const char *res;

	if (!wc->n_users || !user || !password)
		return false;
	for (size_t i = 0; i < wc->n_users; i++)
		if (!strcmp(wc->users[i].name, user))
			u = &wc->users[i];
	if (rt && auth_digest(rt, user, password, digest) == 0) {
		pthread_mutex_lock(&rt->auth_lock);
		for (unsigned i = 0; i < rt->n_auth_ok; i++) {
			unsigned char diff = 0;

			for (unsigned j = 0; j < AUTH_DIGEST_LEN; j++)
				diff |= rt->auth_ok[i][j] ^ digest[j];
			cached |= !diff;
		}
		pthread_mutex_unlock(&rt->auth_lock);
		if (cached && u)
			return true;
	}
	cd = calloc(1, sizeof(*cd));
	if (!cd)
		return false;
	/* An unknown user still costs a bcrypt (the first user's, for its cost): how long a
	 * refusal takes does not say whether the name exists. */
	res = crypt_rn(password, u ? u->hash : wc->users[0].hash, cd, sizeof(*cd));
	ok = u && res && res[0] != '*' && same_secret(res, u->hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (ok && rt) {
		pthread_mutex_lock(&rt->auth_lock);
		memcpy(rt->auth_ok[rt->next_auth_slot], digest, AUTH_DIGEST_LEN);
		rt->next_auth_slot = (rt->next_auth_slot + 1) % AUTH_CACHE_SLOTS;
		if (rt->n_auth_ok < AUTH_CACHE_SLOTS)
			rt->n_auth_ok++;
		pthread_mutex_unlock(&rt->auth_lock);
	}
	explicit_bzero(digest, sizeof(digest));
	return ok;
}

gnutls_certificate_credentials_t webconfig_credentials(const struct webconfig *wc)
{
	return wc->rt ? wc->rt->cred : NULL;
}

gnutls_priority_t webconfig_priority(const struct webconfig *wc)
{
	return wc->rt ? wc->rt->priority : NULL;
}

gnutls_certificate_request_t webconfig_cert_request(const struct webconfig *wc)
{
	switch (wc->client_auth) {
	case WEBCONFIG_NO_CLIENT_CERT: return GNUTLS_CERT_IGNORE;
	case WEBCONFIG_REQUEST_CLIENT_CERT:
	case WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN: return GNUTLS_CERT_REQUEST;
	default: return GNUTLS_CERT_REQUIRE;
	}
}

/* Does the certificate carry this SAN (DNS, e-mail, URI as text; IP in its usual form)? */
static bool has_san(gnutls_x509_crt_t crt, const char *want)
{
	char buf[1024], ip[INET6_ADDRSTRLEN];

	for (unsigned i = 0;; i++) {
		size_t size = sizeof(buf) - 1;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, NULL);

		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return false;
		if (type < 0)
			continue; /* too long for buf: cannot be what we want */
		if (type == GNUTLS_SAN_IPADDRESS) {
			if ((size == 4 && inet_ntop(AF_INET, buf, ip, sizeof(ip))) ||
			    (size == 16 && inet_ntop(AF_INET6, buf, ip, sizeof(ip))))
				if (!strcmp(ip, want))
					return true;
			continue;
		}
		buf[size] = '\0';
		if ((type == GNUTLS_SAN_DNSNAME || type == GNUTLS_SAN_RFC822NAME ||
		     type == GNUTLS_SAN_URI) &&
		    !strcmp(buf, want))
			return true;
	}
}

int webconfig_verify_client(const struct webconfig *wc, gnutls_session_t session)
{
	const gnutls_datum_t *peers;
	unsigned int n = 0, status = 0;
	gnutls_x509_crt_t leaf;
	bool found = false;

	peers = gnutls_certificate_get_peers(session, &n);
	if (!peers || !n)
		return wc->client_auth >= WEBCONFIG_REQUIRE_ANY_CLIENT_CERT &&
				       wc->client_auth != WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN
			       ? -1
			       : 0;
	if ((wc->client_auth == WEBCONFIG_VERIFY_CLIENT_CERT_IF_GIVEN ||
	     wc->client_auth == WEBCONFIG_REQUIRE_AND_VERIFY_CLIENT_CERT) &&
	    (gnutls_certificate_verify_peers2(session, &status) < 0 || status))
		return -1;
	if (!wc->n_allowed_sans)
		return 0;
	if (gnutls_x509_crt_init(&leaf) < 0)
		return -1;
	if (gnutls_x509_crt_import(leaf, &peers[0], GNUTLS_X509_FMT_DER) >= 0)
		for (size_t i = 0; i < wc->n_allowed_sans && !found; i++)
			found = has_san(leaf, wc->allowed_sans[i]);
	gnutls_x509_crt_deinit(leaf);
	return found ? 0 : -1;
}
