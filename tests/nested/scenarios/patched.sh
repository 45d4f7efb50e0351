#!/usr/bin/env bash
# Runs inside the nested SVM host that tests/e2e/test_nested_patched.sh boots: Debian's own
# 6.12 kernel, with kvm.ko and kvm-amd.ko built from linux-source-6.12 plus kernel-patches/6.12.
# Only collects, for the checks on the host: the loaded modules' build IDs, the new event's
# tracefs format, kvm's module BTF (and vmlinux's, which it extends), ipivd --check and
# /api/v1/status, and one scrape with an ipivbench guest running (the object loads and counts
# on the patched kvm).
# kvm_pi_wakeup itself cannot fire here: pi_wakeup_handler() is VMX's posted-interrupt wakeup
# vector, and this host is SVM (nested VMX under TCG has no posted interrupts either);
# tests/bpf/test_bpf_synthetic.c proves what the program makes of its arguments.
. "$(dirname "$0")/../../e2e/lib.sh"
require_root; require_kvm; require_cmd jq curl; require_bin "$IPIVBENCH" "$IPIVD"
tmp=${IPIV_RESULTS:?run me through tests/nested/l1}/patched
mkdir -p "$tmp"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

uname -r > "$tmp/kernel"
for m in kvm kvm_amd; do
	grep -q "^$m " /proc/modules || fail "$m is not loaded in L1"
	cp /sys/module/$m/notes/.note.gnu.build-id "$tmp/$m.build-id" || fail "$m has no build ID"
done
grep -H . /sys/module/kvm_amd/parameters/* > "$tmp/kvm_amd.parameters" 2>/dev/null
T=/sys/kernel/tracing
cp $T/events/kvm/kvm_pi_wakeup/format "$tmp/kvm_pi_wakeup.format" ||
	fail "no events/kvm/kvm_pi_wakeup in L1's tracefs"
[ -r /sys/kernel/btf/kvm ] || fail "kvm has no module BTF in L1 (/sys/kernel/btf/kvm)"
# raw: the host decodes them (bpftool takes minutes under TCG)
cp /sys/kernel/btf/kvm "$tmp/kvm.btf.raw" && cp /sys/kernel/btf/vmlinux "$tmp/vmlinux.btf.raw" ||
	fail "cannot copy the BTF of kvm and vmlinux"

"$IPIVD" --check > "$tmp/check.txt" 2>&1 || fail "ipivd --check failed: $(tail -n3 "$tmp/check.txt")"
PORT=$((19800 + RANDOM % 100))
URL=http://127.0.0.1:$PORT
"$IPIVD" --web.listen-address 127.0.0.1:$PORT --collector.poll-interval 200 \
	> "$tmp/ipivd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "$URL/api/v1/status" > "$tmp/status.json" && break; sleep 0.2; done
[ -s "$tmp/status.json" ] || fail "ipivd did not start: $(tail -n3 "$tmp/ipivd.log")"

vm=pt-x2apic-halt
"$IPIVBENCH" --name $vm -n 2 -m x2apic-phys -t halt -r 2 -k 20 -w 1 --hold inf --timeout 60 \
	--json > "$tmp/$vm.json" 2> "$tmp/$vm.json.err" &
pids+=($!)
wait_json "$tmp/$vm.json"
scrape
curl -sf "$URL/api/v1/status" > "$tmp/status.json" || fail "no status"
echo ok
