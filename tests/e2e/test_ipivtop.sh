#!/usr/bin/env bash
# ipivtop against real ipivbench guests in tmux: VM rows with their names, vCPU counts and
# send->EOI P50, the help screen, the filter, the drill-down's vCPU rows, matrix and latency
# histogram bars, each target vCPU's send->EOI P50/P99, a logical-mode guest's
# logical_dest_mode finding, a VM that exits shown as gone; the same through --connect to
# ipivd --collector.per-vcpu (whose API then has per-vCPU latency, and without the flag none);
# batch text/CSV/JSON totals equal to the guest's own counts, with latency and findings; bad
# flags and an unreachable ipivd give one-line errors.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd tmux jq curl
IPIVTOP=$OUT/ipivtop
require_bin "$IPIVBENCH" "$IPIVD" "$IPIVTOP"

tmp=$(mktemp -d)
pids=()
sess=ipivtop-e2e-$$
cleanup() {
	tmux kill-session -t "$sess" 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

pane() { tmux capture-pane -p -t "$sess"; }
# wait_pane WHAT CMD...: until CMD succeeds on the pane's text (in $tmp/pane)
wait_pane() {
	local what=$1; shift
	for _ in $(seq 1 150); do
		pane > "$tmp/pane"
		"$@" "$tmp/pane" && return 0
		sleep 0.1
	done
	fail "$what; the pane shows:
$(cat "$tmp/pane")"
}
has() { grep -qF -- "$1" "$2"; }
lacks() { ! grep -qF -- "$1" "$2"; }
# row_vcpus FILE N NAME: NAME's row in the VM table has N in its VCPU column
row_vcpus() { [ "$(awk -v n="$3" '$1 == n { print $2; exit }' "$1")" = "$2" ]; }
wait_json() {
	for _ in $(seq 1 600); do
		[ "$(jq -r 'has("wall_seconds")' "$1" 2>/dev/null)" = true ] && return 0
		sleep 0.1
	done
	fail "no result in $1: $(tail -3 "$1.err" 2>/dev/null)"
}

# Two busy guests and one that waits for SIGUSR2, then holds its VM for batch checks.
"$IPIVBENCH" --name e2e-top-a -n 4 -t halt -r 1000 -k 1000 > /dev/null 2>&1 &
pids+=($!)
"$IPIVBENCH" --name e2e-top-b -n 2 -t halt -r 1000 -k 1000 > /dev/null 2>&1 &
guest_b=$!; pids+=($!)
"$IPIVBENCH" --name e2e-top-c -n 3 -r 2 -k 50 --wait-for-go --hold inf --json \
	> "$tmp/c.json" 2> "$tmp/c.json.err" &
guest_c=$!; pids+=($!)
# Logical destination mode: IPIv/AVIC never accelerate it, the diagnosis says so.
"$IPIVBENCH" --name e2e-top-log -n 4 -m x2apic-logical -t halt -r 1000 -k 1000 > /dev/null 2>&1 &
pids+=($!)
# Low sample minimums: which finding shows is under test, not the defaults.
TH="--diag.min-ipis=10"

PORT=$(( 20000 + RANDOM % 20000 ))
URL=http://127.0.0.1:$PORT
# Per-vCPU latency: the drill-down through --connect shows each target vCPU's P50/P99.
# shellcheck disable=SC2086
"$IPIVD" --web.listen-address 127.0.0.1:$PORT --collector.poll-interval 200 \
	--collector.per-vcpu --diag.window 2 $TH > "$tmp/ipivd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "$URL/api/v1/status" > /dev/null && break; sleep 0.1; done
curl -sf "$URL/api/v1/status" > /dev/null || fail "ipivd did not start: $(cat "$tmp/ipivd.log")"

# ---- interactive, standalone ----
tmux new-session -d -s "$sess" -x 160 -y 60 "$IPIVTOP -d 0.5 $TH 2> $tmp/top.err"
on_row_a() { row_vcpus "$1" 4 e2e-top-a && row_vcpus "$1" 2 e2e-top-b && row_vcpus "$1" 3 e2e-top-c; }
wait_pane "VM rows with names and vCPU counts" on_row_a
grep -q '^probes: [0-9]*/[0-9]* attached' "$tmp/pane" || fail "no probes line in the header"
note "VM rows: names and vCPU counts"
# The halting guest's IPIs are EOIed: its P50 and P99 columns hold durations, not n/a
p50_shown() { grep -E '^e2e-top-a ' "$1" | grep -qE ' ~[0-9.]+(ns|µs|ms|s) +~[0-9.]+(ns|µs|ms|s) '; }
wait_pane "send->EOI P50/P99 of e2e-top-a" p50_shown
# The logical-mode guest has findings (its FIND column is the last); the header counts them
find_shown() { [ "$(awk '$1 == "e2e-top-log" { print $NF; exit }' "$1")" -ge 1 ] 2>/dev/null &&
	grep -qE '\| findings [0-9]+ \(worst (warning|critical)\)' "$1"; }
wait_pane "findings count of e2e-top-log" find_shown
note "table: send->EOI P50/P99 durations, findings count"

tmux send-keys -t "$sess" h
help_shown() { has "filter VMs by a name regex" "$1" && has "reset the counters view" "$1" &&
	has "drill down into the VM" "$1" && has "set the refresh delay" "$1"; }
wait_pane "help screen" help_shown
tmux send-keys -t "$sess" x
wait_pane "help closes on a key" has "SENT/s"
note "help screen lists the keys"

tmux send-keys -t "$sess" f '^e2e-top-a$' Enter
only_a() { row_vcpus "$1" 4 e2e-top-a && lacks e2e-top-b "$1" && lacks e2e-top-c "$1" &&
	has "filter /^e2e-top-a$/" "$1"; }
wait_pane "filter to e2e-top-a" only_a
note "filter by name regex"

tmux send-keys -t "$sess" Enter
drill() {
	has "VM e2e-top-a (pid" "$1" && has "4 vCPUs)" "$1" &&
		grep -qE '^ +3 +[0-9]+ ' "$1" && has 'src\dst     0     1     2     3' "$1" &&
		has "IPI latency histogram: send→EOI" "$1" && has "Findings" "$1"
}
wait_pane "drill-down with vCPU rows and the matrix" drill
# vCPU 0 sends to every target: its matrix row has a rate under 1, 2 and 3 once rates exist
matrix_hot() { grep -qE '^ +0 +\. +[0-9.]+[kM]? +[0-9.]+[kM]? +[0-9.]+[kM]?' "$1"; }
wait_pane "matrix row of vCPU 0 with rates" matrix_hot
# bars: "≤ 41.0µs ████ count share%", and the quantiles with their error
bars() { grep -qE '≤ +[0-9.]+(ns|µs|ms|s) █+ +[0-9]+ +[0-9.]+%' "$1" &&
	grep -qE 'p50 [0-9.]+(ns|µs|ms|s) ±[0-9.]+(ns|µs|ms|s)' "$1"; }
wait_pane "latency histogram bars of send->EOI" bars
# vCPUs 1-3 receive e2e-top-a's x2APIC physical IPIs: their P50/P99 cells are durations
# ("~52.2µs", ">17.2s" in the open last bucket), not n/a
vcpu_lat() { grep -qE "^ +$2 +[0-9]+ .* ~[0-9.]+(ns|µs|ms|s) +[~>][0-9.]+(ns|µs|ms|s) *\$" "$1"; }
targets_lat() { vcpu_lat "$1" 1 && vcpu_lat "$1" 2 && vcpu_lat "$1" 3; }
wait_pane "per-vCPU send->EOI P50/P99 of the target vCPUs" targets_lat
tmux send-keys -t "$sess" l l
halt_bars() { has "IPI latency histogram: halt" "$1" && has "[halt]" "$1" && bars "$1"; }
wait_pane "l cycles to the halt stage, with bars" halt_bars
tmux send-keys -t "$sess" Escape
wait_pane "back to the table" has "SENT/s"
note "drill-down: vCPU rows, source->target matrix, latency bars by stage"

tmux send-keys -t "$sess" f '^e2e-top-log$' Enter
wait_pane "filter to e2e-top-log" has "filter /^e2e-top-log$/"
tmux send-keys -t "$sess" Enter
logical() { has "VM e2e-top-log (pid" "$1" && has "[warning] logical_dest_mode:" "$1" &&
	grep -qE '^ +evidence: .*logical_share=' "$1" && grep -qE '^ +remedy: ' "$1"; }
wait_pane "logical_dest_mode finding with evidence and remedy" logical
tmux send-keys -t "$sess" Escape
wait_pane "back to the table" has "SENT/s"
note "findings pane: logical_dest_mode with evidence and remedy"

tmux send-keys -t "$sess" f '^e2e-top-' Enter
row_b() { row_vcpus "$1" 2 e2e-top-b; }
wait_pane "filter to every e2e VM" row_b
kill "$guest_b"
gone() { grep -E '^e2e-top-b ' "$1" | grep -qF "VM is gone"; }
wait_pane "exited VM shown as gone" gone
tmux send-keys -t "$sess" q
for _ in $(seq 1 50); do tmux has-session -t "$sess" 2>/dev/null || break; sleep 0.1; done
tmux has-session -t "$sess" 2>/dev/null && fail "q did not quit"
[ -s "$tmp/top.err" ] && fail "ipivtop wrote errors: $(cat "$tmp/top.err")"
note "a VM that exits shows as gone; q quits"

# ---- interactive, --connect ----
tmux new-session -d -s "$sess" -x 160 -y 60 "$IPIVTOP --connect $URL -d 0.5 2> $tmp/top.err"
on_row_ac() { row_vcpus "$1" 4 e2e-top-a && row_vcpus "$1" 3 e2e-top-c; }
wait_pane "--connect: VM rows" on_row_ac
has "ipivd at $URL" "$tmp/pane" || fail "--connect: source not named in the header"
wait_pane "--connect: P50/P99 of e2e-top-a" p50_shown
wait_pane "--connect: findings count of e2e-top-log" find_shown
tmux send-keys -t "$sess" f '^e2e-top-a$' Enter
wait_pane "--connect: filter" only_a
tmux send-keys -t "$sess" Enter
wait_pane "--connect: drill-down" drill
wait_pane "--connect: matrix rates" matrix_hot
wait_pane "--connect: latency histogram bars" bars
wait_pane "--connect: per-vCPU send->EOI P50/P99 of the target vCPUs" targets_lat
tmux send-keys -t "$sess" Escape f '^e2e-top-log$' Enter
wait_pane "--connect: filter to e2e-top-log" has "filter /^e2e-top-log$/"
tmux send-keys -t "$sess" Enter
wait_pane "--connect: logical_dest_mode finding" logical
tmux send-keys -t "$sess" q
note "--connect: rows, P50, findings, filter, drill-down with bars, per-vCPU P50/P99 and findings from ipivd"

# The API behind it: each target vCPU row has its own send->EOI quantiles; without
# --collector.per-vcpu the rows have none (the VM-wide ones stay).
per_vcpu_api='[.vcpu_rows[] | select(.id == 1 or .id == 2 or .id == 3) | .send_to_eoi |
	select(.count > 0 and .p50.value_ns > 0 and .p50.error_ns > 0 and
	       (.p99.overflow or .p99.value_ns >= .p50.value_ns))] | length == 3'
