/* Guest physical memory layout and control block of the ipivbench guests.
 * Included by the guest assembly and by the VMM; plain #defines only. */
#ifndef IPIV_BENCH_LAYOUT_H
#define IPIV_BENCH_LAYOUT_H

#define GUEST_MEM_SIZE 0x200000 /* 2 MiB of RAM at GPA 0 */

#define REAL_CODE_BASE 0x8000  /* guest16.bin, CS=0 */
#define LONG_CODE_BASE 0x30000 /* guest64.bin */
#define LONG_GDT       0x0600  /* GDT for long mode: null, code64 0x08, data 0x10 */
#define LONG_PML4      0x20000 /* identity map of 4 GiB with 2 MiB pages */
#define LONG_PDPT      0x21000
#define LONG_PD	       0x22000 /* four page directories, 0x22000..0x25fff */
#define LONG_IDT       0x26000 /* 256 x 16-byte gates */
#define REAL_GDT       0x0700  /* GDT used once to enter unreal mode (flat FS) */

/* Per-vCPU stacks: vCPU i owns [STACK_BASE + i*STACK_SIZE, +STACK_SIZE). The first
 * 4 bytes of each area hold the vCPU index, so any code on that stack finds its id
 * (real mode: SS = area >> 4, so SS:0; long mode: RSP & ~(STACK_SIZE-1)). */
#define STACK_BASE   0x40000
#define STACK_SIZE   0x1000
#define STACK_SEG(i) ((STACK_BASE >> 4) + (i) * (STACK_SIZE >> 4))
#define NMI_DEFERRED 4 /* u32 after the index: an NMI woke HLT, the halt loop acks it */

#define APIC_MMIO_BASE 0xfee00000

/* Control block: written by the VMM before the first KVM_RUN, then by the guest. */
#define GUEST_CTRL	 0x1000
#define CTRL_MAGIC	 0x00	/* u32 */
#define CTRL_PATTERN	 0x04	/* u32 enum bench_pattern */
#define CTRL_NVCPUS	 0x08	/* u32 */
#define CTRL_RUNS	 0x0c	/* u32: warm-up runs + measured runs */
#define CTRL_IPIS	 0x10	/* u32: IPIs per run (K) */
#define CTRL_HALT	 0x14	/* u32: 1 = targets halt between IPIs */
#define CTRL_VECTOR	 0x18	/* u32: IPI vector */
#define CTRL_X2APIC	 0x1c	/* u32: 1 = guest switches its APIC to x2APIC mode */
#define CTRL_ONLINE	 0x20	/* u32: vCPUs that finished APIC setup */
#define CTRL_PROGRESS	 0x24	/* u32: IPIs sent so far (watchdog) */
#define CTRL_ACKS	 0x28	/* u32: deliveries acknowledged by handlers */
#define CTRL_ERROR	 0x2c	/* u32: first guest-detected error (GUEST_ERR_*) */
#define CTRL_FANOUT	 0x34	/* u32: deliveries per IPI sent */
#define CTRL_UNEXPECTED	 0x38	/* u32: interrupts on vectors nobody sent */
#define CTRL_NSLOTS	 0x3c	/* u32: entries in CTRL_DEST, sent to round-robin */
#define CTRL_SEND_KIND	 0x40	/* u32: SEND_* below */
#define CTRL_ICR_LOW	 0x44	/* u32: ICR bits 31:0 (vector, modes, shorthand) */
#define CTRL_SEND_TSC	 0x50	/* u64: TSC just before the current ICR write */
#define CTRL_NSAMPLES	 0x58	/* u32: send->EOI samples written (ring index) */
#define CTRL_DEST	 0x80	/* u32[64]: destination per slot (see SEND_*) */
#define CTRL_PERVCPU	 0x200	/* per-vCPU counters, PERVCPU_SIZE each */
#define PERVCPU_SIZE	 0x40	/* one cache line each: no false sharing */
#define PERVCPU_SENT	 0x00	/* u64 */
#define PERVCPU_RECEIVED 0x08	/* u64 */
#define CTRL_RESULTS	 0x2000 /* u64 TSC cycles of each run, warm-up runs first */
#define CTRL_RESULTS_MAX 1024

/* Guest-side send->EOI: each fixed IPI's handler stores TSC(before its EOI) - SEND_TSC as
 * u32 cycles in a ring here (through FS in real mode), for comparison with the host's. */
#define SAMPLES_BASE 0x100000
#define SAMPLES_MAX  0x40000 /* 1 MiB of u32, a power of two */

#define CTRL_MAGIC_VALUE 0x56495049 /* "IPIV" */

/* How the sender writes an IPI; CTRL_DEST[slot] means:
 * SEND_X2APIC_ICR: WRMSR 0x830, EDX = destination (x2APIC ID or logical cluster|mask)
 * SEND_XAPIC_ICR:  MMIO ICR2 = destination << 24, then MMIO ICR = ICR_LOW
 * SEND_X2APIC_SELF: WRMSR 0x83f = vector (destination unused)
 * SEND_PV_HYPERCALL: KVM_HC_SEND_IPI with bitmap 1 at min = destination APIC ID */
#define SEND_X2APIC_ICR	  0
#define SEND_XAPIC_ICR	  1
#define SEND_X2APIC_SELF  2
#define SEND_PV_HYPERCALL 3

/* Port I/O the guest uses to talk to the VMM. */
#define PORT_DONE  0x0500 /* sender finished every run */
#define PORT_ERROR 0x0501 /* guest error: code in CTRL_ERROR */

#define GUEST_ERR_NO_X2APIC   1 /* APIC did not enter x2APIC mode */
#define GUEST_ERR_BAD_PATTERN 2

#define IPI_VECTOR	0x40
#define SPURIOUS_VECTOR 0xff

/* Pattern numbers; must match enum bench_pattern in bench/result.h. */
#define PAT_X2APIC_PHYS	     0
#define PAT_X2APIC_LOGICAL   1
#define PAT_X2APIC_MULTICAST 2
#define PAT_X2APIC_BROADCAST 3
#define PAT_X2APIC_SELF	     4
#define PAT_XAPIC_PHYS	     5
#define PAT_XAPIC_LOGICAL    6
#define PAT_XAPIC_BROADCAST  7
#define PAT_NMI		     8
#define PAT_PV		     9

#endif
