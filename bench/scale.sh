#!/usr/bin/env bash
# What ipivd costs with many VMs: starts N real ipivbench VMs (a short IPI run with halted
# targets, then --hold inf) and one ipivd per mode on loopback ports in 31000-31999, each
# watching from before the first VM: default, --collector.per-vcpu, and "discovery" (default
# flags but --diag.window 86400: no diagnosis snapshot at rest, so its CPU at rest is the
# discovery polls alone). Once each sees all N it measures, one ipivd at a time (the others
# stopped with SIGSTOP): /metrics as a client sees it (curl time_total: median, max, the first
# scrape), the CPU ipivd's HTTP workers spent per scrape, bytes and series, the same for
# /api/v1/vms and /api/v1/vms/<one>, ipivd's RSS (VmRSS, VmHWM) and its CPU at rest
# (utime+stime over a quiet interval with no client, per discovery poll and as % of a core).
# With --fill V it then runs .output/ipiv-scale-fill on each ipivd (vCPUs 0..V-1 of every VM,
# in that ipivd's own maps) and measures again. Prints a table and the issue's targets:
# /metrics <= 50 ms and RSS <= 32 MiB at 512 VMs (default mode), discovery <= 1 % of a core
# at rest. A benchmark: it reports numbers and the targets; it never fails on them.
set -euo pipefail

usage() {
	cat <<EOF
Usage: bench/scale.sh [OPTIONS]
  -N, --vms N         VMs (default 512)
  -n, --vcpus V       vCPUs per VM (default 2)
      --wide          32 VMs x 64 vCPUs (-N 32 -n 64)
  -m, --mode PATTERN  ipivbench pattern (default x2apic-phys)
  -r, --runs R        measured runs per VM (default 1, after 1 warm-up run)
  -k, --ipis K        IPIs per run (default 100)
  -S, --scrapes S     scrapes of each endpoint per measurement (default 10)
  -Q, --quiet SECS    quiet interval for the CPU at rest (default 60; ipivd's diagnosis
                      takes a snapshot every 30 s, which is part of its cost at rest)
      --modes LIST    ipivds, comma-separated, of default, per-vcpu and discovery (at rest
                      only); default: all three
      --fill V        after the real measurement, fill each ipivd's maps to V vCPUs per VM
                      with .output/ipiv-scale-fill and measure again
  -b, --batch B       VMs started at a time (default 32)
  -o, --out DIR       keep the scrapes, logs and raw figures in DIR
      --ipivd PATH    the ipivd to measure (default .output/ipivd)
      --base PATH     also the ipivd at PATH (e.g. the build before a change) with default
                      flags, measured right after "default" on the same VMs; repeat it for
                      more builds (named base, base2, base3, ...)
      --ports LO-HI   the ipivds' loopback ports (default 31000-31999)
      --prefix NAME   the VMs' name prefix (default scale-)
      --perf          perf record ipivd during the timed /metrics scrapes (the discovery
                      ipivd: its quiet interval) and print where it spent its time; glibc's
                      malloc_stats into each ipivd's log (keep them with --out)
  -h, --help          this text
Needs root, /dev/kvm, curl and jq, and a built tree (make).
EOF
}

N=512 V=2 MODE=x2apic-phys RUNS=1 IPIS=100 SCRAPES=10 QUIET=60 MODES=default,per-vcpu,discovery
FILL=0 BATCH=32 KEEP="" IPIVD="" PERF="" BASES=() PORTS=31000-31999 PREFIX=scale-
while [ $# -gt 0 ]; do
	case $1 in
	-N | --vms) N=$2; shift ;;
	-n | --vcpus) V=$2; shift ;;
	--wide) N=32 V=64 ;;
	-m | --mode) MODE=$2; shift ;;
	-r | --runs) RUNS=$2; shift ;;
	-k | --ipis) IPIS=$2; shift ;;
	-S | --scrapes) SCRAPES=$2; shift ;;
	-Q | --quiet) QUIET=$2; shift ;;
	--modes) MODES=$2; shift ;;
	--fill) FILL=$2; shift ;;
	-b | --batch) BATCH=$2; shift ;;
	-o | --out) KEEP=$2; shift ;;
	--ipivd) IPIVD=$2; shift ;;
	--base) BASES+=("$2"); shift ;;
	--ports) PORTS=$2; shift ;;
	--prefix) PREFIX=$2; shift ;;
	--perf) PERF=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

