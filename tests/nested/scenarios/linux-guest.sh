#!/usr/bin/env bash
# Runs inside L1 (tests/nested/l1 run): ipivd watches a real Linux L2 guest (Debian's kernel,
# tests/nested/guest's initramfs) that makes known numbers of reschedule, function-call and
# TLB-shootdown IPIs, once per APIC mode: x2APIC physical (pc machine) and x2APIC cluster
# (q35 with a vIOMMU doing interrupt remapping). ipivd is scraped just before the guest is
# told to start and just after it has read its own /proc/interrupts again, while the VM lives.
#
#   linux-guest.sh --kernel VMLINUZ [--initramfs IMG] [--modes "physical cluster"]
#                  [--wake N] [--membarrier N] [--tlb N]
#
# L2_APPEND adds to the guest's kernel command line (ipiv.trace=1: the guest prints its
# ftrace of the workload, scheduler and IPI events, before it powers off); L2_EXIT_WAIT is
# how long (tenths of a second) the guest may take to power off after "bye" (300).
#
# Results in $IPIV_RESULTS, per MODE: MODE-serial.log, MODE-guest.json (the guest's counts
# over its window, and over the wider ready..mark as .outer: see tests/nested/guest/
# ipi-workload.c), MODE-{before,after}.prom and .json (ipivd's /metrics and
# /api/v1/vms/NAME), MODE-findings.json (a stream of {"t", "report"}: /api/v1/findings?vm=NAME every 0.5 s from
# "go" to one window after the end), MODE-times; and ipivd.log, status.json.
# Exit 0 when every mode ran; checking is the host test's job (tests/e2e/test_nested_linux_guest.sh).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECKOUT=$(cd "$HERE/../../.." && pwd)
IPIVD=$CHECKOUT/.output/ipivd
R=${IPIV_RESULTS:?runs inside tests/nested/l1, which sets IPIV_RESULTS}

kernel="" initramfs=$R/l2-initramfs.img modes="physical cluster" wake=200 membarrier=200 tlb=200
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--initramfs) initramfs=$2; shift 2 ;;
	--modes) modes=$2; shift 2 ;;
	--wake) wake=$2; shift 2 ;;
	--membarrier) membarrier=$2; shift 2 ;;
	--tlb) tlb=$2; shift 2 ;;
	*) echo "linux-guest: unknown option '$1' (see the top of $0)" >&2; exit 2 ;;
	esac
done

T0=$(date +%s.%N)
say() { printf 'linux-guest [%6.1f s] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
die() { say "FAIL: $*"; exit 1; }
since() { echo "$(date +%s.%N) - $1" | bc; }

[ -r "$kernel" ] || die "--kernel '$kernel' is not readable"
[ -r "$initramfs" ] || die "initramfs '$initramfs' is not readable (tests/nested/guest/build-initramfs)"
[ -x "$IPIVD" ] || die "$IPIVD is not built (make all)"
[ -c /dev/kvm ] || die "no /dev/kvm in L1"
for c in qemu-system-x86_64 curl jq mkfifo bc; do
	command -v $c > /dev/null || die "$c is missing"
done

# Diagnosis windows short enough for one to fall inside the workload (2 to 20 s here, L1
# being emulated), and a low minimum of IPIs per window: the rule, not its default
# threshold, is under test.
DIAG_WINDOW=2
DIAG_MIN_IPIS=20
PORT=$(( 20000 + RANDOM % 20000 ))
URL=http://127.0.0.1:$PORT
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
	wait 2> /dev/null
}
trap cleanup EXIT

"$IPIVD" --web.listen-address 127.0.0.1:$PORT --collector.poll-interval 200 \
	--collector.per-vcpu --diag.window $DIAG_WINDOW --diag.min-ipis=$DIAG_MIN_IPIS > "$R/ipivd.log" 2>&1 &
ipivd=$!
pids+=($ipivd)
for _ in $(seq 1 600); do
	curl -sf "$URL/api/v1/status" > "$R/status.json" && break
	kill -0 $ipivd 2> /dev/null || die "ipivd exited: $(tail -n3 "$R/ipivd.log")"
	sleep 0.1
done
[ -s "$R/status.json" ] || die "ipivd did not answer in 60 s: $(tail -n3 "$R/ipivd.log")"
say "ipivd up (degraded: $(jq -c .degraded "$R/status.json"))"

# wait_serial LOG MARKER SECS QEMU-PID: until MARKER is in the guest's console log.
wait_serial() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -aq "$2" "$1" && return 0
		kill -0 "$4" 2> /dev/null || return 1
		sleep 0.1
	done
	return 1
}

# findings_poll NAME OUT: appends {"t": seconds, "report": /api/v1/findings?vm=NAME} to OUT
# every half second until killed.
findings_poll() {
	local t0
	t0=$(date +%s.%N)
	: > "$2"
	while :; do
		{
			printf '{"t":%s,"report":' "$(since "$t0")"
			curl -sf "$URL/api/v1/findings?vm=$1" || echo null
			echo '}'
		} > "$2.one"
		cat "$2.one" >> "$2"
		sleep 0.5
	done
}

scrape() {	# PREFIX NAME
	curl -sf "$URL/metrics" > "$1.prom" || die "scrape of $URL/metrics failed"
	curl -sf "$URL/api/v1/vms/$2" > "$1.json" || die "no /api/v1/vms/$2"
}

