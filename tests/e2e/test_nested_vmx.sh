#!/usr/bin/env bash
# ipivd on a real (emulated) VMX host: tests/nested/vmx/run boots Debian's stock 6.1 kernel
# under Bochs (corei7_skylake_x) with kvm_intel, runs ipivbench scenarios under ipivd there
# and checks ipivd's counts against ipivbench's, its exits by reason against the kernel's
# kvm_exit histogram and its x2APIC fastpath count against the kernel's own returns.
. "$(dirname "$0")/lib.sh"
require_root; require_cmd bochs xorriso tmux jq; require_bin "$IPIVBENCH" "$IPIVD"

# Artifacts (console, report) stay in .output/nested/vmx.
results=$OUT/nested/vmx
rm -rf "$results"; mkdir -p "$results"
"$E2E_ROOT/tests/nested/vmx/run" --results "$results" --timeout 1500
rc=$?
cat "$results/report.txt" 2>/dev/null
[ $rc -eq 0 ] || fail "the VMX run failed (exit $rc)"
echo ok
