#!/usr/bin/env bash
# ipivd against real ipivbench guests: counts by path, class, vCPU and matrix must equal the
# guests' own counts exactly, for every pattern this host completes, with 2 and 4 vCPUs,
# several VMs at once and one VM started before ipivd; /metrics passes promtool; a VM
# that exits disappears; bad flags and a busy port give one-line errors.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl promtool bpftool; require_bin "$IPIVBENCH" "$IPIVD"

scratch

PORT=$(pick_port)
URL=http://127.0.0.1:$PORT

# A VM that exists before ipivd starts; it sends only when told (SIGUSR2).
"$IPIVBENCH" --name e2e-early -n 2 -m x2apic-phys -r 2 -k 40 --wait-for-go --hold inf --json \
	> "$tmp/early.json" 2> "$tmp/early.json.err" &
early=$!; pids+=($early)
sleep 1

"$IPIVD" --web.listen-address 127.0.0.1:$PORT --collector.per-vcpu \
	--collector.poll-interval 200 --collector.exited-retention 2 > "$tmp/ipivd.log" 2>&1 &
ipivd=$!; pids+=($ipivd)
for _ in $(seq 1 100); do curl -sf "$URL/api/v1/status" > /dev/null && break; sleep 0.1; done
curl -sf "$URL/api/v1/status" > "$tmp/status" || fail "ipivd did not start: $(cat "$tmp/ipivd.log")"
expect_eq "degraded" "$(jq .degraded "$tmp/status")" false

# The early VM is discovered with its name and pid before it sends anything.
for _ in $(seq 1 200); do
	curl -sf "$URL/api/v1/vms" > "$tmp/vms"
	[ "$(jq -r '.vms[] | select(.name == "e2e-early") | .pid' "$tmp/vms")" = "$early" ] && break
	sleep 0.1
done
[ "$(jq -r '.vms[] | select(.name == "e2e-early") | .pid' "$tmp/vms")" = "$early" ] ||
	fail "early VM (pid $early) not discovered in 20 s: $(jq -c '[.vms[] | {name, pid}]' "$tmp/vms")"
kill -USR2 $early
wait_json "$tmp/early.json"

