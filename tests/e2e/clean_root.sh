# shellcheck shell=bash
# A minimal Debian bookworm root (debootstrap --variant=minbase from the mirror this host's apt
# uses) and this tree's package apt-installed in it, for the tests of the package on a clean
# machine (sourced after lib.sh and deb_build.sh; not a test itself). The root is built once
# and kept in /var/cache/ipiv/debootstrap/, under a key of the mirror, its suite's Release date,
# debootstrap's version and the recipe below, so a point release or a new debootstrap builds it
# again; each test works on a fresh copy.
suite=bookworm
variant=minbase
recipe=1 # raise when the way the cached root is made changes

# The mirror this host's apt takes $suite from: a one-line sources.list entry or a deb822
# stanza with Types: deb.
host_mirror() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		# deb [options] URI SUITE COMPONENT...
		[ -r "$f" ] && awk -v suite="$suite" '$1 == "deb" {
				i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/ && i < NF) i++
				if ($i ~ /\]$/) i++
				if ($(i + 1) == suite) print $i
			}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] && awk -v suite="$suite" '
			function flush() {
				if (deb && uris != "" && (" " suites " ") ~ (" " suite " ")) {
					split(uris, u, " "); print u[1]
				}
				deb = 0; uris = ""; suites = ""
			}
			/^[[:space:]]*$/ { flush(); next }
			/^Types:/ { deb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/) }
			/^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
			/^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
			/^Enabled:[[:space:]]*no/ { deb = 0 }
			END { flush() }' "$f"
	done
}

# Only what a clean machine has (no tool of this host's) runs in there.
clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C
	DEBIAN_FRONTEND=noninteractive)
in_clean_root() { local r=$1; shift; "${clean_env[@]}" chroot "$r" "$@"; }

# clean_root_copy ROOT: a fresh copy of the cached root at ROOT (a path that does not exist
# yet), the cache built first when it is missing or stale.
clean_root_copy() {
	local root=$1 mirror release_date include key cache_dir cache t
	mirror=$(host_mirror | head -n1)
	[ -n "$mirror" ] || fail "no apt source for $suite in /etc/apt/sources.list{,.d/}"
	mirror=${mirror%/}
	release_date=$(curl -sf --max-time 60 "$mirror/dists/$suite/InRelease" | sed -n 's/^Date: //p')
	[ -n "$release_date" ] || fail "cannot read $mirror/dists/$suite/InRelease (network? mirror?)"
	include=
	[[ $mirror == https:* ]] && include=--include=ca-certificates
	key=$(printf '%s\n' "$mirror" "$suite" "$variant" "$release_date" "$include" "$recipe" \
		"$(debootstrap --version)" | sha256sum | cut -c1-12)
	cache_dir=${IPIV_DEBOOTSTRAP_CACHE:-/var/cache/ipiv/debootstrap}
	cache=$cache_dir/$suite-$variant-$key

	# The cached root (one builder at a time; older keys are removed).
	mkdir -p "$cache_dir"
	exec 9> "$cache_dir/.lock"
	flock 9
	if [ ! -s "$cache/done" ]; then
		note "building a $variant $suite root from $mirror in $cache"
		rm -rf --one-file-system "$cache_dir/$suite-$variant-"*
		mkdir -p "$cache"
		t=$SECONDS
		# shellcheck disable=SC2086 # $include is one word or none
		nice debootstrap --variant="$variant" $include "$suite" "$cache/root" "$mirror" \
			> "$cache/debootstrap.log" 2>&1 ||
			fail "debootstrap $suite from $mirror failed: $(tail -3 "$cache/debootstrap.log" | tr '\n' ' ')"
		rm -f "$cache/root"/var/cache/apt/archives/*.deb
		printf 'mirror %s\nsuite %s\nrelease %s\nbuilt %s in %d s\n' "$mirror" "$suite" \
			"$release_date" "$(date -u +%FT%TZ)" $((SECONDS - t)) > "$cache/done"
	fi
	flock -u 9
	note "root: $(tr '\n' ';' < "$cache/done")"
	t=$SECONDS
	cp -a "$cache/root" "$root" || fail "cannot copy $cache/root"
	cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
	note "fresh copy of the root in $((SECONDS - t)) s"
	in_clean_root "$root" dpkg-query -W ipiv > /dev/null 2>&1 && fail "the fresh root already has ipiv"
	return 0
}

# clean_root_install ROOT WORKDIR: this tree's package (the one tests/e2e/test_package.sh built,
# else built in WORKDIR/build) installed in ROOT by apt, which brings what its control file
# declares from the mirror; the package's path is left in $deb, apt's log in WORKDIR/install.log.
clean_root_install() {
	local root=$1 work=$2 t new
	# The package: the one tests/e2e/test_package.sh built of this tree, else built here.
	deb=$(deb_cached)
	if [ -n "$deb" ]; then
		note "package: ${deb##*/} as built for this tree by an earlier test"
	else
		t=$SECONDS
		mkdir "$work/build"
		deb=$(deb_build "$work/build") || exit 1
		note "built ${deb##*/} in $((SECONDS - t)) s"
	fi
	cp "$deb" "$root/tmp/" || fail "cannot copy $deb into the root"

	# apt resolves the package's dependencies from the mirror and installs them with it.
	t=$SECONDS
	in_clean_root "$root" sh -c "cd /tmp && apt-get install -y ./${deb##*/}" \
		> "$work/install.log" 2>&1 ||
		fail "apt-get install ./${deb##*/} on the clean root failed:" \
			"$(grep -E '^(E:|W:| ipiv :)|Depends' "$work/install.log" | head -5 | tr '\n' ' ')"
	in_clean_root "$root" dpkg-query -W -f='${Status}' ipiv 2>/dev/null |
		grep -q 'install ok installed' ||
		fail "ipiv is not installed after apt-get install: $(tail -3 "$work/install.log" | tr '\n' ' ')"
	new=$(sed -n '/^The following NEW packages will be installed:/,/^[^ ]/p' "$work/install.log" |
		grep '^ ' | tr -s ' \n' ' ')
	note "installed in $((SECONDS - t)) s with what apt added:$new"
}
