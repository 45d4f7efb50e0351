/* ipivbench: what one benchmark invocation measured, in plain data.
 * Filled by the VMM (bench/vmm.c), consumed by the pure report module (bench/report.c). */
#ifndef IPIV_BENCH_RESULT_H
#define IPIV_BENCH_RESULT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_VCPUS 64
#define BENCH_MAX_RUNS	1000

/* Guest execution mode. */
enum bench_cpu_mode {
	BENCH_CPU_REAL, /* 16-bit real mode: portable default */
	BENCH_CPU_LONG, /* 64-bit long mode */
};

/* What the target vCPUs do between IPIs. */
enum bench_target {
	BENCH_TARGET_SPIN, /* never halts, as in kvm-unit-tests vmexit ipi */
	BENCH_TARGET_HALT, /* sti; hlt between IPIs: exercises the wakeup path */
};

/* The IPI pattern. Names (bench_pattern_name) are stable: they appear in JSON and CLI. */
enum bench_pattern {
	BENCH_X2APIC_PHYS,	/* "x2apic-phys":      WRMSR 0x830, physical unicast */
	BENCH_X2APIC_LOGICAL,	/* "x2apic-logical":   cluster mode, one target per IPI */
	BENCH_X2APIC_MULTICAST, /* "x2apic-multicast": cluster mode, several targets per IPI */
	BENCH_X2APIC_BROADCAST, /* "x2apic-allbutself": shorthand all-but-self */
	BENCH_X2APIC_SELF,	/* "x2apic-self":      SELF IPI MSR 0x83F */
	BENCH_XAPIC_PHYS,	/* "xapic-phys":       MMIO ICR, physical unicast */
	BENCH_XAPIC_LOGICAL,	/* "xapic-logical":    MMIO ICR, flat logical */
	BENCH_XAPIC_BROADCAST,	/* "xapic-allbutself": MMIO ICR, shorthand all-but-self */
	BENCH_NMI,		/* "nmi":              x2APIC physical, delivery mode NMI */
	BENCH_PV_SEND_IPI,	/* "pv":               KVM_HC_SEND_IPI hypercall */
	BENCH_PATTERN_COUNT,
};

/* Exact per-vCPU counts kept by the guest itself. */
struct bench_vcpu_counts {
	uint64_t sent;	   /* IPIs this vCPU sent (one per ICR write / hypercall) */
	uint64_t received; /* interrupts its handler took (IPI or NMI) */
};

/* Facts about the host that decide what a number means. Strings are "" when unknown. */
struct bench_host {
	char cpu_vendor[16]; /* GenuineIntel, AuthenticAMD, ... */
	char cpu_model[96];  /* /proc/cpuinfo "model name" */
	char kernel[128];    /* uname -r */
	char kvm_module[16]; /* kvm_intel, kvm_amd, kvm_pvm, ... */
	/* "name=value" pairs of the module's IPI-relevant parameters, read from
	 * /sys/module/<kvm_module>/parameters (enable_apicv, enable_ipiv, avic, ...) */
	unsigned n_params;
	struct {
		char name[32];
		char value[32];
	} params[16];
	uint64_t tsc_khz; /* from KVM_GET_TSC_KHZ on a vCPU */
	bool pv_send_ipi; /* KVM_FEATURE_PV_SEND_IPI in KVM_GET_SUPPORTED_CPUID */
	bool x2apic;	  /* x2APIC in KVM_GET_SUPPORTED_CPUID */
};

struct bench_config {
	enum bench_pattern pattern;
	enum bench_cpu_mode cpu_mode;
	enum bench_target target;
	unsigned vcpus;	 /* 2..64 */
	unsigned runs;	 /* R */
	unsigned ipis;	 /* K: IPIs per run */
	unsigned warmup; /* runs before the measured ones; the guest counts include them */
	bool pin;	 /* vCPU i pinned to host CPU pin_cpus[i % n_pin_cpus] */
	unsigned n_pin_cpus;
	int pin_cpus[BENCH_MAX_VCPUS];
	unsigned timeout_s; /* watchdog: no guest progress for this long is a failure */
	char name[64];	    /* VM name shown to ipivd (--name) */
};

/* Summary statistics of a sample. */
struct bench_stats {
	double mean, median, min, max, stddev;
};

struct bench_result {
	struct bench_config config;
	struct bench_host host;
	/* Cycles per IPI of each run, as the guest measured with RDTSC: total cycles of the
	 * run's K round trips divided by K. */
	unsigned n_runs;
	double cycles_per_ipi[BENCH_MAX_RUNS];
	/* Deliveries expected per IPI sent (1 for unicast, N-1 for all-but-self, the
	 * number of addressed vCPUs for multicast). */
	unsigned fanout;
	struct bench_vcpu_counts vcpu[BENCH_MAX_VCPUS];
	double wall_seconds; /* host wall time of the measured runs */
	/* The guest's own send->EOI: TSC before the sender's ICR write to TSC before each
	 * target's EOI, over the measured runs' fixed-mode deliveries (what ipivd measures
	 * from kvm_apic_ipi to kvm_eoi). samples is 0 when the pattern has no EOIs (NMI). */
	uint64_t send_to_eoi_samples;
	struct bench_stats send_to_eoi_cycles;
};

#endif
