/* ipivbench: the host facts that decide what a number means (CPU, kernel, KVM module
 * and its IPI parameters), read from /proc and /sys under a path prefix. */
#ifndef IPIV_BENCH_HOST_H
#define IPIV_BENCH_HOST_H

#include "result.h"

/* Fills *out from <root>/proc and <root>/sys; root is "" in production, a temp dir in
 * tests. Clears *out first: tsc_khz, pv_send_ipi and x2apic come from KVM ioctls and are
 * the VMM's to fill afterwards. Anything missing or unreadable stays "" and is not an
 * error; content is sanitised to printable ASCII and truncated to the field sizes.
 *
 * kvm_module is the first of kvm_intel, kvm_amd, kvm_pvm present in <root>/sys/module.
 * params holds that module's IPI-relevant parameters that exist, under their plain names
 * (enable_ipiv), then the kvm core's halt_poll_ns under the qualified name
 * kvm.halt_poll_ns: a name without a dot belongs to kvm_module.
 * Returns 0, or -EINVAL / -ENAMETOOLONG for a bad root. */
int bench_host_read(const char *root, struct bench_host *out);

#endif
