#!/usr/bin/env bash
# ipivtop against real ipivbench guests in tmux: VM rows with their names, vCPU counts and
# send->EOI P50, the help screen, the filter, the drill-down's vCPU rows, matrix and latency
# histogram bars, each target vCPU's send->EOI P50/P99, a logical-mode guest's
# logical_dest_mode finding, a VM that exits shown as gone; the same through --connect to
# ipivd --collector.per-vcpu (whose API then has per-vCPU latency, and without the flag none);
# batch text/CSV/JSON totals equal to the guest's own counts, with latency and findings; bad
# flags and an unreachable ipivd give one-line errors. On a 24-line screen: the s prompt
# starts empty (typing replaces the delay, bad input keeps it with one line), x child rows,
# g/p/c filters (refused when no VM matches), PgDn/End in the drill-down and the help stop at
# the last full page, r resets the drill-down's histogram, SIGHUP quits. P50/P99 per interval:
# the intervals' send->EOI counts add up to ipivd's lifetime count, and an idle interval has
# none. kvm_stat's flags: -z, -1, -g, -p, -l (stamped records), -L (append, one header,
# SIGHUP reopens). IPIV_E2E_VM_PREFIX and IPIV_E2E_PORT move VM names and ports.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd tmux jq curl
IPIVTOP=$OUT/ipivtop
require_bin "$IPIVBENCH" "$IPIVD" "$IPIVTOP"

# VM names and ports can be moved out of the way of other users of the host.
V=${IPIV_E2E_VM_PREFIX:-e2e}-top
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
"$IPIVBENCH" --name "$V-a" -n 4 -t halt -r 1000 -k 1000 > /dev/null 2>&1 &
guest_a=$!; pids+=($!)
"$IPIVBENCH" --name "$V-b" -n 2 -t halt -r 1000 -k 1000 > /dev/null 2>&1 &
guest_b=$!; pids+=($!)
"$IPIVBENCH" --name "$V-c" -n 3 -r 2 -k 50 --wait-for-go --hold inf --json \
	> "$tmp/c.json" 2> "$tmp/c.json.err" &
guest_c=$!; pids+=($!)
# Logical destination mode: IPIv/AVIC never accelerate it, the diagnosis says so.
"$IPIVBENCH" --name "$V-log" -n 4 -m x2apic-logical -t halt -r 1000 -k 1000 > /dev/null 2>&1 &
pids+=($!)
# Low sample minimums: which finding shows is under test, not the defaults.
TH="--diag.min-ipis=10"

PORT=${IPIV_E2E_PORT:-$(pick_port)}
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
on_row_a() { row_vcpus "$1" 4 "$V-a" && row_vcpus "$1" 2 "$V-b" && row_vcpus "$1" 3 "$V-c"; }
wait_pane "VM rows with names and vCPU counts" on_row_a
grep -q '^probes: [0-9]*/[0-9]* attached' "$tmp/pane" || fail "no probes line in the header"
# standalone has the histograms: the table's latency is the refresh interval's
has "P50/P99 per interval" "$tmp/pane" || fail "header does not say P50/P99 are per interval"
note "VM rows: names and vCPU counts"
# The halting guest's IPIs are EOIed: its P50 and P99 columns hold durations, not n/a
p50_shown() { grep -E "^$V-a " "$1" | grep -qE ' ~[0-9.]+(ns|µs|ms|s) +~[0-9.]+(ns|µs|ms|s) '; }
wait_pane "send->EOI P50/P99 of $V-a" p50_shown
# The logical-mode guest has findings (its FIND column is the last); the header counts them
find_shown() { [ "$(awk -v n="$V-log" '$1 == n { print $NF; exit }' "$1")" -ge 1 ] 2>/dev/null &&
	grep -qE '\| findings [0-9]+ \(worst (warning|critical)\)' "$1"; }
wait_pane "findings count of $V-log" find_shown
note "table: send->EOI P50/P99 durations, findings count"

tmux send-keys -t "$sess" h
help_shown() { has "filter VMs by a name regex" "$1" && has "reset the cumulative views" "$1" &&
	has "drill down into the VM" "$1" && has "set the refresh delay" "$1"; }
