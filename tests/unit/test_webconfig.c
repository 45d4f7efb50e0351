/* Unit tests for daemon/ipivd/webconfig.c: exporter-toolkit's YAML parsed into what it says
 * (paths resolved against the file's directory, the GnuTLS priority string built from the
 * versions, suites and curves), every kind of bad input refused with one line naming the key
 * and its line, YAML 1.1 booleans as yaml.v2 takes them, loading (files that are missing or
 * hold no PEM), change detection, and basic-auth checks with crypt(3). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ipivd/webconfig.h"

/* bcrypt at cost 4 (python3's crypt): quick enough for a unit test. */
#define HASH_PW_ONE "$2b$04$sQlE0QtaiH0LrKGj/c3WrObkE1EQvZEaPuVB1fLz61f6SDQwpX2YW"
#define HASH_PW_TWO "$2b$04$laEsIDtkJhylp82UdCG4GeqU/uRPHV53EsNUjI.F/jGQh7MtYOaQi"

static struct webconfig *parse_ok(const char *yaml)
{
	struct webconfig *wc = NULL;
	char err[512] = "";

	if (webconfig_parse(yaml, strlen(yaml), "web.yml", "/etc/ipiv", &wc, err, sizeof(err)))
		fail_msg("refused: %s\n%s", err, yaml);
	assert_non_null(wc);
	return wc;
}

static void test_empty_file_is_plain_http(void **state)
{
	const char *empty[] = {"", "\n", "# nothing\n", "---\n", "~\n"};

	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		struct webconfig *wc = parse_ok(empty[i]);

		assert_false(wc->tls);
		assert_int_equal(wc->n_users, 0);
		assert_int_equal(wc->n_headers, 0);
		webconfig_put(wc);
	}
}

