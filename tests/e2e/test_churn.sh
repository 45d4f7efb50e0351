#!/usr/bin/env bash
# VM churn: 300 short ipivbench VMs (50 IPIs each, living less than a poll interval)
# while /metrics is scraped every 2 s. Nothing a VM sent may be lost: the host totals of IPIs
# sent and of interrupts accepted grow by exactly what the guests reported sending and
# receiving, every VM is counted discovered and reclaimed once, every host-level total only
# goes up from scrape to scrape, and some scrape shows each VM with its final counts (exited
# VMs' series are kept a while). Other guests running on the host would count too.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl; require_bin "$IPIVBENCH" "$IPIVD"

N=${N:-300} PARALLEL=4 K=${K:-50}
VMP=churn-$$-	# the VMs' names: this run's, so another guest on the host is told apart
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
PORT=$(pick_port)
URL=http://127.0.0.1:$PORT

"$IPIVD" --web.listen-address 127.0.0.1:$PORT > "$tmp/ipivd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "$URL/api/v1/status" > /dev/null && break; sleep 0.1; done
scrape || fail "ipivd did not start: $(cat "$tmp/ipivd.log")"
cp "$tmp/metrics" "$tmp/before"

# Scrapes every 2 s while the VMs come and go, each kept (only whole ones: a failed scrape
# would look like vanished series).
(i=0; while :; do
	curl -sf "$URL/metrics" > "$tmp/scrape.tmp" && mv "$tmp/scrape.tmp" "$tmp/scrape.$i" &&
		i=$((i + 1))
	sleep 2
done) &
scraper=$!; pids+=($scraper)

start=$(date +%s)
running=()
for ((i = 0; i < N; i++)); do
	"$IPIVBENCH" --name "$VMP$i" -r 1 -k $K -w 0 --json > "$tmp/churn-$i.json" \
		2> "$tmp/churn-$i.err" &
	running+=($!)
	if [ ${#running[@]} -ge $PARALLEL ]; then
		wait "${running[0]}"
		running=("${running[@]:1}")
	fi
done
for p in "${running[@]}"; do wait "$p"; done
note "$N VMs ran in $(( $(date +%s) - start )) s"

# What each guest reported sending and receiving, read by one jq: "index sent received".
jq -r '"\(input_filename | sub(".*/churn-"; "") | sub("\\.json$"; "")) \([.vcpus[].sent] | add) \([.vcpus[].received] | add)"' \
	"$tmp"/churn-*.json > "$tmp/counts" 2> "$tmp/counts.err"
sent=0 received=0
declare -A sent_by
while read -r i s r; do
	sent_by[$i]=$s
	sent=$((sent + s)) received=$((received + r))
done < "$tmp/counts"
for ((i = 0; i < N; i++)); do
	[ -n "${sent_by[$i]:-}" ] ||
		fail "churn-$i gave no result: $(tail -n1 "$tmp/churn-$i.err" "$tmp/counts.err")"
	expect_eq "churn-$i sent" "${sent_by[$i]}" "$K"
done

total() { grep "^$1 \|^$1{" "$2" | awk '{ s += $NF } END { printf "%d\n", s }'; }
# Every VM reclaimed (two missed polls of 1 s), then the totals.
for _ in $(seq 1 100); do
	scrape
	[ $(( $(total ipiv_vms_reclaimed_total "$tmp/metrics") -
	      $(total ipiv_vms_reclaimed_total "$tmp/before") )) -ge $N ] && break
	sleep 0.2
done
kill $scraper
wait $scraper 2>/dev/null
scrapes=("$tmp/before")
for ((i = 0; ; i++)); do [ -f "$tmp/scrape.$i" ] || break; scrapes+=("$tmp/scrape.$i"); done
scrapes+=("$tmp/metrics")

# Every host-level total (ipiv_host_*_total, by its labels, and the VMs discovered and
# reclaimed) in every scrape, in the order taken: never lower than in the one before, never
# missing once it was there.
awk '
function check_missing(   k) {
	for (k in last)
		if (!(k in here)) { print FILENAME ": " k " missing"; bad++ }
	delete here
}
FNR == 1 && NR > 1 { check_missing() }
/^(ipiv_host_[a-z_]+_total|ipiv_vms_(discovered|reclaimed)_total)[{ ]/ {
	k = $0; sub(/ [^ ]+$/, "", k)
	here[k] = 1; samples++
	if ((k in last) && $NF + 0 < last[k] + 0) {
		print FILENAME ": " k " went down from " last[k] " to " $NF; bad++
	}
	last[k] = $NF
}
END {
	check_missing()
	for (k in last) series++
	print samples " samples of " series " host-level series"
	exit bad > 0
}' "${scrapes[@]}" > "$tmp/monotonic" ||
	fail "host totals not monotonic: $(head -5 "$tmp/monotonic")"
grep -q '^ipiv_host_interrupts_accepted_total ' "$tmp/metrics" ||
	fail "no ipiv_host_interrupts_accepted_total in /metrics"
note "host totals only went up in ${#scrapes[@]} scrapes: $(tail -n1 "$tmp/monotonic")"

# Each VM's final count in some scrape: the largest count any scrape showed for it.
seen=0
for f in "${scrapes[@]}"; do
	grep "^ipiv_ipis_sent_total{vm=\"$VMP" "$f" |
		sed -E 's/^[^"]*"('"$VMP"'[0-9]+)".* ([0-9]+)$/\1 \2/' |
		awk '{ s[$1] += $2 } END { for (v in s) print v, s[v] }'
done | sort -k1,1 -k2,2n | awk '{ m[$1] = $2 } END { for (v in m) print v, m[v] }' > "$tmp/max"
for ((i = 0; i < N; i++)); do
	v=$(awk -v n="$VMP$i" '$1 == n { print $2 }' "$tmp/max")
	expect_eq "$VMP$i: largest count a scrape showed" "${v:-none}" "$K"
	seen=$((seen + 1))
done
note "$seen of $N VMs seen by a scrape with their final count (${#scrapes[@]} scrapes)"

# The host totals and VM counters: exactly this run's. Another guest that ran meanwhile is in
# them too (the checks above only look at this run's VMs).
others=$(cat "${scrapes[@]}" | grep -o 'vm="[^"]*"' | sort -u | grep -v "^vm=\"$VMP" || true)
[ -z "$others" ] ||
	skip "$(wc -l <<<"$others") other guests ran on this host during the test ($(head -n3 <<<"$others" |
		tr '\n' ' ')...): the host totals count them"
expect_eq "host IPIs sent during the churn" \
	$(( $(total ipiv_host_ipis_sent_total "$tmp/metrics") - $(total ipiv_host_ipis_sent_total "$tmp/before") )) "$sent"
expect_eq "host interrupts accepted during the churn" \
	$(( $(total ipiv_host_interrupts_accepted_total "$tmp/metrics") -
	    $(total ipiv_host_interrupts_accepted_total "$tmp/before") )) "$received"
expect_eq "VMs discovered" \
	$(( $(total ipiv_vms_discovered_total "$tmp/metrics") - $(total ipiv_vms_discovered_total "$tmp/before") )) $N
expect_eq "VMs reclaimed" \
	$(( $(total ipiv_vms_reclaimed_total "$tmp/metrics") - $(total ipiv_vms_reclaimed_total "$tmp/before") )) $N
note "host totals: $sent IPIs sent and $received received by $N VMs, each discovered and" \
	"reclaimed once"
echo ok