# check_vm NAME PATTERN JSON: every count ipivd has for the VM equals the guest's own.
check_vm() {
	local vm=$1 p=$2 j=$3 n i sent recv
	n=$(jq '.config.vcpus' "$j")
	sent=$(jq '[.vcpus[].sent] | add' "$j")
	recv=$(jq '[.vcpus[].received] | add' "$j")
	expect_eq "$vm: IPIs sent" "$(sum_metric ipiv_ipis_sent_total "vm=\"$vm\"")" "$sent"
	expect_eq "$vm: IPIs sent by $(path_of "$p") with its class" \
		"$(sum_metric ipiv_ipis_sent_total "vm=\"$vm\"" "path=\"$(path_of "$p")\"" "$(class_of "$p")")" "$sent"
	if [ "$p" = x2apic-multicast ] && [ "$n" -gt 2 ]; then
		expect_eq "$vm: multicast class" "$(sum_metric ipiv_ipis_sent_total "vm=\"$vm\"" 'dest="multicast"')" "$sent"
	fi
	expect_eq "$vm: accepted" "$(sum_metric ipiv_interrupts_accepted_total "vm=\"$vm\"")" "$recv"
	if [ "$p" = nmi ]; then
		expect_eq "$vm: accepted NMIs" "$(sum_metric ipiv_interrupts_accepted_total "vm=\"$vm\"" 'delivery="nmi"')" "$recv"
		expect_eq "$vm: EOIs (NMIs have none)" "$(sum_metric ipiv_eois_total "vm=\"$vm\"")" 0
	else
		expect_eq "$vm: EOIs" "$(sum_metric ipiv_eois_total "vm=\"$vm\"")" "$recv"
	fi
	expect_eq "$vm: vCPUs" "$(sum_metric ipiv_vm_vcpus "vm=\"$vm\"")" "$n"
	for ((i = 0; i < n; i++)); do
		expect_eq "$vm: vCPU $i sent" \
			"$(sum_metric ipiv_vcpu_ipis_sent_total "vm=\"$vm\"" "vcpu=\"$i\"")" \
			"$(jq ".vcpus[$i].sent" "$j")"
		expect_eq "$vm: vCPU $i accepted" \
			"$(sum_metric ipiv_vcpu_interrupts_accepted_total "vm=\"$vm\"" "vcpu=\"$i\"")" \
			"$(jq ".vcpus[$i].received" "$j")"
		expect_eq "$vm: matrix 0 -> $i" \
			"$(sum_metric ipiv_ipi_matrix_total "vm=\"$vm\"" 'src="0"' "dst=\"$i\"")" \
			"$(jq ".vcpus[$i].received" "$j")"
	done
	# The same numbers through the JSON API.
	curl -sf "$URL/api/v1/vms/$vm" > "$tmp/detail" || fail "$vm: no JSON detail"
	expect_eq "$vm: API sent" "$(jq .counts.sent "$tmp/detail")" "$sent"
	expect_eq "$vm: API received" "$(jq .counts.received "$tmp/detail")" "$recv"
	# Each vCPU's APICv state, read from kvm_lapic: a real boolean for every vCPU, and off
	# wherever the host has no APICv/AVIC enabled (this project's kvm_pvm host). Each
	# discovery poll (200 ms here) reads it from every vCPU, whose threads may have exited.
	local known='[.vcpu_rows[] | select(.id != null) | .apicv_active | booleans] | length'
	for _ in $(seq 1 30); do
		curl -sf "$URL/api/v1/vms/$vm" > "$tmp/detail" || fail "$vm: no JSON detail"
		[ "$(jq "$known" "$tmp/detail")" = "$n" ] && break
		sleep 0.1
	done
	expect_eq "$vm: APICv state of every vCPU known" "$(jq "$known" "$tmp/detail")" "$n"
	if ! host_apicv_enabled; then
		expect_eq "$vm: APICv inactive on every vCPU" \
			"$(jq '[.vcpu_rows[] | select(.apicv_active == false)] | length' "$tmp/detail")" "$n"
		scrape
		# inactive = ipiv_vm_vcpus (n, above) - active: a 0 that is written
		expect_eq "$vm: ipiv_vm_vcpus_apicv_active written" \
			"$(grep -c "^ipiv_vm_vcpus_apicv_active{vm=\"$vm\"}" "$tmp/metrics")" 1
		expect_eq "$vm: ipiv_vm_vcpus_apicv_active" \
			"$(sum_metric ipiv_vm_vcpus_apicv_active "vm=\"$vm\"")" 0
	fi
}

# APICv (Intel) or AVIC (AMD) enabled in the loaded KVM module.
host_apicv_enabled() {
	grep -qsx '[Y1]' /sys/module/kvm_intel/parameters/enable_apicv /sys/module/kvm_amd/parameters/avic
}

scrape

check_vm e2e-early x2apic-phys "$tmp/early.json"
note "VM started before ipivd: exact"

# Several VMs at once, in every pattern this host completes, 2 and 4 vCPUs, spin and halt.
patterns="x2apic-phys x2apic-logical x2apic-multicast x2apic-allbutself x2apic-self \
	  xapic-phys xapic-logical xapic-allbutself nmi"