static void test_full_config(void **state)
{
	struct webconfig *wc = parse_ok("tls_server_config:\n"
					"  cert_file: server.crt\n"
					"  key_file: /abs/server.key\n"
					"  client_auth_type: RequireAndVerifyClientCert\n"
					"  client_ca_file: ca/clients.pem\n"
					"  client_allowed_sans: [scraper.example, 10.0.0.1]\n"
					"  min_version: TLS13\n"
					"  cipher_suites:\n"
					"    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
					"    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n"
					"    - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\n"
					"  curve_preferences: [X25519, CurveP256]\n"
					"  prefer_server_cipher_suites: false\n"
					"http_server_config:\n"
					"  http2: false\n"
					"  headers:\n"
					"    X-Frame-Options: deny\n"
					"    Strict-Transport-Security: max-age=31536000\n"
					"basic_auth_users:\n"
					"  alice: " HASH_PW_ONE "\n"
					"  bob: '" HASH_PW_TWO "'\n");

	assert_true(wc->tls);
	assert_string_equal(wc->cert_file, "/etc/ipiv/server.crt");
	assert_string_equal(wc->key_file, "/abs/server.key");
	assert_string_equal(wc->client_ca_file, "/etc/ipiv/ca/clients.pem");
	assert_int_equal(wc->client_auth, WEBCONFIG_REQUIRE_AND_VERIFY_CLIENT_CERT);
	assert_int_equal(webconfig_cert_request(wc), GNUTLS_CERT_REQUIRE);
	assert_int_equal(wc->n_allowed_sans, 2);
	assert_string_equal(wc->allowed_sans[1], "10.0.0.1");
	assert_int_equal(wc->min_version, 13);
	assert_int_equal(wc->max_version, 13);
	/* each cipher, MAC and key exchange once, in the order given; no server precedence */
	assert_string_equal(wc->priorities,
			    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM"
			    ":+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA"
			    ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1");
	assert_int_equal(wc->n_headers, 2);
	assert_string_equal(wc->headers[0].name, "X-Frame-Options");
	assert_string_equal(wc->headers[1].value, "max-age=31536000");
	assert_int_equal(wc->n_users, 2);
	assert_string_equal(wc->users[1].name, "bob");
	assert_string_equal(wc->users[1].hash, HASH_PW_TWO);
	webconfig_put(wc);
}

static void test_defaults_and_inline_pem(void **state)
{
	struct webconfig *wc = parse_ok("tls_server_config:\n"
					"  cert: |\n"
					"    -----BEGIN CERTIFICATE-----\n"
					"  key: \"k\"\n"
					"  client_auth_type: RequestClientCert\n"
					"  client_ca_file:\n");

	assert_true(wc->tls);
	assert_null(wc->cert_file);
	assert_string_equal(wc->cert, "-----BEGIN CERTIFICATE-----\n");
	assert_null(wc->client_ca_file); /* an empty value is no value */
	assert_int_equal(webconfig_cert_request(wc), GNUTLS_CERT_REQUEST);
	/* exporter-toolkit's defaults: TLS 1.2 to 1.3, the server's suite order */
	assert_string_equal(wc->priorities,
			    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE");
	webconfig_put(wc);
}

static const struct {
	const char *yaml, *want;
} bad[] = {
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  ciphers: [x]\n",
	 "web.yml: line 4: tls_server_config: unknown key \"ciphers\""},
	{"tls_config:\n  cert_file: a\n", "web.yml: line 1: unknown key \"tls_config\""},
	{"basic_auth_users:\n  alice: secret\n", "line 2: basic_auth_users: alice: not a bcrypt"},
	{"basic_auth_users:\n  alice: $2b$04$short\n", "alice: not a bcrypt hash"},
	{"basic_auth_users:\n  alice: $1$abcdefgh$1234567890123456789012\n", "not a bcrypt hash"},
	{"basic_auth_users:\n  'a:b': " HASH_PW_ONE "\n", "\"a:b\" cannot be a user name"},
	{"basic_auth_users:\n  alice: [x]\n", "basic_auth_users: want a string"},
	{"basic_auth_users: alice\n", "basic_auth_users: want a mapping"},
	{"basic_auth_users:\n  alice: " HASH_PW_ONE "\n  alice: " HASH_PW_TWO "\n",
	 "line 3: basic_auth_users: key \"alice\" is given twice"},
	{"- tls_server_config\n", "line 1: want a mapping"},
	{"tls_server_config: [\n", "not YAML"},
	{"tls_server_config:\n\tcert_file: a\n", "not YAML"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Always\n",
	 "line 4: tls_server_config: client_auth_type: want NoClientCert"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS1.2\n",
	 "min_version: want TLS10, TLS11, TLS12 or TLS13, not \"TLS1.2\""},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n"
	 "  max_version: TLS12\n",
	 "min_version TLS13 is above max_version TLS12"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_RC4]\n",
	 "unknown suite \"TLS_RSA_WITH_RC4\""},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: "
	 "TLS_AES_128_GCM_SHA256\n",
	 "cipher_suites: want a list"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [P256]\n",
	 "unknown curve \"P256\""},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  prefer_server_cipher_suites: yess\n",
	 "line 4: tls_server_config: prefer_server_cipher_suites: want true or false"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  prefer_server_cipher_suites: "
	 "\"true\"\n",
	 "prefer_server_cipher_suites: want true or false, unquoted (\"true\" is a string)"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  prefer_server_cipher_suites: [y]\n",
	 "prefer_server_cipher_suites: want true or false"},
	{"http_server_config:\n  http2: 'no'\n", "http2: want true or false, unquoted"},
	{"tls_server_config:\n  cert_file: a\n", "cert_file given without key_file"},
	{"tls_server_config:\n  key_file: a\n", "key_file given without cert_file"},
	{"tls_server_config:\n  cert_file: a\n  cert: b\n  key_file: c\n",
	 "give cert or cert_file, not both"},
	{"tls_server_config:\n  client_ca_file: ca\n", "client certificates need a server cert"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n"
	 "  client_auth_type: VerifyClientCertIfGiven\n",
	 "client_auth_type VerifyClientCertIfGiven needs client_ca_file"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca\n",
	 "client_ca_file is set but client_auth_type is NoClientCert"},
	{"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
	 "RequestClientCert\n"
	 "  client_allowed_sans: [x]\n",
	 "client_allowed_sans needs client_auth_type RequireAnyClientCert"},
	{"http_server_config:\n  headers:\n    Server: ipivd\n",
	 "line 3: http_server_config: headers: \"Server\" cannot be set"},
	{"http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
	 "X-Frame-Options: \"allow\" is not allowed (want deny or sameorigin)"},
	{"http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
	 "\"sniff\" is not allowed (want nosniff)"},
	{"http_server_config:\n  http2: maybe\n", "http2: want true or false"},
	/* yaml.v2 knows these cases only: no yEs, tRUE, oN; no 1 or 0 for a bool */
	{"http_server_config:\n  http2: yEs\n", "http2: want true or false"},
	{"http_server_config:\n  http2: tRUE\n", "http2: want true or false"},
	{"http_server_config:\n  http2: oN\n", "http2: want true or false"},
	{"http_server_config:\n  http2: 1\n", "http2: want true or false"},
	{"http_server_config:\n  gzip: true\n", "http_server_config: unknown key \"gzip\""},
	{"rate_limit:\n  interval: 1s\n", "rate_limit is not supported by ipivd"},
};

