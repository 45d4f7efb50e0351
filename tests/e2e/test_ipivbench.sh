#!/usr/bin/env bash
# ipivbench on the real KVM of this host: every pattern the host completes, in real and long
# mode, 2 and 4 vCPUs, spin and halt targets, with the guest's exact counts checked against
# what each pattern must deliver; the unsupported PV hypercall fails in bounded time; bad
# input gets one-line errors.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq; require_bin "$IPIVBENCH"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
RUNS=2; K=20; WARMUP=1; TOTAL=$(( (RUNS + WARMUP) * K ))

# check_counts JSON PATTERN N: the deliveries each vCPU must have counted
check_counts() {
	local j=$1 p=$2 n=$3 i sent recv want
	sent=$(jq '.vcpus[0].sent' "$j")
	expect_eq "$p n=$n: vCPU 0 sent" "$sent" "$TOTAL"
	for ((i = 1; i < n; i++)); do
		expect_eq "$p n=$n: vCPU $i sent" "$(jq ".vcpus[$i].sent" "$j")" 0
	done
	for ((i = 0; i < n; i++)); do
		recv=$(jq ".vcpus[$i].received" "$j")
		case $p in
		x2apic-self) want=$([ $i -eq 0 ] && echo "$TOTAL" || echo 0) ;;
		*allbutself) want=$([ $i -eq 0 ] && echo 0 || echo "$TOTAL") ;;
		x2apic-multicast) want=$([ $((i % 2)) -eq 1 ] && echo "$TOTAL" || echo 0) ;;
		*)	# unicast round-robin over vCPUs 1..n-1, the slot restarting every run
			if [ $i -eq 0 ]; then want=0; else
				local t=$((n - 1)) s=$((i - 1))
				want=$(( (K / t + (s < K % t ? 1 : 0)) * (RUNS + WARMUP) ))
			fi ;;
		esac
		expect_eq "$p n=$n: vCPU $i received" "$recv" "$want"
	done
}

patterns="x2apic-phys x2apic-logical x2apic-multicast x2apic-allbutself x2apic-self \
	  xapic-phys xapic-logical xapic-allbutself nmi"
count=0
for cpu in real long; do
	for p in $patterns; do
		for n in 2 4; do
			for t in spin halt; do
				j=$tmp/$cpu-$p-$n-$t.json
				"$IPIVBENCH" -c "$cpu" -m "$p" -n "$n" -t "$t" -r $RUNS -k $K \
					-w $WARMUP --timeout 30 --json > "$j" 2> "$tmp/err" ||
					fail "$cpu $p n=$n $t: $(cat "$tmp/err")"
				expect_eq "$cpu $p runs" "$(jq '.runs | length' "$j")" $RUNS
				jq -e '.runs | all(. > 0)' "$j" >/dev/null ||
					fail "$cpu $p: a run has no cycles"
				check_counts "$j" "$p" "$n"
				count=$((count + 1))
			done
		done
	done
	note "$cpu mode: every pattern exact"
done
note "$count configurations checked"

# The table output carries the seed's rows.
"$IPIVBENCH" -r 3 -k 10 > "$tmp/table" || fail "table run failed"
grep -q '^Average' "$tmp/table" || fail "table has no Average row"
expect_eq "table run rows" "$(awk '/^ +run /{f=1; next} /^Average/{f=0} f' "$tmp/table" | wc -l)" 3

# compare: two runs of one configuration compare, each row with its rank-test p, and 3+3
# runs are said to be too few for any verdict; a run against itself is "~"; runs clearly
# apart (synthetic, from a.json's configuration) are a significant change with its sign;
# different configurations are refused.
"$IPIVBENCH" -r 3 -k 10 -o "$tmp/a.json" > /dev/null || fail "run a"
"$IPIVBENCH" -r 3 -k 10 -o "$tmp/b.json" > /dev/null || fail "run b"
"$IPIVBENCH" compare "$tmp/a.json" "$tmp/b.json" > "$tmp/cmp" || fail "compare failed"
# change FILE: the Average and Median rows' verdict, "~ (p=1.000 n=3+3)" or "-20.00% (p=..."
change() { awk '$1 == "Average" || $1 == "Median" { $1 = $2 = $3 = ""; print substr($0, 4) }' "$1"; }
[ "$(change "$tmp/cmp" | grep -Ec '^~ \(p=(0\.[0-9]{3}|1\.000) n=3\+3\)$')" = 2 ] ||
	fail "3+3 runs: rows are not '~ (p=... n=3+3)': $(change "$tmp/cmp")"
grep -q '^note: 3+3 runs can never differ significantly' "$tmp/cmp" ||
	fail "compare of 3+3 runs does not say they are too few"
