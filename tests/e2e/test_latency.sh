#!/usr/bin/env bash
# IPI latency end to end: ipivd's host-side send->EOI histograms against the guest's own
# TSC measurement of the same interval (and its round trip), for spin and halt targets;
# the ordering of the modes must match; histogram counts equal the deliveries; NMIs are
# counted as unmatchable; send->accept is recorded with --collector.vm-histograms=all only
# (a second ipivd, watching the same guests); --no-latency exports no histogram.
# Tolerances: docs/latency.md.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl promtool bc; require_bin "$IPIVBENCH" "$IPIVD"

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
PORT=$(( 20000 + RANDOM % 20000 ))
URL=http://127.0.0.1:$PORT
"$IPIVD" --web.listen-address 127.0.0.1:$PORT > "$tmp/ipivd.log" 2>&1 &
pids+=($!)
PORT_ALL=$((PORT + 1))
URL_ALL=http://127.0.0.1:$PORT_ALL
"$IPIVD" --web.listen-address 127.0.0.1:$PORT_ALL --collector.vm-histograms=all \
	> "$tmp/ipivd-all.log" 2>&1 &
pids+=($!)
for u in "$URL" "$URL_ALL"; do
	for _ in $(seq 1 100); do curl -sf "$u/api/v1/status" > /dev/null && break; sleep 0.1; done
done

wait_json() {
	for _ in $(seq 1 900); do
		[ "$(jq -r 'has("wall_seconds")' "$1" 2>/dev/null)" = true ] && return 0
		sleep 0.1
	done
	fail "no result in $1"
}
# run NAME ARGS...: a held guest; leaves $tmp/NAME.json and $tmp/NAME.api
run() {
	local name=$1 pid; shift
	"$IPIVBENCH" --name "$name" --hold inf --json --timeout 60 "$@" > "$tmp/$name.json" &
	pid=$!
	wait_json "$tmp/$name.json"
	curl -sf "$URL/api/v1/vms/$name" > "$tmp/$name.api" || fail "$name: no API detail"
	curl -sf "$URL_ALL/api/v1/vms/$name" > "$tmp/$name.all.api" ||
		fail "$name: no API detail from the ipivd with every histogram"
	curl -sf "$URL/metrics" > "$tmp/$name.prom" || fail "$name: no metrics"
	kill $pid; wait $pid 2>/dev/null
}
within() { [ "$(echo "$1 >= $2 && $1 <= $3" | bc -l)" = 1 ]; }

for t in spin halt; do
	run "lat-$t" -n 2 -m x2apic-phys -t $t -r 5 -k 300
	guest=$(jq .send_to_eoi.ns.median "$tmp/lat-$t.json")
	rt=$(jq .stats.ns.median "$tmp/lat-$t.json")
	host=$(jq '.latency.send_to_eoi.x2apic_msr.p50.value_ns' "$tmp/lat-$t.api")
	err=$(jq '.latency.send_to_eoi.x2apic_msr.p50.error_ns' "$tmp/lat-$t.api")
	ratio=$(echo "$host / $guest" | bc -l)
	printf -- "--- %s: guest round trip %.0f ns, guest send->EOI %.0f ns, host send->EOI %.0f ns (+-%.0f), host/guest %.2f, guest-host %.0f ns\n" \
		$t "$rt" "$guest" "$host" "$err" "$ratio" "$(echo "$guest - $host" | bc -l)"
	eval "guest_$t=$guest host_$t=$host"
	# The host interval is a sub-interval of the round trip.
	within "$host" 64 "$rt" || fail "$t: host send->EOI $host ns exceeds the guest round trip $rt ns"
	# Stated tolerance (docs/latency.md): on kvm_pvm the guest's TSC reads sit a few
	# emulated instructions (~1 us each) away from the traced exits, an additive offset
	# that does not scale with the interval, so it is bounded in ns, not as a ratio.
	off=$(echo "$guest - $host" | bc -l)
	if [ $t = halt ]; then
		within "$off" -5000 45000 || fail "halt: guest-host send->EOI offset $off ns outside -5..45 us"
	else
		within "$ratio" 0.5 2.0 || fail "spin: host/guest send->EOI $ratio outside 0.5..2.0"
	fi
	# Every delivery is measured or counted as unmatched: nothing is silently dropped.
	recv=$(jq '[.vcpus[].received] | add' "$tmp/lat-$t.json")
	matched=$(jq '.latency.send_to_eoi.x2apic_msr.count' "$tmp/lat-$t.api")
	# (eoi_virtualized is 0 without APICv; the full maps and slots are losses: all counted)
	unm=$(jq '.latency_unmatched | .coalesced + .stale + .vector_slots_full + .target_map_full + .eoi_virtualized' "$tmp/lat-$t.api")
	expect_eq "$t: send->EOI measured + coalesced/stale/full/virtualized = deliveries" $((matched + unm)) "$recv"
	expect_eq "$t: nothing lost to full maps or slots" \
		"$(jq '.latency_unmatched | .vector_slots_full + .target_map_full' "$tmp/lat-$t.api")" 0
	expect_eq "$t: send->accept count (vm-histograms=all)" \
		"$(jq '.latency.send_to_accept.x2apic_msr.count' "$tmp/lat-$t.all.api")" "$recv"
	expect_eq "$t: send->EOI count, either ipivd" \
		"$(jq '.latency.send_to_eoi.x2apic_msr.count' "$tmp/lat-$t.all.api")" "$matched"