die() { echo "scale: $*" >&2; exit 1; }

cd "$(dirname "$0")/.."
OUT=.output
BENCH=$OUT/ipivbench FILLER=$OUT/ipiv-scale-fill
IPIVD=${IPIVD:-$OUT/ipivd}
for b in "$BENCH" "$IPIVD"; do [ -x "$b" ] || die "$b missing: run make first"; done
[ "$FILL" -gt 0 ] && { [ -x "$FILLER" ] || die "$FILLER missing: run make first"; }
for c in jq curl ${PERF:+perf}; do command -v "$c" > /dev/null || die "$c not found"; done
[ "$(id -u)" = 0 ] || die "needs root (BPF and /dev/kvm)"
[ -c /dev/kvm ] || die "cannot start VMs: /dev/kvm is missing (no KVM on this host)"
IFS=, read -r -a modes <<< "$MODES"
for m in "${modes[@]}"; do
	case $m in default | per-vcpu | discovery) ;; *) die "--modes: unknown mode '$m'" ;; esac
done
base_modes=()
for i in "${!BASES[@]}"; do
	[ -x "${BASES[i]}" ] || die "--base: ${BASES[i]} is not an executable ipivd"
	base_modes+=("base$([ "$i" = 0 ] || echo $((i + 1)))")