wait_pane "help screen" help_shown
tmux send-keys -t "$sess" x
wait_pane "help closes on a key" has "SENT/s"
note "help screen lists the keys"

tmux send-keys -t "$sess" f "^$V-a\$" Enter
only_a() { row_vcpus "$1" 4 "$V-a" && lacks "$V-b" "$1" && lacks "$V-c" "$1" &&
	has "filter /^$V-a$/" "$1"; }
wait_pane "filter to $V-a" only_a
note "filter by name regex"

tmux send-keys -t "$sess" Enter
drill() {
	has "VM $V-a (pid" "$1" && has "4 vCPUs)" "$1" &&
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
# vCPUs 1-3 receive $V-a's x2APIC physical IPIs: their P50/P99 cells are durations
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

tmux send-keys -t "$sess" f "^$V-log\$" Enter
wait_pane "filter to $V-log" has "filter /^$V-log$/"
tmux send-keys -t "$sess" Enter
logical() { has "VM $V-log (pid" "$1" && has "[warning] logical_dest_mode:" "$1" &&
	grep -qE '^ +evidence: .*logical_share=' "$1" && grep -qE '^ +remedy: ' "$1"; }
wait_pane "logical_dest_mode finding with evidence and remedy" logical
tmux send-keys -t "$sess" Escape
wait_pane "back to the table" has "SENT/s"
note "findings pane: logical_dest_mode with evidence and remedy"

tmux send-keys -t "$sess" f "^$V-" Enter
row_b() { row_vcpus "$1" 2 "$V-b"; }
wait_pane "filter to every e2e VM" row_b
kill "$guest_b"
gone() { grep -E "^$V-b " "$1" | grep -qF "VM is gone"; }
wait_pane "exited VM shown as gone" gone
tmux send-keys -t "$sess" q
for _ in $(seq 1 50); do tmux has-session -t "$sess" 2>/dev/null || break; sleep 0.1; done
tmux has-session -t "$sess" 2>/dev/null && fail "q did not quit"
[ -s "$tmp/top.err" ] && fail "ipivtop wrote errors: $(cat "$tmp/top.err")"
note "a VM that exits shows as gone; q quits"

# ---- interactive keys on a short screen: s prompt, scrolling, x, g, p, c, r ----
# (other guests on the host stay out of the way: only this test's VMs are listed)
tmux new-session -d -s "$sess" -x 160 -y 24 "exec $IPIVTOP -d 0.5 -f '^$V-' $TH 2> $tmp/top.err"
row_a() { row_vcpus "$1" 4 "$V-a"; }
wait_pane "short screen: VM rows" row_a
# s: the prompt starts empty (the value is in the label); typing 2 gives 2 s, not 0.52
tmux send-keys -t "$sess" s
prompt() { tail -n1 "$1" | grep -qE '^refresh delay in seconds \(now 0\.5, Enter keeps it\): *$'; }
wait_pane "s: an empty prompt naming the current delay" prompt
tmux send-keys -t "$sess" 2 Enter
wait_pane "s 2 Enter: every 2.0s" has "every 2.0s"
tmux send-keys -t "$sess" s 3 BSpace 1 Enter
wait_pane "s 3 Backspace 1 Enter: every 1.0s" has "every 1.0s"
tmux send-keys -t "$sess" s a b c Enter
bad_delay() { has 'bad delay "abc": a number from 0.1 to 86400; still 1s' "$1" && has "every 1.0s" "$1"; }
wait_pane "s abc: one-line error, delay kept" bad_delay
[ "$(grep -c 'bad delay' "$tmp/pane")" = 1 ] || fail "the bad-delay message is not one line"
tmux send-keys -t "$sess" s Enter
sleep 0.3
pane > "$tmp/pane"
has "every 1.0s" "$tmp/pane" || fail "s Enter changed the delay: $(head -1 "$tmp/pane")"
tmux send-keys -t "$sess" s 0.5 Enter
wait_pane "s 0.5: every 0.5s" has "every 0.5s"
note "s: empty prompt, typed value replaces, bad input keeps the old delay with one line"

# x: each VM's IPIs by path under its row
tmux send-keys -t "$sess" x
child() { grep -A1 -E "^$V-a " "$1" | grep -qE '^ [└├`|] x2apic_msr +[0-9.]+[kM]? +[0-9]+%'; }
wait_pane "x: the x2apic_msr child row under $V-a" child
tmux send-keys -t "$sess" x
wait_pane "x again: no child rows" lacks "x2apic_msr"
note "x: per-path child rows toggle"

# g: a guest by exact name; a name no VM has is refused and the filter kept
tmux send-keys -t "$sess" g "$V-a" Enter
only_guest_a() { row_vcpus "$1" 4 "$V-a" && lacks "$V-log" "$1" && has "guest $V-a" "$1"; }
wait_pane "g: only $V-a" only_guest_a
tmux send-keys -t "$sess" g "$V-nosuch" Enter
no_guest() { has "no VM named or with pid \"$V-nosuch\"; filter unchanged" "$1" && only_guest_a "$1"; }
wait_pane "g with an unknown name: error, filter kept" no_guest
tmux send-keys -t "$sess" c
cleared() { has "filters cleared" "$1" && lacks "guest $V-a" "$1" && lacks "filter /" "$1" &&
	grep -qE '^VMs ([2-9]|[1-9][0-9]+) ' "$1"; }
wait_pane "c: every filter cleared" cleared
tmux send-keys -t "$sess" f "^$V-" Enter
wait_pane "filter again" row_a
# p: the VM of one VMM pid; a bad pid is refused with one line
tmux send-keys -t "$sess" p "$guest_a" Enter
only_pid_a() { row_vcpus "$1" 4 "$V-a" && lacks "$V-log" "$1" && has "pid $guest_a" "$1"; }
wait_pane "p: only the VM of pid $guest_a" only_pid_a
tmux send-keys -t "$sess" p x y Enter
bad_pid() { has 'bad pid "xy": a number from 1 to 2147483647; filter unchanged' "$1" && only_pid_a "$1"; }
wait_pane "p xy: error, filter kept" bad_pid
tmux send-keys -t "$sess" g "$guest_a" Enter
wait_pane "g with a pid" has "showing the VM of pid $guest_a"
note "g, p, c: guest and pid filters, refused when no VM matches, cleared by c"

# The drill-down is longer than this screen: PgDn and End stop at its last full page
tmux send-keys -t "$sess" Enter
wait_pane "drill-down of $V-a" has "VM $V-a (pid"
wait_pane "drill-down histogram with observations" grep -qE '^n [0-9]+  mean '
# content rows between the header (5 lines) and the footer that are not blank
content_rows() { sed -n '6,23p' "$1" | grep -c '[^ ]'; }
full_page() { [ "$(content_rows "$1")" -ge 12 ] && lacks "VM $V-a (pid" "$1" &&
	tail -n1 "$1" | grep -q '^Esc back'; }
tmux send-keys -t "$sess" NPage NPage NPage NPage NPage NPage NPage NPage NPage NPage
wait_pane "PgDn x10 stops at the last full page" full_page
tmux send-keys -t "$sess" Home
wait_pane "Home: back to the top" has "VM $V-a (pid"
tmux send-keys -t "$sess" End
wait_pane "End: the last full page" full_page
# the last line of the drill-down (its findings) stays at the bottom whatever else is pressed
# (digits aside: the findings' ages tick). A new diagnosis window can lengthen the findings
# between the two captures, which moves the end itself: then End again and another try.
for try in 1 2 3; do
	pane > "$tmp/end1"; tmux send-keys -t "$sess" NPage Down Down; sleep 0.3; pane > "$tmp/end2"
	full_page "$tmp/end2" || fail "PgDn after End: not a full page: $(cat "$tmp/end2")"
	[ "$(sed -n 23p "$tmp/end1" | tr -d 0-9)" = "$(sed -n 23p "$tmp/end2" | tr -d 0-9)" ] && break
	[ $try -lt 3 ] ||
		fail "PgDn after End moved the last line: '$(sed -n 23p "$tmp/end1")' became '$(sed -n 23p "$tmp/end2")'"
	tmux send-keys -t "$sess" End; sleep 0.3
done
note "drill-down: PgDn and End clamp at the last full page"

# r in the drill-down: totals and the latency histogram count from the reset
tmux send-keys -t "$sess" Home r
since_reset() { has "totals reset, latency histogram since now" "$1" &&
	grep -qE 'since reset [0-9]+s ago' "$1"; }
wait_pane "r: totals and histogram since the reset" since_reset
tmux send-keys -t "$sess" Escape
wait_pane "back to the table" has "SENT/s"

# the help is longer than this screen too: it scrolls and clamps
tmux send-keys -t "$sess" h
wait_pane "help" has "ipivtop help"
tmux send-keys -t "$sess" End
help_end() { has 'not collected on this host' "$1" && lacks "ipivtop help" "$1" &&
	[ "$(grep -c '[^ ]' "$1")" -ge 20 ]; }
wait_pane "help End: its last page" help_end
tmux send-keys -t "$sess" NPage NPage
sleep 0.3
pane > "$tmp/pane"
help_end "$tmp/pane" || fail "help: PgDn after End scrolled past the end: $(cat "$tmp/pane")"
tmux send-keys -t "$sess" Escape
wait_pane "help closes" has "SENT/s"
# the terminal going away (SIGHUP) ends ipivtop, as q does
top_pid=$(tmux list-panes -t "$sess" -F '#{pane_pid}')
tmux kill-session -t "$sess"
for _ in $(seq 1 50); do kill -0 "$top_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$top_pid" 2>/dev/null && fail "ipivtop (pid $top_pid) outlived its terminal"
[ -s "$tmp/top.err" ] && fail "ipivtop wrote errors: $(cat "$tmp/top.err")"
note "r resets the drill-down's histogram; help scrolls and clamps; SIGHUP quits"

# ---- interactive, --connect ----
# (only this test's VMs: their histograms are fetched, as long as they are few)
tmux new-session -d -s "$sess" -x 160 -y 60 "$IPIVTOP --connect $URL -d 0.5 -f '^$V-' 2> $tmp/top.err"
on_row_ac() { row_vcpus "$1" 4 "$V-a" && row_vcpus "$1" 3 "$V-c"; }
wait_pane "--connect: VM rows" on_row_ac
has "ipivd at $URL" "$tmp/pane" || fail "--connect: source not named in the header"
# the few VMs shown have their histograms fetched: P50/P99 per interval as standalone
has "P50/P99 per interval" "$tmp/pane" || fail "--connect: header does not say P50/P99 are per interval"
wait_pane "--connect: P50/P99 of $V-a" p50_shown
wait_pane "--connect: findings count of $V-log" find_shown
tmux send-keys -t "$sess" f "^$V-a\$" Enter
wait_pane "--connect: filter" only_a
tmux send-keys -t "$sess" Enter
wait_pane "--connect: drill-down" drill
wait_pane "--connect: matrix rates" matrix_hot
wait_pane "--connect: latency histogram bars" bars
wait_pane "--connect: per-vCPU send->EOI P50/P99 of the target vCPUs" targets_lat
tmux send-keys -t "$sess" Escape f "^$V-log\$" Enter
wait_pane "--connect: filter to $V-log" has "filter /^$V-log$/"
tmux send-keys -t "$sess" Enter
wait_pane "--connect: logical_dest_mode finding" logical
tmux send-keys -t "$sess" q
note "--connect: rows, P50, findings, filter, drill-down with bars, per-vCPU P50/P99 and findings from ipivd"

# The API behind it: each target vCPU row has its own send->EOI quantiles; without
# --collector.per-vcpu the rows have none (the VM-wide ones stay).
per_vcpu_api='[.vcpu_rows[] | select(.id == 1 or .id == 2 or .id == 3) | .send_to_eoi |
	select(.count > 0 and .p50.value_ns > 0 and .p50.error_ns > 0 and
	       (.p99.overflow or .p99.value_ns >= .p50.value_ns))] | length == 3'
