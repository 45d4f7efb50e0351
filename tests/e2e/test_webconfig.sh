#!/usr/bin/env bash
# --web.config.file with real clients: curl over TLS (a CA, server and client certificates
# made here with openssl), plain HTTP to the TLS port, basic auth (bcrypt from crypt(3) via
# python3), mutual TLS, a TLS 1.3 minimum, hot reload of a password and of the certificate
# (and a broken file keeping the old config), gzip, process_* metrics, the start-up errors
# (exit 2, one line naming the key or file), two --web.listen-address flags served at once
# (both answer, with the same TLS and auth), and a real Prometheus scraping ipivd over TLS
# with a client certificate and basic auth (up == 1 through its HTTP API).
. "$(dirname "$0")/lib.sh"
require_root; require_cmd curl openssl python3 prometheus jq ss gzip
require_bin "$IPIVD"

tmp=$(mktemp -d)
pids=()
cleanup() {
	local i
	for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do kill "${pids[i]}" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# Ports come from this test's range, 19100-19199 (free_port in lib.sh).

# ---- certificates and hashes -----------------------------------------------------------
cd "$tmp"
ossl() { openssl "$@" > "$tmp/openssl.log" 2>&1 || fail "openssl $1: $(tail -3 "$tmp/openssl.log")"; }
ca() {	# NAME: a self-signed CA
	ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$1.key" -out "$1.crt" -subj "/CN=$1"
}
leaf() {	# NAME CA SAN: a certificate for NAME signed by CA
	ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
		-out "$1.csr" -subj "/CN=$1"
	printf 'subjectAltName=%s\n' "$3" > "$1.ext"
	ossl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 2 \
		-out "$1.crt" -extfile "$1.ext"
}
ca ca; ca rogue
leaf server ca "DNS:localhost,IP:127.0.0.1"
leaf server2 ca "DNS:localhost,IP:127.0.0.1"
leaf client ca "DNS:scraper.example"
leaf intruder rogue "DNS:scraper.example"
bcrypt() { python3 -W ignore -c 'import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))' "$1"; }
HASH1=$(bcrypt first-password); HASH2=$(bcrypt second-password)
[[ $HASH1 == '$2b$10$'* ]] || fail "python3's crypt made no bcrypt hash: $HASH1"

# write_config FILE LINES...: replaced in one rename, so ipivd never reads half a file
write_config() {
	local f=$1; shift
	printf '%s\n' "$@" > "$f.new" && mv "$f.new" "$f"
}
TLS=(tls_server_config: "  cert_file: server.crt" "  key_file: $tmp/server.key")
write_config web.yml "${TLS[@]}" basic_auth_users: "  alice: '$HASH1'"

# ---- start-up errors: exit 2 and one line naming what is wrong ---------------------------
n_errors=0
start_error() {	# WANT-IN-MESSAGE YAML-LINES...
	local want=$1 rc=0; shift
	n_errors=$(( n_errors + 1 ))
	write_config bad.yml "$@"
	# a log line, as JSON here: its message is the text itself, unescaped
	"$IPIVD" --web.listen-address "127.0.0.1:$(free_port 19100 19199)" --web.config.file bad.yml \
		--log.format=json > bad.out 2> bad.err || rc=$?
	expect_eq "exit status for a config wanting '$want'" "$rc" 2
	expect_eq "lines of the error for '$want'" "$(wc -l < bad.err)" 1
	jq -r 'select(.level == "error") | .msg' bad.err > bad.msg 2>/dev/null ||
		fail "not a JSON log line: $(cat bad.err)"
	grep -qF -- "$want" bad.msg || fail "error does not say '$want': $(cat bad.err)"
}
start_error 'unknown key "cert_fil"' tls_server_config: "  cert_fil: server.crt"
start_error 'bad.yml: line 3: tls_server_config: unknown key "ciphers"' \
	tls_server_config: "  cert_file: server.crt" "  ciphers: [x]"
start_error "missing.crt: No such file" tls_server_config: "  cert_file: missing.crt" \
	"  key_file: server.key"
start_error "the key does not belong to the certificate" tls_server_config: \
	"  cert_file: server.crt" "  key_file: client.key"
start_error "alice: not a bcrypt hash" basic_auth_users: "  alice: plaintext"
start_error "client_auth_type RequireAndVerifyClientCert needs client_ca_file" \
	"${TLS[@]}" "  client_auth_type: RequireAndVerifyClientCert"
start_error 'unknown suite "TLS_FOO"' "${TLS[@]}" "  cipher_suites: [TLS_FOO]"
start_error "min_version TLS13 is above max_version TLS12" "${TLS[@]}" \
	"  min_version: TLS13" "  max_version: TLS12"
start_error "not YAML" "tls_server_config: [unclosed"
rc=0; "$IPIVD" --web.config.file "$tmp/absent.yml" 2> bad.err || rc=$?
expect_eq "exit status for a missing config" "$rc" 2
grep -qF "absent.yml: No such file or directory" bad.err || fail "missing file: $(cat bad.err)"
head -c 100 server.key > server.key.broken
start_error "server.key.broken: not an unencrypted PEM private key" tls_server_config: \
	"  cert_file: server.crt" "  key_file: server.key.broken"
note "start-up errors: $(( n_errors + 1 )) bad configs exit 2 with one line naming the key or file"

# ---- TLS and basic auth --------------------------------------------------------------
PORT=$(free_port 19100 19199)
PORT2=$(free_port 19100 19199)
URL=https://127.0.0.1:$PORT
"$IPIVD" --web.listen-address "127.0.0.1:$PORT" --web.listen-address "localhost:$PORT2" \
	--web.config.file web.yml > ipivd.log 2>&1 &
pids+=($!)
CURL=(curl -s -m 10 --cacert ca.crt)
for _ in $(seq 1 100); do
	"${CURL[@]}" -o /dev/null "$URL/metrics" && break
	kill -0 "${pids[0]}" 2>/dev/null || fail "ipivd exited: $(tail -5 ipivd.log)"
	sleep 0.2
done
grep -q "serving https://127.0.0.1:$PORT/metrics" ipivd.log ||
	fail "ipivd does not say it serves https: $(tail -3 ipivd.log)"

code() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@"; }	# status, or 000
expect_eq "right password" "$(code -u alice:first-password "$URL/metrics")" 200
expect_eq "wrong password" "$(code -u alice:second-password "$URL/metrics")" 401
expect_eq "unknown user" "$(code -u bob:first-password "$URL/metrics")" 401
"${CURL[@]}" -D headers -o /dev/null "$URL/metrics"
grep -q '^HTTP/1.1 401' headers || fail "no password: $(head -1 headers)"
grep -qi '^WWW-Authenticate: Basic realm="ipivd"' headers ||
	fail "401 without WWW-Authenticate: Basic: $(cat headers)"
expect_eq "the API needs the password too" "$(code "$URL/api/v1/status")" 401
rc=0; curl -s -m 10 -o /dev/null "$URL/metrics" || rc=$?
expect_eq "curl without the CA (unknown issuer)" "$rc" 60
rc=0; curl -s -m 10 -o /dev/null "http://127.0.0.1:$PORT/metrics" || rc=$?
[ "$rc" -ne 0 ] || fail "plain HTTP to the TLS port was answered"
expect_eq "after a plain HTTP client" "$(code -u alice:first-password "$URL/metrics")" 200
# the second --web.listen-address: served at once, by the same rules
for _ in $(seq 1 50); do grep -q "serving https://localhost:$PORT2/metrics" ipivd.log && break; sleep 0.1; done
grep -q "serving https://localhost:$PORT2/metrics" ipivd.log ||
	fail "ipivd does not say it serves the second address: $(grep serving ipivd.log)"
for url in "$URL" "https://localhost:$PORT2"; do
	"${CURL[@]}" -u alice:first-password -o two.metrics "$url/metrics" ||
		fail "$url/metrics did not answer"
	grep -q '^ipiv_degraded ' two.metrics || fail "$url/metrics: no ipiv_degraded: $(head -3 two.metrics)"
	expect_eq "$url without the password" "$(code "$url/metrics")" 401
done
rc=0; "$IPIVD" --web.listen-address "127.0.0.1:$PORT" --web.listen-address "127.0.0.1:$PORT" \
	2> bad.err || rc=$?
expect_eq "the same address twice: exit status" "$rc" 2
grep -q "given twice" bad.err || fail "the same address twice: $(cat bad.err)"
note "two --web.listen-address (127.0.0.1:$PORT, localhost:$PORT2): both answer /metrics over TLS with basic auth; one given twice is refused"
note "TLS: 200 with the right password; 401 (WWW-Authenticate: Basic) without or with a wrong" \
	"one; no CA: curl exit 60; plain HTTP: curl exit $rc, and ipivd serves on"

# ---- gzip and process metrics -----------------------------------------------------------
AUTH=(-u alice:first-password)
"${CURL[@]}" "${AUTH[@]}" -H 'Accept-Encoding: gzip' -D gz.headers -o metrics.gz "$URL/metrics"
"${CURL[@]}" "${AUTH[@]}" -D plain.headers -o metrics "$URL/metrics"
grep -qi '^Content-Encoding: gzip' gz.headers || fail "no gzip: $(cat gz.headers)"
grep -qi '^Vary: Accept-Encoding' gz.headers || fail "no Vary: $(cat gz.headers)"
grep -qi '^Content-Encoding' plain.headers && fail "gzip without Accept-Encoding"
gzip -dc metrics.gz > metrics.unzipped || fail "the gzipped body does not decode"
# Two scrapes differ in their values (and VMs may come and go): the families must not.
diff <(grep '^# ' metrics.unzipped) <(grep '^# ' metrics) > /dev/null ||
	fail "gzipped and plain scrapes differ in their families"
"${CURL[@]}" "${AUTH[@]}" -H 'Accept-Encoding: gzip;q=0, br' -D q0.headers -o /dev/null \
	"$URL/api/v1/vms"
grep -qi '^Content-Encoding' q0.headers && fail "gzip;q=0 got gzip"
"${CURL[@]}" "${AUTH[@]}" --compressed -o api.json "$URL/api/v1/status"
jq -e . api.json > /dev/null || fail "the API through gzip is not JSON: $(head -c 200 api.json)"
note "gzip: /metrics $(stat -c %s metrics) bytes, gzipped $(stat -c %s metrics.gz)"

now=$(date +%s)
metric() { awk -v n="$1" '$1 == n { print $2 }' metrics; }
for m in process_cpu_seconds_total process_resident_memory_bytes \
	process_virtual_memory_bytes process_open_fds process_max_fds process_start_time_seconds; do
	[ -n "$(metric $m)" ] || fail "$m missing"
done
grep -q '^# TYPE process_cpu_seconds_total counter' metrics || fail "process_cpu_seconds type"
pid=${pids[0]}
awk -v s="$(metric process_start_time_seconds)" -v now="$now" \
	'BEGIN { exit !(s > now - 600 && s <= now + 1) }' ||
	fail "process_start_time_seconds $(metric process_start_time_seconds), now $now"
rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
awk -v m="$(metric process_resident_memory_bytes)" -v k="$rss_kb" \
	'BEGIN { exit !(m > k * 1024 / 2 && m < k * 1024 * 2) }' ||
	fail "process_resident_memory_bytes $(metric process_resident_memory_bytes), VmRSS $rss_kb kB"
fds=$(ls "/proc/$pid/fd" | wc -l)
awk -v m="$(metric process_open_fds)" -v n="$fds" 'BEGIN { exit !(m > 0 && m < n + 10 && m > n - 10) }' ||
	fail "process_open_fds $(metric process_open_fds), /proc says $fds"
max=$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")
awk -v m="$(metric process_max_fds)" -v l="$max" 'BEGIN { exit !(m == l) }' ||
	fail "process_max_fds $(metric process_max_fds), /proc/$pid/limits says $max"
note "process_*: start $(metric process_start_time_seconds), rss $(metric process_resident_memory_bytes)," \
	"$(metric process_open_fds) of $(metric process_max_fds) fds"

# ---- hot reload -------------------------------------------------------------------------
write_config web.yml "${TLS[@]}" basic_auth_users: "  alice: '$HASH2'"
expect_eq "old password after the change" "$(code -u alice:first-password "$URL/metrics")" 401
expect_eq "new password after the change" "$(code -u alice:second-password "$URL/metrics")" 200
AUTH=(-u alice:second-password)
grep -q 'web config .*web.yml reloaded' ipivd.log || fail "no reload line: $(tail -3 ipivd.log)"

write_config web.yml "${TLS[@]}" basic_auth_users: "  alice: '$HASH1'" "unknown_section: {}"
for _ in 1 2 3; do
	expect_eq "a broken file keeps the old password" \
		"$(code "${AUTH[@]}" "$URL/metrics")" 200
done
expect_eq "lines for the broken file" "$(grep -c 'web config not reloaded' ipivd.log)" 1
grep 'web config not reloaded' ipivd.log | grep -q 'unknown key ."unknown_section' ||
	fail "the reload error does not name the key: $(grep 'not reloaded' ipivd.log)"

write_config web.yml basic_auth_users: "  alice: '$HASH2'"
expect_eq "turning TLS off is refused" "$(code "${AUTH[@]}" "$URL/metrics")" 200
grep -q 'TLS can only be turned off by a restart' ipivd.log || fail "no restart line"

# A new certificate (same names, another key): picked up by the next connection.
serial() { openssl s_client -connect "127.0.0.1:$PORT" -CAfile ca.crt < /dev/null 2>/dev/null |
	openssl x509 -noout -serial; }
write_config web.yml "${TLS[@]}" basic_auth_users: "  alice: '$HASH2'"
before=$(serial)
cp server2.crt server.crt.new && cp server2.key server.key.new
mv server.key.new server.key && mv server.crt.new server.crt
after=$(serial)
expect_eq "the served certificate after it was replaced" "$after" \
	"$(openssl x509 -noout -serial -in server2.crt)"
[ "$before" != "$after" ] || fail "certificate unchanged: $before"
expect_eq "after the new certificate" "$(code "${AUTH[@]}" "$URL/metrics")" 200

# SIGHUP re-reads an unchanged file.
n=$(grep -c 'reloaded' ipivd.log)
kill -HUP "$pid"
expect_eq "after SIGHUP" "$(code "${AUTH[@]}" "$URL/metrics")" 200
expect_eq "reloads after SIGHUP" "$(grep -c 'reloaded' ipivd.log)" $(( n + 1 ))
note "hot reload: password, certificate and SIGHUP applied; a broken file (one log line) and" \
	"turning TLS off keep the old config"

# ---- TLS 1.3 minimum ---------------------------------------------------------------------
write_config web.yml "${TLS[@]}" "  min_version: TLS13" basic_auth_users: "  alice: '$HASH2'"
rc=0; "${CURL[@]}" "${AUTH[@]}" --tlsv1.2 --tls-max 1.2 -o /dev/null "$URL/metrics" || rc=$?
[ "$rc" -ne 0 ] || fail "a TLS 1.2 client got through min_version TLS13"
expect_eq "a TLS 1.3 client" "$(code "${AUTH[@]}" --tlsv1.3 "$URL/metrics")" 200
write_config web.yml "${TLS[@]}" "  max_version: TLS12" basic_auth_users: "  alice: '$HASH2'"
expect_eq "a TLS 1.2 client under max_version TLS12" \
	"$(code "${AUTH[@]}" --tls-max 1.2 "$URL/metrics")" 200
note "min_version TLS13: a TLS 1.2 client is refused (curl exit $rc), TLS 1.3 is served"

# ---- mutual TLS ----------------------------------------------------------------------------
MTLS=("${TLS[@]}" "  client_auth_type: RequireAndVerifyClientCert" "  client_ca_file: ca.crt")
write_config web.yml "${MTLS[@]}" basic_auth_users: "  alice: '$HASH2'"
rc=0; "${CURL[@]}" "${AUTH[@]}" -o /dev/null "$URL/metrics" || rc=$?
[ "$rc" -ne 0 ] || fail "no client certificate, yet served"
rc2=0; "${CURL[@]}" "${AUTH[@]}" --cert intruder.crt --key intruder.key -o /dev/null \
	"$URL/metrics" || rc2=$?
[ "$rc2" -ne 0 ] || fail "a certificate of another CA was accepted"
CLIENT=(--cert client.crt --key client.key)
expect_eq "with the client certificate" "$(code "${AUTH[@]}" "${CLIENT[@]}" "$URL/metrics")" 200
expect_eq "client certificate, no password" "$(code "${CLIENT[@]}" "$URL/metrics")" 401
write_config web.yml "${MTLS[@]}" "  client_allowed_sans: [other.example]" \
	basic_auth_users: "  alice: '$HASH2'"
rc3=0; "${CURL[@]}" "${AUTH[@]}" "${CLIENT[@]}" -o /dev/null "$URL/metrics" || rc3=$?
[ "$rc3" -ne 0 ] || fail "a client whose SAN is not allowed was accepted"
write_config web.yml "${MTLS[@]}" "  client_allowed_sans: [scraper.example]" \
	basic_auth_users: "  alice: '$HASH2'"
expect_eq "allowed SAN" "$(code "${AUTH[@]}" "${CLIENT[@]}" "$URL/metrics")" 200
note "mTLS: refused without a certificate (curl exit $rc), with another CA's ($rc2), with a" \
	"SAN not allowed ($rc3); served with the right one"

# ---- a real Prometheus over TLS, client certificate and basic auth ------------------------
PPORT=$(free_port 19100 19199)
cat > prometheus.yml <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: ipivd
    scheme: https
    tls_config:
      ca_file: $tmp/ca.crt
      cert_file: $tmp/client.crt
      key_file: $tmp/client.key
    basic_auth:
      username: alice
      password: second-password
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOF
prometheus --config.file=prometheus.yml --storage.tsdb.path="$tmp/data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn > prometheus.log 2>&1 &
pids+=($!)
up=""
for _ in $(seq 1 60); do
	up=$(curl -s -m 5 "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode 'query=up{job="ipivd"}' |
		jq -r '.data.result[0].value[1] // empty' 2>/dev/null)
	[ "$up" = 1 ] && break
	sleep 0.5
done
expect_eq "Prometheus' up for ipivd over TLS with basic auth" "$up" 1
samples=$(curl -s -m 5 "http://127.0.0.1:$PPORT/api/v1/query" \
	--data-urlencode 'query=scrape_samples_scraped{job="ipivd"}' | jq -r '.data.result[0].value[1]')
[ "${samples:-0}" -gt 10 ] || fail "Prometheus scraped $samples samples"
n_401=$(grep -c 'level=error.*web config' ipivd.log || true)
note "prometheus: up == 1 over TLS 1.3, client certificate and basic auth, $samples samples" \
	"per scrape; $n_401 web config errors logged in all"
