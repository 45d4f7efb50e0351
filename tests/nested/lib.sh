# Shared by the nested hosts' scripts (tests/nested/l1, tests/nested/vmx/run); the includer
# defines die.

# resolve_modules DIR NAME...: NAME and its dependencies, dependencies first, each once; the
# files may be xz-compressed (.ko.xz, as Debian ships 6.12); a module the kernel has built in
# (modules.builtin under DIR) is left out.
resolve_modules() {
	local dir=$1; shift
	local -A seen=()
	local order=()
	visit() {
		local m=$1 f deps d
		m=${m//-/_}
		[ -n "${seen[$m]:-}" ] && return 0
		seen[$m]=1
		f=$(find "$dir" \( -name "$m.ko" -o -name "${m//_/-}.ko" -o -name "$m.ko.xz" \
			-o -name "${m//_/-}.ko.xz" \) -print -quit)
		if [ -z "$f" ]; then
			find "$dir" -name modules.builtin -exec cat {} + 2>/dev/null |
				grep -qE "(^|/)($m|${m//_/-})\.ko\$" && return 0
			die "module $m is not in $dir"
		fi
		deps=$(modinfo -F depends "$f")
		for d in ${deps//,/ }; do visit "$d"; done
		order+=("$f")
	}
	local m
	for m in "$@"; do visit "$m"; done
	printf '%s\n' "${order[@]}"
}