curl -sf "$URL/api/v1/vms/$V-a" > "$tmp/detail.json" || fail "GET /api/v1/vms/$V-a"
jq -e "$per_vcpu_api" "$tmp/detail.json" > /dev/null ||
	fail "API: no per-vCPU send->EOI for vCPUs 1-3: $(jq -c '.vcpu_rows' "$tmp/detail.json")"
PORT2=$(( PORT + 1 ))
"$IPIVD" --web.listen-address 127.0.0.1:$PORT2 --collector.poll-interval 200 \
	> "$tmp/ipivd2.log" 2>&1 &
ipivd2=$!; pids+=("$ipivd2")
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$PORT2/api/v1/vms/$V-a" > "$tmp/detail2.json" &&
		jq -e '.latency.send_to_eoi | length > 0' "$tmp/detail2.json" > /dev/null && break
	sleep 0.1
done
jq -e '.latency.send_to_eoi | length > 0' "$tmp/detail2.json" > /dev/null ||
	fail "ipivd without --collector.per-vcpu: no VM-wide send->EOI: $(cat "$tmp/ipivd2.log")"
jq -e '[.vcpu_rows[] | has("send_to_eoi") or has("latency")] | any | not' "$tmp/detail2.json" \
	> /dev/null || fail "ipivd without --collector.per-vcpu: vCPU rows carry latency"
