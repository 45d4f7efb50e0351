#!/usr/bin/env bash
# VM churn: 160 short ipivbench VMs (300 IPIs each, most living less than a poll interval)
# while /metrics is scraped every 2 s. Nothing a VM sent may be lost: the host totals grow by
# exactly what the guests reported, every VM is counted discovered and reclaimed once, and
# some scrape shows each VM with its final counts (exited VMs' series are kept a while).
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl; require_bin "$IPIVBENCH" "$IPIVD"

N=${N:-160} PARALLEL=4 K=300
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

# Scrapes every 2 s while the VMs come and go, each kept.
(i=0; while :; do curl -sf "$URL/metrics" > "$tmp/scrape.$i"; i=$((i + 1)); sleep 2; done) &
scraper=$!; pids+=($scraper)

start=$(date +%s)
running=()
for ((i = 0; i < N; i++)); do
	"$IPIVBENCH" --name "churn-$i" -r 1 -k $K -w 0 --json > "$tmp/churn-$i.json" \
		2> "$tmp/churn-$i.err" &
	running+=($!)
	if [ ${#running[@]} -ge $PARALLEL ]; then
		wait "${running[0]}"
		running=("${running[@]:1}")
	fi
done
for p in "${running[@]}"; do wait "$p"; done
note "$N VMs ran in $(( $(date +%s) - start )) s"

sent=0
for ((i = 0; i < N; i++)); do
	v=$(jq '[.vcpus[].sent] | add' "$tmp/churn-$i.json" 2>/dev/null) ||
		fail "churn-$i gave no result: $(tail -n1 "$tmp/churn-$i.err")"
	expect_eq "churn-$i sent" "$v" "$K"
	sent=$((sent + v))
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
expect_eq "host IPIs sent during the churn" \
	$(( $(total ipiv_host_ipis_sent_total "$tmp/metrics") - $(total ipiv_host_ipis_sent_total "$tmp/before") )) "$sent"
expect_eq "VMs discovered" \
	$(( $(total ipiv_vms_discovered_total "$tmp/metrics") - $(total ipiv_vms_discovered_total "$tmp/before") )) $N
expect_eq "VMs reclaimed" \
	$(( $(total ipiv_vms_reclaimed_total "$tmp/metrics") - $(total ipiv_vms_reclaimed_total "$tmp/before") )) $N
note "host totals: $sent IPIs of $N VMs, each discovered and reclaimed once"

# Each VM's final count in some scrape: the largest count any scrape showed for it.
seen=0
for f in "$tmp"/scrape.* "$tmp/metrics"; do
	grep '^ipiv_ipis_sent_total{vm="churn-' "$f" |
		sed -E 's/^[^"]*"(churn-[0-9]+)".* ([0-9]+)$/\1 \2/' |
		awk '{ s[$1] += $2 } END { for (v in s) print v, s[v] }'
done | sort -k1,1 -k2,2n | awk '{ m[$1] = $2 } END { for (v in m) print v, m[v] }' > "$tmp/max"
for ((i = 0; i < N; i++)); do
	v=$(awk -v n="churn-$i" '$1 == n { print $2 }' "$tmp/max")
	expect_eq "churn-$i: largest count a scrape showed" "${v:-none}" "$K"
	seen=$((seen + 1))
done
note "$seen of $N VMs seen by a scrape with their final count ($(ls "$tmp"/scrape.* | wc -l) scrapes)"
echo ok
