#!/usr/bin/env bash
# The Debian package: built out of tree from a copy of this checkout (dpkg-buildpackage -us
# -uc -b, unit tests left to make check: tests/e2e/deb_build.sh), lintian reports no error
# and no warning, and it holds the binaries, the unit (for /usr/bin), the man pages,
# /etc/default/ipivd as a conffile, the docs and deploy/'s files. Installed with dpkg -i, its
# ipivd serves /metrics: started by systemd where systemd runs this machine, else by hand with
# the defaults file's ARGS. Purged, it leaves none of its files behind. The same package
# installed on a minimal Debian root, where only its declared dependencies come with it:
# tests/e2e/test_package_clean.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deb_build.sh"
require_root; require_cmd dpkg-buildpackage dh lintian dpkg-deb curl systemd-analyze
[ -r /sys/kernel/btf/vmlinux ] || skip "needs kernel BTF (the build dumps vmlinux.h from it)"
if dpkg-query -W -f='${Status}' ipiv 2>/dev/null | grep -q 'install ok installed'; then
	skip "package ipiv is already installed here; not replacing it"
fi

tmp=$(mktemp -d)
ipivd_pid=
installed=
cleanup() {
	[ -n "$ipivd_pid" ] && kill "$ipivd_pid" 2>/dev/null && wait "$ipivd_pid" 2>/dev/null
	[ -n "$installed" ] && dpkg --purge ipiv > /dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
PORT=$(free_port 32000 32999)

# Built out of tree (tests/e2e/deb_build.sh), so the build does not touch the checkout.
t0=$SECONDS
deb=$(deb_build "$tmp") || exit 1
note "built ${deb##*/} in $((SECONDS - t0)) s"

# lintian: informational tags are allowed, errors and warnings are not (debian/ has no
# overrides).
lintian --display-info --fail-on error,warning "$tmp"/ipiv_*_amd64.changes > "$tmp/lintian" 2>&1
rc=$?
grep -E '^[EW]: ' "$tmp/lintian" && fail "lintian reports errors or warnings"
[ $rc -eq 0 ] || fail "lintian failed ($rc): $(grep -v 'root privileges' "$tmp/lintian" | head -5)"
note "lintian: no errors, no warnings; informational: $(awk '/^[IPX]: / { print $3 }' "$tmp/lintian" | sort -u | tr '\n' ' ')"

# Contents.
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' > "$tmp/contents"
has() { grep -qx -- "$1" "$tmp/contents" || fail "package lacks $1"; }
for f in /usr/bin/ipivd /usr/bin/ipivtop /usr/bin/ipivbench /lib/systemd/system/ipivd.service \
	/etc/default/ipivd /usr/share/doc/ipiv/copyright /usr/share/doc/ipiv/changelog.gz; do
	has "$f"
done
for p in "$E2E_ROOT"/docs/man/*.[1-8]; do
	has "/usr/share/man/man${p##*.}/${p##*/}.gz"
done
for d in "$E2E_ROOT"/README.md "$E2E_ROOT"/docs/*.md; do
	grep -qE "^/usr/share/doc/ipiv/${d##*/}(\.gz)?$" "$tmp/contents" ||
		fail "package lacks /usr/share/doc/ipiv/${d##*/}"
done
n_deploy=0
while read -r f; do
	has "/usr/share/ipiv/deploy/${f#"$E2E_ROOT"/deploy/}"; n_deploy=$((n_deploy + 1))
done < <(find "$E2E_ROOT/deploy" -type f 2>/dev/null)
mkdir "$tmp/deb" && dpkg-deb -R "$deb" "$tmp/deb"
grep -qx 'ExecStart=/usr/bin/ipivd --collector.msr-facts=/run/ipivd/msr-facts $ARGS' \
	"$tmp/deb/lib/systemd/system/ipivd.service" ||
	fail "unit: ExecStart is not /usr/bin/ipivd --collector.msr-facts=... \$ARGS"
grep -qx 'ExecStartPre=+/usr/bin/ipivd --dump-msr-facts=/run/ipivd/msr-facts' \
	"$tmp/deb/lib/systemd/system/ipivd.service" ||
	fail "unit: ExecStartPre does not dump the MSR facts"
