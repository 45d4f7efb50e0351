#!/bin/bash
# Failure messages as the style guide asks (issue 14): what is missing said in one line of
# ipivd's own, libbpf's detail only in its log at debug level; output paths and test-only
# flags refused before any work starts. ipivd's -h, -V and --version (Prometheus' format);
# --log.format=json from the command line: every line of a running ipivd is a JSON object,
# and a fatal start-up error (port in use, bad web config) is one.
. "$(dirname "$0")/lib.sh"
require_root; require_cmd setpriv unshare mount jq curl ss
IPIVTOP=$OUT/ipivtop
require_bin "$IPIVD" "$IPIVBENCH" "$IPIVTOP"
tmp=$(mktemp -d)
ipivd_pid=
cleanup() {
	[ -z "$ipivd_pid" ] || { kill "$ipivd_pid" 2>/dev/null; wait "$ipivd_pid" 2>/dev/null; }
	rm -rf "$tmp"
}
trap cleanup EXIT
# Ports come from this test's range, 19200-19299 (free_port in lib.sh).

# one_line WHAT FILE PATTERN: FILE holds exactly one line, matching PATTERN (grep -E), and
# nothing of libbpf's
one_line() {
	local n; n=$(wc -l < "$2")
	[ "$n" -eq 1 ] || fail "$1: $n lines, want 1: $(head -c 600 "$2")"
	grep -Eq -- "$3" "$2" || fail "$1: '$(cat "$2")' does not match /$3/"
	! grep -qi libbpf "$2" || fail "$1: libbpf's own line leaked: $(cat "$2")"
}
# fails WHAT CMD...: CMD exits non-zero, its stderr in $tmp/err
fails() {
	local what=$1; shift
	if "$@" >"$tmp/out" 2>"$tmp/err"; then fail "$what: succeeded"; fi
}
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$@"; }

fails "unprivileged --check" as_nobody "$IPIVD" --check
one_line "unprivileged --check" "$tmp/err" \
	'^ts=[^ ]+ level=error component=collector msg="loading BPF programs failed: .*CAP_BPF'
note "unprivileged ipivd --check: $(cat "$tmp/err")"

# the same detail is there for who asks: libbpf's lines as ipivd log lines at debug level,
# then the one line
fails "unprivileged --check, debug" as_nobody "$IPIVD" --check --log.level=debug
grep -q '^ts=.* level=debug component=libbpf msg=' "$tmp/err" ||
	fail "no libbpf detail at debug level: $(head -c 600 "$tmp/err")"
! grep -q '^libbpf:' "$tmp/err" || fail "a raw libbpf line at debug level: $(grep -m1 '^libbpf:' "$tmp/err")"
tail -n 1 "$tmp/err" | grep -q 'level=error component=collector msg="loading BPF programs failed: .*CAP_BPF' ||
	fail "debug output does not end with the one line: $(tail -n 1 "$tmp/err")"
note "with --log.level=debug: $(grep -c component=libbpf "$tmp/err") libbpf lines as log lines"

# a kernel without BTF: /sys/kernel/btf hidden in a mount namespace of our own
# shellcheck disable=SC2016 # $0 is for the inner shell: ipivd's path
fails "no BTF" unshare -m sh -c 'mount -t tmpfs none /sys/kernel/btf && exec "$0" --check' "$IPIVD"
one_line "no BTF" "$tmp/err" \
	'^ts=[^ ]+ level=error component=collector msg="kernel BTF /sys/kernel/btf/vmlinux missing: .*CONFIG_DEBUG_INFO_BTF=y'
note "no BTF: $(cat "$tmp/err")"

# output paths and test-only flags: refused at once, before a guest or a probe
fails "ipivbench -o" "$IPIVBENCH" --name ha-msg -o /nonexistent/x.json
one_line "ipivbench -o" "$tmp/err" '/nonexistent/x\.json'
[ ! -s "$tmp/out" ] || fail "ipivbench -o ran something first: $(head -c 300 "$tmp/out")"
for flag in --proc-root --sys-root; do
	fails "ipivd $flag" "$IPIVD" "$flag=/nonexistent" --check
	one_line "ipivd $flag" "$tmp/err" "^ipivd: $flag '/nonexistent' is not a directory"
done
fails "ipivtop --proc-root" "$IPIVTOP" --proc-root=/nonexistent -1
one_line "ipivtop --proc-root" "$tmp/err" "^ipivtop: --proc-root '/nonexistent' is not a directory"
note "bad output path and test-only flags: one line each, nothing run"

