#!/usr/bin/env bash
# Faults, each produced for real on this host without touching it for anyone else: what the
# kernel lacks is hidden in a private mount namespace of the ipivd under test (an empty tmpfs
# over tracefs or /sys/kernel/btf, bpffs unmounted, a copy of the kernel's BTF with some
# tracepoints' btf_trace_ typedefs renamed bound over /sys/kernel/btf/vmlinux, /dev/kvm
# covered); a full map is filled through bpftool in the running ipivd's own map. Each fault
# must give one clear line, show in /metrics where ipivd keeps running, and lose nothing else:
#   no BTF, no KVM, a required tracepoint missing: exit 1 with one line naming what is missing
#   tracefs absent, bpffs absent: nothing lost (BTF names the tracepoints, nothing is pinned)
#   an optional tracepoint missing: one log line, its probe gauge 0, every other count exact
#   the VM map full: VMs that fit counted exactly, the others' events in the drop counter,
#     a warning in the log, and counting resumes once there is room
#   ipivd killed with SIGKILL under load: nothing left attached or pinned, a restart attaches
#     again and counts from zero (its maps died with the old process)
#   VMs exiting mid-scrape: every scrape answers 200 and passes promtool
. "$(dirname "$0")/lib.sh"
require_root; require_kvm
require_cmd jq curl promtool bpftool unshare perl mountpoint
require_bin "$IPIVBENCH" "$IPIVD"

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# FAULTS_PORT_BASE: ten consecutive ports for this test's ipivds; FAULTS_VM_PREFIX: its guests'
# names (other guests on the host are seen too and left alone).
PORT_BASE=${FAULTS_PORT_BASE:-$(pick_port)}
VM=${FAULTS_VM_PREFIX:-faults-}
port_of() { echo $((PORT_BASE + $1)); }
# the pids start_ipivd sets
ref_pid='' notracefs_pid='' nobpffs_pid='' noeoi_pid='' full_pid='' k1_pid='' k2_pid=''

# start_ipivd NAME N SETUP ARGS...: ipivd NAME on port N of the range after the shell commands
# SETUP ran in a private mount namespace (its mounts die with it); its pid in NAME_pid.
start_ipivd() {
	local name=$1 port; port=$(port_of "$2")
	local setup=$3
	shift 3
	# (unshare itself in the background, not a function: $! is then ipivd's pid)
	unshare -m --propagation private sh -c "$setup"' && exec "$@"' sh \
		"$IPIVD" --web.listen-address "127.0.0.1:$port" "$@" > "$tmp/$name.log" 2>&1 &
	pids+=($!)
	printf -v "${name}_pid" %s $!
	for _ in $(seq 1 300); do
		curl -sf -o /dev/null "http://127.0.0.1:$port/api/v1/status" && return 0
		sleep 0.1
	done
	fail "$name: ipivd did not start: $(tail -n3 "$tmp/$name.log")"
}
scrape_of() { curl -sf "http://127.0.0.1:$(port_of "$1")/metrics" > "$tmp/$2.metrics" || fail "$2: scrape failed"; }

# guest NAME ARGS...: an ipivbench guest in the background, its JSON in $tmp/NAME.json, its
# pid in $tmp/NAME.pid.
guest() {
	local name=$1
	shift
	"$IPIVBENCH" --name "$VM$name" --json "$@" > "$tmp/$name.json" 2> "$tmp/$name.json.err" &
	echo $! > "$tmp/$name.pid"
	pids+=($!)
}
sent_of() { jq '[.vcpus[].sent] | add' "$tmp/$1.json"; }
recv_of() { jq '[.vcpus[].received] | add' "$tmp/$1.json"; }
# wait_vm N NAME: until the ipivd on port N lists the guest NAME
wait_vm() {
	for _ in $(seq 1 300); do
		curl -sf "http://127.0.0.1:$(port_of "$1")/api/v1/vms" |
			jq -e --arg n "$VM$2" 'any(.vms[]; .name == $n)' > /dev/null && return 0
		sleep 0.1
	done
	fail "the ipivd on port $(port_of "$1") never listed $VM$2"
}