kill "$ipivd2"; wait "$ipivd2" 2>/dev/null
note "API: per-vCPU send->EOI with --collector.per-vcpu, none without"

# ---- -z, -1, -p, -g, -l, -L ----
# $V-c waits for its go: nothing counted, so -z leaves it out and keeps the busy $V-a
"$IPIVTOP" -b --csv -n 2 -d 0.3 -f "^$V-(a|c)\$" > "$tmp/all.csv" || fail "batch CSV failed"
"$IPIVTOP" -b --csv -n 2 -d 0.3 -z -f "^$V-(a|c)\$" > "$tmp/z.csv" || fail "batch CSV -z failed"
expect_eq "without -z: rows of $V-c" "$(grep -c ",$V-c," "$tmp/all.csv")" 2
expect_eq "-z: rows of $V-c" "$(grep -c ",$V-c," "$tmp/z.csv")" 0
expect_eq "-z: rows of $V-a" "$(grep -c ",$V-a," "$tmp/z.csv")" 2
"$IPIVTOP" -1 --json -d 0.3 -g "$V-a" > "$tmp/once.json" || fail "-1 failed"
expect_eq "-1: lines" "$(wc -l < "$tmp/once.json")" 1
expect_eq "-1 -g: the one VM" "$(jq -c '[.vms[].name]' "$tmp/once.json")" "[\"$V-a\"]"
"$IPIVTOP" -1 --csv -d 0.3 -p "$guest_a" > "$tmp/pid.csv" || fail "-1 -p failed"
expect_eq "-p: rows (header + one VM)" "$(wc -l < "$tmp/pid.csv")" 2
expect_eq "-p: vm and pid columns" "$(tail -n1 "$tmp/pid.csv" | cut -d, -f3-4)" "$V-a,$guest_a"
"$IPIVTOP" -l -n 2 -d 0.3 -g "$V-a" > "$tmp/l.csv" || fail "-l failed"
head -n1 "$tmp/l.csv" | grep -q '^timestamp,iteration,time_s,vm,' || fail "-l: header: $(head -n1 "$tmp/l.csv")"
expect_eq "-l: stamped records" "$(grep -cE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z,[12],[0-9.]+,$V-a," "$tmp/l.csv")" 2
"$IPIVTOP" -L "$tmp/top.log" -n 1 -d 0.3 -g "$V-a" > "$tmp/L.out" || fail "-L failed"
"$IPIVTOP" -L "$tmp/top.log" -n 2 -d 0.3 -g "$V-a" >> "$tmp/L.out" || fail "-L (append) failed"
[ -s "$tmp/L.out" ] && fail "-L wrote to stdout: $(head -2 "$tmp/L.out")"
expect_eq "-L: one header in the appended file" "$(grep -c '^timestamp,' "$tmp/top.log")" 1
expect_eq "-L: records appended" "$(grep -c ",$V-a," "$tmp/top.log")" 3
# SIGHUP reopens the file (logrotate moved it): a new file with its own header
"$IPIVTOP" -L "$tmp/rot.log" -d 0.2 -g "$V-a" 2> "$tmp/rot.err" &
logger=$!; pids+=("$logger")
for _ in $(seq 1 100); do grep -q ",$V-a," "$tmp/rot.log" 2>/dev/null && break; sleep 0.1; done
mv "$tmp/rot.log" "$tmp/rot.log.1"
kill -HUP $logger
for _ in $(seq 1 50); do grep -q ",$V-a," "$tmp/rot.log" 2>/dev/null && break; sleep 0.1; done
kill -TERM $logger; wait $logger
expect_eq "-L: exit on SIGTERM" $? 0
head -n1 "$tmp/rot.log" | grep -q '^timestamp,' || fail "-L after SIGHUP: no new file with a header"
grep -q ",$V-a," "$tmp/rot.log.1" || fail "-L: the rotated file lost its records"
note "-z leaves idle VMs out; -1, -g, -p; -l stamps records; -L appends, one header, reopens on SIGHUP"

