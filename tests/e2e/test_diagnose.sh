#!/usr/bin/env bash
# Diagnosis end to end on this host: ipivbench guests with logical-mode, broadcast, halted
# and NMI habits must each raise exactly their finding (and a physical-unicast spinning guest
# none of those), through 'ipivd diagnose' and through the daemon's /api/v1/findings and
# ipiv_finding metrics; the host section names the backend.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl promtool; require_bin "$IPIVBENCH" "$IPIVD"

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# Guests that keep sending for longer than the windows below.
start_vm() {	# NAME ARGS...
	local name=$1; shift
	"$IPIVBENCH" --name "$name" -r 1000 -k 1000 "$@" > /dev/null 2> "$tmp/$name.err" &
	pids+=($!)
}
# Halting targets keep the IPI rate high even on a loaded host (spinning targets are
# emulated instruction by instruction here); the clean guest spins so it never halts.
start_vm dx-logical -n 4 -m x2apic-logical -t halt
start_vm dx-broadcast -n 3 -m x2apic-allbutself -t halt
start_vm dx-halted -n 2 -m x2apic-phys -t halt
start_vm dx-nmi -n 2 -m nmi -t halt
start_vm dx-clean -n 2 -m x2apic-phys -t spin
# Low sample minimums: the rules' logic is under test here, not their defaults.
TH="--diag.min-ipis=10 --diag.min-received=10 --diag.min-special=5"
sleep 1

# shellcheck disable=SC2086
"$IPIVD" diagnose --window 4 --json $TH > "$tmp/report.json" 2> "$tmp/diag.err" ||
	fail "ipivd diagnose failed: $(cat "$tmp/diag.err")"
rules() { jq -r --arg vm "$1" '.vms[] | select(.name == $vm) | .findings[].rule' "$tmp/report.json" | sort -u; }
has() { rules "$1" | grep -qx "$2" || fail "$1: no $2 finding (has: $(rules "$1" | tr '\n' ' '))"; }
hasnt() { rules "$1" | grep -qx "$2" && fail "$1: unexpected $2 finding"; true; }

for vm in dx-logical dx-broadcast dx-halted dx-nmi dx-clean; do
	jq -e --arg vm "$vm" '.vms[] | select(.name == $vm)' "$tmp/report.json" > /dev/null ||
		fail "$vm missing from the report: $(cat "$tmp/$vm.err")"
done
has dx-logical logical_dest_mode
hasnt dx-logical shorthand_broadcast
has dx-broadcast shorthand_broadcast
hasnt dx-broadcast logical_dest_mode
has dx-halted targets_halted
hasnt dx-halted logical_dest_mode
hasnt dx-halted shorthand_broadcast
hasnt dx-halted special_delivery
has dx-nmi special_delivery
for r in logical_dest_mode shorthand_broadcast targets_halted special_delivery; do
	hasnt dx-clean $r
done
# Findings carry evidence and a remedy.
jq -e '.vms[] | select(.name == "dx-logical") | .findings[]
	| select(.rule == "logical_dest_mode") | (.remedy | length > 20) and (.evidence | length > 0)' \
	"$tmp/report.json" > /dev/null || fail "logical_dest_mode finding without evidence or remedy"
jq -e '.host.backend == "kvm_pvm" or .host.backend != null' "$tmp/report.json" > /dev/null ||
	fail "host section has no backend"
note "ipivd diagnose: each habit raises its finding"

# The text report for one VM, and an unknown VM.
# shellcheck disable=SC2086
"$IPIVD" diagnose --window 2 --vm dx-logical $TH > "$tmp/report.txt" || fail "text report failed"
grep -q "logical_dest_mode" "$tmp/report.txt" || fail "text report lacks the finding"
grep -q "dx-broadcast" "$tmp/report.txt" && fail "--vm dx-logical printed another VM"
"$IPIVD" diagnose --window 1 --vm no-such-vm > /dev/null 2> "$tmp/err"
expect_eq "unknown VM exit code" $? 1
expect_eq "unknown VM error lines" "$(wc -l < "$tmp/err")" 1

# The daemon: findings in /api/v1/findings and as ipiv_finding series.
PORT=$(( 20000 + RANDOM % 20000 ))
# shellcheck disable=SC2086
"$IPIVD" --web.listen-address 127.0.0.1:$PORT --diag.window 2 $TH > "$tmp/ipivd.log" 2>&1 &
pids+=($!)
# Findings appear once a window has the samples: wait for both, up to 20 s.
ok=
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$PORT/metrics" > "$tmp/metrics"
	curl -sf "http://127.0.0.1:$PORT/api/v1/findings?vm=dx-nmi" > "$tmp/f.json"
	if grep -q 'ipiv_finding{vm="dx-logical",rule="logical_dest_mode"' "$tmp/metrics" &&
	   jq -e '[.vms[].findings[].rule] | index("special_delivery")' "$tmp/f.json" > /dev/null
	then
		ok=1; break
	fi
	sleep 0.2
done
[ -n "$ok" ] || fail "findings missing: metrics $(grep -c '^ipiv_finding' "$tmp/metrics") series; dx-nmi: $(jq -c '[.vms[].findings[].rule]' "$tmp/f.json")"
promtool check metrics < "$tmp/metrics" || fail "promtool rejects /metrics with findings"
expect_eq "findings API filtered to one VM" "$(jq '.vms | length' "$tmp/f.json")" 1
note "daemon: ipiv_finding series and /api/v1/findings"
echo ok
