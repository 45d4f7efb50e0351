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
#   the counters map full: counts in keys made before exact, a running VM's counts exact in
#     its threads' caches and lost when they exit (dropped), its matrix cells kept
#   the matrix map full: an exiting VM's cells dropped, every count exact
#   the targets map full: a VM without a dense latency slot has its deliveries counted as
#     not timed (a warning in the log), its other histograms and counts exact; one with a
#     slot is not touched
#   the lat map full: a VM that cannot be bound to a slot times every IPI all the same (its
#     bindings and unmatched counts dropped); one bound before is not touched
#   the lat_hseries map full: a VM without a slot has no histogram (each observation
#     dropped), its counts exact; one with a slot is not touched
#   ipivd killed with SIGKILL under load: nothing left attached or pinned, a restart attaches
#     again and counts from zero (its maps died with the old process)
#   VMs exiting mid-scrape: every scrape answers 200 and passes promtool
. "$(dirname "$0")/lib.sh"
require_root; require_kvm
require_cmd jq curl promtool bpftool unshare perl mountpoint
require_bin "$IPIVBENCH" "$IPIVD"

scratch

# FAULTS_PORT_BASE: ten consecutive ports for this test's ipivds; FAULTS_VM_PREFIX: its guests'
# names (other guests on the host are seen too and left alone).
PORT_BASE=${FAULTS_PORT_BASE:-$(pick_port)}
VM=${FAULTS_VM_PREFIX:-faults-}
port_of() { echo $((PORT_BASE + $1)); }
# the pids start_ipivd sets
ref_pid='' notracefs_pid='' nobpffs_pid='' noeoi_pid='' full_pid='' k1_pid='' k2_pid=''
mref_pid='' fullc_pid='' fulll_pid=''

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

# ---- the counters, matrix, targets, lat and lat_hseries maps full ----
# fullc has its counters map filled, then its matrix map; fulll its targets map, then its lat
# and lat_hseries maps. mref, with room in every map, watches the same guests: the oracle for
# what a guest's JSON does not say (latency, and the counts a guest still running has made).
start_ipivd mref 7 true --collector.poll-interval 200
start_ipivd fullc 8 true --collector.poll-interval 200 --diag.window 1
start_ipivd fulll 9 true --collector.poll-interval 200 --diag.window 1

