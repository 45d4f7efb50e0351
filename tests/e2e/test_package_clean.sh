#!/usr/bin/env bash
# The Debian package on a clean machine: a minimal Debian bookworm root (debootstrap
# --variant=minbase from the mirror this host's apt uses), into which `apt-get install
# ./ipiv_*.deb` brings the package and exactly what its control file declares, from that
# mirror; nothing else is installed in it. There, with /proc, /sys, /dev, bpffs and tracefs
# bound in: the binaries find every library they link (ldd), ipivd --version runs, ipivd
# --check loads its BPF programs, and ipivd started as the unit starts it (the defaults file's
# ARGS, on a free loopback port) serves /metrics, scraped from outside (the network namespace
# is this host's); with systemd added (minbase has no init), the installed unit passes
# systemd-analyze verify, so what its commands run came with the package (/bin/kill: procps);
# man finds the man pages; the package purges cleanly.
# The root is built once and cached (clean_root.sh); each run works on a fresh copy. Everything
# runs in a private mount namespace, so no mount outlives the test even if it is killed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deb_build.sh"
. "$(dirname "$0")/clean_root.sh"
require_root; require_cmd debootstrap chroot unshare curl man dpkg-buildpackage
[ -r /sys/kernel/btf/vmlinux ] || skip "needs kernel BTF (the build and ipivd need it)"
for m in /sys/fs/bpf /sys/kernel/tracing; do
	mountpoint -q "$m" || fail "$m is not mounted (scripts/deps mounts it)"
done
if [ "${IPIV_CLEAN_NS:-}" != 1 ]; then
	IPIV_CLEAN_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
tmp=$(mktemp -d)
root=$tmp/root
ipivd_pid=
mounts=()
cleanup() {
	[ -n "$ipivd_pid" ] && kill "$ipivd_pid" 2>/dev/null && wait "$ipivd_pid" 2>/dev/null
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null
	done
	# never delete through a mount that is still there (/dev, /sys)
	if findmnt -rno TARGET | grep -q "^$tmp/"; then
		echo "FAIL: mounts left under $tmp, not deleting it:" \
			"$(findmnt -rno TARGET | grep "^$tmp/" | tr '\n' ' ')" >&2
	else
		rm -rf --one-file-system "$tmp"
	fi
}
trap cleanup EXIT
t0=$SECONDS

clean_root_copy "$root"
in_root() { in_clean_root "$root" "$@"; }
clean_root_install "$root" "$tmp"

# Every library every binary links is there.
for b in ipivd ipivtop ipivbench; do
	in_root test -x /usr/bin/$b || fail "/usr/bin/$b is not installed"
	missing=$(in_root ldd /usr/bin/$b 2>&1 | awk '/not found/ { printf "%s ", $1 }')
	[ -z "$missing" ] ||
		fail "/usr/bin/$b: libraries missing on a clean root (debian/control Depends?): $missing"
	in_root /usr/bin/$b --version > "$tmp/$b.version" 2>&1 ||
		fail "$b --version fails on a clean root: $(head -3 "$tmp/$b.version" | tr '\n' ' ')"
done
note "ldd: ipivd, ipivtop, ipivbench find all their libraries;" \
	"--version: $(head -n1 "$tmp/ipivd.version")"

# What ipivd needs of the kernel, bound in (private to this mount namespace).
bind() {	# bind SRC DST-IN-ROOT [mount options...]
	local src=$1 dst=$root$2; shift 2
	mkdir -p "$dst" || fail "cannot create $dst"
	mount "$@" "$src" "$dst" || fail "cannot mount $src on $dst"
	mounts+=("$dst")
}
bind proc /proc -t proc
bind /sys /sys --bind
bind /sys/fs/bpf /sys/fs/bpf --bind
bind /sys/kernel/tracing /sys/kernel/tracing --bind
bind /dev /dev --bind
[ -r "$root/sys/kernel/btf/vmlinux" ] || fail "no kernel BTF in the root's /sys"

in_root /usr/bin/ipivd --check > "$tmp/check" 2>&1 ||
	fail "ipivd --check on a clean root failed: $(tail -3 "$tmp/check" | tr '\n' ' ')"