# -h and --help, -V and --version: exit 0, the same text on stdout, nothing on stderr
for pair in "-h --help" "-V --version"; do
	read -r short long <<<"$pair"
	"$IPIVD" "$short" > "$tmp/short" 2> "$tmp/short.err" || fail "ipivd $short: exit $?"
	"$IPIVD" "$long" > "$tmp/long" 2> "$tmp/long.err" || fail "ipivd $long: exit $?"
	[ ! -s "$tmp/short.err" ] && [ ! -s "$tmp/long.err" ] ||
		fail "ipivd $short/$long wrote to stderr: $(cat "$tmp/short.err" "$tmp/long.err")"
	cmp -s "$tmp/short" "$tmp/long" || fail "ipivd $short and $long differ"
done
"$IPIVD" -h | head -1 | grep -q '^Usage: ipivd \[OPTIONS\]$' || fail "ipivd -h: $("$IPIVD" -h | head -1)"
"$IPIVD" -h | grep -q -- '--log.format FORMAT' || fail "ipivd -h lacks --log.format"
# Prometheus' exporters (common/version):
#   node_exporter, version 1.8.2 (branch: HEAD, revision: f1e0e83...)
#     build user:       root@03d440803209
#     build date:       20240714-11:53:45
#     go version:       go1.22.5
#     platform:         linux/amd64
# ipivd's, with the compiler for Go and the libraries it runs with:
"$IPIVD" --version > "$tmp/version"
grep -Eq '^ipivd, version [^ ]+ \(branch: [^ ,]+, revision: ([0-9a-f]{12}|unknown)\)$' <(head -1 "$tmp/version") ||
	fail "--version's first line: $(head -1 "$tmp/version")"
want_keys="build user|build date|cc version|libbpf|libmicrohttpd|gnutls|libyaml|platform"
expect_eq "--version's keys" "$(sed -n '2,$s/^  \([a-z ]*\): .*/\1/p' "$tmp/version" | paste -sd'|')" "$want_keys"
expect_eq "--version's lines" "$(wc -l < "$tmp/version")" 9
grep -Eq '^  build user:    [^ ]+@[^ ]+$' "$tmp/version" || fail "build user: $(sed -n 2p "$tmp/version")"
grep -Eq '^  build date:    ([0-9]{8}-[0-9]{2}:[0-9]{2}:[0-9]{2}|unknown)$' "$tmp/version" ||
	fail "build date: $(sed -n 3p "$tmp/version")"
grep -Eq '^  platform:      linux/[a-z0-9_]+$' "$tmp/version" || fail "platform: $(tail -1 "$tmp/version")"
if git -C "$E2E_ROOT" rev-parse --short=12 HEAD > "$tmp/rev" 2>/dev/null; then
	grep -q "revision: $(cat "$tmp/rev"))" "$tmp/version" ||
		fail "--version's revision is not HEAD's ($(cat "$tmp/rev")): $(head -1 "$tmp/version")"
fi
note "ipivd -h/--help, -V/--version: exit 0, same text; $(head -1 "$tmp/version")"

# README's ipivd usage block lists exactly the options of --help, with the same defaults
"$IPIVD" --help | sed '/^diagnose:/,$d' > "$tmp/help"
sed -n '/^ipivd \[--web.listen-address/,/^ipivd diagnose/p' "$E2E_ROOT/README.md" | sed '$d' > "$tmp/readme"
[ -s "$tmp/readme" ] || fail "README.md has no ipivd usage block"
grep -Eo -- '--[a-zA-Z][a-zA-Z0-9.-]*' "$tmp/readme" | sort -u > "$tmp/readme.opts"
grep -Eo -- '^ {1,8}(-[A-Za-z], )?--[a-zA-Z][a-zA-Z0-9.-]*' "$tmp/help" |
	grep -Eo -- '--[a-zA-Z][a-zA-Z0-9.-]*' | sort -u > "$tmp/help.opts"
diff "$tmp/help.opts" "$tmp/readme.opts" > "$tmp/opts.diff" ||
	fail "README's ipivd options differ from --help's (< help only, > README only): $(grep '^[<>]' "$tmp/opts.diff" | tr '\n' ' ')"
