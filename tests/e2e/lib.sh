# Shared helpers of the end-to-end tests: preconditions (exit 77 = cannot run here),
# failure reporting, and the paths of the built binaries.
set -u
E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# IPIV_OUT: another build tree (make OUT=...), e.g. the sanitizer build of make check-sanitize.
OUT=$(cd "$E2E_ROOT" && realpath -m "${IPIV_OUT:-.output}")
IPIVBENCH=$OUT/ipivbench
IPIVD=$OUT/ipivd

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }

require_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; }
require_kvm() { [ -c /dev/kvm ] || skip "needs /dev/kvm"; }
require_cmd() { for c in "$@"; do command -v "$c" >/dev/null || skip "needs $c"; done; }
require_bin() { for b in "$@"; do [ -x "$b" ] || fail "$b not built (run make)"; done; }

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

pick_port() { echo $(( 20000 + RANDOM % 20000 )); }

# free_port LO HI: a port in LO..HI that nothing listens on and this test has not picked
# before. Callers run it in $(...), a subshell, so the picks are kept in a file named by the
# test's own PID ($$ is the test's in every subshell).
free_port() {
	local lo=$1 hi=$2 p picked=${TMPDIR:-/tmp}/ipiv-e2e-ports.$$
	for _ in $(seq 1 200); do
		p=$(( lo + RANDOM % (hi - lo + 1) ))
		grep -qx "$p" "$picked" 2>/dev/null && continue
		ss -Hltn "sport = :$p" | grep -q . && continue
		echo "$p" >> "$picked"; echo "$p"; return
	done
	fail "no free port in $lo-$hi"
}

# The helpers below read and write files in $tmp and talk to ipivd at $URL.
# sum_metric_in FILE NAME LABEL-FILTER...: sum of the samples of NAME in the scrape in FILE
# whose labels contain every filter; sum_metric: the same in the last scrape ($tmp/metrics)
sum_metric_in() {
	local file=$1 name=$2; shift 2
	local lines; lines=$(grep "^$name{" "$file" || true)
	for f in "$@"; do lines=$(grep -F -- "$f" <<<"$lines" || true); done
	awk '{ s += $NF } END { printf "%d\n", s }' <<<"$lines"
}
sum_metric() { sum_metric_in "$tmp/metrics" "$@"; }
scrape() { curl -sf "$URL/metrics" > "$tmp/metrics" || fail "scrape of $URL/metrics failed"; }
wait_json() {	# wait until ipivbench printed its complete JSON
	# (jq 1.6 exits 0 on an empty file, so ask for the value itself)
	for _ in $(seq 1 600); do
		[ "$(jq -r 'has("wall_seconds")' "$1" 2>/dev/null)" = true ] && return 0
		sleep 0.1
	done
	fail "no result in $1: $(cat "$1" "$1.err" 2>/dev/null | tail -3)"
}

# Each pattern's path and ICR class as ipivd must label them.
path_of() { case $1 in xapic*) echo xapic_mmio ;; pv) echo pv_kvm ;; *) echo x2apic_msr ;; esac; }
class_of() {
	case $1 in
	x2apic-phys | xapic-phys | pv) echo 'delivery="fixed",dest_mode="physical",shorthand="none",dest="unicast"' ;;
	x2apic-logical | xapic-logical) echo 'delivery="fixed",dest_mode="logical",shorthand="none",dest="unicast"' ;;
	x2apic-multicast) echo 'delivery="fixed",dest_mode="logical",shorthand="none"' ;;
	*allbutself) echo 'delivery="fixed",dest_mode="physical",shorthand="all_but_self"' ;;
	x2apic-self) echo 'delivery="fixed",dest_mode="physical",shorthand="self"' ;;
	nmi) echo 'delivery="nmi",dest_mode="physical",shorthand="none",dest="unicast"' ;;
	esac
}
# scratch: $tmp, a new directory, and $pids, for the processes the test starts; at exit they
# are killed and waited for, and the directory is removed
scratch() {
	tmp=$(mktemp -d)
	pids=()
	trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
		wait 2>/dev/null; rm -rf "$tmp"' EXIT
}
# map_of PID NAME: the id of the BPF map NAME of the ipivd PID
map_of() {
	local id
	for id in $(awk '/^map_id:/ { print $2 }' /proc/"$1"/fdinfo/* | sort -un); do
		[ "$(bpftool map show id "$id" -j | jq -r .name)" = "$2" ] && { echo "$id"; return 0; }
	done
	fail "ipivd (pid $1) holds no $2 map"
}
# vm_key_in MAP TGID: the key of the VM of process TGID in the vms map of id MAP (map_of), as
# hex bytes; nothing while it is not there
vm_key_in() {
	bpftool map dump id "$1" -j | jq -r --argjson p "$2" \
		'.[] | select(.formatted.value.tgid == $p) | .key | map(ltrimstr("0x")) | join(" ")'
}