"$IPIVBENCH" compare "$tmp/a.json" "$tmp/a.json" > "$tmp/cmp" || fail "compare a a failed"
expect_eq "a run against itself" "$(change "$tmp/cmp" | sort -u)" "~ (p=1.000 n=3+3)"
jq '.runs = [range(20) | 1000 + 10 * .]' "$tmp/a.json" > "$tmp/slow.json"
jq '.runs = [range(20) | 800 + 10 * .]' "$tmp/a.json" > "$tmp/fast.json"
"$IPIVBENCH" compare "$tmp/slow.json" "$tmp/fast.json" > "$tmp/cmp" || fail "compare slow fast"
# medians 1095 and 895, no overlap: p = 2 / C(40, 20)
expect_eq "20 runs 18 % faster" "$(change "$tmp/cmp" | sort -u)" "-18.26% (p=0.000 n=20+20)"
"$IPIVBENCH" compare "$tmp/fast.json" "$tmp/slow.json" > "$tmp/cmp" || fail "compare fast slow"
expect_eq "20 runs 22 % slower" "$(change "$tmp/cmp" | sort -u)" "+22.35% (p=0.000 n=20+20)"
grep -q 'note:' "$tmp/cmp" && fail "20+20 runs got a note: $(grep note: "$tmp/cmp")"
if "$IPIVBENCH" compare "$tmp/a.json" "$tmp/real-nmi-2-spin.json" 2> "$tmp/err"; then
	fail "compare accepted runs of different patterns"
fi
expect_eq "compare refusal lines" "$(wc -l < "$tmp/err")" 1

# An output file that cannot be written is refused before the benchmark runs: waiting for a
# SIGUSR2 that never comes, a run that got as far as its VM would hang until the timeout.
start=$(date +%s%N)
timeout 20 "$IPIVBENCH" --wait-for-go -r 1 -k 10 -o /nonexistent/x.json > /dev/null \
	2> "$tmp/err" && fail "ipivbench accepted an output path in a missing directory"
grep -q 'cannot write /nonexistent/x.json' "$tmp/err" || fail "unwritable output not named: $(cat "$tmp/err")"
expect_eq "unwritable output error lines" "$(wc -l < "$tmp/err")" 1
note "unwritable output refused in $(( ($(date +%s%N) - start) / 1000000 )) ms, before any run"

# The PV hypercall never completes on kvm_pvm: the watchdog must end it in bounded time
# with one line and no thread left behind. Where it does complete, it must count exactly.
start=$(date +%s)
if "$IPIVBENCH" -m pv -r 1 -k 5 --timeout 3 --json > "$tmp/pv.json" 2> "$tmp/err"; then
	check_counts "$tmp/pv.json" pv 2
	note "pv completes on this host"
else
	el=$(( $(date +%s) - start ))
	[ $el -le 10 ] || fail "pv failure took ${el}s, watchdog is 3s"
	expect_eq "pv error lines" "$(wc -l < "$tmp/err")" 1
	grep -q "KVM_HC_SEND_IPI" "$tmp/err" || fail "pv error does not name the hypercall: $(cat "$tmp/err")"
	note "pv fails cleanly in ${el}s: $(cat "$tmp/err")"
fi

# Bad input: one line, exit code 2 for usage, 1 for runtime problems.
bad() {
	local want=$1; shift
	"$IPIVBENCH" "$@" > /dev/null 2> "$tmp/err"; local rc=$?
	expect_eq "exit code of '$*'" $rc "$want"
	expect_eq "error lines of '$*'" "$(wc -l < "$tmp/err")" 1
	grep -q '^ipivbench: ' "$tmp/err" || fail "error of '$*' is not prefixed: $(cat "$tmp/err")"
}
bad 2 -n 65
bad 2 -n 1
bad 2 -n two
bad 2 -m nonsense
bad 2 -c protected
bad 2 --bogus
bad 2 -k
bad 2 -r 0
bad 2 extra-arg
bad 1 compare "$tmp/missing.json" "$tmp/a.json"
echo '{"schema": "something/else"}' > "$tmp/wrong.json"
bad 1 compare "$tmp/wrong.json" "$tmp/a.json"
echo '{ not json' > "$tmp/broken.json"
bad 1 compare "$tmp/broken.json" "$tmp/a.json"

# No /dev/kvm, and no permission to open it.
unshare -m bash -c "mount -t tmpfs none /dev && '$IPIVBENCH' -r 1 -k 1" > /dev/null 2> "$tmp/err"
expect_eq "exit without /dev/kvm" $? 1
grep -q "/dev/kvm not found" "$tmp/err" || fail "missing /dev/kvm: $(cat "$tmp/err")"
if command -v setpriv >/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups "$IPIVBENCH" -r 1 -k 1 \
		> /dev/null 2> "$tmp/err"
	expect_eq "exit without permission" $? 1
	grep -q "permission denied" "$tmp/err" || fail "no permission: $(cat "$tmp/err")"
fi
note "bad input handled"
echo "ok"
