# Shared by the nested hosts' scripts (tests/nested/l1, tests/nested/vmx/run); the includer
# defines die.

# resolve_modules DIR NAME...: NAME and its dependencies, dependencies first, each once.
resolve_modules() {
	local dir=$1; shift
	local -A seen=()
	local order=()
	visit() {
		local m=$1 f deps d
		m=${m//-/_}
		[ -n "${seen[$m]:-}" ] && return 0
		seen[$m]=1
		f=$(find "$dir" \( -name "$m.ko" -o -name "${m//_/-}.ko" \) -print -quit)
		[ -n "$f" ] || die "module $m is not in $dir"
		deps=$(modinfo -F depends "$f")
		for d in ${deps//,/ }; do visit "$d"; done
		order+=("$f")
	}
	local m
	for m in "$@"; do visit "$m"; done
	printf '%s\n' "${order[@]}"
}
