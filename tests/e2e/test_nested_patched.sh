#!/usr/bin/env bash
# The 6.12 series booted: Debian's own linux-image-6.12.118+deb12-amd64 kernel as the nested
# SVM host (tests/nested/l1 under QEMU TCG), with kvm.ko, kvm-intel.ko and kvm-amd.ko built
# from linux-source-6.12 plus kernel-patches/6.12 against that kernel's headers
# (kernel-patches/check-kernel --distro-modules: its config, vermagic, symbol CRCs and BTF).
# Checked here from what L1 brought back: the rebuilt modules are the ones loaded;
# events/kvm/kvm_pi_wakeup has the format kernel-patches/README.md gives; kvm's module BTF has
# btf_trace_kvm_pi_wakeup with the vCPU as its one argument; ipivd attaches ipiv_pi_wakeup to
# it and says the posted wakeups come from the patched tracepoint, the other quantities from
# fexit or derivation; a guest's IPIs are counted exactly on the patched kvm.
# The event cannot fire on this host (it is VMX's posted-interrupt wakeup; L1 is SVM, and
# nested VMX under TCG has no posted interrupts): tests/bpf/test_bpf_synthetic.c proves the
# values ipivd takes from it.
. "$(dirname "$0")/lib.sh"
require_root; require_cmd qemu-system-x86_64 jq apt-get dpkg-deb xz bpftool objcopy; require_bin "$IPIVBENCH" "$IPIVD"

# The kernel of the series' recorded source (kernel-patches/README.md): image and headers.
release=6.12.118+deb12-amd64
version=6.12.118-1~deb12u1
cache=${IPIV_NESTED_CACHE:-/var/cache/ipiv/nested}/debian-$release
pkgs=("linux-image-$release-unsigned" "linux-headers-$release"
      linux-headers-6.12.118+deb12-common linux-kbuild-6.12.118+deb12)
if [ ! -s "$cache/done" ]; then
	note "fetching Debian's $release kernel and headers into $cache"
	rm -rf "$cache" && mkdir -p "$cache/deb"
	(cd "$cache/deb" && apt-get download -q "${pkgs[@]/%/=$version}" > /dev/null 2>&1) ||
		fail "apt-get download of ${pkgs[*]} ($version) failed: run apt-get update"
	for d in "$cache"/deb/*.deb; do dpkg-deb -x "$d" "$cache/root"; done
	rm -rf "$cache/deb"
	echo "$version" > "$cache/done"
fi
headers=$cache/root/usr/src/linux-headers-$release
kernel=$cache/root/boot/vmlinuz-$release

# The modules of the series for that kernel, then its module tree with them in place of its own.
results=$OUT/nested/patched
rm -rf "$results"; mkdir -p "$results"
built=$OUT/nested/patched-ko
"$E2E_ROOT/kernel-patches/check-kernel" --distro-modules "$headers" "$built" ||
	fail "the 6.12 series' KVM modules for $release did not build"
moddir=$results/modules
mkdir -p "$moddir"
cp -as "$cache/root/lib/modules/$release" "$moddir/" # a tree of links to Debian's files
rm -f "$moddir/$release"/kernel/arch/x86/kvm/kvm*.ko.xz
cp "$built"/kvm.ko "$built"/kvm-amd.ko "$built"/kvm-intel.ko "$moddir/$release/kernel/arch/x86/kvm/"

"$E2E_ROOT/tests/nested/l1" run --results "$results" --timeout 900 --kernel "$kernel" \
	--modules "$moddir" -- bash tests/nested/scenarios/patched.sh
rc=$?
rm -rf "$moddir"
cat "$results/log" 2>/dev/null
[ $rc -eq 0 ] || fail "the patched-kernel scenario failed in L1 (exit $rc)"
tmp=$results/patched

expect_eq "L1's kernel" "$(cat "$tmp/kernel")" "$release"
for m in kvm kvm-amd; do
	objcopy --dump-section .note.gnu.build-id="$results/$m.build-id" "$built/$m.ko" "$results/$m.o.tmp"
	cmp -s "$results/$m.build-id" "$tmp/${m//-/_}.build-id" ||
		fail "the $m loaded in L1 is not the one built with the series (build ID)"
	rm -f "$results/$m.o.tmp"
done

# The format kernel-patches/README.md documents: the vCPU id, printed as "vcpu %u".
f=$tmp/kvm_pi_wakeup.format
grep -qx 'name: kvm_pi_wakeup' "$f" || fail "format: $(head -n1 "$f")"
fields=$(sed -n 's/^\tfield:\([^;]*\);.*/\1/p' "$f" | grep -v ' common_' || true)
expect_eq "kvm_pi_wakeup's own fields" "$fields" "unsigned int vcpu_id"
grep -qF 'print fmt: "vcpu %u", REC->vcpu_id' "$f" || fail "format: $(grep 'print fmt' "$f")"