# ---- batch: totals equal the guest's own counts ----
"$IPIVTOP" -b --json -d 0.3 -f "^$V-c\$" > "$tmp/batch.json" 2> "$tmp/batch.err" &
batch=$!; pids+=("$batch")
for _ in $(seq 1 150); do
	grep -q "\"name\":\"$V-c\"" "$tmp/batch.json" 2>/dev/null && break
	sleep 0.1
done
grep -q "\"name\":\"$V-c\"" "$tmp/batch.json" || fail "batch: no $V-c: $(cat "$tmp/batch.err")"
kill -USR2 "$guest_c"
wait_json "$tmp/c.json"
sent=$(jq '[.vcpus[].sent] | add' "$tmp/c.json")
recv=$(jq '[.vcpus[].received] | add' "$tmp/c.json")
[ "$sent" -gt 0 ] || fail "guest $V-c sent nothing"
# The guest is done and held: every later iteration must carry its final totals. Two more
# lines: the first may have begun before the burst ended, the second did not.
seen=$(wc -l < "$tmp/batch.json")
for _ in $(seq 1 100); do [ "$(wc -l < "$tmp/batch.json")" -gt $((seen + 1)) ] && break; sleep 0.1; done
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

# Latency per interval: each line's send->EOI count is that interval's; together they are
# every observation ipivd (running since before the burst) holds over its life, and the
# last intervals, after the burst, have none while ipivd's lifetime figures stay.
curl -sf "$URL/api/v1/vms" > "$tmp/vms.json" || fail "GET /api/v1/vms"
life=$(jq --arg n "$V-c" '.vms[] | select(.name == $n) | .send_to_eoi.count' "$tmp/vms.json")
[ "$life" -gt 0 ] 2>/dev/null || fail "ipivd has no send->EOI of $V-c: $(cat "$tmp/vms.json")"
# The list with histograms (what --connect reads when it shows more than 32 VMs): the buckets
# of $V-c add up to its count; an unknown value is refused with a one-line JSON error.
curl -sf "$URL/api/v1/vms?histograms=send_to_eoi" > "$tmp/vms-h.json" ||
	fail "GET /api/v1/vms?histograms=send_to_eoi"
