#!/usr/bin/env bash
# Soak: one ipivd under a steady churn of short ipivbench guests and regular scrapes of
# /metrics, for a while (default 30 min). Every interval it prints ipivd's RSS, open fds and
# CPU seconds, the VMs it discovered and reclaimed, the events it dropped and how long the
# interval's scrapes took; at the end, whether RSS and fds stayed flat (the least-squares
# slope over the run after a warm-up) and whether every scrape answered. A benchmark: it
# reports what it saw and never fails on the figures (it exits 1 only when it cannot run or
# ipivd dies).
set -euo pipefail

usage() {
	cat <<EOF
Usage: bench/soak.sh [OPTIONS]
  -d, --duration SECS   how long to run (default 1800)
  -i, --interval SECS   a report line every SECS (default 30)
  -s, --scrape SECS     scrape /metrics every SECS (default 2)
  -p, --parallel P      guests alive at once, each started when the last one ends (default 2)
  -k, --ipis K          IPIs per guest run (default 300)
      --hold SECS       each guest stays up 0..SECS (random) after its run (default 4)
      --prefix NAME     guests' names start with NAME (default soak-)
      --port PORT       ipivd's port on 127.0.0.1 (default 19712)
      --warmup SECS     leave the first SECS out of the slopes (default: a tenth of the
                        run, at least 60 s: glibc's arenas and ipivd's caches grow first)
  -o, --out DIR         keep ipivd's log, every report line and the last scrape in DIR
      --ipivd PATH      the ipivd to soak (default .output/ipivd)
  -h, --help            this text
Needs root, /dev/kvm, curl and a built tree (make).
EOF
}

DURATION=1800 INTERVAL=30 SCRAPE=2 PARALLEL=2 IPIS=300 HOLD=4 PREFIX=soak- PORT=19712
WARMUP="" KEEP="" IPIVD=""
num() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "${3:-1}" ] || die "$1 must be a whole number >= ${3:-1}, not '$2'"; }
die() { echo "soak: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case $1 in -h | --help) ;; -*) [ $# -ge 2 ] || die "option '$1' needs a value (see --help)" ;; esac
	case $1 in
	-d | --duration) num "$1" "$2"; DURATION=$2; shift ;;
	-i | --interval) num "$1" "$2"; INTERVAL=$2; shift ;;
	-s | --scrape) num "$1" "$2"; SCRAPE=$2; shift ;;
	-p | --parallel) num "$1" "$2"; PARALLEL=$2; shift ;;
	-k | --ipis) num "$1" "$2"; IPIS=$2; shift ;;
	--hold) num "$1" "$2" 0; HOLD=$2; shift ;;
	--prefix) PREFIX=$2; shift ;;
	--port) num "$1" "$2"; PORT=$2; shift ;;
	--warmup) num "$1" "$2" 0; WARMUP=$2; shift ;;
	-o | --out) KEEP=$2; shift ;;
	--ipivd) IPIVD=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "soak: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
WARMUP=${WARMUP:-$((DURATION / 10 > 60 ? DURATION / 10 : 60))}

cd "$(dirname "$0")/.."
BENCH=.output/ipivbench
IPIVD=${IPIVD:-.output/ipivd}
for b in "$BENCH" "$IPIVD"; do [ -x "$b" ] || die "$b missing: run make first"; done
command -v curl > /dev/null || die "curl not found"
[ "$(id -u)" = 0 ] || die "needs root (BPF and /dev/kvm)"
[ -c /dev/kvm ] || die "cannot start guests: /dev/kvm is missing (no KVM on this host)"
if [ -n "$KEEP" ]; then
	mkdir -p "$KEEP" || die "cannot create $KEEP"
	[ -w "$KEEP" ] || die "$KEEP is not writable"
