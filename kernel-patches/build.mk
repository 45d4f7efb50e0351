# Kernel series checks (kernel-patches/check-kernel does the work; see kernel-patches/README.md).
# check-kernel: for the 6.12 series (Debian's linux-source-6.12) and the 6.18 series (the shared
# 6.18.44 subset): apply each patch in turn and, after each, build KVM as modules with -Werror
# and verify the exports; checkpatch --strict per patch. Part of `make check` (one entry of its
# tally, KERNEL_CHECKS, so a kernel failure does not keep the other tests from running).
# check-kernel-boot: build a 6.12 bzImage, boot it under QEMU TCG and check each new event's
# format (about an hour on 2 cores the first time); not part of `make check`.

check-kernel:
	$(call msg,KERNEL,kernel-patches/6.12 kernel-patches/6.18)
	$(Q)V=$(V) kernel-patches/check-kernel --series all

check-kernel-boot:
	$(call msg,KERNEL,kernel-patches/6.12 boot)
	$(Q)V=$(V) kernel-patches/check-kernel --boot

KERNEL_CHECKS := kernel-patches/check-kernel

.PHONY: check-kernel check-kernel-boot