done
# The ordering of the modes is the same from both sides.
g=$(echo "$guest_spin > $guest_halt" | bc -l); h=$(echo "$host_spin > $host_halt" | bc -l)
expect_eq "spin vs halt ordering, host like guest" "$h" "$g"
note "host and guest agree on the ordering of spin and halt"

# Halted targets: each IPI wakes its target, the wake is measured, halts are recorded.
recv=$(jq '[.vcpus[].received] | add' "$tmp/lat-halt.json")
woken=$(jq '.latency.accept_to_running.halted.count' "$tmp/lat-halt.api")
[ "$woken" -ge $((recv * 95 / 100)) ] || fail "halt: only $woken of $recv wakes measured"
# (halt-polling catches most wakes on a quiet host: halted="false", else "true")
[ "$(jq '[.latency.halt[].count] | add' "$tmp/lat-halt.api")" -ge $((recv * 95 / 100)) ] ||
	fail "halt: halt durations missing"

# NMIs have no EOI: counted as unmatchable, never timed as send->EOI.
run lat-nmi -n 2 -m nmi -t halt -r 1 -k 100
recv=$(jq '[.vcpus[].received] | add' "$tmp/lat-nmi.json")
expect_eq "nmi: unmatchable" "$(jq '.latency_unmatched.no_eoi_delivery_mode' "$tmp/lat-nmi.api")" "$recv"
expect_eq "nmi: no send->EOI" "$(jq '.latency.send_to_eoi // {} | length' "$tmp/lat-nmi.api")" 0

# Prometheus histograms: promtool accepts them, and the +Inf bucket equals _count.
run lat-prom -n 2 -m x2apic-phys -t halt -r 1 -k 100
cp "$tmp/lat-prom.prom" "$tmp/metrics"
promtool check metrics < "$tmp/metrics" || fail "promtool rejects the histograms"
inf=$(grep '^ipiv_ipi_send_to_eoi_seconds_bucket{vm="lat-prom",path="x2apic_msr",le="+Inf"}' "$tmp/metrics" | awk '{print $2}')
cnt=$(grep '^ipiv_ipi_send_to_eoi_seconds_count{vm="lat-prom",path="x2apic_msr"}' "$tmp/metrics" | awk '{print $2}')
[ -n "$cnt" ] || fail "no send->EOI histogram for lat-prom in /metrics"
expect_eq "+Inf bucket = _count" "$inf" "$cnt"
# Default flags: send_to_eoi is the VM's only histogram in /metrics; the API keeps the rest
# but send->accept, which is not recorded (a clock read per accept).
! grep -q '^ipiv_ipi_send_to_accept_seconds' "$tmp/metrics" ||
	fail "send->accept in /metrics without --collector.vm-histograms=all"
[ "$(jq '.latency.accept_to_running.halted.count // 0' "$tmp/lat-prom.api")" -gt 0 ] ||
	fail "no accept->running for lat-prom in the API"
expect_eq "default flags: send->accept not recorded" \
	"$(jq '.latency.send_to_accept.x2apic_msr.count // 0' "$tmp/lat-prom.api")" 0
[ "$(jq '.latency.send_to_accept.x2apic_msr.count // 0' "$tmp/lat-prom.all.api")" -gt 0 ] ||
	fail "no send->accept for lat-prom with --collector.vm-histograms=all"
# and each ipivd's status says which families it records: the fastpath's share of the
# sender's exits only where a fastpath fexit attached (not on a host that refuses fexit)
fast=$(curl -sf "$URL/api/v1/status" |
	jq '[.probes[] | select((.name | startswith("fexit/handle_fastpath")) and .attached)] | length')
if [ "$fast" -gt 0 ]; then fast=',"sender_exit_fastpath"'; else fast=; fi
expect_eq "default flags: families recorded" "$(curl -sf "$URL/api/v1/status" | jq -c .latency_recorded)" \
	"[\"accept_to_running\",\"send_to_eoi\",\"sender_exit\",\"halt\"$fast]"
expect_eq "vm-histograms=all: families recorded" \
	"$(curl -sf "$URL_ALL/api/v1/status" | jq -c .latency_recorded)" \
	"[\"send_to_accept\",\"accept_to_running\",\"send_to_eoi\",\"sender_exit\",\"halt\"$fast]"

# Counting only: no histogram families.
PORT2=$(( 20000 + RANDOM % 20000 ))
"$IPIVD" --web.listen-address 127.0.0.1:$PORT2 --no-latency > "$tmp/ipivd2.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT2/api/v1/status" > /dev/null && break; sleep 0.1; done
"$IPIVBENCH" --name lat-none -r 1 -k 50 --hold inf --json > "$tmp/lat-none.json" &
none=$!
wait_json "$tmp/lat-none.json"
curl -sf "http://127.0.0.1:$PORT2/metrics" > "$tmp/m2"
kill $none; wait $none 2>/dev/null
grep -q '^ipiv_ipis_sent_total{vm="lat-none"' "$tmp/m2" || fail "--no-latency: counting stopped too"
grep -q '^ipiv_ipi_send_to_eoi_seconds_count{vm="lat-none"' "$tmp/m2" && fail "--no-latency still exports histograms"
note "histograms pass promtool; --no-latency counts only"
echo ok