fi
URL=http://127.0.0.1:$PORT
curl -s -o /dev/null --max-time 2 "$URL/" && die "port $PORT already answers: pick another with --port"

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
	wait 2> /dev/null || true
	[ -n "$KEEP" ] && cp "$tmp"/ipivd.log "$tmp"/report "$tmp"/metrics "$KEEP"/ 2> /dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$IPIVD" --web.listen-address "127.0.0.1:$PORT" > "$tmp/ipivd.log" 2>&1 &
ipivd=$!
pids+=("$ipivd")
for _ in $(seq 1 100); do curl -sf -o /dev/null "$URL/api/v1/status" && break; sleep 0.1; done
curl -sf -o /dev/null "$URL/api/v1/status" || die "ipivd did not start: $(tail -n3 "$tmp/ipivd.log")"
hz=$(getconf CLK_TCK)
: > "$tmp/guests"
: > "$tmp/scrapes"

# Churn: PARALLEL workers, each running one short guest after another. Each guest's line in
# guests: its exit status and the IPIs it reported.
for ((w = 0; w < PARALLEL; w++)); do
	(
		trap 'kill $g 2> /dev/null; exit 0' TERM
		n=0
		while :; do
			hold=$((HOLD > 0 ? RANDOM % (HOLD + 1) : 0))
			"$BENCH" --name "$PREFIX$w-$n" -r 1 -w 0 -k "$IPIS" --hold "$hold" --json \
				> "$tmp/g$w.json" 2> "$tmp/g$w.err" &
			g=$!
			rc=0
			wait $g || rc=$?
			sent=$(grep -o '"sent": *[0-9]*' "$tmp/g$w.json" | awk -F: '{ s += $2 } END { print s + 0 }')
			echo "$rc $sent" >> "$tmp/guests"
			n=$((n + 1))
		done
	) &
	pids+=($!)
done

# Scrapes: each one's HTTP status and time, one line per scrape.
(
	while :; do
		curl -s -o "$tmp/scrape" -w '%{http_code} %{time_total} %{size_download}\n' --max-time 30 \
			"$URL/metrics" >> "$tmp/scrapes" || echo "000 30 0" >> "$tmp/scrapes"
		[ -s "$tmp/scrape" ] && mv "$tmp/scrape" "$tmp/metrics"
		sleep "$SCRAPE"
	done
) &
pids+=($!)

metric() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }' "$tmp/metrics" 2> /dev/null || echo 0; }
dropped() { awk '/^ipiv_events_dropped_total\{reason="[a-z_]*_map_full"\}/ { s += $NF } END { printf "%d\n", s }' "$tmp/metrics" 2> /dev/null || echo 0; }

printf '%6s %8s %5s %8s %6s %4s %10s %9s %7s %9s %8s %9s %4s\n' elapsed rss_kib fds cpu_s guests \
	vms discovered reclaimed dropped scrape_ms scr_max scrape_kib bad | tee "$tmp/report"