run_mode() {
	local mode=$1 name=ipiv-l2-$1 fifo=/tmp/l2-$1 machine qemu cat_pid fd poller t_start t_go t_done
	local log=$R/$mode-serial.log
	case $mode in
	physical) machine=(-machine pc) ;;
	# Interrupt remapping lets Linux use x2APIC cluster mode, whose IPIs are logical.
	cluster) machine=(-machine q35,kernel-irqchip=split -device intel-iommu,intremap=on) ;;
	*) die "unknown mode '$mode'" ;;
	esac
	rm -f "$fifo.in" "$fifo.out"
	mkfifo "$fifo.in" "$fifo.out" || die "mkfifo $fifo"
	# The serial port is a pipe: the host reads the console from .out and types into .in.
	cat "$fifo.out" > "$log" &
	cat_pid=$!
	pids+=($cat_pid)
	exec {fd}<> "$fifo.in"
	t_start=$(date +%s.%N)
	# No PV TLB flush: with it the guest skips the shootdown IPI to a vCPU that L1 has
	# preempted (most of them here, 174 of 200 in one run), and the number of TLB IPIs
	# would be up to L1's scheduler instead of the workload. One socket: the two vCPUs
	# share their last-level cache, so a wake-up of a task on the busy other CPU is a
	# reschedule IPI (across caches the scheduler queues it with a function-call IPI).
	qemu-system-x86_64 -enable-kvm -cpu host,kvm-pv-tlb-flush=off -smp 2,sockets=1,cores=2 -m 256 \
		-name "$name" "${machine[@]}" -kernel "$kernel" -initrd "$initramfs" \
		-append "console=ttyS0 quiet loglevel=1 panic=-1 ipiv.wake=$wake ipiv.membarrier=$membarrier ipiv.tlb=$tlb ${L2_APPEND:-}" \
		-chardev pipe,id=ser0,path="$fifo" -serial chardev:ser0 \
		-display none -monitor none -nodefaults -no-reboot > "$R/$mode-qemu.log" 2>&1 &
	qemu=$!
	pids+=($qemu)
	say "$mode: L2 $name started (pid $qemu)"
	wait_serial "$log" IPIV-READY 240 $qemu ||
		die "$mode: the guest never got ready: $(tail -c 300 "$log" | tr -d '\r') $(tail -n2 "$R/$mode-qemu.log")"
	say "$mode: guest ready after $(since "$t_start") s"

	# ipivd finds a VM on its next poll; its series exist once it has sent anything.
	for _ in $(seq 1 100); do
		curl -sf "$URL/api/v1/vms/$name" > /dev/null && break
		sleep 0.2
	done
	scrape "$R/$mode-before" "$name"
	# Findings are polled from the side (every report is kept: each covers one window).
	findings_poll "$name" "$R/$mode-findings.json" &
	poller=$!
	pids+=($poller)
	t_go=$(date +%s.%N)
	echo go >&$fd
	wait_serial "$log" IPIV-DONE 600 $qemu ||
		die "$mode: the workload did not finish: $(tail -c 300 "$log" | tr -d '\r')"
	scrape "$R/$mode-after" "$name"
	t_done=$(date +%s.%N)
	echo mark >&$fd
	say "$mode: workload and both scrapes in $(since "$t_go") s"
	wait_serial "$log" IPIV-OUTER-END 120 $qemu || die "$mode: the guest did not take its last reading"
	# One more diagnosis window, so that the one holding the workload's end is evaluated.
	sleep $((DIAG_WINDOW + 1))
	kill $poller
	wait $poller 2> /dev/null
	rm -f "$R/$mode-findings.json.one"

	echo bye >&$fd
	for _ in $(seq 1 ${L2_EXIT_WAIT:-300}); do kill -0 $qemu 2> /dev/null || break; sleep 0.1; done
	kill $qemu 2> /dev/null && say "$mode: the guest did not power off; killed"
	wait $qemu 2> /dev/null
	exec {fd}>&-
	wait $cat_pid 2> /dev/null
	rm -f "$fifo.in" "$fifo.out"
	# The window's JSON, with the guest's outer reading (ready..mark) as .outer
	tr -d '\r' < "$log" | sed -n '/^IPIV-JSON-BEGIN/,/^IPIV-JSON-END/p' | grep '^{' > "$R/$mode-window.json"
	tr -d '\r' < "$log" | sed -n '/^IPIV-OUTER-BEGIN/,/^IPIV-OUTER-END/p' | grep '^{' > "$R/$mode-outer.json"
	jq -s '.[0] + {outer: .[1]}' "$R/$mode-window.json" "$R/$mode-outer.json" > "$R/$mode-guest.json" &&
		jq -e '.ipis and .outer.ipis' "$R/$mode-guest.json" > /dev/null ||
		die "$mode: no complete JSON from the guest"
	rm -f "$R/$mode-window.json" "$R/$mode-outer.json"
	printf 'boot %s\nworkload %s\nvm %s\n' "$(echo "$t_go - $t_start" | bc)" \
		"$(echo "$t_done - $t_go" | bc)" "$(since "$t_start")" > "$R/$mode-times"
	say "$mode: guest counted $(jq -c '{RES, CAL, TLB, IWI, ipis, seconds}' "$R/$mode-guest.json"); VM lived $(since "$t_start") s"
}

for mode in $modes; do run_mode "$mode"; done
say "done"
