#!/usr/bin/env bash
# Diagnosis end to end on this host: ipivbench guests with logical-mode, broadcast, halted
# and NMI habits must each raise exactly their finding (and a physical-unicast spinning guest
# none of those), through 'ipivd diagnose' and through the daemon's /api/v1/findings and
# ipiv_finding metrics; the host section names the backend. APICv inhibits every VM shares
# (none on a host without APICv/AVIC, like kvm_pvm) are one host finding, not one per VM.
# IPIV_E2E_VM_PREFIX (default dx) names the guests, IPIV_E2E_PORT the daemon's port.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl promtool; require_bin "$IPIVBENCH" "$IPIVD"

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# Guests that keep sending for longer than the windows below.
P=${IPIV_E2E_VM_PREFIX:-dx}
start_vm() {	# NAME ARGS...
	local name=$P-$1; shift
	"$IPIVBENCH" --name "$name" -r 1000 -k 1000 "$@" > /dev/null 2> "$tmp/$name.err" &
	pids+=($!)
}
# Halting targets keep the IPI rate high even on a loaded host (spinning targets are
# emulated instruction by instruction here); the clean guest spins so it never halts.
start_vm logical -n 4 -m x2apic-logical -t halt
start_vm broadcast -n 3 -m x2apic-allbutself -t halt
start_vm halted -n 2 -m x2apic-phys -t halt
start_vm nmi -n 2 -m nmi -t halt
start_vm clean -n 2 -m x2apic-phys -t spin
# Low sample minimums: the rules' logic is under test here, not their defaults.
TH="--diag.min-ipis=10 --diag.min-received=10 --diag.min-special=5"
sleep 1

# shellcheck disable=SC2086
"$IPIVD" diagnose --window 4 --json $TH > "$tmp/report.json" 2> "$tmp/diag.err" ||
	fail "ipivd diagnose failed: $(cat "$tmp/diag.err")"
rules() { jq -r --arg vm "$P-$1" '.vms[] | select(.name == $vm) | .findings[].rule' "$tmp/report.json" | sort -u; }
has() { rules "$1" | grep -qx "$2" || fail "$P-$1: no $2 finding (has: $(rules "$1" | tr '\n' ' '))"; }
hasnt() { rules "$1" | grep -qx "$2" && fail "$P-$1: unexpected $2 finding"; true; }

for vm in logical broadcast halted nmi clean; do
	jq -e --arg vm "$P-$vm" '.vms[] | select(.name == $vm)' "$tmp/report.json" > /dev/null ||
		fail "$P-$vm missing from the report: $(cat "$tmp/$P-$vm.err")"
done
has logical logical_dest_mode
hasnt logical shorthand_broadcast
has broadcast shorthand_broadcast
hasnt broadcast logical_dest_mode
has halted targets_halted
hasnt halted logical_dest_mode
hasnt halted shorthand_broadcast
hasnt halted special_delivery
has nmi special_delivery
for r in logical_dest_mode shorthand_broadcast targets_halted special_delivery; do
	hasnt clean $r
done
# Findings carry evidence and a remedy.
jq -e --arg vm "$P-logical" '.vms[] | select(.name == $vm) | .findings[]
	| select(.rule == "logical_dest_mode") | (.remedy | length > 20) and (.evidence | length > 0)' \
	"$tmp/report.json" > /dev/null || fail "logical_dest_mode finding without evidence or remedy"
jq -e '.host.backend == "kvm_pvm" or .host.backend != null' "$tmp/report.json" > /dev/null ||
	fail "host section has no backend"
note "ipivd diagnose: each habit raises its finding"

# Without APICv/AVIC in the host every inhibit is the host's: one host finding for the VMs
# inhibited (ours at least), none per VM. With it, no VM of ours has a host-wide inhibit.
apicv_hw=$(jq -r .host.apicv_hardware "$tmp/report.json")
inhibited=$(jq --arg p "$P-" '[.vms[] | select((.name | startswith($p))
	and .apicv_inhibits.known and (.apicv_inhibits.reasons | length > 0))] | length' \
	"$tmp/report.json")
host_apicv=$(jq -c '[.host.findings[] | select(.rule == "apicv_inhibited")]' "$tmp/report.json")
if [ "$apicv_hw" = no ]; then
	for vm in logical broadcast halted nmi clean; do hasnt $vm apicv_inhibited; done
	if [ "$inhibited" -gt 0 ]; then
		jq -e --argjson n "$inhibited" 'length == 1 and .[0].severity == "info"
			and .[0].evidence.vms >= $n' <<<"$host_apicv" > /dev/null ||
			fail "$inhibited VMs inhibited, host apicv_inhibited: $host_apicv"
	fi
	note "no APICv/AVIC: $inhibited of our VMs inhibited, one host finding ($host_apicv)"
fi

# The text report for one VM, and an unknown VM.
# shellcheck disable=SC2086
"$IPIVD" diagnose --window 2 --vm "$P-logical" $TH > "$tmp/report.txt" || fail "text report failed"
grep -q "logical_dest_mode" "$tmp/report.txt" || fail "text report lacks the finding"
grep -q "$P-broadcast" "$tmp/report.txt" && fail "--vm $P-logical printed another VM"
"$IPIVD" diagnose --window 1 --vm no-such-vm > /dev/null 2> "$tmp/err"
expect_eq "unknown VM exit code" $? 1
expect_eq "unknown VM error lines" "$(wc -l < "$tmp/err")" 1

# The daemon: findings in /api/v1/findings and as ipiv_finding series.
PORT=${IPIV_E2E_PORT:-$(pick_port)}
# shellcheck disable=SC2086
"$IPIVD" --web.listen-address 127.0.0.1:$PORT --diag.window 2 $TH > "$tmp/ipivd.log" 2>&1 &
pids+=($!)
# Findings appear once a window has the samples: wait for both, up to 20 s.
ok=
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$PORT/metrics" > "$tmp/metrics"
	curl -sf "http://127.0.0.1:$PORT/api/v1/findings?vm=$P-nmi" > "$tmp/f.json"
	if grep -q "ipiv_finding{vm=\"$P-logical\",rule=\"logical_dest_mode\"" "$tmp/metrics" &&
	   jq -e '[.vms[].findings[].rule] | index("special_delivery")' "$tmp/f.json" > /dev/null
	then
		ok=1; break
	fi
	sleep 0.2
done
[ -n "$ok" ] || fail "findings missing: metrics $(grep -c '^ipiv_finding' "$tmp/metrics") series; $P-nmi: $(jq -c '[.vms[].findings[].rule]' "$tmp/f.json")"
promtool check metrics < "$tmp/metrics" || fail "promtool rejects /metrics with findings"
expect_eq "findings API filtered to one VM" "$(jq '.vms | length' "$tmp/f.json")" 1
if [ "$apicv_hw" = no ]; then
	grep -q "^ipiv_finding{vm=\"$P-[a-z]*\",rule=\"apicv_inhibited\"" "$tmp/metrics" &&
		fail "a VM's apicv_inhibited series on a host without APICv/AVIC"
	[ "$inhibited" -eq 0 ] ||
		expect_eq "ipiv_host_finding apicv_inhibited series" \
			"$(grep -c '^ipiv_host_finding{rule="apicv_inhibited",severity="info"} 1' "$tmp/metrics")" 1
fi
note "daemon: ipiv_finding series and /api/v1/findings"
echo ok
