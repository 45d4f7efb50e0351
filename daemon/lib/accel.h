/* Host IPI acceleration state: CPU capabilities, KVM module parameters and backends, each
 * fact with the file it was read from, and what they add up to (is IPIv/AVIC in effect?). */
#ifndef IPIV_ACCEL_H
#define IPIV_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* VMX capability MSRs (SDM Vol. 3 A.3): allowed-1 settings are the high dword of 0x482. */
#define ACCEL_MSR_VMX_PROCBASED_CTLS  0x482
#define ACCEL_MSR_VMX_PROCBASED_CTLS3 0x492
#define ACCEL_VMX_TERTIARY_BIT	      49 /* "activate tertiary controls", allowed-1 */
#define ACCEL_VMX_IPI_VIRT_BIT	      4	 /* tertiary control "IPI virtualization" */

enum accel_state_value {
	ACCEL_UNKNOWN = 0, /* could not be read, or read but not understood */
	ACCEL_NO,
	ACCEL_YES,
};

enum accel_vendor {
	ACCEL_VENDOR_UNKNOWN = 0,
	ACCEL_VENDOR_INTEL,
	ACCEL_VENDOR_AMD, /* AuthenticAMD and HygonGenuine */
	ACCEL_VENDOR_OTHER,
};

/* Which KVM backend module drives guests on this host. */
enum accel_backend {
	ACCEL_BACKEND_UNKNOWN = 0, /* /sys/module unreadable */
	ACCEL_BACKEND_NONE,	   /* readable, but no KVM backend loaded */
	ACCEL_BACKEND_KVM_INTEL,
	ACCEL_BACKEND_KVM_AMD,
	ACCEL_BACKEND_KVM_PVM, /* PVM: guests without hardware virtualization, no APICv */
};

enum accel_fact_id {
	ACCEL_CPU_VMX,	       /* "vmx" in cpuinfo flags */
	ACCEL_CPU_SVM,	       /* "svm" in cpuinfo flags */
	ACCEL_CPU_VAPIC_REG,   /* cpuinfo "vmx flags": APIC-register virtualization */
	ACCEL_CPU_VID,	       /* virtual-interrupt delivery */
	ACCEL_CPU_POSTED_INTR, /* posted interrupts */
	ACCEL_CPU_IPI_VIRT,    /* IPI virtualization */
	ACCEL_MSR_TERTIARY,    /* MSR 0x482 allowed-1 bit 49 */
	ACCEL_MSR_IPI_VIRT,    /* MSR 0x492 bit 4 */
	ACCEL_CPU_AVIC,	       /* cpuinfo flags "avic" */
	ACCEL_CPU_X2AVIC,      /* cpuinfo flags "x2avic" */
	ACCEL_MOD_KVM_INTEL,   /* /sys/module/kvm_intel present */
	ACCEL_INTEL_ENABLE_APICV,
	ACCEL_INTEL_ENABLE_IPIV, /* kvm_intel, or kvm where a kernel moved it */
	ACCEL_INTEL_ENABLE_DEVICE_POSTED_IRQS,
	ACCEL_MOD_KVM_AMD,
	ACCEL_AMD_AVIC,
	ACCEL_AMD_ENABLE_IPIV, /* 6.17+ */
	ACCEL_AMD_FORCE_AVIC,
	ACCEL_MOD_KVM_PVM,
	ACCEL_FACT_COUNT,
};

struct accel_fact {
	enum accel_state_value state;
	char value[32];	  /* the text read, trimmed ("Y", "auto", "0x..."); "" if nothing */
	char source[256]; /* the file it was read from, or the first one tried */
	int err;	  /* 0, or the negative errno that made it unknown (-ENOENT: absent) */
	const char *note; /* static: why it is unknown or what the value implies; may be NULL */
};

struct accel_state {
	enum accel_vendor vendor;
	char vendor_id[16];  /* cpuinfo vendor_id, "" if unknown */
	char model_name[64]; /* cpuinfo "model name", control characters dropped */
	int family, model;   /* cpuinfo "cpu family" / "model", -1 if unknown */
	char cpuinfo_path[256];
	int cpuinfo_err;
	struct accel_fact facts[ACCEL_FACT_COUNT];

	/* Derived */
	enum accel_backend backend;
	const char *mechanism;		       /* "ipiv", "avic", "x2avic" or "none" */
	enum accel_state_value apicv_hw;       /* APICv / AVIC in the CPU */
	enum accel_state_value apicv_enabled;  /* ... and enabled in the module */
	enum accel_state_value ipiv_hw;	       /* exit-free IPIs possible in the CPU */
	enum accel_state_value ipiv_enabled;   /* ... and the module allows them */
	enum accel_state_value ipiv_effective; /* backend loaded, hardware, module: all yes */
	const char *why;		       /* static: one line behind ipiv_effective */
};

/*
 * Reads everything under root ("" or "/" for the real host; tests pass a temp dir):
 * <root>/proc/cpuinfo (first processor only), <root>/sys/module/{kvm,kvm_intel,kvm_amd,
 * kvm_pvm}/parameters/..., and on Intel <root>/dev/cpu/0/msr (pread at the MSR number;
 * absent, EPERM or EIO is normal and leaves the MSR facts unknown). Never fails on missing or
 * malformed files: those facts are ACCEL_UNKNOWN with err and source set. Returns 0, -EINVAL
 * for NULL arguments, or -ENAMETOOLONG for a root that leaves no room for the paths.
 */
int accel_read(const char *root, struct accel_state *out);

/* Reads the MSR facts of root now and has every later accel_read of the same root reuse them:
 * the device needs CAP_SYS_RAWIO, which ipivd drops after start-up. Returns as accel_read. */
int accel_msr_preload(const char *root);

/*
 * Where the device is out of reach (the unit's PrivateDevices=), a privileged step before
 * (ExecStartPre=+) reads it instead: accel_msr_dump reads <root>/dev/cpu/0/msr, which needs
 * CAP_SYS_RAWIO, and writes what it gave (values, or the errno of each read) to out as text.
 * Returns 0, or a negative errno of writing or of a root too long.
 */
int accel_msr_dump(const char *root, FILE *out);

/* Reads a file accel_msr_dump wrote and has every later accel_read of root take the MSR facts
 * from it instead of the device (the facts' source names both). Returns 0; -EINVAL with one
 * line in err ("FILE: line N: what is wrong") for a file that is not one; a negative errno
 * with "FILE: reason" in err when it cannot be read. A NULL path forgets the file. */
int accel_msr_load(const char *root, const char *path, char *err, size_t err_size);

/* "cpu.ipi_virt", "kvm_intel.enable_ipiv", ...: stable names, usable as label values. */
const char *accel_fact_name(enum accel_fact_id id);
const char *accel_state_name(enum accel_state_value v); /* "unknown", "no", "yes" */
const char *accel_vendor_name(enum accel_vendor v);	/* "intel", "amd", "other", "unknown" */
const char *accel_backend_name(enum accel_backend b);	/* "kvm_intel", ..., "none" */

#endif /* IPIV_ACCEL_H */