batch=()
run_batch() {
	local vm
	for vm in "${batch[@]}"; do wait_json "$tmp/$vm.json"; done
	scrape
	for vm in "${batch[@]}"; do check_vm "$vm" "$(jq -r .config.pattern "$tmp/$vm.json")" "$tmp/$vm.json"; done
	for vm in "${batch[@]}"; do kill "$(cat "$tmp/$vm.pid")"; done
	batch=()
}
checked=0
for p in $patterns; do
	for n in 2 4; do
		t=$([ $n -eq 2 ] && echo spin || echo halt)
		vm=e2e-$p-$n
		"$IPIVBENCH" --name "$vm" -n $n -m "$p" -t $t -r 2 -k 30 --hold inf --json \
			> "$tmp/$vm.json" 2> "$tmp/$vm.json.err" &
		echo $! > "$tmp/$vm.pid"; pids+=($!)
		batch+=("$vm"); checked=$((checked + 1))
		[ ${#batch[@]} -eq 3 ] && run_batch
	done
done
[ ${#batch[@]} -gt 0 ] && run_batch
note "$checked VMs (3 at a time): every count exact"

# Real output passes promtool, in both formats' text form.
scrape
promtool check metrics < "$tmp/metrics" || fail "promtool rejects /metrics"
dups=$(grep -v '^#' "$tmp/metrics" | awk '{ print $1 }' | sort | uniq -d)
[ -z "$dups" ] || fail "duplicate series in /metrics: $dups"
curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0' "$URL/metrics" > "$tmp/om"
tail -n1 "$tmp/om" | grep -qx '# EOF' || fail "OpenMetrics output has no # EOF"
grep -q '^ipiv_probe_attached{probe="kvm_apic_ipi",optional="false"} 1' "$tmp/metrics" ||
	fail "kvm_apic_ipi probe not reported attached"
# The scrape figures are the previous response's, whole.
curl -sf "$URL/metrics" > "$tmp/m1" && curl -sf "$URL/metrics" > "$tmp/m2" || fail "scrapes failed"
expect_eq "ipiv_scrape_bytes: the previous response's size" \
	"$(awk '/^ipiv_scrape_bytes / { print int($2) }' "$tmp/m2")" "$(wc -c < "$tmp/m1")"
grep -q '^ipiv_scrape_duration_seconds [0-9]' "$tmp/m2" || fail "no ipiv_scrape_duration_seconds"
note "promtool accepts real output"

# A VM that exits keeps its final series, marked exited, for the retention window (2 s
# here), then disappears from the output.
early_sent=$(sum_metric ipiv_ipis_sent_total 'vm="e2e-early"')
kill $early
for _ in $(seq 1 50); do
	scrape
	grep -q '^ipiv_vm_exited{vm="e2e-early"} 1' "$tmp/metrics" && break
	sleep 0.2
done
grep -q '^ipiv_vm_exited{vm="e2e-early"} 1' "$tmp/metrics" ||
	fail "exited VM not marked exited: $(grep 'e2e-early' "$tmp/metrics" | head -3)"
expect_eq "exited VM's final sends" "$(sum_metric ipiv_ipis_sent_total 'vm="e2e-early"')" "$early_sent"
for _ in $(seq 1 50); do
	scrape
	grep -q 'vm="e2e-early"' "$tmp/metrics" || break
	sleep 0.2
done
grep -q 'vm="e2e-early"' "$tmp/metrics" && fail "exited VM still in /metrics: $(grep 'vm="e2e-early"' "$tmp/metrics" | head -3) $(curl -s "$URL/api/v1/status" | jq -c "{vms_reclaimed, vms}")"
curl -sf "$URL/api/v1/vms" | jq -e '[.vms[] | select(.name == "e2e-early")] | length == 0' >/dev/null ||
	fail "exited VM still in /api/v1/vms"
note "exited VMs disappear"

# VMs created one after another: the kernel recycles the struct kvm (and the mm) of an
# exited VM at once, yet each VM must keep its own counts. A second ipivd that reclaims
# rarely keeps the exited VMs' state around while their addresses are reused.
PORT2=$(pick_port)
"$IPIVD" --web.listen-address 127.0.0.1:$PORT2 --collector.poll-interval 60000 \
	> "$tmp/ipivd2.log" 2>&1 &
ipivd2=$!; pids+=($ipivd2)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT2/api/v1/status" > /dev/null && break; sleep 0.1; done
for i in 1 2 3 4 5 6; do
	"$IPIVBENCH" --name "e2e-seq-$i" -r 1 -k 20 > /dev/null || fail "sequential VM $i failed"
done
curl -sf "http://127.0.0.1:$PORT2/api/v1/vms" > "$tmp/seq.json" || fail "second ipivd API"
# (only this test's VMs: other guests on the host are seen by this ipivd too)
expect_eq "sequential VMs seen separately" \
	"$(jq '[.vms[] | select(.name | startswith("e2e-seq-")) | select(.counts.sent > 0)] | length' "$tmp/seq.json")" 6
expect_eq "each sequential VM's own sends" \
	"$(jq -c '[.vms[] | select(.name | startswith("e2e-seq-")) | .counts.sent] | unique' "$tmp/seq.json")" "[40]"
kill $ipivd2
note "recycled VM addresses keep separate counts"

# Bad input: one-line errors.
"$IPIVD" --web.listen-address 127.0.0.1:$PORT > /dev/null 2> "$tmp/err"
expect_eq "exit with the port in use" $? 1
grep -q "in use" "$tmp/err" || fail "port in use not named: $(cat "$tmp/err")"
for args in "--bogus" "--web.listen-address" "--web.telemetry-path metrics" \
	    "--collector.poll-interval 0" "stray" "--proc-root=/nonexistent" \
	    "--sys-root /nonexistent" "--collector.exited-retention -1" \
	    "--collector.vm-histograms none" "--collector.vm-histograms=EOI" \
	    "--collector.vm-histograms"; do
	# shellcheck disable=SC2086
	"$IPIVD" $args > /dev/null 2> "$tmp/err"
	expect_eq "exit of ipivd $args" $? 2
	expect_eq "error lines of ipivd $args" "$(wc -l < "$tmp/err")" 1
done
"$IPIVD" --web.listen-address 300.1.2.3:80 > /dev/null 2> "$tmp/err"
expect_eq "exit with a bad address" $? 1
expect_eq "bad address lines" "$(wc -l < "$tmp/err")" 1
expect_eq "404 for an unknown VM" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/vms/nope")" 404
expect_eq "405 for POST" "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/metrics")" 405

# A VM whose process exits before discovery reads /proc keeps its name: the command line
# kept when it appeared names it. A slow poll makes sure the guest is gone by then.
PORT3=$(pick_port)
"$IPIVD" --web.listen-address 127.0.0.1:$PORT3 --collector.poll-interval 4000 \
	> "$tmp/ipivd3.log" 2>&1 &
slow=$!
pids+=($slow)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT3/api/v1/status" > /dev/null && break; sleep 0.1; done
"$IPIVBENCH" --name "e2e-blink-$$" -r 1 -k 100 > /dev/null 2>&1 &
blink=$!
wait $blink || fail "the short guest failed"
gone=$(date +%s%N)
named=
for _ in $(seq 1 50); do	# within 5 s: it is reclaimed after two 4 s polls miss it
	curl -sf "http://127.0.0.1:$PORT3/metrics" > "$tmp/m3" || true
	grep -q "^ipiv_ipis_sent_total{vm=\"pid-$blink\"" "$tmp/m3" &&
		fail "a VM gone before discovery is named by its pid (pid-$blink)"
	grep -q "^ipiv_ipis_sent_total{vm=\"e2e-blink-$$\"" "$tmp/m3" && { named=yes; break; }
	sleep 0.1
done
[ -n "$named" ] || fail "the short-lived VM never appeared under its name"
note "a VM gone before discovery is named from its kept command line ($(( ($(date +%s%N) - gone) / 1000000 )) ms after it exited)"
kill $slow; wait $slow 2>/dev/null

# Clean shutdown: SIGTERM detaches everything. Other ipivd instances may run on this
# host, so follow the programs this one loaded, by id.
our_progs=$(cat /proc/$ipivd/fdinfo/* 2>/dev/null | awk '/^prog_id:/ { print $2 }' | sort -u)
[ -n "$our_progs" ] || fail "ipivd (pid $ipivd) holds no BPF program"
kill -TERM $ipivd
wait $ipivd; rc=$?
expect_eq "ipivd exit code on SIGTERM" $rc 0
grep -q "stopped, all probes detached" "$tmp/ipivd.log" || fail "no shutdown message"
# The kernel frees programs after an RCU grace period: allow it a moment.
left=
for _ in $(seq 1 50); do
	ids=$(bpftool prog show --json | jq -r '.[].id')
	left=$(comm -12 <(sort <<<"$our_progs") <(sort <<<"$ids"))
	[ -z "$left" ] && break
	sleep 0.1
done
[ -z "$left" ] || fail "BPF programs of ipivd left loaded after shutdown: $left"
note "clean shutdown"
echo ok