expect_eq "?histograms=send_to_eoi: the buckets of $V-c add up to its count" \
	"$(jq --arg n "$V-c" '.vms[] | select(.name == $n) | .send_to_eoi |
		([.buckets[][1]] | add) == .count' "$tmp/vms-h.json")" true
code=$(curl -s -o "$tmp/vms-bad.json" -w '%{http_code}' "$URL/api/v1/vms?histograms=halt")
expect_eq "?histograms=halt: status" "$code" 400
expect_eq "?histograms=halt: the error" "$(jq -r .error "$tmp/vms-bad.json")" \
	"histograms: unknown value (send_to_eoi is the one known)"
intervals=$(jq -s '[.[].vms[0].latency.send_to_eoi.count // 0] | add' "$tmp/batch.json")
expect_eq "send->EOI observations: sum over intervals = ipivd's lifetime count" "$intervals" "$life"
expect_eq "the last interval (guest idle): no quantiles" "$(jq -c '.vms[0].latency' <<<"$last")" null
# the same through --connect: ipivd's lifetime figures are not what an idle interval shows
"$IPIVTOP" --connect "$URL" -1 --json -d 0.3 -g "$V-c" > "$tmp/c-idle.json" ||
	fail "-1 --connect of $V-c failed"
expect_eq "--connect, idle interval: no quantiles" "$(jq -c '.vms[0].latency' "$tmp/c-idle.json")" null
expect_eq "--connect, idle interval: the totals still count" \
	"$(jq '.vms[0].totals.sent' "$tmp/c-idle.json")" "$sent"