# The kernel's BTF with the btf_trace_ typedefs of the tracepoints matching PERL-REGEX
# renamed (same length, so every offset holds): to libbpf and ipivd those tracepoints do not
# exist, while the kernel, which never reads this copy, runs everything else as before.
btf_without() {
	perl -0777 -pe "s/(?<=\\0)btf_trace_($1)(?=\\0)/xtf_trace_\$1/g" /sys/kernel/btf/vmlinux > "$2"
	cmp -s /sys/kernel/btf/vmlinux "$2" && fail "no typedef btf_trace_$1 in the kernel's BTF"
	return 0
}
no_tracefs='mount -t tmpfs ipiv-no-tracefs /sys/kernel/tracing'

# expect_refusal WHAT SETUP PATTERN: ipivd and ipivd --check both exit 1 with one line that
# matches PATTERN (and no second one: no libbpf chatter, no crash).
expect_refusal() {
	local what=$1 setup=$2 pattern=$3 rc
	for args in "--web.listen-address 127.0.0.1:$(port_of 9)" --check; do
		# shellcheck disable=SC2086
		timeout 60 unshare -m --propagation private sh -c "$setup"' && exec "$@"' sh \
			"$IPIVD" $args > "$tmp/refusal" 2>&1
		rc=$?
		expect_eq "$what: exit status of ipivd $args" $rc 1
		expect_eq "$what: lines ipivd $args printed ($(head -c 300 "$tmp/refusal"))" \
			"$(wc -l < "$tmp/refusal")" 1
		grep -Eq "$pattern" "$tmp/refusal" ||
			fail "$what: ipivd $args said '$(cat "$tmp/refusal")', not /$pattern/"
	done
	note "$what: $(cat "$tmp/refusal")"
}

# ---- no BTF: /sys/kernel/btf is empty ----
expect_refusal "no BTF" 'mount -t tmpfs ipiv-no-btf /sys/kernel/btf' \
	'BTF.*/sys/kernel/btf/vmlinux.*(missing|not readable)'

# ---- no KVM: no kvm tracepoint in BTF or tracefs, no /dev/kvm (a host without the module) ----
btf_without 'kvm_[a-z0-9_]*' "$tmp/btf-no-kvm"
: > "$tmp/no-dev-kvm"
expect_refusal "no KVM" "$no_tracefs && mount --bind $tmp/btf-no-kvm /sys/kernel/btf/vmlinux && \
	mount --bind $tmp/no-dev-kvm /dev/kvm && test ! -c /dev/kvm" \
	'tracepoint kvm:kvm_apic_ipi missing.*KVM loaded'

# ---- a required tracepoint missing ----
btf_without kvm_apic_accept_irq "$tmp/btf-no-accept"
expect_refusal "required tracepoint missing" \
	"$no_tracefs && mount --bind $tmp/btf-no-accept /sys/kernel/btf/vmlinux" \
	'tracepoint kvm:kvm_apic_accept_irq missing'

# ---- tracefs absent, bpffs absent, an optional tracepoint (kvm_eoi) missing ----
# Four ipivds watch one guest: a reference in the host's namespace and one per fault.
btf_without kvm_eoi "$tmp/btf-no-eoi"
ls -R /sys/fs/bpf > "$tmp/bpffs.before" 2>&1
start_ipivd ref 0 true --collector.poll-interval 200
start_ipivd notracefs 1 "$no_tracefs" --collector.poll-interval 200
start_ipivd nobpffs 2 '{ ! mountpoint -q /sys/fs/bpf || umount -l /sys/fs/bpf; } &&
	! mountpoint -q /sys/fs/bpf' --collector.poll-interval 200
start_ipivd noeoi 3 "$no_tracefs && mount --bind $tmp/btf-no-eoi /sys/kernel/btf/vmlinux" \
	--collector.poll-interval 200
