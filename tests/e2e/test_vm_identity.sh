#!/usr/bin/env bash
# What joins a VM with other inventories, end to end: ipivd reads each VM's VMM and UUID from
# its real command line (ipivbench --uuid, QEMU's -uuid, libvirt-style -name guest= with
# -smbios type=1,uuid=) and shows them, with its id of the VM, in ipiv_vm_info and in
# /api/v1/vms; a VMM given no UUID gets no uuid label. (QEMU and ipivbench refuse a UUID
# that is not one: the unit tests of naming.c feed ipivd such command lines.)
# IPIV_E2E_VM_PREFIX (default id) names the guests, IPIV_E2E_PORT the daemon's port.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl promtool qemu-system-x86_64
require_bin "$IPIVBENCH" "$IPIVD"

P=${IPIV_E2E_VM_PREFIX:-id}
PORT=${IPIV_E2E_PORT:-$(pick_port)}
URL=http://127.0.0.1:$PORT
U_BENCH=0b6e0f7e-1d3a-4c55-8d2f-9a1b2c3d4e5f
U_QEMU=5E1F2A3B-4C5D-4E6F-8A7B-9C0D1E2F3A4B	# QEMU takes upper case; ipivd writes lower
U_SMBIOS=c7a5fdbd-cdaf-4455-926a-d65c16db1809

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for f in "$tmp"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	wait 2>/dev/null; rm -rf "$tmp"
}
trap cleanup EXIT

"$IPIVD" --web.listen-address "127.0.0.1:$PORT" > "$tmp/ipivd.log" 2>&1 &
pids+=($!)
"$IPIVBENCH" --name "$P-bench" --uuid "$U_BENCH" --wait-for-go --hold inf > /dev/null 2> "$tmp/bench.err" &
pids+=($!)
"$IPIVBENCH" --name "$P-plain" --wait-for-go --hold inf > /dev/null 2> "$tmp/plain.err" &
pids+=($!)
# Paused QEMU guests (-S): their VMs exist in KVM, no guest code runs.
qemu() {	# PIDFILE ARGS...
	local pidfile=$1; shift
	qemu-system-x86_64 "$@" -accel kvm -display none -nodefaults -m 32 -S -daemonize \
		-pidfile "$pidfile" 2> "$pidfile.err" ||
		fail "qemu-system-x86_64 -accel kvm did not start: $(cat "$pidfile.err")"
}
qemu "$tmp/qemu.pid" -name "$P-qemu" -uuid "$U_QEMU"
qemu "$tmp/lv.pid" -name "guest=$P-lv,debug-threads=on" -smbios "type=1,manufacturer=ipiv,uuid=$U_SMBIOS"

# Each VM once ipivd has named it: the API first, then /metrics, which a VM the API listed
# is in too (the other order raced a VM discovered between the two requests).
ok=
for _ in $(seq 1 100); do
	if curl -sf "$URL/api/v1/vms" > "$tmp/vms.json" &&
	   [ "$(jq --arg p "$P-" '[.vms[] | select(.name | startswith($p))] | length' "$tmp/vms.json")" = 4 ] &&
	   curl -sf "$URL/metrics" > "$tmp/metrics"
	then
		ok=1; break
	fi
	sleep 0.2
done
[ -n "$ok" ] || fail "ipivd did not name our 4 VMs: $(jq -c '[.vms[].name]' "$tmp/vms.json" 2>/dev/null) $(tail -3 "$tmp/ipivd.log")"

check_vm() {	# NAME VMM UUID (empty: none)
	local name=$1 vmm=$2 uuid=$3 row id want
	row=$(jq -c --arg n "$name" '.vms[] | select(.name == $n)' "$tmp/vms.json")
	[ -n "$row" ] || fail "$name not in /api/v1/vms"
	expect_eq "$name: API vmm" "$(jq -r .vmm <<<"$row")" "$vmm"
	expect_eq "$name: API uuid" "$(jq -r '.uuid // "none"' <<<"$row")" "${uuid:-none}"
	id=$(jq -r .id <<<"$row")
	want="ipiv_vm_info{vm=\"$name\",vm_id=\"$id\",vmm=\"$vmm\"${uuid:+,uuid=\"$uuid\"}} 1"
	grep -qxF "$want" "$tmp/metrics" ||
		fail "$name: no '$want' in /metrics: $(grep "^ipiv_vm_info{vm=\"$name\"" "$tmp/metrics")"
	# the id joins back to the API's document of the VM
	expect_eq "$name: /api/v1/vms/$id" "$(curl -sf "$URL/api/v1/vms/$id" | jq -r .name)" "$name"
}
check_vm "$P-bench" ipivbench "$U_BENCH"
check_vm "$P-plain" ipivbench ""
check_vm "$P-qemu" qemu "${U_QEMU,,}"
check_vm "$P-lv" libvirt-qemu "$U_SMBIOS"
promtool check metrics < "$tmp/metrics" > "$tmp/promtool.out" 2>&1 ||
	fail "promtool check metrics: $(cat "$tmp/promtool.out")"
grep "^ipiv_vm_info{vm=\"$P-" "$tmp/metrics"
note "ipiv_vm_info and /api/v1/vms: vm_id, vmm and uuid of ipivbench and QEMU guests"
echo ok
