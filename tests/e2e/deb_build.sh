# shellcheck shell=bash
# The Debian package built as tests/e2e/test_package*.sh need it (sourced after lib.sh; not a
# test itself): out of tree, from a copy of this checkout (uncommitted files too, no build
# output), with dpkg-buildpackage -us -uc -b, unit tests left to make check. Each build is kept
# in $OUT/deb/KEY/, KEY the hash of the copied tree and of this host's package versions, so a
# later test of the same tree on the same host can take it instead of building again.

# deb_tar: the tree the package is built from, as a tar stream (no .git, no build output)
deb_tar() {
	tar -C "$E2E_ROOT" --exclude=./.git --exclude='./.output*' --exclude=./tests/e2e/out \
		--exclude=./debian/ipiv --exclude=./debian/.debhelper --exclude='./debian/*.log' \
		--exclude=./debian/files --exclude=./debian/debhelper-build-stamp \
		--exclude='./debian/*.substvars' "$@" -cf - .
}

# deb_key: names the tree's content (names, modes, bytes; not times or owners) and the
# versions of every package installed here (the build's compilers and libraries)
deb_key() {
	{
		deb_tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner | sha256sum
		dpkg-query -W -f='${Package} ${Version}\n' | sha256sum
	} | sha256sum | cut -c1-16
}

# deb_build DIR: builds the package in DIR (a new directory) and keeps a copy in
# $OUT/deb/KEY/; the build's log is DIR/build.log. Prints the .deb's path.
deb_build() {
	local dir=$1 key deb
	key=$(deb_key)
	mkdir "$dir/src" || fail "cannot create $dir/src"
	deb_tar | tar -C "$dir/src" -xf -
	(cd "$dir/src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) > "$dir/build.log" 2>&1 ||
		fail "dpkg-buildpackage failed: $(tail -20 "$dir/build.log")"
	deb=$(ls "$dir"/ipiv_*_amd64.deb 2>/dev/null)
	[ -f "$deb" ] || fail "no ipiv_*.deb built: $(ls "$dir")"
	rm -rf "$OUT/deb" && mkdir -p "$OUT/deb/$key" && cp "$deb" "$OUT/deb/$key/"
	echo "$deb"
}

# deb_cached: the .deb kept by an earlier deb_build of this very tree on this host, if any
deb_cached() {
	ls "$OUT/deb/$(deb_key)"/ipiv_*_amd64.deb 2>/dev/null
}