for short in -h -V; do grep -q -- "\[$short|" "$tmp/readme" || fail "README's usage lacks $short"; done
n_defaults=0
while read -r opt value; do
	# the option's row and its continuation lines in --help
	awk -v o="$opt" 'match($0, /^ +-/) && RLENGTH <= 9 {
		on = index($0 " ", " " o " ") > 0 } on' "$tmp/help" > "$tmp/row"
	grep -qF "(default $value" "$tmp/row" ||
		fail "README says $opt $value, --help: $(tr -s ' ' < "$tmp/row" | tr '\n' ' ')"
	n_defaults=$((n_defaults + 1))
done < <(grep -Eo -- '\[--[a-z][a-z0-9.-]* [a-z0-9][a-z0-9./:]*' "$tmp/readme" | tr -d '[')
note "README's ipivd usage: the $(wc -l < "$tmp/help.opts") options of --help, $n_defaults defaults as --help states them"

# --log.format=json from the command line: a running ipivd's lines, start to stop, are JSON
is_json_lines() {	# FILE: every line is an object with ts, level, component and msg
	jq -e -s 'length > 0 and all(.[]; (keys == ["component","level","msg","ts"]) and
		(.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$")))' "$1" > /dev/null 2>&1
}
port=$(free_port 19200 19299)
"$IPIVD" --log.format=json --web.listen-address "127.0.0.1:$port" > "$tmp/json.out" 2> "$tmp/json.log" &
ipivd_pid=$!
for _ in $(seq 1 600); do
	curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && break
	kill -0 "$ipivd_pid" 2>/dev/null || fail "ipivd --log.format=json exited: $(tail -3 "$tmp/json.log")"
	sleep 0.1
done
# a fatal start-up error while it runs: its port is in use
fails "port in use" "$IPIVD" --log.format=json --web.listen-address "127.0.0.1:$port"
one_line "port in use, json" "$tmp/err" '^\{"ts":".*","level":"error","component":"ipivd","msg":"cannot listen on 127\.0\.0\.1:[0-9]+: Address already in use'
is_json_lines "$tmp/err" || fail "port in use: not a JSON log line: $(cat "$tmp/err")"
note "port in use, --log.format=json: $(cat "$tmp/err")"
kill "$ipivd_pid"; wait "$ipivd_pid"; rc=$?; ipivd_pid=
expect_eq "ipivd --log.format=json exit status on SIGTERM" "$rc" 0
is_json_lines "$tmp/json.log" || fail "not every line is a JSON log line: $(head -c 800 "$tmp/json.log")"
jq -e -s --arg a "127.0.0.1:$port" 'any(.[]; .msg | test("serving http://" + $a + "/metrics"))' \
	"$tmp/json.log" > /dev/null || fail "no 'serving' line: $(head -c 800 "$tmp/json.log")"
jq -e -s 'any(.[]; .msg == "stopped, all probes detached") and any(.[]; .component == "privs")' \
	"$tmp/json.log" > /dev/null || fail "no stop or privs line: $(tail -c 600 "$tmp/json.log")"
[ ! -s "$tmp/json.out" ] || fail "ipivd wrote to stdout: $(head -c 300 "$tmp/json.out")"
note "--log.format=json: $(wc -l < "$tmp/json.log") lines from start to SIGTERM, each a JSON log line"

# a bad web config is one JSON line too, and a bad flag value stays a plain usage line
printf 'tls_server_config:\n  cert_fil: x.crt\n' > "$tmp/web.yml"
fails "bad web config" "$IPIVD" --log.format=json --web.config.file "$tmp/web.yml"
one_line "bad web config, json" "$tmp/err" '"level":"error","component":"ipivd","msg":"web config: .*web\.yml: line 2: tls_server_config: unknown key \\"cert_fil\\""'
is_json_lines "$tmp/err" || fail "bad web config: not a JSON log line: $(cat "$tmp/err")"
rc=0; "$IPIVD" --web.config.file "$tmp/web.yml" --log.format=json 2> "$tmp/err" || rc=$?
expect_eq "bad web config exit status" "$rc" 2
is_json_lines "$tmp/err" || fail "--log.format after --web.config.file: $(cat "$tmp/err")"
fails "bad --log.format" "$IPIVD" --log.format=xml
one_line "bad --log.format" "$tmp/err" "^ipivd: --log.format must be logfmt or json, not 'xml' \(see ipivd --help\)$"
note "bad web config, --log.format=json: one JSON line, exit 2; a bad flag: $(cat "$tmp/err")"
echo "PASS"