curl -sf "$URL/api/v1/vms/e2e-top-a" > "$tmp/detail.json" || fail "GET /api/v1/vms/e2e-top-a"
jq -e "$per_vcpu_api" "$tmp/detail.json" > /dev/null ||
	fail "API: no per-vCPU send->EOI for vCPUs 1-3: $(jq -c '.vcpu_rows' "$tmp/detail.json")"
PORT2=$(( PORT + 1 ))
"$IPIVD" --web.listen-address 127.0.0.1:$PORT2 --collector.poll-interval 200 \
	> "$tmp/ipivd2.log" 2>&1 &
ipivd2=$!; pids+=($ipivd2)
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$PORT2/api/v1/vms/e2e-top-a" > "$tmp/detail2.json" &&
		jq -e '.latency.send_to_eoi | length > 0' "$tmp/detail2.json" > /dev/null && break
	sleep 0.1
done
jq -e '.latency.send_to_eoi | length > 0' "$tmp/detail2.json" > /dev/null ||
	fail "ipivd without --collector.per-vcpu: no VM-wide send->EOI: $(cat "$tmp/ipivd2.log")"
jq -e '[.vcpu_rows[] | has("send_to_eoi") or has("latency")] | any | not' "$tmp/detail2.json" \
	> /dev/null || fail "ipivd without --collector.per-vcpu: vCPU rows carry latency"
