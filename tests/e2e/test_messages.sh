#!/bin/bash
# Failure messages as the style guide asks (issue 14): what is missing said in one line of
# ipivd's own, libbpf's detail only in its log at debug level; output paths and test-only
# flags refused before any work starts.
. "$(dirname "$0")/lib.sh"
require_root; require_cmd setpriv unshare mount
IPIVTOP=$OUT/ipivtop
require_bin "$IPIVD" "$IPIVBENCH" "$IPIVTOP"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

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
echo "PASS"