# vm_key_of PID NAME: the VM key of guest NAME in the vms map of the ipivd PID, as hex bytes
vm_key_of() {
	local vms key
	vms=$(map_of "$1" vms) || exit 1
	key=$(vm_key_in "$vms" "$(cat "$tmp/$2.pid")")
	[ -n "$key" ] || fail "$2 is not in the vms map of ipivd $1"
	echo "$key"
}
# fill ID KEY VALUE: the room of map ID taken by filler keys, through one bpftool, which stops
# at the first update the full map refuses. KEY and VALUE are awk expressions of the filler's
# index i (b(x, n): x as n little-endian bytes, z(n): n zero bytes). Filler i is made only
# after filler i - 1, so unfill ID KEY deletes them all and stops at the first one not made;
# fill again takes what room VMs of the host freed meanwhile.
filler() { # VERB ID KEY [VALUE]
	local verb=$1 id=$2 key=$3 value=${4:-} max
	max=$(bpftool map show id "$id" -j | jq .max_entries)
	awk -v verb="$verb" -v id="$id" -v max="$max" "
		function b(x, n,  s, k) {
			for (k = 0; k < n; k++) s = s sprintf(\" %02x\", int(x / 256 ^ k) % 256)
			return s
		}
		function z(n) { return n in zs ? zs[n] : (zs[n] = b(0, n)) }
		BEGIN { for (i = 0; i <= max; i++) printf \"map %s id %d key hex%s%s\n\", verb, id,
			$key, verb == \"update\" ? \" value hex\" $value : \"\" }" > "$tmp/filler"
	bpftool batch file "$tmp/filler" > "$tmp/filler.out" 2>&1 &&
		fail "map $id ($verb): all $((max + 1)) filler keys went through"
	return 0
}
fill() {
	filler update "$@"
	grep -q 'update failed: Argument list too long' "$tmp/filler.out" ||
		fail "filling map $1: $(tail -n1 "$tmp/filler.out")"
}
unfill() {
	filler delete "$@"
	grep -q 'delete failed: No such file or directory' "$tmp/filler.out" ||
		fail "emptying map $1: $(tail -n1 "$tmp/filler.out")"
}
# checked N NAME: scrape_of, and promtool accepts the scrape
checked() {
	scrape_of "$1" "$2"
	promtool check metrics < "$tmp/$2.metrics" > "$tmp/promtool" 2>&1 ||
		fail "$2: promtool rejects the scrape: $(head -n3 "$tmp/promtool")"
}
# api N NAME: the API's detail of guest NAME from the ipivd on port N, in $tmp/NAME.N.api
api() {
	curl -sf "http://127.0.0.1:$(port_of "$1")/api/v1/vms/$VM$2" > "$tmp/$2.$1.api" ||
		fail "no API detail of $VM$2 from the ipivd on port $(port_of "$1")"
}
# as_ref WHAT N NAME FILTER: jq's FILTER of the API's detail of guest NAME from the ipivd on
# port N (api) is the reference's
as_ref() { expect_eq "$1" "$(jq -c "$4" "$tmp/$3.$2.api")" "$(jq -c "$4" "$tmp/$3.7.api")"; }
drops_in() { sum_metric_in "$tmp/$1.metrics" ipiv_events_dropped_total "reason=\"$2\""; }
zeros() { printf '00 %.0s' $(seq "$1"); }
# warned LOG WHAT: waits (a diagnosis window) for the warning that the WHAT map is full
warned() {
	for _ in $(seq 1 30); do
		grep 'level=warn' "$1" | grep -Eq "the $2 map is full: [0-9]+ [a-z ]+ not" && return 0
		sleep 0.1
	done
	fail "no warning that the $2 map is full: $(tail -n3 "$1")"
}
# reclaimed N NAME: until the ipivd on port N has reclaimed the guest NAME, which exited
reclaimed() {
	for _ in $(seq 1 50); do
		curl -sf "http://127.0.0.1:$(port_of "$1")/metrics" |
			grep -q "^ipiv_vm_exited{vm=\"$VM$2\"} 1" && return 0
		sleep 0.1
	done
	fail "the ipivd on port $(port_of "$1") did not reclaim $VM$2"
}
# try_full N NAME REFILL FOUND-FULL: the guest NAME-<try> (200 IPIs to a halting vCPU) made
# and watched by the ipivd on port N, the command REFILL, then the guest's run; again (three
# times at most) unless the command FOUND-FULL says the guest $g found the map full: the
# reclaim of a VM of the host that exited meanwhile can make room (and the VMs of the host
# take it as well). The checks that follow say what was wrong.
try_full() {
	local port=$1 name=$2 refill=$3 found_full=$4
	for try in 1 2 3; do
		g=$name-$try
		guest "$g" -r 1 -k 100 -t halt --wait-for-go --hold inf
		wait_vm "$port" "$g"
		checked "$port" "$g-before"
		"$refill"
		kill -USR2 "$(cat "$tmp/$g.pid")"
		wait_json "$tmp/$g.json"
		checked "$port" "$g-after"
		api "$port" "$g"
		api 7 "$g"
		"$found_full" && return 0
		note "$g found room a VM of the host freed: again"
		kill "$(cat "$tmp/$g.pid")"
		reclaimed "$port" "$g" # (its keys go too)
	done
}

# -- counters --
# Keys of a VM that discovery does not find alive are reclaimed after two polls (and a fake
# VM would show in /metrics as an exited "vm-N"), so the filler keys belong to a guest that
# never runs (cfill), under a kind no counter has (0xfffe), all for vCPU "none". cpre ran
# before the fill and its threads exited: its keys are in the map.
guest cpre -r 1 -k 100 -t halt --hold inf
guest cfill --wait-for-go --hold inf
wait_json "$tmp/cpre.json"
wait_vm 8 cfill
counters=$(map_of "$fullc_pid" counters) || exit 1
matrix=$(map_of "$fullc_pid" matrix) || exit 1
fk=$(vm_key_of "$fullc_pid" cfill) || exit 1
cfiller="\" $fk ff ff ff ff fe ff\" b(i, 2) z(8)"
fill "$counters" "$cfiller" 'z(8)'
checked 8 c-full
# A guest running now counts in its threads' caches (the first 8 keys of a thread; this
# one's threads make 3 each, include/ipiv.h): stopped half-way, all it counted is there.
guest cnew -r 1000 -k 1000 -w 0 -t halt
wait_vm 8 cnew
sleep 0.3
cnew=$(cat "$tmp/cnew.pid")
kill -STOP "$cnew"
for _ in $(seq 1 50); do # until none of its threads runs
	grep -q '^State:.*[^T] (' /proc/"$cnew"/task/*/status || break
	sleep 0.02
done
checked 8 c-stop
checked 7 r-stop
for f in ipiv_ipis_sent_total ipiv_interrupts_accepted_total ipiv_eois_total ipiv_vcpu_wakeups_total; do
	want=$(sum_metric_in "$tmp/r-stop.metrics" $f "vm=\"${VM}cnew\"")
	[ "$want" -gt 0 ] || fail "counters map full: the reference has no $f of cnew"
	expect_eq "counters map full: the running cnew's $f" \
		"$(sum_metric_in "$tmp/c-stop.metrics" $f "vm=\"${VM}cnew\"")" "$want"
done
api 8 cnew
api 7 cnew
as_ref "counters map full: the running cnew's counts" 8 cnew .counts
# Its threads exit with the map full: the counts they cached are lost, one drop per key; the
# matrix cell goes to the matrix map, which has room.
fill "$counters" "$cfiller" 'z(8)'
kill -CONT "$cnew"
kill "$cnew"
wait "$cnew"
checked 8 c-exit
api 8 cnew
api 7 cnew
as_ref "counters map full: cnew's matrix after its exit" 8 cnew .matrix
lost=$(jq .counts.sent "$tmp/cnew.8.api")
dropped=$(($(drops_in c-exit counters_map_full) - $(drops_in c-full counters_map_full)))
# (each key dropped whole, or counted whole where a VM of the host freed room)
[ "$dropped" -gt 0 ] && { [ "$lost" = 0 ] || [ "$lost" = "$(jq .counts.sent "$tmp/cnew.7.api")" ]; } ||
	fail "counters map full: cnew's exit dropped $dropped keys, $lost of its IPIs counted"
warned "$tmp/fullc.log" counters
# the host totals keep what was counted and given out before (monotonic for ipivd's life)
for f in ipiv_host_ipis_sent_total ipiv_host_interrupts_accepted_total; do
	before=$(sum_metric_in "$tmp/c-stop.metrics" $f) after=$(sum_metric_in "$tmp/c-exit.metrics" $f)
	[ "$after" -ge "$before" ] || fail "counters map full: $f fell from $before to $after at cnew's exit"
done
note "counters map full: a running guest's counts exact in its threads' caches, lost at its exit ($dropped keys dropped), its matrix cell kept; host totals kept"
# Room again: cfill exits and its keys are reclaimed.
kill "$(cat "$tmp/cfill.pid")"
read -ra first <<< "$fk ff ff ff ff fe ff $(zeros 10)"
gone=
for _ in $(seq 1 50); do
	bpftool map lookup id "$counters" key hex "${first[@]}" > /dev/null 2>&1 || { gone=1; break; }
	sleep 0.1
done
[ -n "$gone" ] || fail "the keys of cfill, which exited, were not reclaimed"
reclaimed 8 cnew # (its matrix cell goes too)

# -- matrix -- (filler keys of a fake VM: the matrix does not make a VM known, they stay)
# A guest's threads exit with the matrix full: its cell is lost, its counts are whole (in the
# counters map, with room again), and so are the counts and cells of cpre.
mfill() { fill "$matrix" '" 01 00 00 00 00 00 ad de" b(i, 4) z(4)' 'z(8)'; }
mlost() { [ "$(jq -c .matrix "$tmp/$g.8.api")" = '[]' ]; }
try_full 8 mnew mfill mlost
expect_eq "matrix map full: $g's matrix" "$(jq -c .matrix "$tmp/$g.8.api")" '[]'
expect_eq "matrix map full: $g's matrix, reference" \
	"$(jq -c '.matrix | map(.count)' "$tmp/$g.7.api")" "[$(sent_of "$g")]"
expect_eq "matrix map full: $g's IPIs" "$(jq .counts.sent "$tmp/$g.8.api")" "$(sent_of "$g")"
expect_eq "matrix map full: $g's accepted" "$(jq .counts.received "$tmp/$g.8.api")" "$(recv_of "$g")"
as_ref "matrix map full: $g's counts" 8 "$g" .counts
api 8 cpre
api 7 cpre
expect_eq "counters and matrix maps full: cpre's IPIs" "$(jq .counts.sent "$tmp/cpre.8.api")" "$(sent_of cpre)"
expect_eq "counters and matrix maps full: cpre's accepted" "$(jq .counts.received "$tmp/cpre.8.api")" "$(recv_of cpre)"
as_ref "counters and matrix maps full: cpre's counts" 8 cpre .counts
as_ref "counters and matrix maps full: cpre's matrix" 8 cpre .matrix
dropped=$(($(drops_in "$g-after" matrix_map_full) - $(drops_in "$g-before" matrix_map_full)))
[ "$dropped" -gt 0 ] || fail "matrix map full: $g's cell lost, and no drop"
warned "$tmp/fullc.log" matrix
note "matrix map full: the cell of a guest that exited dropped, every count exact"
kill "$fullc_pid" "$(cat "$tmp/cpre.pid")" "$(cat "$tmp/$g.pid")"

# -- targets --
# Latency's hash maps serve VMs without a dense slot (include/latency_maps.h); a VM takes one
# at its first latency event while one is free. lslot takes one before the fill: it keeps
# its targets' records there. Then fake VMs take every other slot (VMs of the host that
# hold one included), each bound to it as the lat map says.
targets=$(map_of "$fulll_pid" targets) || exit 1
lat=$(map_of "$fulll_pid" lat) || exit 1
slots=$(map_of "$fulll_pid" lat_slots) || exit 1
guest lslot -r 1 -k 100 -t halt --hold inf
wait_json "$tmp/lslot.json"
lk=$(vm_key_of "$fulll_pid" lslot) || exit 1
bpftool map dump id "$slots" -j |
	jq -r --arg lk "$lk" '.[] | select(.value[0:8] | map(ltrimstr("0x")) | join(" ") != $lk) |
		.key[0] | ltrimstr("0x")' |
	while read -r s; do
		printf 'map update id %d key hex %s 00 00 00 value hex %s 51 00 00 00 00 ad de 01 %s\n' \
			"$slots" "$s" "$s" "$(zeros 87)"
		printf 'map update id %d key hex %s 51 00 00 00 00 ad de ff ff ff ff fe ff %s value hex %02x %s\n' \
			"$lat" "$s" "$(zeros 10)" $((0x$s + 1)) "$(zeros 15)"
	done > "$tmp/take-slots"
expect_eq "latency slots taken" "$(wc -l < "$tmp/take-slots")" 126
bpftool batch file "$tmp/take-slots" > /dev/null || fail "could not take the latency slots"
# A guest without a slot: every delivery is counted as not timed for want of a record; its
# halts (VM-wide, in the lat_hseries map) and counts are whole.
tfiller='" 03 00 00 00 00 00 ad de" b(i, 4) z(4)'
tfill() { fill "$targets" "$tfiller" 'z(128)'; }
tlost() { [ "$(jq .latency_unmatched.target_map_full "$tmp/$g.9.api")" = "$(recv_of "$g")" ]; }
try_full 9 tnew tfill tlost
expect_eq "targets map full: $g's deliveries not timed" \
	"$(jq .latency_unmatched.target_map_full "$tmp/$g.9.api")" "$(recv_of "$g")"
expect_eq "targets map full: $g's send->EOI" "$(jq -c .latency.send_to_eoi "$tmp/$g.9.api")" null
as_ref "targets map full: $g's halts" 9 "$g" '.latency.halt | map_values(.count)'
expect_eq "targets map full: $g's IPIs" "$(jq .counts.sent "$tmp/$g.9.api")" "$(sent_of "$g")"
as_ref "targets map full: $g's counts" 9 "$g" .counts
warned "$tmp/fulll.log" targets
# and host-wide, in the drop counter every full map raises (alert IpivEventsDropped)
checked 9 targets-full
v=$(sum_metric_in "$tmp/targets-full.metrics" ipiv_events_dropped_total 'reason="targets_map_full"')
[ "$v" -ge "$(recv_of "$g")" ] ||
	fail "targets map full: $v drops (targets_map_full) for $(recv_of "$g") untimed deliveries"
note "targets map full: $(recv_of "$g") deliveries of a guest without a slot not timed, and said so; its counts exact"
held=("$g") # (until the end: its reclaim would make room)
unfill "$targets" "$tfiller"

# -- lat -- (the slot bindings, and what VMs without a slot keep there: unmatched counts,
# per-vCPU buckets). A guest that cannot be bound has no slot either way: its histograms go
# to the lat_hseries map and its targets' records to the targets map, both with room again.
lfill() { fill "$lat" '" 02 00 00 00 00 00 ad de" b(i, 4) z(12)' 'z(16)'; }
# (its binding to no slot, made at its first latency event, is missing)
llost() {
	local key
	read -ra key <<< "$(vm_key_of "$fulll_pid" "$g") ff ff ff ff fe ff $(zeros 10)"
	! bpftool map lookup id "$lat" key hex "${key[@]}" > /dev/null 2>&1
}
try_full 9 lnew lfill llost
api 9 lslot
api 7 lslot
for v in lslot "$g"; do
	expect_eq "lat map full: $v's send->EOI" \
		"$(jq .latency.send_to_eoi.x2apic_msr.count "$tmp/$v.9.api")" "$(recv_of "$v")"
	as_ref "lat map full: $v's histograms" 9 "$v" '.latency | map_values(map_values(.count))'
	as_ref "lat map full: $v's counts" 9 "$v" .counts
done
as_ref "lat map full: lslot's unmatched" 9 lslot .latency_unmatched
dropped=$(($(drops_in "$g-after" latency_map_full) - $(drops_in "$g-before" latency_map_full)))
unmatched=$(jq '[.latency_unmatched[]] | add' "$tmp/$g.7.api")
# (its threads' bindings, and each delivery the reference could not time)
[ "$dropped" -ge $((1 + unmatched)) ] ||
	fail "lat map full: $dropped drops for $g's bindings and $unmatched unmatched deliveries"
warned "$tmp/fulll.log" latency
note "lat map full: $dropped events dropped (bindings, unmatched deliveries), every histogram exact"
held+=("$g")

# -- lat_hseries -- (the VM-wide histograms of VMs without a slot). Its values, 4224 bytes,
# are longer than a line of bpftool batch takes (4096 arguments), and a bpftool per key
# takes ~7 ms (a minute for 8192): filled through the bpf system call (x86-64's number)
# from perl, keys as the targets map's. The lat map is still full.
hseries=$(map_of "$fulll_pid" lat_hseries) || exit 1
hfill() {
	perl -e 'my ($id, $vm) = @ARGV;
		my $get = pack("LLL", $id, 0, 0);
		my $fd = syscall(321, 14, $get, length $get); # BPF_MAP_GET_FD_BY_ID
		die "map $id: $!\n" if $fd < 0;
		my $info = pack("x80");
		my $ask = pack("LLQ", $fd, length $info, unpack("Q", pack("p", $info)));
		syscall(321, 15, $ask, length $ask) == 0 or die "map $id: $!\n"; # BPF_OBJ_GET_INFO_BY_FD
		my $value = "\0" x (unpack("LLLLL", $info))[3];
		for (my $i = 0;; $i++) {
			my $key = pack("H16LL", $vm, $i, 0);
			my $up = pack("LLQQQ", $fd, 0, unpack("Q", pack("p", $key)),
				unpack("Q", pack("p", $value)), 0);
			syscall(321, 2, $up, length $up) == 0 or die "update failed: $!\n";
		}' "$hseries" 040000000000adde > "$tmp/filler.out" 2>&1
	grep -q 'update failed: Argument list too long' "$tmp/filler.out" ||
		fail "filling map $hseries: $(tail -n1 "$tmp/filler.out")"
}
hlost() { [ "$(jq -c .latency "$tmp/$g.9.api")" = '{}' ]; }
warnings=$(grep -c 'the latency map is full' "$tmp/fulll.log")
try_full 9 hnew hfill hlost
expect_eq "lat_hseries map full: $g's histograms" "$(jq -c .latency "$tmp/$g.9.api")" '{}'
as_ref "lat_hseries map full: $g's counts" 9 "$g" .counts
expect_eq "lat_hseries map full: $g's IPIs" "$(jq .counts.sent "$tmp/$g.9.api")" "$(sent_of "$g")"
api 9 lslot
api 7 lslot
as_ref "lat_hseries map full: lslot's latency" 9 lslot \
	'[.latency_unmatched, (.latency | map_values(map_values(.count)))]'
dropped=$(($(drops_in "$g-after" latency_map_full) - $(drops_in "$g-before" latency_map_full)))
# (sender_exit_fastpath is a part of sender_exit, not observations of its own)
observed=$(jq '[.latency | del(.sender_exit_fastpath) | .[][].count] | add' "$tmp/$g.7.api")
# (each observation the reference made, and its bindings)
[ "$observed" -gt 0 ] && [ "$dropped" -gt "$observed" ] ||
	fail "lat_hseries map full: $dropped drops for $g's $observed observations and its bindings"
for _ in $(seq 1 30); do
	[ "$(grep -c 'the latency map is full' "$tmp/fulll.log")" -gt "$warnings" ] && break
	sleep 0.1
done
[ "$(grep -c 'the latency map is full' "$tmp/fulll.log")" -gt "$warnings" ] ||
	fail "lat_hseries map full: no warning: $(tail -n2 "$tmp/fulll.log")"
note "lat_hseries map full: $dropped events dropped, a guest without a slot has no histogram, its counts and the slotted guest's latency exact"
kill "$fulll_pid" "$mref_pid"
for v in lslot "${held[@]}" "$g"; do kill "$(cat "$tmp/$v.pid")"; done

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