kill "$ipivd2"; wait "$ipivd2" 2>/dev/null
note "API: per-vCPU send->EOI with --collector.per-vcpu, none without"

# ---- batch: totals equal the guest's own counts ----
"$IPIVTOP" -b --json -d 0.3 -f '^e2e-top-c$' > "$tmp/batch.json" 2> "$tmp/batch.err" &
batch=$!; pids+=($batch)
for _ in $(seq 1 150); do
	grep -q '"name":"e2e-top-c"' "$tmp/batch.json" 2>/dev/null && break
	sleep 0.1
done
grep -q '"name":"e2e-top-c"' "$tmp/batch.json" || fail "batch: no e2e-top-c: $(cat "$tmp/batch.err")"
kill -USR2 "$guest_c"
wait_json "$tmp/c.json"
sent=$(jq '[.vcpus[].sent] | add' "$tmp/c.json")
recv=$(jq '[.vcpus[].received] | add' "$tmp/c.json")
[ "$sent" -gt 0 ] || fail "guest e2e-top-c sent nothing"
# The guest is done and held: every later iteration must carry its final totals.
seen=$(wc -l < "$tmp/batch.json")
for _ in $(seq 1 100); do [ "$(wc -l < "$tmp/batch.json")" -gt "$seen" ] && break; sleep 0.1; done
kill -TERM $batch; wait $batch
expect_eq "batch exit code on SIGTERM" $? 0
last=$(tail -n1 "$tmp/batch.json")
expect_eq "JSON: one VM through the filter" "$(jq '.vms | length' <<<"$last")" 1
expect_eq "JSON: vCPUs" "$(jq '.vms[0].vcpus' <<<"$last")" 3
expect_eq "JSON: total sent" "$(jq '.vms[0].totals.sent' <<<"$last")" "$sent"
expect_eq "JSON: total received" "$(jq '.vms[0].totals.received' <<<"$last")" "$recv"
expect_eq "JSON: all sent are accel-eligible (x2apic-phys)" \
	"$(jq '.vms[0].totals.sent_accel_eligible' <<<"$last")" "$sent"