# The raw tracepoint's prototype in kvm's BTF: (void *__data, struct kvm_vcpu *vcpu). kvm's
# BTF is split: its ids continue vmlinux's, and kvm_vcpu may be in either.
bpftool btf dump file "$tmp/vmlinux.btf.raw" > "$tmp/vmlinux.btf" &&
	bpftool -B "$tmp/vmlinux.btf.raw" btf dump file "$tmp/kvm.btf.raw" > "$tmp/kvm.btf" ||
	fail "bpftool cannot decode the BTF L1 brought back"
btf_type() { grep -h -m1 "^\[$1\] " "$tmp/kvm.btf" "$tmp/vmlinux.btf"; }
ref() { btf_type "$1" | sed -n "s/^\[$1\] $2 '[^']*' type_id=\([0-9]*\)\$/\1/p"; }
proto=$(sed -n "s/^\[[0-9]*\] TYPEDEF 'btf_trace_kvm_pi_wakeup' type_id=\([0-9]*\)\$/\1/p" "$tmp/kvm.btf")
[ -n "$proto" ] || fail "kvm's BTF has no btf_trace_kvm_pi_wakeup"
fp=$(ref "$proto" PTR)
expect_eq "btf_trace_kvm_pi_wakeup: a pointer to a prototype of 2 arguments (data, vCPU)" \
	"$(btf_type "$fp" | sed -n 's/.* FUNC_PROTO .* vlen=\([0-9]*\)$/\1/p')" 2
arg=$(grep -h -A2 "^\[$fp\] FUNC_PROTO" "$tmp/kvm.btf" | sed -n "3s/.*type_id=\([0-9]*\)\$/\1/p")
btf_type "$(ref "$arg" PTR)" | grep -q "^\[[0-9]*\] STRUCT 'kvm_vcpu' " ||
	fail "btf_trace_kvm_pi_wakeup's argument is not a struct kvm_vcpu *: $(btf_type "$arg")"

# ipivd: the program attached to the patched event, and the source of each quantity.
s=$tmp/status.json
expect_eq "probe kvm_pi_wakeup attached" \
	"$(jq -r '.probes[] | select(.name == "kvm_pi_wakeup") | .attached' "$s")" true
for want in "posted_wakeups kvm_pi_wakeup patched_tracepoint" \
	    "icr_write_traps kvm_exit derived" \
	    "x2apic_fastpath fexit/handle_fastpath_set_msr_irqoff fexit" \
	    "avic_running fexit/avic_vcpu_load fexit" \
	    "pi_descriptor_updates null none"; do
	set -- $want # three words
	expect_eq "source of $1" "$(jq -r --arg q "$1" '.sources[$q] | "\(.probe) \(.kind)"' "$s")" "$2 $3"
done
grep -q 'posted_wakeups: kvm_pi_wakeup (patched_tracepoint)' "$tmp/check.txt" ||
	fail "ipivd --check does not name kvm_pi_wakeup as the posted wakeups' source: $(cat "$tmp/check.txt")"
expect_eq "degraded" "$(jq .degraded "$s")" false

# A guest's IPIs, counted exactly on the patched kvm (x2APIC ICR writes by WRMSR exits).
vm=pt-x2apic-halt
sent=$(jq '[.vcpus[].sent] | add' "$tmp/$vm.json")
[ "$sent" -gt 0 ] || fail "the guest sent nothing"
expect_eq "$vm: sent" "$(sum_metric ipiv_ipis_sent_total "vm=\"$vm\"" 'path="x2apic_msr"')" "$sent"
expect_eq "$vm: accepted" "$(sum_metric ipiv_interrupts_accepted_total "vm=\"$vm\"")" \
	"$(jq '[.vcpus[].received] | add' "$tmp/$vm.json")"
note "L1 $release with the series' kvm.ko/kvm-amd.ko: kvm_pi_wakeup in tracefs and BTF, attached; $sent IPIs counted"
echo ok