grep -qx 'EnvironmentFile=-/etc/default/ipivd' "$tmp/deb/lib/systemd/system/ipivd.service" ||
	fail "unit: does not read /etc/default/ipivd"
grep -qx '/etc/default/ipivd' "$tmp/deb/DEBIAN/conffiles" || fail "/etc/default/ipivd is no conffile"
grep -q 'deb-systemd-helper' "$tmp/deb/DEBIAN/postinst" || fail "postinst does not enable the unit"
note "contents: 3 binaries, unit, $(ls "$E2E_ROOT"/docs/man/*.[1-8] | wc -l) man pages, defaults (conffile), docs, $n_deploy deploy/ files"

# Install; the installed unit verifies (its man page is there now).
dpkg -i "$deb" > "$tmp/install.log" 2>&1 || fail "dpkg -i failed: $(tail -5 "$tmp/install.log")"
installed=1
dpkg -L ipiv > "$tmp/files"
systemd-analyze verify /lib/systemd/system/ipivd.service > "$tmp/verify" 2>&1
[ ! -s "$tmp/verify" ] || fail "systemd-analyze verify of the installed unit: $(cat "$tmp/verify")"
/usr/bin/ipivd --version > /dev/null || fail "the installed ipivd does not run"

if [ -d /run/systemd/system ] && [ "$(ps -p 1 -o comm=)" = systemd ]; then
	# postinst enabled and started it, on the default address
	for _ in $(seq 1 600); do systemctl is-active -q ipivd && break; sleep 0.1; done
	systemctl is-active -q ipivd || fail "ipivd.service is not active: $(systemctl status ipivd 2>&1 | tail -5)"
	url=http://127.0.0.1:9712
	how="systemd started ipivd.service"
else
	# no systemd here: what the unit runs, by hand, on a port of this test's range, with
	# $tmp/run for its RuntimeDirectory
	. /etc/default/ipivd
	mkdir "$tmp/run"
	/usr/bin/ipivd --dump-msr-facts="$tmp/run/msr-facts" ||
		fail "the unit's ExecStartPre (ipivd --dump-msr-facts) failed"
	# shellcheck disable=SC2086 # ARGS is a word list, as the unit expands it
	/usr/bin/ipivd --collector.msr-facts="$tmp/run/msr-facts" $ARGS \
		--web.listen-address 127.0.0.1:$PORT > "$tmp/ipivd.log" 2>&1 &
	ipivd_pid=$!
	url=http://127.0.0.1:$PORT
	how="PID 1 is $(ps -p 1 -o comm=), not systemd: /usr/bin/ipivd started with ARGS='$ARGS'"
fi
for _ in $(seq 1 1200); do
	curl -sf "$url/metrics" > "$tmp/metrics" && break
	[ -z "$ipivd_pid" ] || kill -0 "$ipivd_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q '^ipiv_degraded 0' "$tmp/metrics" ||
	fail "installed ipivd does not serve $url/metrics: $(tail -3 "$tmp/ipivd.log" 2>/dev/null)"
note "installed; $how; /metrics answers"
if [ -n "$ipivd_pid" ]; then
	kill "$ipivd_pid"; wait "$ipivd_pid"
	expect_eq "ipivd exit status on SIGTERM" "$?" 0
	ipivd_pid=
fi

# Purge: nothing of the package is left.
dpkg --purge ipiv > "$tmp/purge.log" 2>&1 || fail "dpkg --purge failed: $(tail -5 "$tmp/purge.log")"
installed=
left=$(while read -r f; do [ -f "$f" ] && echo "$f"; done < "$tmp/files")
[ -z "$left" ] || fail "left after purge: $left"
[ ! -e /etc/default/ipivd ] || fail "/etc/default/ipivd left after purge"
[ ! -e /etc/systemd/system/multi-user.target.wants/ipivd.service ] ||
	fail "the unit's enablement link is left after purge"
note "purged: no file left ($((SECONDS - t0)) s in all)"
echo PASS