guest watch -n 2 -m x2apic-phys -t halt -r 2 -k 200 --hold inf
wait_json "$tmp/watch.json"
sent=$(sent_of watch) recv=$(recv_of watch)
for i in ref:0 notracefs:1 nobpffs:2 noeoi:3; do
	name=${i%:*}
	scrape_of "${i#*:}" "$name"
	f=$tmp/$name.metrics
	expect_eq "$name: IPIs sent" "$(sum_metric_in "$f" ipiv_ipis_sent_total "vm=\"${VM}watch\"")" "$sent"
	expect_eq "$name: accepted" "$(sum_metric_in "$f" ipiv_interrupts_accepted_total "vm=\"${VM}watch\"")" "$recv"
	expect_eq "$name: vCPU wakeups counted" \
		"$(sum_metric_in "$f" ipiv_vcpu_wakeups_total "vm=\"${VM}watch\"" | awk '{ print ($1 > 0) }')" 1
	expect_eq "$name: ipiv_degraded" "$(awk '$1 == "ipiv_degraded" { print int($2) }' "$f")" 0
	grep '^ipiv_probe_attached{' "$f" > "$tmp/$name.probes"
done
for name in notracefs nobpffs; do
	diff "$tmp/ref.probes" "$tmp/$name.probes" > /dev/null ||
		fail "$name: probes differ from the reference: $(diff "$tmp/ref.probes" "$tmp/$name.probes" | tr '\n' ' ')"
	expect_eq "$name: EOIs" "$(sum_metric_in "$tmp/$name.metrics" ipiv_eois_total "vm=\"${VM}watch\"")" "$recv"
	grep -E 'level=(warn|error)' "$tmp/$name.log" && fail "$name: warnings in the log"
done
# without kvm_eoi: its probe is 0, EOIs are not counted, and nothing else changed
expect_eq "noeoi: kvm_eoi probe" \
	"$(grep -c '^ipiv_probe_attached{probe="kvm_eoi",optional="true"} 0' "$tmp/noeoi.probes")" 1
diff <(grep -v 'probe="kvm_eoi"' "$tmp/ref.probes") <(grep -v 'probe="kvm_eoi"' "$tmp/noeoi.probes") > /dev/null ||
	fail "noeoi: other probes differ: $(diff "$tmp/ref.probes" "$tmp/noeoi.probes" | tr '\n' ' ')"
expect_eq "noeoi: EOIs" "$(sum_metric_in "$tmp/noeoi.metrics" ipiv_eois_total "vm=\"${VM}watch\"")" 0
expect_eq "ref: EOIs" "$(sum_metric_in "$tmp/ref.metrics" ipiv_eois_total "vm=\"${VM}watch\"")" "$recv"
expect_eq "noeoi: the log line naming kvm_eoi" \
	"$(grep -c 'optional kvm_eoi not attached: no such tracepoint on this kernel' "$tmp/noeoi.log")" 1
ls -R /sys/fs/bpf > "$tmp/bpffs.after" 2>&1
diff "$tmp/bpffs.before" "$tmp/bpffs.after" | grep -i ipiv && fail "ipivd pinned something in /sys/fs/bpf"
kill "$ref_pid" "$notracefs_pid" "$nobpffs_pid" "$noeoi_pid"
kill "$(cat "$tmp/watch.pid")"
note "tracefs absent, bpffs absent: every probe and count as in the host's namespace ($sent IPIs)"
note "kvm_eoi missing: one log line, ipiv_probe_attached 0, EOIs 0, the rest exact"