done
if [ ${#BASES[@]} -gt 0 ]; then
	for i in "${!modes[@]}"; do # the bases right after "default", so they are measured alike
		[ "${modes[i]}" = default ] &&
			modes=("${modes[@]:0:i+1}" "${base_modes[@]}" "${modes[@]:i+1}") && break
	done
	[[ " ${modes[*]} " == *" base "* ]] || modes+=("${base_modes[@]}")
fi
[[ $PORTS =~ ^([0-9]+)-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -le "${BASH_REMATCH[2]}" ] &&
	[ "${BASH_REMATCH[2]}" -le 65535 ] || die "--ports: want LO-HI, not '$PORTS'"
port_lo=${BASH_REMATCH[1]} port_n=$((BASH_REMATCH[2] - BASH_REMATCH[1] + 1))
[[ $PREFIX =~ ^[A-Za-z0-9_.-]+$ ]] || die "--prefix: letters, digits, '_', '.' and '-' only, not '$PREFIX'"

# Room for the VMs: 3 MiB each and 384 KiB a vCPU (2 MiB of guest RAM, the process, KVM's
# per-VM and per-vCPU state; MemAvailable fell by 1-3 MiB a 2-vCPU VM and ~24 MiB a
# 64-vCPU one on kvm_pvm), and a quarter more as margin.
need_kb=$(( N * (3072 + 384 * V) * 5 / 4 ))
avail_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
[ "$avail_kb" -gt "$need_kb" ] ||
	die "cannot start $N VMs x $V vCPUs: they need ~$((need_kb / 1024)) MiB, $((avail_kb / 1024)) MiB available (out of memory)"
threads_max=$(cat /proc/sys/kernel/threads-max)
[ $(( N * (V + 2) )) -lt "$threads_max" ] ||
	die "cannot start $N VMs x $V vCPUs: kernel.threads-max is $threads_max"
# Each VM holds a few descriptors in its own process; ipivd and curl need few. Raised anyway,
# for a shell that started with a tight soft limit.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then ulimit -n 65536; else ulimit -n "$hard"; fi

tmp=$(mktemp -d)
mkdir -p "$tmp/vm" "$tmp/bin"
# Copies: another build of the tree during the run must not change what is measured.
cp "$BENCH" "$tmp/bin/ipivbench"
cp "$IPIVD" "$tmp/bin/ipivd"
for i in "${!BASES[@]}"; do cp "${BASES[i]}" "$tmp/bin/ipivd.${base_modes[i]}"; done
vm_pids=() sleep_pid="" perf_pid=""
declare -A ipivd_pid ipivd_port
any_alive() {
	local p
	for p; do kill -0 "$p" 2> /dev/null && return 0; done
	return 1
}
cleanup() {
	local p
	trap - EXIT INT TERM
	[ -n "$perf_pid" ] && kill -INT "$perf_pid" 2> /dev/null
	[ -n "$sleep_pid" ] && kill "$sleep_pid" 2> /dev/null
	for p in "${ipivd_pid[@]}"; do kill "$p" 2> /dev/null; kill -CONT "$p" 2> /dev/null || true; done
	if [ ${#vm_pids[@]} -gt 0 ]; then
		kill "${vm_pids[@]}" 2> /dev/null || true
		for _ in $(seq 1 100); do
			any_alive "${vm_pids[@]}" || break
			sleep 0.1
		done
		kill -KILL "${vm_pids[@]}" 2> /dev/null || true
	fi
	wait 2> /dev/null || true
	if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp -r "$tmp"/. "$KEEP"/; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

start_ipivd() {
	local mode=$1 port args=() bin=$tmp/bin/ipivd
	[[ $mode == base* ]] && bin=$tmp/bin/ipivd.$mode
	case $mode in
	per-vcpu) args=(--collector.per-vcpu) ;;
	discovery) args=(--diag.window 86400) ;; # the one diagnosis runs at start, with no VM
	esac
	for _ in 1 2 3 4 5; do
		port=$((port_lo + RANDOM % port_n))
		port_free "$port" || continue
		"$bin" --web.listen-address "127.0.0.1:$port" "${args[@]}" \
			> "$tmp/ipivd.$mode.log" 2>&1 &
		ipivd_pid[$mode]=$!
		for _ in $(seq 1 300); do # loading the BPF programs took seconds on a busy host
			if curl -sf "http://127.0.0.1:$port/api/v1/status" > /dev/null; then
				ipivd_port[$mode]=$port
				return
			fi
			kill -0 "${ipivd_pid[$mode]}" 2> /dev/null || break
			sleep 0.1
		done
		kill "${ipivd_pid[$mode]}" 2> /dev/null || true
		wait "${ipivd_pid[$mode]}" 2> /dev/null || true
		unset "ipivd_pid[$mode]"
	done
	die "ipivd ($mode) did not start: $(tail -1 "$tmp/ipivd.$mode.log")"
}

# Starts VMs first..last in the background and waits until each has finished its runs
# (its JSON result is complete) and holds; a VM that exits instead fails the run.
start_batch() {
	local first=$1 last=$2 i pending
	for i in $(seq "$first" "$last"); do
		"$tmp/bin/ipivbench" --name "$PREFIX$i" -n "$V" -m "$MODE" -t halt -r "$RUNS" \
			-k "$IPIS" --timeout 60 --hold inf --json \
			> "$tmp/vm/$i.json" 2> "$tmp/vm/$i.err" &
		vm_pids[i]=$!
	done
	for _ in $(seq 1 1200); do
		pending=0
		for i in $(seq "$first" "$last"); do
			grep -q '"wall_seconds"' "$tmp/vm/$i.json" 2> /dev/null && continue
			if ! kill -0 "${vm_pids[i]}" 2> /dev/null; then
				die "cannot start VM $PREFIX$i ($V vCPUs, after $((i - 1)) running): $(tail -1 "$tmp/vm/$i.err")"
			fi
			pending=$((pending + 1))
		done
		[ "$pending" = 0 ] && return
		sleep 0.1
	done
	die "VMs $PREFIX$first..$PREFIX$last did not finish their runs within 120 s"
}

# Live VMs named $PREFIX* that ipivd on port $1 lists.
seen_vms() {
	curl -sf --max-time 60 "http://127.0.0.1:$1/api/v1/vms" |
		jq --arg p "$PREFIX" '[.vms[] | select(.alive and (.name | startswith($p)))] | length'
}

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# CPU ticks of ipivd's HTTP worker threads (libmicrohttpd names them MHD-worker): the
# requests' own cost, whatever the poll loop does meanwhile
http_ticks() {
	local t n=0
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2> /dev/null)" = MHD-worker ] || continue
		n=$((n + $(awk '{ print $14 + $15 }' "$t/stat")))
	done
	echo $n
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# "polls reclaimed": ipivd's discovery polls and the VMs it reclaimed so far (VMs of other
# users of the host that exit: each reclaim reads the maps whole)
polls() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk '$1 == "ipiv_discovery_polls_total" { p = $2 } $1 == "ipiv_vms_reclaimed_total" { r = $2 }
		     END { print p + 0, r + 0 }'
}
HZ=$(getconf CLK_TCK)

# median FILE and max FILE of the first column (seconds), in ms
median_ms() { cut -d' ' -f1 "$1" | sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m * 1000 }'; }
max_ms() { cut -d' ' -f1 "$1" | sort -g | tail -1 | awk '{ printf "%.1f", $1 * 1000 }'; }

# timed NAME URL OUT: $SCRAPES requests of URL; appends "median max cpu_ms_per_request" to OUT
# (the response of the last is in $f.NAME.body, the times in $f.NAME)
timed() {
	local name=$1 url=$2 c0 c1
	: > "$f.$name"
	c0=$(http_ticks "$pid")
	for _ in $(seq 1 "$SCRAPES"); do
		curl -sf -o "$f.$name.body" -w '%{time_total} %{size_download}\n' "$url" >> "$f.$name" ||
			die "$url failed"
	done
	c1=$(http_ticks "$pid")
	echo "$(median_ms "$f.$name") $(max_ms "$f.$name") $(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$SCRAPES" 'BEGIN { printf "%.1f", t / hz / n * 1000 }')"
}

# measure LABEL MODE: every figure of one ipivd, as one line of $tmp/results:
# label mode vms metrics(median max cold cpu bytes series server_ms) vms(median max cpu)
# vm(median max cpu) rss_kb hwm_kb rest_cpu_s quiet_s polls; "-" where not measured
measure() {
	local label=$1 mode=$2 port=${ipivd_port[$2]} pid=${ipivd_pid[$2]} url f s
	local m_fig="- - - - - - -" vms_fig="- - -" vm_fig="- - -" rss hwm
	url=http://127.0.0.1:$port
	f=$tmp/$label
	# the other ipivds pause meanwhile (their polls and diagnosis would take CPU from this one)
	for s in "${modes[@]}"; do [ "$s" = "$mode" ] || kill -STOP "${ipivd_pid[$s]}"; done
	if [ "$mode" != discovery ]; then
		# the first scrape names the VMs the poll loop has not named yet (cold)
		local cold mt
		cold=$(curl -sf -o /dev/null -w '%{time_total}' "$url/metrics" | awk '{ printf "%.1f", $1 * 1000 }')
		[ -n "$PERF" ] && perf_start "$pid" "$f"
		mt=$(timed metrics "$url/metrics")
		[ -n "$PERF" ] && perf_stop "$f"
		m_fig="$(cut -d' ' -f1-2 <<< "$mt") $cold $(cut -d' ' -f3 <<< "$mt")"
		m_fig="$m_fig $(tail -1 "$f.metrics" | cut -d' ' -f2) $(grep -vc '^#' "$f.metrics.body")"
		m_fig="$m_fig $(awk '$1 == "ipiv_scrape_duration_seconds" { printf "%.1f", $2 * 1000 }' "$f.metrics.body")"
		vms_fig=$(timed vms "$url/api/v1/vms")
		vm_fig=$(timed vm "$url/api/v1/vms/${PREFIX}1")
	fi
	rss=$(status_kb "$pid" VmRSS) hwm=$(status_kb "$pid" VmHWM)
	# with --perf, glibc's arena statistics too (malloc_stats() writes them to ipivd's log)
	if [ -n "$PERF" ] && command -v gdb > /dev/null; then
		echo "--- malloc_stats after $label" >> "$tmp/ipivd.$mode.log"
		gdb -p "$pid" -batch -ex 'call (void)malloc_stats()' > /dev/null 2>&1 || true
	fi
	# CPU at rest: no client between the two readings; polls counted around them
	local p0 p1 t0 t1 c0 c1 w0 w2
	p0=$(polls "$port") w0=$(date +%s.%N)
	sleep 2
	# (with --perf, the discovery-only ipivd is recorded over this quiet interval: its polls)
	[ -n "$PERF" ] && [ "$mode" = discovery ] && perf_start "$pid" "$f"
	c0=$(ticks "$pid") t0=$(date +%s.%N)
	sleep "$QUIET" & # waited for, so that a signal to the script is handled at once
	sleep_pid=$!
	wait "$sleep_pid"
	sleep_pid=
	c1=$(ticks "$pid") t1=$(date +%s.%N)
	[ -n "$PERF" ] && [ "$mode" = discovery ] && perf_stop "$f"
	sleep 2
	w2=$(date +%s.%N) p1=$(polls "$port")
	echo "$label $mode $(seen_vms "$port") $m_fig $vms_fig $vm_fig $rss $hwm" \
		"$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w2="$w2" \
			-v p0="${p0% *}" -v p1="${p1% *}" -v r0="${p0#* }" -v r1="${p1#* }" \
			'BEGIN { printf "%.2f %.1f %.1f %d", c / hz, t1 - t0, (p1 - p0) * (t1 - t0) / (w2 - w0), r1 - r0 }')" \
		>> "$tmp/results"
	for s in "${modes[@]}"; do [ "$s" = "$mode" ] || kill -CONT "${ipivd_pid[$s]}"; done
}

# perf record of ipivd over the timed scrapes (--perf), with DWARF call chains (the build
# keeps no frame pointers): $f.perf.data, and the functions by the share of samples they or
# their callees were in (inclusive, unresolved frames left out), $f.perf.txt
perf_start() {
	perf record -F 199 --call-graph dwarf,8192 -o "$2.perf.data" -p "$1" > "$2.perf.log" 2>&1 &
	perf_pid=$!
	sleep 1
}
perf_stop() {
	kill -INT "$perf_pid" 2> /dev/null || true
	wait "$perf_pid" 2> /dev/null || true
	perf_pid=
	perf report -i "$1.perf.data" --stdio --children --sort symbol -g none --percent-limit 1 \
		2> /dev/null | grep -v -e '^#' -e '^$' -e '\] 0x0000' |
		awk '{ printf "%7s %7s  %s\n", $1, $2, $4 }' > "$1.perf.txt" || true
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
mem_start=$avail_kb
for m in "${modes[@]}"; do start_ipivd "$m"; done

# The VMs, a batch at a time: each runs its IPIs, then holds with its vCPU threads stopped.
t_start=$(date +%s)
for ((first = 1; first <= N; first += BATCH)); do
	last=$((first + BATCH - 1))
	[ "$last" -gt "$N" ] && last=$N
	start_batch "$first" "$last"
	[ -t 2 ] && printf '\rVMs started: %d/%d ' "$last" "$N" >&2
done
[ -t 2 ] && printf '\r' >&2
t_vms=$(( $(date +%s) - t_start ))
mem_vms=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)

for m in "${modes[@]}"; do
	for _ in $(seq 1 120); do
		[ "$(seen_vms "${ipivd_port[$m]}")" = "$N" ] && continue 2
		sleep 1
	done
	die "ipivd ($m) sees $(seen_vms "${ipivd_port[$m]}") of the $N VMs after 120 s"
done
# let both settle (names read, a diagnosis window begun) before anything is timed
sleep 5

: > "$tmp/results"
for m in "${modes[@]}"; do
	[ -t 2 ] && printf 'measuring %s ...\r' "$m" >&2
	measure "$m" "$m"
done
if [ "$FILL" -gt 0 ]; then
	for m in "${modes[@]}"; do
		[ -t 2 ] && printf 'filling %s ...    \r' "$m" >&2
		"$FILLER" --pid "${ipivd_pid[$m]}" --vcpus "$FILL" --match "$PREFIX" > "$tmp/fill.$m.log" 2>&1 ||
			die "ipiv-scale-fill failed: $(tail -1 "$tmp/fill.$m.log")"
		measure "$m+fill$FILL" "$m"
	done
fi
[ -t 2 ] && printf '                        \r' >&2

# ---- report ----
vendor=$(awk -F': ' '/^vendor_id/ { print $2; exit }' /proc/cpuinfo)
model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
case $vendor in GenuineIntel) kind=Intel ;; AuthenticAMD) kind=AMD ;; *) kind=$vendor ;; esac
kvm_mod=
for d in /sys/module/kvm_intel /sys/module/kvm_amd /sys/module/kvm_pvm; do
	[ -d "$d" ] && kvm_mod=${kvm_mod:+$kvm_mod,}${d##*/}
done
others=$(( $(curl -sf "http://127.0.0.1:${ipivd_port[${modes[0]}]}/api/v1/vms" |
	jq '[.vms[] | select(.alive)] | length') - N ))

echo "ipivd at scale: $N VMs x $V vCPUs ($MODE, halted targets, $RUNS+1 runs x $IPIS IPIs, then held)"
echo "host: $kind: $model, $(nproc) CPUs, $(( $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1048576 )) GiB, kernel $(uname -r), ${kvm_mod:-kvm}"
echo "ipivd: $("$tmp/bin/ipivd" --version 2>&1 | head -1); $SCRAPES scrapes per figure, CPU at rest over ${QUIET} s"
mem_used=$(( (mem_start - mem_vms) / 1024 ))
[ "$mem_used" -gt 0 ] && mem_used="~$mem_used MiB" || mem_used="? MiB (others freed memory meanwhile)"
echo "VMs started in ${t_vms} s (batches of $BATCH), MemAvailable down $mem_used; other live VMs on the host: $others"
echo "load average at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# columns of $tmp/results: 1 label 2 mode 3 vms 4-10 /metrics median max cold cpu bytes series
# server 11-13 /api/v1/vms median max cpu 14-16 /api/v1/vms/<one> 17 rss 18 hwm 19 rest cpu
# 20 quiet 21 polls 22 reclaims
printf '%-20s %4s %23s %9s %7s %7s %18s %18s %13s %8s %6s %4s\n' "ipivd" "VMs" "/metrics ms" "MB" \
	"series" "server" "/api/v1/vms ms" "/vms/<one> ms" "RSS/HWM" "at rest" "" ""
printf '%-20s %4s %23s %9s %7s %7s %18s %18s %13s %8s %6s %4s\n' "" "" "median   max cold  CPU" "" \
	"" "ms" "median  max  CPU" "median  max  CPU" "MiB" "ms/poll" "% core" "recl"
awk 'function f(v, fmt) { return v == "-" ? "-" : sprintf(fmt, v) }
	{ printf "%-20s %4s %6s %6s %4s %5s %9s %7s %7s %6s %5s %5s %6s %5s %5s %6.1f/%-6.1f %8.1f %6.2f %4d\n",
		$1, $3, f($4, "%.0f"), f($5, "%.0f"), f($6, "%.0f"), f($7, "%.0f"),
		f($8 / 1e6, "%.1f"), f($9, "%d"), f($10, "%.0f"), f($11, "%.0f"), f($12, "%.0f"),
		f($13, "%.0f"), f($14, "%.0f"), f($15, "%.0f"), f($16, "%.0f"),
		$17 / 1024, $18 / 1024, ($21 > 0 ? $19 * 1000 / $21 : 0), $19 / $20 * 100, $22 }' "$tmp/results"
echo
echo "ms: curl time_total over $SCRAPES requests (median, max; cold: the first scrape of that"
echo "ipivd) and the CPU ipivd's HTTP workers spent per request; server: ipiv_scrape_duration_seconds"
echo "(a scrape as ipivd timed it); series: non-comment lines; at rest: ipivd's utime+stime over"
echo "$QUIET s with no client, per discovery poll and as % of one core (default and per-vcpu include"
echo "the snapshot of the 30 s diagnosis window; discovery: ipivd --diag.window 86400, polls alone);"
echo "recl: VMs reclaimed meanwhile (other users' VMs that exited: each reclaim snapshots all VMs"
echo "and walks every map, so those intervals cost more)."
[ "$FILL" -gt 0 ] && {
	echo
	for m in "${modes[@]}"; do sed "s/^/$m: /" "$tmp/fill.$m.log"; done
	echo "(+fill rows: the same real VMs with vCPUs 0..$((FILL - 1)) filled into that ipivd's own maps by"
	echo " ipiv-scale-fill; measured through ipivd's real collector and HTTP path. Discovery"
	echo " still sees each VM's $V real vCPU files.)"
}

if [ -n "$PERF" ]; then
	echo
	echo "where ipivd spent its time during the timed /metrics scrapes, and the discovery-only"
	echo "ipivd over its quiet interval (perf samples in a function"
	echo "or its callees, then in it alone; threads, libc and kernel entry frames left out):"
	while read -r label _; do
		[ -f "$tmp/$label.perf.txt" ] || continue
		echo "  $label:"
		grep -v -E ' (clone3|start_thread|on_request|__libc_start[a-z_]*|_start|main|syscall|entry_SYSCALL[a-z_0-9]*|do_syscall_64|__x64_sys_[a-z_]*|__sys_bpf)$' \
			"$tmp/$label.perf.txt" | head -24 | sed 's/^/    /'
	done < "$tmp/results"
fi

echo
echo "targets (issue 15):"
awk -v n="$N" '
	{ pct[$1] = $19 / $20 * 100; per_poll[$1] = ($21 > 0 ? $19 * 1000 / $21 : 0); lab[NR] = $1 }
	$1 == "default" { d = 1; dm = $4; dmax = $5; dc = $7; db = $8; ds = $9; dr = $17; dh = $18
		at = (n == 512 ? "" : sprintf(" (at %d VMs; the target is for 512)", n))
		printf "  /metrics <= 50 ms at 512 VMs, default mode: %s: median %.0f ms, max %.0f ms, %.0f ms of CPU; %.1fx the target%s\n",
			($4 <= 50 ? "met" : "MISSED"), $4, $5, $7, $4 / 50, at
		printf "  RSS <= 32 MiB at 512 VMs, default mode: %s: VmRSS %.1f MiB, VmHWM %.1f MiB; %.1fx the target%s\n",
			($17 <= 32768 && $18 <= 32768 ? "met" : "MISSED"), $17 / 1024, $18 / 1024, $18 / 32768, at }
	$1 == "per-vcpu" { p = 1; pm = $4; pc = $7; pb = $8; ps = $9; pr = $17 }
	$1 ~ /^base[0-9]*$/ { nb++; bl[nb] = $1; bm[nb] = $4; bc[nb] = $7; br[nb] = $17; bh[nb] = $18 }
	END {
		line = ""
		for (i = 1; i <= NR; i++)
			line = line sprintf("; %s %.2f %% (%.1f ms/poll)", lab[i], pct[lab[i]], per_poll[lab[i]])
		k = ("discovery" in pct) ? "discovery" : "default"
		if (k in pct)
			printf "  discovery <= 1 %% of a core at rest: %s by %s (%.2f %%)\n      all:%s\n",
				(pct[k] <= 1 ? "met" : "MISSED"), k, pct[k], substr(line, 2)
		for (i = 1; d && i <= nb; i++)
			printf "  default vs %s (--base): /metrics %.0f vs %.0f ms (CPU %.0f vs %.0f ms), VmRSS %.1f vs %.1f MiB, VmHWM %.1f vs %.1f MiB\n",
				bl[i], dm, bm[i], dc, bc[i], dr / 1024, br[i] / 1024, dh / 1024, bh[i] / 1024
		if (d && p)
			printf "  per-vCPU mode costs: /metrics %.0f vs %.0f ms (%.1fx; CPU %.0f vs %.0f ms), %.2fx bytes, %.2fx series, RSS %+.1f MiB, at rest %.2f vs %.2f %% of a core\n",
				pm, dm, pm / dm, pc, dc, pb / db, ps / ds, (pr - dr) / 1024, pct["per-vcpu"], pct["default"]
	}' "$tmp/results"