note "batch JSON totals equal the guest's counts ($sent sent, $recv received)"

# latency and findings in batch JSON, through --connect (ipivd's findings)
"$IPIVTOP" --connect "$URL" -b --json -n 1 -d 0.3 -f '^e2e-top-log$' > "$tmp/log.json" ||
	fail "batch JSON of e2e-top-log failed"
jq -e '.vms[0].findings | index("logical_dest_mode")' "$tmp/log.json" > /dev/null ||
	fail "JSON: no logical_dest_mode for e2e-top-log: $(cat "$tmp/log.json")"
jq -e '.vms[0].latency.send_to_eoi | .count > 0 and .p50.value_ns > 0 and .p99.value_ns >= .p50.value_ns' \
	"$tmp/log.json" > /dev/null || fail "JSON: no send->EOI quantiles: $(cat "$tmp/log.json")"
note "batch JSON: send->EOI p50/p99 and the findings' rule ids"

# ipivd saw the whole run too: CSV and text through --connect
"$IPIVTOP" --connect "$URL" -b --csv -n 2 -d 0.2 -f '^e2e-top-c$' > "$tmp/batch.csv" ||
	fail "batch CSV failed"
expect_eq "CSV: lines (header + 2 iterations)" "$(wc -l < "$tmp/batch.csv")" 3
row=$(tail -n1 "$tmp/batch.csv")
col() { head -n1 "$tmp/batch.csv" | tr , '\n' | grep -nx "$1" | cut -d: -f1; }
expect_eq "CSV: vm" "$(cut -d, -f"$(col vm)" <<<"$row")" e2e-top-c
expect_eq "CSV: vcpus" "$(cut -d, -f"$(col vcpus)" <<<"$row")" 3
expect_eq "CSV: sent_total" "$(cut -d, -f"$(col sent_total)" <<<"$row")" "$sent"
expect_eq "CSV: received_total" "$(cut -d, -f"$(col received_total)" <<<"$row")" "$recv"
expect_eq "CSV: no IPIs in the last interval" "$(cut -d, -f"$(col sent_per_s)" <<<"$row")" 0
[ -n "$(cut -d, -f"$(col latency_p50_s)" <<<"$row")" ] || fail "CSV: no latency_p50_s: $row"
[ -n "$(cut -d, -f"$(col findings)" <<<"$row")" ] || fail "CSV: findings not evaluated: $row"
"$IPIVTOP" --connect "$URL" -b -n 1 -d 0.2 -f '^e2e-top-c$' > "$tmp/batch.txt" ||
	fail "batch text failed"
read -r name vcpus tsent trecv <<<"$(awk '$1 == "e2e-top-c" { print $1, $2, $(NF-1), $NF }' "$tmp/batch.txt")"
expect_eq "text: vCPUs" "$vcpus" 3
expect_eq "text: SENT" "$tsent" "$sent"
expect_eq "text: RECV" "$trecv" "$recv"
note "batch CSV and text via --connect equal the guest's counts"

# ---- one-line errors ----
for args in "--bogus" "-d 0" "-d" "--csv" "-b -n 0" "-b --csv --json" "-f (" \
	"--diag.bogus=1" "--diag.min-ipis=0" "--connect $URL --diag.min-ipis=10"; do
	# shellcheck disable=SC2086
	"$IPIVTOP" $args > /dev/null 2> "$tmp/err"
	expect_eq "exit of ipivtop $args" $? 2
	expect_eq "error lines of ipivtop $args" "$(wc -l < "$tmp/err")" 1
done
"$IPIVTOP" --connect http://127.0.0.1:1 -b -n 1 > /dev/null 2> "$tmp/err"
expect_eq "exit with ipivd unreachable" $? 1
expect_eq "unreachable: one line" "$(wc -l < "$tmp/err")" 1
grep -q "cannot reach ipivd at 127.0.0.1:1" "$tmp/err" || fail "unreachable not named: $(cat "$tmp/err")"
"$IPIVTOP" --connect https://127.0.0.1:1 -b > /dev/null 2> "$tmp/err"
expect_eq "exit for an https URL" $? 1
expect_eq "https: one line" "$(wc -l < "$tmp/err")" 1
note "bad flags and URLs: one-line errors"
echo ok