attached=$(grep -o '[0-9]* of [0-9]* probes attached' "$tmp/check")
[ -n "$attached" ] && [ "${attached%% *}" -gt 0 ] ||
	fail "ipivd --check on a clean root attached no probe: $(head -3 "$tmp/check" | tr '\n' ' ')"
if [ -x "$IPIVD" ]; then # as many as this tree's own build attaches on this host
	expect_eq "ipivd --check on the clean root vs $IPIVD --check" "$attached" \
		"$("$IPIVD" --check 2>&1 | grep -o '[0-9]* of [0-9]* probes attached')"
fi
note "ipivd --check: $attached"

# As the unit runs it: ExecStartPre as root, then ExecStart with the defaults file's ARGS (read
# from the root's copy), on a free loopback port.
ARGS=
# shellcheck disable=SC1091
. "$root/etc/default/ipivd" || fail "the installed /etc/default/ipivd does not parse"
port=$(free_port 34000 34999)
in_root mkdir -p /run/ipivd
in_root /usr/bin/ipivd --dump-msr-facts=/run/ipivd/msr-facts > "$tmp/dump" 2>&1 ||
	fail "ipivd --dump-msr-facts on a clean root failed: $(tail -3 "$tmp/dump" | tr '\n' ' ')"
# shellcheck disable=SC2086 # ARGS is a word list, as the unit expands it
"${clean_env[@]}" chroot "$root" /usr/bin/ipivd --collector.msr-facts=/run/ipivd/msr-facts $ARGS \
	--web.listen-address "127.0.0.1:$port" > "$tmp/ipivd.log" 2>&1 &
ipivd_pid=$!
for _ in $(seq 1 1200); do
	curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/metrics" && break
	kill -0 "$ipivd_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q '^ipiv_degraded 0' "$tmp/metrics" ||
	fail "ipivd on the clean root does not serve /metrics on 127.0.0.1:$port (or is degraded):" \
		"$(tail -3 "$tmp/ipivd.log" | tr '\n' ' ')"
note "ipivd (ARGS='$ARGS') serves /metrics: $(grep -c '^ipiv_' "$tmp/metrics") ipiv_ samples," \
	"not degraded"
kill "$ipivd_pid"; wait "$ipivd_pid"
expect_eq "ipivd exit status on SIGTERM" "$?" 0
ipivd_pid=

# The unit, verified where it would run: minbase has no init, so systemd (only systemd, no
# recommends) is added now, as every machine the unit runs on has it; what the unit's commands
# need must have come with the package. Documentation= is checked below, as man is no part of
# minbase.
t=$SECONDS
in_root apt-get install -y --no-install-recommends systemd > "$tmp/systemd.log" 2>&1 ||
	fail "apt-get install systemd in the root failed: $(grep '^E:' "$tmp/systemd.log" | head -3 | tr '\n' ' ')"
in_root systemd-analyze verify --man=no /lib/systemd/system/ipivd.service > "$tmp/verify" 2>&1
[ ! -s "$tmp/verify" ] ||
	fail "systemd-analyze verify of the installed unit on the clean root:" \
		"$(head -5 "$tmp/verify" | tr '\n' ' ')"
note "unit verified in the root (systemd added in $((SECONDS - t)) s)"
for p in "$E2E_ROOT"/docs/man/*.[1-8]; do
	n=${p##*/} page=/usr/share/man/man${p##*.}/${p##*/}.gz
	[ -s "$root$page" ] || fail "man page $page not installed"
	w=$(MANPATH='' man -M "$root/usr/share/man" -w "${n##*.}" "${n%.*}" 2>&1)
	expect_eq "man -w ${n%.*} in the root's man tree" "$w" "$root$page"
done
note "man finds $(cd "$E2E_ROOT/docs/man" && echo *.[1-8]) in the root"

# Purged: none of its files is left.
in_root dpkg -L ipiv > "$tmp/files"
in_root dpkg --purge ipiv > "$tmp/purge.log" 2>&1 ||
	fail "dpkg --purge ipiv failed: $(tail -3 "$tmp/purge.log" | tr '\n' ' ')"
left=$(while read -r f; do [ -f "$root$f" ] && printf "%s " "$f"; done < "$tmp/files")
[ -z "$left" ] || fail "left after purge: $left"
[ ! -e "$root/etc/default/ipivd" ] || fail "/etc/default/ipivd left after purge"
note "purged: no file left; $((SECONDS - t0)) s in all"
echo PASS