static void test_bad_inputs(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct webconfig *wc = (struct webconfig *)1;
		char err[512] = "";
		int r = webconfig_parse(bad[i].yaml, strlen(bad[i].yaml), "web.yml", "", &wc, err,
					sizeof(err));

		if (r != -EINVAL || wc)
			fail_msg("accepted (%d):\n%s", r, bad[i].yaml);
		if (!strstr(err, bad[i].want))
			fail_msg("error \"%s\" lacks \"%s\" for:\n%s", err, bad[i].want,
				 bad[i].yaml);
		assert_null(strchr(err, '\n'));
		assert_int_equal(strncmp(err, "web.yml", 7), 0);
	}
}

/* Every spelling of a boolean that gopkg.in/yaml.v2 (exporter-toolkit's YAML library)
 * resolves, YAML 1.1's, as prefer_server_cipher_suites shows it in the priority string. */
static void test_yaml11_booleans(void **state)
{
	static const struct {
		const char *text;
		bool value;
	} spellings[] = {
		{"y", true},	  {"Y", true},	    {"yes", true},    {"Yes", true},
		{"YES", true},	  {"true", true},   {"True", true},   {"TRUE", true},
		{"on", true},	  {"On", true},	    {"ON", true},     {"n", false},
		{"N", false},	  {"no", false},    {"No", false},    {"NO", false},
		{"false", false}, {"False", false}, {"FALSE", false}, {"off", false},
		{"Off", false},	  {"OFF", false},
	};

	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		char yaml[256];
		struct webconfig *wc;
		bool server_order;

		snprintf(yaml, sizeof(yaml),
			 "tls_server_config:\n  cert_file: a\n  key_file: b\n"
			 "  prefer_server_cipher_suites: %s\n"
			 "http_server_config:\n  http2: %s\n",
			 spellings[i].text, spellings[i].text);
		wc = parse_ok(yaml);
		server_order = strstr(wc->priorities, "%SERVER_PRECEDENCE") != NULL;
		if (server_order != spellings[i].value)
			fail_msg("prefer_server_cipher_suites: %s gave %s", spellings[i].text,
				 wc->priorities);
		webconfig_put(wc);
	}
}

static char dir[64];