note "P50/P99 per interval: $intervals observations over the intervals, none after the burst (standalone and --connect)"

# latency and findings in batch JSON, through --connect (ipivd's findings)
"$IPIVTOP" --connect "$URL" -b --json -n 1 -d 0.3 -f "^$V-log\$" > "$tmp/log.json" ||
	fail "batch JSON of $V-log failed"
jq -e '.vms[0].findings | index("logical_dest_mode")' "$tmp/log.json" > /dev/null ||
	fail "JSON: no logical_dest_mode for $V-log: $(cat "$tmp/log.json")"
jq -e '.vms[0].latency.send_to_eoi | .count > 0 and .p50.value_ns > 0 and .p99.value_ns >= .p50.value_ns' \
	"$tmp/log.json" > /dev/null || fail "JSON: no send->EOI quantiles: $(cat "$tmp/log.json")"
note "batch JSON: send->EOI p50/p99 and the findings' rule ids"

# ipivd saw the whole run too: CSV and text through --connect
"$IPIVTOP" --connect "$URL" -b --csv -n 2 -d 0.2 -f "^$V-c\$" > "$tmp/batch.csv" ||
	fail "batch CSV failed"
expect_eq "CSV: lines (header + 2 iterations)" "$(wc -l < "$tmp/batch.csv")" 3
row=$(tail -n1 "$tmp/batch.csv")
col() { head -n1 "$tmp/batch.csv" | tr , '\n' | grep -nx "$1" | cut -d: -f1; }
expect_eq "CSV: vm" "$(cut -d, -f"$(col vm)" <<<"$row")" "$V-c"
expect_eq "CSV: vcpus" "$(cut -d, -f"$(col vcpus)" <<<"$row")" 3
expect_eq "CSV: sent_total" "$(cut -d, -f"$(col sent_total)" <<<"$row")" "$sent"
expect_eq "CSV: received_total" "$(cut -d, -f"$(col received_total)" <<<"$row")" "$recv"
expect_eq "CSV: no IPIs in the last interval" "$(cut -d, -f"$(col sent_per_s)" <<<"$row")" 0
expect_eq "CSV: no latency_p50_s in an idle interval" "$(cut -d, -f"$(col latency_p50_s)" <<<"$row")" ""
[ -n "$(cut -d, -f"$(col findings)" <<<"$row")" ] || fail "CSV: findings not evaluated: $row"
"$IPIVTOP" --connect "$URL" -b -n 1 -d 0.2 -f "^$V-c\$" > "$tmp/batch.txt" ||
	fail "batch text failed"
read -r _ vcpus tsent trecv <<<"$(awk -v n="$V-c" '$1 == n { print $1, $2, $(NF-1), $NF }' "$tmp/batch.txt")"
expect_eq "text: vCPUs" "$vcpus" 3
expect_eq "text: SENT" "$tsent" "$sent"
expect_eq "text: RECV" "$trecv" "$recv"
note "batch CSV and text via --connect equal the guest's counts"

# ---- one-line errors ----
for args in "--bogus" "-d 0" "-d" "--csv" "-b -n 0" "-b --csv --json" "-f (" \
	"-z" "-1 -n 2" "-1 -l" "-p 0" "-p x" "-L" "-n 3" \
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
