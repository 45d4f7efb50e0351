#!/bin/bash
# tests/nested/l1's handling of an L1 that fails under the emulator, with a fake QEMU in
# place of the real one (issue 12): TCG's emulated SVM has panicked L1, reset it silently and
# hung it in CI runs, and the harness boots such an L1 once more. Each way of failing is
# played here once and always, and the exit status, message and kept files are checked. No VM
# runs; L1's pieces are prepared (or taken from the cache) as for the real nested tests.
. "$(dirname "$0")/lib.sh"
require_root; require_cmd apt-get dpkg-deb cpio gzip modinfo timeout
L1=$E2E_ROOT/tests/nested/l1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

# The fake: reads where the console and the results share are from QEMU's own arguments,
# counts its boots in $FAKE_STATE, and on boot N plays the N-th word of $FAKE_PLAN:
#   ok       the command ran: results/rc holds $FAKE_RC
#   panic    L1's kernel panicked: a panic line on the console, QEMU exits cleanly
#   stop     a silent reset: QEMU exits cleanly, nothing on the console
#   hang     nothing written anywhere until killed
#   chatter  a hung L1 that keeps printing (RCU stall warnings) to its console only
#   error    QEMU itself fails
cat > "$tmp/bin/qemu-system-x86_64" <<'EOF'
#!/bin/bash
console= results=
while [ $# -gt 0 ]; do
	case $1 in
	-serial) console=${2#file:}; shift ;;
	-virtfs) case $2 in *mount_tag=results,*)
			results=${2#*path=}; results=${results%%,*} ;; esac; shift ;;
	esac
	shift
done
[ -n "$console" ] && [ -d "$results" ] || { echo "fake qemu: no console or results" >&2; exit 1; }
n=$(($(cat "$FAKE_STATE" 2>/dev/null || echo 0) + 1))
echo "$n" > "$FAKE_STATE"
read -ra plan <<< "$FAKE_PLAN"
what=${plan[n - 1]:-${plan[-1]}}
echo "[    0.000000] Linux version 6.1.0 (fake boot $n: $what)" > "$console"
case $what in
ok)	echo "ipiv-l1: running the command" >> "$console"
	echo "$FAKE_RC" > "$results/rc" ;;
panic)	echo "Kernel panic - not syncing: corrupted stack end detected inside scheduler" \
		>> "$console" ;;
stop)	;;
hang)	exec sleep 3600 ;;
chatter) while :; do echo "rcu: INFO: rcu_preempt detected stalls" >> "$console"; sleep 1; done ;;
error)	echo "qemu-system-x86_64: -virtfs local: cannot initialize fsdev" >&2; exit 1 ;;
esac
exit 0
EOF
chmod +x "$tmp/bin/qemu-system-x86_64"

# play NAME PLAN RC [RUN OPTIONS]: runs the harness with the fake under PLAN, the command's
# status RC when it runs; leaves its status in $rc, its stderr in $tmp/NAME.err, its results
# in $tmp/NAME
play() {
	local name=$1 plan=$2 want=$3; shift 3
	rm -f "$tmp/state"
	rc=0
	PATH=$tmp/bin:$PATH FAKE_STATE=$tmp/state FAKE_PLAN=$plan FAKE_RC=$want \
		"$L1" run --results "$tmp/$name" "$@" -- true 2> "$tmp/$name.err" || rc=$?
	boots=$(cat "$tmp/state" 2>/dev/null || echo 0)
	note "$name ($plan): exit $rc after $boots boot(s): $(tail -n 1 "$tmp/$name.err")"
}
said() { grep -q -- "$2" "$tmp/$1.err" || fail "$1: no '$2' in: $(cat "$tmp/$1.err")"; }

# prepare first, so that its download (a cold cache) is not inside a timed run
"$L1" prepare > /dev/null || fail "tests/nested/l1 prepare failed"

play clean "ok" 7
expect_eq "clean: exit" "$rc" 7
expect_eq "clean: boots" "$boots" 1

play panic-once "panic ok" 3
expect_eq "panic once: exit (the command's)" "$rc" 3
expect_eq "panic once: boots" "$boots" 2
said panic-once "panicked under the emulator (attempt 1): Kernel panic - not syncing"
[ -f "$tmp/panic-once/panicked-1/console.log" ] || fail "panic once: the first attempt's console was not kept"
grep -q 'fake boot 2' "$tmp/panic-once/console.log" ||
	fail "panic once: the results share is not the second boot's"

play panic-always "panic" 0
expect_eq "panic always: exit" "$rc" 125
expect_eq "panic always: boots" "$boots" 2
said panic-always "L1 did not finish the command"

play stop-once "stop ok" 0
expect_eq "silent stop once: exit" "$rc" 0
expect_eq "silent stop once: boots" "$boots" 2
said stop-once "stopped under the emulator before the command ended (attempt 1)"
[ -d "$tmp/stop-once/stopped-1" ] || fail "silent stop once: stopped-1/ not kept"

play stop-always "stop" 0
expect_eq "silent stop always: exit" "$rc" 125
expect_eq "silent stop always: boots" "$boots" 2

# the watchdog looks every second: --stall 10 takes a hung L1 after 10-11 s
start=$SECONDS
play hang-once "hang ok" 5 --stall 10
expect_eq "hang once: exit" "$rc" 5
expect_eq "hang once: boots" "$boots" 2
grep -q 'hung' "$tmp/hang-once/stopped-1/console.log" ||
	fail "hang once: the kept console does not say it hung"
[ $((SECONDS - start)) -lt 30 ] || fail "hang once: took $((SECONDS - start)) s with --stall 10"

# console output alone is no progress
play chatter-once "chatter ok" 0 --stall 10
expect_eq "console-only chatter once: exit" "$rc" 0
expect_eq "console-only chatter once: boots" "$boots" 2

play error "error" 0
expect_eq "qemu error: exit" "$rc" 125
expect_eq "qemu error: boots (no retry for QEMU's own failure)" "$boots" 1
said error "qemu exited with an error: qemu-system-x86_64: -virtfs local: cannot initialize fsdev"

# bad options are refused in one line before anything boots
play bad-stall "ok" 0 --stall soon
expect_eq "--stall soon: exit" "$rc" 125
expect_eq "--stall soon: boots" "$boots" 0
said bad-stall "--stall needs seconds, not 'soon'"
echo "PASS: the nested harness retries a panicked, silently stopped or hung L1 once, and only once"