static int make_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_webconfig.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int remove_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* Writes name under the temp dir in one rename (a new inode); returns its path. */
static const char *put(const char *name, const char *text)
{
	static char path[256];
	char tmp[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
	return path;
}

static void test_load_errors_name_the_file(void **state)
{
	struct webconfig *wc = NULL;
	char err[512], missing[256], *path;

	snprintf(missing, sizeof(missing), "%s/absent.yml", dir);
	assert_int_equal(webconfig_load(missing, NULL, &wc, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "absent.yml: No such file or directory"));

	path = strdup(put("web.yml", "tls_server_config:\n  cert_file: nope.crt\n"
				     "  key_file: nope.key\n"));
	assert_int_equal(webconfig_load(path, NULL, &wc, err, sizeof(err)), -ENOENT);
	assert_null(wc);
	/* the config that named it, the key, the file, the reason */
	assert_non_null(strstr(err, "web.yml: tls_server_config: cert_file "));
	assert_non_null(strstr(err, "/nope.crt: No such file or directory"));

	put("junk.crt", "not a certificate\n");
	put("junk.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	put("web.yml", "tls_server_config:\n  cert_file: junk.crt\n  key_file: junk.key\n");
	assert_int_equal(webconfig_load(path, NULL, &wc, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "junk.crt: no PEM certificate in it"));

	put("web.yml", "tls_server_config:\n  cert_file: junk.crt\n  key_fil: junk.key\n");
	assert_int_equal(webconfig_load(path, NULL, &wc, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "web.yml: line 3: tls_server_config: unknown key"));
	free(path);
}

static void test_change_detection(void **state)
{
	struct webconfig *wc = NULL;
	char err[512] = "",
	     *path = strdup(put("auth.yml", "basic_auth_users:\n  alice: " HASH_PW_ONE "\n"));
	uint64_t stamp;

	if (webconfig_load(path, NULL, &wc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_false(wc->tls);
	assert_false(webconfig_files_changed(wc));
	stamp = webconfig_files_stamp(wc);
	assert_true(stamp == webconfig_files_stamp(wc));
	put("auth.yml", "basic_auth_users:\n  alice: " HASH_PW_TWO "\n");
	assert_true(webconfig_files_changed(wc));
	assert_true(stamp != webconfig_files_stamp(wc));
	unlink(path);
	assert_true(webconfig_files_changed(wc));
	webconfig_put(wc);
	free(path);
}

static void test_passwords(void **state)
{
	struct webconfig *wc = NULL;
	char err[512] = "",
	     *path = strdup(put("users.yml", "basic_auth_users:\n  alice: " HASH_PW_ONE
					     "\n  bob: " HASH_PW_TWO "\n"));

	if (webconfig_load(path, NULL, &wc, err, sizeof(err)))
		fail_msg("%s", err);
	/* twice each: the second success comes from the cache, and must agree */
	for (int i = 0; i < 2; i++) {
		assert_true(webconfig_check_password(wc, "alice", "pw-one"));
		assert_true(webconfig_check_password(wc, "bob", "pw-two"));
		assert_false(webconfig_check_password(wc, "alice", "pw-two"));
		assert_false(webconfig_check_password(wc, "bob", "pw-one"));
		assert_false(webconfig_check_password(wc, "carol", "pw-one"));
		assert_false(webconfig_check_password(wc, "alice", ""));
		assert_false(webconfig_check_password(wc, "alice", "pw-one "));
		assert_false(webconfig_check_password(wc, "alic", "pw-one"));
		assert_false(webconfig_check_password(wc, NULL, "pw-one"));
	}
	webconfig_put(wc);

	/* parsed only (no cache): the same answers */
	wc = parse_ok("basic_auth_users:\n  alice: " HASH_PW_ONE "\n");
	assert_true(webconfig_check_password(wc, "alice", "pw-one"));
	assert_false(webconfig_check_password(wc, "alice", "pw-two"));
	webconfig_put(wc);
	free(path);
}

static void test_references(void **state)
{
	struct webconfig *wc = parse_ok("basic_auth_users:\n  alice: " HASH_PW_ONE "\n");

	assert_ptr_equal(webconfig_get(wc), wc);
	webconfig_put(wc);
	assert_int_equal(wc->refs, 1); /* still ours */
	webconfig_put(wc);
	webconfig_put(NULL);
	assert_null(webconfig_get(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_file_is_plain_http),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults_and_inline_pem),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_yaml11_booleans),
		cmocka_unit_test(test_load_errors_name_the_file),
		cmocka_unit_test(test_change_detection),
		cmocka_unit_test(test_passwords),
		cmocka_unit_test(test_references),
	};

	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