start=$(date +%s)
seen_scrapes=0
while :; do
	sleep "$INTERVAL"
	now=$(date +%s)
	elapsed=$((now - start))
	[ -d "/proc/$ipivd" ] || die "ipivd (pid $ipivd) died after $elapsed s: $(tail -n3 "$tmp/ipivd.log")"
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$ipivd/status")
	fds=$(ls "/proc/$ipivd/fd" | wc -l)
	# utime and stime: fields 14 and 15, counted after the command name's closing paren
	cpu=$(sed 's/.*) //' "/proc/$ipivd/stat" | awk -v hz="$hz" '{ printf "%.2f", ($12 + $13) / hz }')
	guests=$(wc -l < "$tmp/guests" 2> /dev/null || echo 0)
	total=$(wc -l < "$tmp/scrapes" 2> /dev/null || echo 0)
	# this interval's scrapes: median and max time, and those that did not answer 200
	read -r med max kib bad < <(tail -n +$((seen_scrapes + 1)) "$tmp/scrapes" | head -n $((total - seen_scrapes)) |
		sort -k2,2g | awk '{ t[NR] = $2 * 1000; b = $3; if ($1 != 200) bad++ }
		     END { printf "%.1f %.1f %.0f %d\n", NR ? t[int((NR + 1) / 2)] : 0, NR ? t[NR] : 0, b / 1024, bad }')
	seen_scrapes=$total
	printf '%6d %8d %5d %8s %6d %4d %10d %9d %7d %9s %8s %9s %4d\n' "$elapsed" "$rss" "$fds" "$cpu" \
		"$guests" "$(metric ipiv_vms)" "$(metric ipiv_vms_discovered_total)" "$(metric ipiv_vms_reclaimed_total)" \
		"$(dropped)" "$med" "$max" "$kib" "$bad" | tee -a "$tmp/report"
	[ "$elapsed" -ge "$DURATION" ] && break
done

# Summary: least-squares slopes of RSS and fds over the samples after the warm-up, and over
# their second half (what a longer run would keep doing); the verdict is the second half's.
failed_guests=$(awk '$1 != 0' "$tmp/guests" | wc -l)
guest_ipis=$(awk '{ s += $2 } END { print s + 0 }' "$tmp/guests")
awk -v warm="$WARMUP" -v bad_guests="$failed_guests" -v ipis="$guest_ipis" '
	NR == 1 { next }
	{ bad += $13; if ($1 >= warm) { n++; x[n] = $1; r[n] = $2; f[n] = $3; v[n] = $6 } cpu = $4; g = $5; d = $7; rc = $8; dr = $9; t = $1 }
	function slope(y, lo,   i, m, sx, sy, sxx, sxy) {
		for (i = lo; i <= n; i++) { m++; sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i] }
		return (m * sxx - sx * sx) ? (m * sxy - sx * sy) / (m * sxx - sx * sx) : 0
	}
	END {
		if (n < 4) { print "soak: too few samples after the warm-up for slopes (run longer or lower --interval)"; exit }
		h = int((n + 1) / 2); span = x[n] - x[1]; hspan = x[n] - x[h]
		rs = slope(r, 1); rh = slope(r, h); fs = slope(f, 1); fh = slope(f, h)
		rmin = rmax = r[1]; fmin = fmax = f[1]
		for (i = 2; i <= n; i++) { if (r[i] < rmin) rmin = r[i]; if (r[i] > rmax) rmax = r[i]; if (f[i] < fmin) fmin = f[i]; if (f[i] > fmax) fmax = f[i] }
		# flat: the second half fitted line adds under 1 MiB and under 2 % of RSS over the
		# whole span after the warm-up, and under one descriptor
		rflat = (rh * span < 1024 && rh * span < 0.02 * r[n])
		fflat = (fh * span < 1)
		printf "summary over %d s after a %d s warm-up (%d samples):\n", span, warm, n
		printf "  RSS  %d..%d KiB; slope %+.0f KiB/h after the warm-up, %+.0f KiB/h over the last %d s: %s\n", rmin, rmax, rs * 3600, rh * 3600, hspan, rflat ? "flat" : "GROWING"
		printf "  fds  %d..%d; slope %+.1f /h after the warm-up, %+.1f /h over the last %d s: %s\n", fmin, fmax, fs * 3600, fh * 3600, hspan, fflat ? "flat" : "GROWING"
		printf "  CPU  %s s in %d s (%.2f %% of a core)\n", cpu, t, 100 * cpu / (t ? t : 1)
		printf "  guests %d (%d failed, %d IPIs); VMs discovered %d, reclaimed %d; events dropped (map full) %d\n", g, bad_guests, ipis, d, rc, dr
		printf "  scrapes not answered 200: %d\n", bad
		vmin = vmax = v[1]
		for (i = 2; i <= n; i++) { if (v[i] < vmin) vmin = v[i]; if (v[i] > vmax) vmax = v[i] }
		if (vmax > 1.2 * vmin + 2)
			printf "  note: ipivd watched %d..%d VMs after the warm-up (every VM of the host counts, not only the soak'"'"'s): RSS follows the largest snapshot, so its slope is not a leak by itself\n", vmin, vmax
	}' "$tmp/report" | tee -a "$tmp/report"
