// SPDX-License-Identifier: GPL-2.0
/* The overhead floor: a program that does nothing on each tracepoint ipiv.bpf.c uses, so
 * bench/overhead.sh can tell the cost of running any raw_tp program from the cost of ours. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* The tracepoints of the collector's probe table (probe_defs[], daemon/lib/probes.c). */
#define EMPTY_PROBE(tp)           \
	SEC("raw_tp/" #tp)        \
	int empty_##tp(void *ctx) \
	{                         \
		return 0;         \
	}

EMPTY_PROBE(kvm_apic_ipi)
EMPTY_PROBE(kvm_apic_accept_irq)
EMPTY_PROBE(kvm_eoi)
EMPTY_PROBE(kvm_vcpu_wakeup)
EMPTY_PROBE(kvm_msr)
EMPTY_PROBE(kvm_mmio)
EMPTY_PROBE(kvm_hypercall)
EMPTY_PROBE(kvm_hv_send_ipi)
EMPTY_PROBE(kvm_hv_send_ipi_ex)
EMPTY_PROBE(kvm_avic_incomplete_ipi)
EMPTY_PROBE(kvm_apicv_inhibit_changed)
EMPTY_PROBE(kvm_exit)
EMPTY_PROBE(kvm_entry)
/* kernel-patches/ tracepoints: not attached where the kernel lacks them, as in ipivd */
EMPTY_PROBE(kvm_pi_wakeup)
EMPTY_PROBE(sched_process_exit)