# ---- the VM map full ----
# Two guests are watched, then the rest of ipivd's VM table (vm_keys: struct kvm * -> VM key,
# IPIV_MAX_VMS entries) is filled with keys no VM has; two more guests cannot be registered.
start_ipivd full 4 true --collector.poll-interval 200 --diag.window 1
guest fit-0 -r 2 -k 150 --wait-for-go --hold inf
guest fit-1 -r 2 -k 150 --wait-for-go --hold inf
wait_vm 4 fit-0
wait_vm 4 fit-1
map_id=
for id in $(awk '/^map_id:/ { print $2 }' /proc/"$full_pid"/fdinfo/* | sort -un); do
	[ "$(bpftool map show id "$id" -j | jq -r .name)" = vm_keys ] && map_id=$id
done
[ -n "$map_id" ] || fail "ipivd (pid $full_pid) holds no vm_keys map"
max=$(bpftool map show id "$map_id" -j | jq .max_entries)
# (VMs of the host that come and go change the count meanwhile: fill again until full; the
# last keys of a fill may find it full already)
zeros=$(printf '00 %.0s' $(seq 24)) next=0
for _ in $(seq 1 10); do
	have=$(bpftool map dump id "$map_id" -j | jq length)
	[ "$have" -ge "$max" ] && break
	for ((i = next; i < next + max - have; i++)); do
		printf 'map update id %d key hex %02x %02x 00 00 00 00 ad de value hex %s\n' \
			"$map_id" $((i & 255)) $((i >> 8)) "$zeros"
	done > "$tmp/fill"
	next=$i
	bpftool batch file "$tmp/fill" > /dev/null 2>&1
done
expect_eq "vm_keys entries after the fill" "$(bpftool map dump id "$map_id" -j | jq length)" "$max"
guest over-0 -r 2 -k 150 --wait-for-go --hold inf
guest over-1 -r 2 -k 150 --wait-for-go --hold inf
sleep 1 # discovery polls see them and cannot register them
scrape_of 4 full-before
for g in fit-0 fit-1 over-0 over-1; do kill -USR2 "$(cat "$tmp/$g.pid")"; done
for g in fit-0 fit-1 over-0 over-1; do wait_json "$tmp/$g.json"; done
for _ in $(seq 1 50); do # the warning comes with the next diagnosis window (1 s)
	grep -q 'the vms map is full' "$tmp/full.log" && break
	sleep 0.1
done
scrape_of 4 full
for g in fit-0 fit-1; do
	expect_eq "map full: $g's IPIs" "$(sum_metric_in "$tmp/full.metrics" ipiv_ipis_sent_total "vm=\"$VM$g\"")" "$(sent_of $g)"
	expect_eq "map full: $g's accepted" \
		"$(sum_metric_in "$tmp/full.metrics" ipiv_interrupts_accepted_total "vm=\"$VM$g\"")" "$(recv_of $g)"
done
dropped=$(($(sum_metric_in "$tmp/full.metrics" ipiv_events_dropped_total 'reason="vms_map_full"') -
	$(sum_metric_in "$tmp/full-before.metrics" ipiv_events_dropped_total 'reason="vms_map_full"')))
over_sent=$(($(sent_of over-0) + $(sent_of over-1)))
over_seen=$(($(sum_metric_in "$tmp/full.metrics" ipiv_ipis_sent_total "vm=\"${VM}over-0\"") +
	$(sum_metric_in "$tmp/full.metrics" ipiv_ipis_sent_total "vm=\"${VM}over-1\"")))
# (a slot freed by another VM of the host exiting lets one in late: what it sent before is
# in the drops)
[ $((over_seen + dropped)) -ge "$over_sent" ] && [ "$dropped" -gt 0 ] ||
	fail "map full: $over_sent IPIs of the guests that did not fit, $over_seen counted and $dropped events dropped"
grep 'level=warn' "$tmp/full.log" | grep -Eq 'the vms map is full: [0-9]+ events not counted' ||
	fail "map full: no warning in the log: $(tail -n3 "$tmp/full.log")"
note "vms map full: guests that fit exact, $dropped events dropped for $over_sent IPIs that did not fit, $(grep -c 'map is full' "$tmp/full.log") warning(s)"
# Room again: a new guest is counted exactly.
# (the filler keys end in ad de; the last ones of the fill may have found the map full)
bpftool map dump id "$map_id" -j |
	jq -r --arg id "$map_id" '.[] | select(.key[6:8] == ["0xad", "0xde"]) |
		"map delete id \($id) key hex \(.key | map(ltrimstr("0x")) | join(" "))"' > "$tmp/unfill"
bpftool batch file "$tmp/unfill" > /dev/null || fail "could not delete the filler entries"
guest after -r 2 -k 150
wait "$(cat "$tmp/after.pid")" || fail "guest after the fill failed: $(tail -n1 "$tmp/after.json.err")"
scrape_of 4 full-after
expect_eq "map no longer full: a new guest's IPIs" \
	"$(sum_metric_in "$tmp/full-after.metrics" ipiv_ipis_sent_total "vm=\"${VM}after\"")" "$(sent_of after)"
for g in fit-0 fit-1 over-0 over-1; do kill "$(cat "$tmp/$g.pid")"; done
kill "$full_pid"
note "room again: counted exactly"

# ---- ipivd killed with SIGKILL under load, then restarted ----
start_ipivd k1 5 true --collector.poll-interval 200
guest before -r 1 -k 100 -w 0 --hold inf           # sends before the kill only
guest restart -r 2 -k 150 --wait-for-go --hold inf # exists across it, sends after it
guest load -r 1000 -k 1000 -w 0                    # sends throughout, until stopped
wait_json "$tmp/before.json"
wait_vm 5 load
wait_vm 5 restart
( while :; do curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "http://127.0.0.1:$(port_of 5)/metrics"; sleep 0.1; done ) \
	> "$tmp/kill-scrapes" 2>&1 &
scraper=$!; pids+=("$scraper")
sleep 1
scrape_of 5 k1
expect_eq "the first ipivd: IPIs of the guest that sent before the kill" \
	"$(sum_metric_in "$tmp/k1.metrics" ipiv_ipis_sent_total "vm=\"${VM}before\"")" "$(sent_of before)"
progs=$(cat /proc/"$k1_pid"/fdinfo/* 2>/dev/null | awk '/^prog_id:/ { print $2 }' | sort -u)
links=$(cat /proc/"$k1_pid"/fdinfo/* 2>/dev/null | awk '/^link_id:/ { print $2 }' | sort -u)
[ -n "$progs" ] && [ -n "$links" ] || fail "ipivd (pid $k1_pid) holds no BPF program or link"
kill -KILL "$k1_pid"
wait "$k1_pid" 2>/dev/null
left_p='' left_l=''
for _ in $(seq 1 50); do # freed after an RCU grace period
	left_p=$(comm -12 <(echo "$progs") <(bpftool prog show -j | jq -r '.[].id' | sort -u))
	left_l=$(comm -12 <(echo "$links") <(bpftool link show -j | jq -r '.[].id' | sort -u))
	[ -z "$left_p$left_l" ] && break
	sleep 0.1
done
[ -z "$left_p" ] || fail "programs of the killed ipivd still loaded: $left_p"
[ -z "$left_l" ] || fail "links of the killed ipivd still attached: $left_l"
ls -R /sys/fs/bpf > "$tmp/bpffs.after" 2>&1
diff "$tmp/bpffs.before" "$tmp/bpffs.after" | grep -i ipiv && fail "the killed ipivd left pins in /sys/fs/bpf"
start_ipivd k2 5 true --collector.poll-interval 200
restarted=$(wc -l < "$tmp/kill-scrapes")
wait_vm 5 before
wait_vm 5 restart
wait_vm 5 load
scrape_of 5 k2-first
grep -q '^ipiv_probe_attached{probe="kvm_apic_ipi",optional="false"} 1' "$tmp/k2-first.metrics" ||
	fail "restarted ipivd: kvm_apic_ipi not attached"
expect_eq "restarted ipivd: ipiv_degraded" "$(awk '$1 == "ipiv_degraded" { print int($2) }' "$tmp/k2-first.metrics")" 0
kill -USR2 "$(cat "$tmp/restart.pid")"
wait_json "$tmp/restart.json"
scrape_of 5 k2
kill $scraper
# Its maps died with the killed process: the new one counts from zero, what was sent before
# the restart is not in it, what was sent after is, exactly.
expect_eq "restarted ipivd: the guest that sent only before the kill" \
	"$(sum_metric_in "$tmp/k2.metrics" ipiv_ipis_sent_total "vm=\"${VM}before\"")" 0
expect_eq "restarted ipivd: the guest that sent only after the restart" \
	"$(sum_metric_in "$tmp/k2.metrics" ipiv_ipis_sent_total "vm=\"${VM}restart\"")" "$(sent_of restart)"
load=$(sum_metric_in "$tmp/k2.metrics" ipiv_ipis_sent_total "vm=\"${VM}load\"")
[ "$load" -gt 0 ] || fail "restarted ipivd: the guest sending throughout is not counted"
bad=$(tail -n +$((restarted + 1)) "$tmp/kill-scrapes" | grep -vc '^200$')
expect_eq "scrapes of the restarted ipivd not answered 200" "$bad" 0
for g in before restart load; do kill "$(cat "$tmp/$g.pid")"; done
kill "$k2_pid"
note "SIGKILL under load: $(wc -w <<<"$progs") programs and $(wc -w <<<"$links") links gone with it; the restart attached again and counts from zero"

# ---- VMs exiting mid-scrape ----
start_ipivd churn 6 true --collector.poll-interval 100 --collector.exited-retention 1 --collector.per-vcpu
for w in 0 1 2; do
	( for n in $(seq 1 4); do "$IPIVBENCH" --name "${VM}exit-$w-$n" -n $((2 + w)) -r 1 -k 50 -w 0 > /dev/null 2>&1; done ) &
	pids+=($!); churners+=($!)
done
for s in 0 1; do
	(
		i=0
		while :; do
			f=$tmp/mid.$s.$i
			if [ $((i % 4)) -eq 3 ]; then # OpenMetrics now and then
				curl -s -o "$f.om" -w '%{http_code}\n' -H 'Accept: application/openmetrics-text; version=1.0.0' \
					"http://127.0.0.1:$(port_of 6)/metrics" > "$f.code"
			else
				curl -s -o "$f.txt" -w '%{http_code}\n' "http://127.0.0.1:$(port_of 6)/metrics" > "$f.code"
			fi
			i=$((i + 1))
		done
	) &
	pids+=($!); scrapers+=($!)
done
for p in "${churners[@]}"; do wait "$p"; done
sleep 1.5 # past the retention: the exited VMs' series disappear while scraped
kill "${scrapers[@]}"
wait "${scrapers[@]}" 2>/dev/null
n=0 exited=0
for c in "$tmp"/mid.*.code; do
	f=${c%.code}
	[ -s "$c" ] || continue # the scrape the kill interrupted
	expect_eq "scrape $(basename "$f") status" "$(cat "$c")" 200
	if [ -e "$f.om" ]; then
		expect_eq "OpenMetrics scrape $(basename "$f") ends with # EOF" "$(tail -n1 "$f.om")" '# EOF'
	else
		promtool check metrics < "$f.txt" > "$tmp/promtool" 2>&1 ||
			fail "promtool rejects scrape $(basename "$f"): $(head -n3 "$tmp/promtool")"
		dups=$(grep -v '^#' "$f.txt" | awk '{ print $1 }' | sort | uniq -d | head -n3)
		[ -z "$dups" ] || fail "duplicate series in scrape $(basename "$f"): $dups"
		grep -q "^ipiv_vm_exited{vm=\"${VM}exit-" "$f.txt" && exited=$((exited + 1))
	fi
	n=$((n + 1))
done
[ "$n" -ge 20 ] || fail "only $n scrapes during the churn"
[ "$exited" -gt 0 ] || fail "no scrape showed an exited guest: the churn was not seen"
grep -E 'level=error' "$tmp/churn.log" && fail "errors in the log of the scraped ipivd"
note "VMs exiting mid-scrape: $n scrapes, every one 200 and valid, $exited with exited guests"
echo ok
