# Kernel series checks (kernel-patches/check-kernel does the work; see kernel-patches/README.md).
# check-kernel: apply the 6.12 series to Debian's linux-source-6.12, build KVM as modules with
# -Werror, verify the exports and checkpatch; part of `make check` (one entry of its tally,
# KERNEL_CHECKS, so a kernel failure does not keep the other tests from running).
# check-kernel-boot: build a bzImage, boot it under QEMU TCG and check each new event's format
# (about 20 minutes on 2 cores the first time); not part of `make check`.

check-kernel:
	$(call msg,KERNEL,kernel-patches/6.12)
	$(Q)V=$(V) kernel-patches/check-kernel

check-kernel-boot:
	$(call msg,KERNEL,kernel-patches/6.12 boot)
	$(Q)V=$(V) kernel-patches/check-kernel --boot

KERNEL_CHECKS := kernel-patches/check-kernel

.PHONY: check-kernel check-kernel-boot
