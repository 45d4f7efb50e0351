/* ipivbench real-mode guest: every vCPU enters at REAL_CODE_BASE; vCPU 0 sends IPIs and
 * times each run with RDTSC, the others take them. Counts live in the control block. */
#include "layout.h"

#define C(off)	(GUEST_CTRL + (off))

	.code16
/* Count a delivery for this vCPU (index at SS:0) and acknowledge it to the sender. */
.macro	count_delivery
	movl	%ss:0, %ebx
	shll	$6, %ebx		/* PERVCPU_SIZE */
	addl	$1, C(CTRL_PERVCPU + PERVCPU_RECEIVED)(%ebx)
	adcl	$0, C(CTRL_PERVCPU + PERVCPU_RECEIVED + 4)(%ebx)
	lock incl C(CTRL_ACKS)
.endm

	.text
	.globl _start
_start:
	jmp	entry
	.org	8
	/* Handler table read by the VMM to fill the IVT (offsets, CS = 0). */
	.word	ipi_handler
	.word	nmi_handler
	.word	other_handler
	.word	spurious_handler

entry:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	cld

	/* Unreal mode: FS gets a flat 4 GiB data segment so the xAPIC page at 0xfee00000
	 * is reachable from real mode. Only FS is loaded while PE=1 and nothing here
	 * (interrupts included) reloads FS, so the cached limit stays. */
	lgdtl	real_gdtr
	movl	%cr0, %eax
	orb	$1, %al
	movl	%eax, %cr0
	movw	$0x10, %bx
	movw	%bx, %fs
	andb	$0xfe, %al
	movl	%eax, %cr0		/* FS keeps base 0 and the 4 GiB limit */

	cmpl	$0, C(CTRL_X2APIC)
	je	xapic_setup

	/* x2APIC: IA32_APIC_BASE |= EN | EXTD, then check it took. */
	movl	$0x1b, %ecx
	rdmsr
	orl	$0xc00, %eax
	wrmsr
	rdmsr
	testl	$0x400, %eax
	jnz	1f
	movl	$GUEST_ERR_NO_X2APIC, %eax
	jmp	guest_error
1:	movl	$0x80f, %ecx		/* SVR: APIC software enable, spurious vector */
	movl	$(0x100 | SPURIOUS_VECTOR), %eax
	xorl	%edx, %edx
	wrmsr
	jmp	online

xapic_setup:
	movl	$(APIC_MMIO_BASE + 0xf0), %edi
	movl	$(0x100 | SPURIOUS_VECTOR), %fs:(%edi)
	movl	$(APIC_MMIO_BASE + 0xe0), %edi	/* DFR: flat model */
	movl	$0xffffffff, %fs:(%edi)
	movl	%ss:0, %ecx			/* LDR: bit (id) of the 8-bit flat mask */
	xorl	%eax, %eax
	cmpl	$8, %ecx
	jae	1f
	movl	$1, %eax
	shll	%cl, %eax
	shll	$24, %eax
1:	movl	$(APIC_MMIO_BASE + 0xd0), %edi
	movl	%eax, %fs:(%edi)

online:
	lock incl C(CTRL_ONLINE)
	cmpl	$0, %ss:0
	je	sender

target:
	sti
	cmpl	$0, C(CTRL_HALT)
	jne	halt_loop
spin_loop:
	pause
	jmp	spin_loop
halt_loop:
	sti
	hlt
after_hlt:
	cmpl	$0, %ss:NMI_DEFERRED	/* an NMI that woke this halt is acknowledged here */
	je	halt_loop
	movl	$0, %ss:NMI_DEFERRED
	count_delivery
	jmp	halt_loop

sender:
	sti				/* a self-IPI is taken by the sender itself */
	movl	C(CTRL_NVCPUS), %eax
1:	pause
	cmpl	C(CTRL_ONLINE), %eax
	jne	1b

	xorl	%ebp, %ebp		/* run index */
run_loop:
	cmpl	C(CTRL_RUNS), %ebp
	jae	runs_done
	rdtsc
	movl	%eax, run_start
	movl	%edx, run_start + 4
	xorl	%esi, %esi		/* IPIs sent in this run */
	xorl	%edi, %edi		/* slot */
ipi_loop:
	movl	C(CTRL_ACKS), %eax
	addl	C(CTRL_FANOUT), %eax
	movl	%eax, expected_acks
	rdtsc
	movl	%eax, C(CTRL_SEND_TSC)
	movl	%edx, C(CTRL_SEND_TSC + 4)
	call	send_ipi
	addl	$1, C(CTRL_PERVCPU + PERVCPU_SENT)	/* vCPU 0's counters */
	adcl	$0, C(CTRL_PERVCPU + PERVCPU_SENT + 4)
	lock incl C(CTRL_PROGRESS)
2:	movl	C(CTRL_ACKS), %eax
	subl	expected_acks, %eax
	jns	3f			/* acks - expected >= 0, wrap-safe */
	pause
	jmp	2b
3:	incl	%edi
	cmpl	C(CTRL_NSLOTS), %edi
	jb	4f
	xorl	%edi, %edi
4:	incl	%esi
	cmpl	C(CTRL_IPIS), %esi
	jb	ipi_loop

	rdtsc
	subl	run_start, %eax
	sbbl	run_start + 4, %edx
	movl	%ebp, %ebx
	shll	$3, %ebx
	movl	%eax, C(CTRL_RESULTS)(%ebx)
	movl	%edx, C(CTRL_RESULTS + 4)(%ebx)
	incl	%ebp
	jmp	run_loop

runs_done:
	movw	$PORT_DONE, %dx
	outb	%al, %dx
	cli
5:	hlt
	jmp	5b

/* Send one IPI to slot %edi. Clobbers eax, ebx, ecx, edx. */
send_ipi:
	movl	%edi, %ebx
	shll	$2, %ebx
	movl	C(CTRL_DEST)(%ebx), %edx
	movl	C(CTRL_SEND_KIND), %eax
	cmpl	$SEND_X2APIC_ICR, %eax
	je	send_x2apic
	cmpl	$SEND_XAPIC_ICR, %eax
	je	send_xapic
	cmpl	$SEND_X2APIC_SELF, %eax
	je	send_self
	cmpl	$SEND_PV_HYPERCALL, %eax
	je	send_pv
	movl	$GUEST_ERR_BAD_PATTERN, %eax
	jmp	guest_error
send_x2apic:
	movl	$0x830, %ecx
	movl	C(CTRL_ICR_LOW), %eax
	wrmsr
	ret
send_xapic:
	pushl	%edi
	shll	$24, %edx
	movl	$(APIC_MMIO_BASE + 0x310), %edi
	movl	%edx, %fs:(%edi)
	movl	C(CTRL_ICR_LOW), %eax
	movl	$(APIC_MMIO_BASE + 0x300), %edi
	movl	%eax, %fs:(%edi)
	popl	%edi
	ret
send_self:
	movl	$0x83f, %ecx
	movl	C(CTRL_VECTOR), %eax
	xorl	%edx, %edx
	wrmsr
	ret
send_pv:
	pushl	%esi
	movl	C(CTRL_ICR_LOW), %esi	/* a3: ICR */
	movl	$10, %eax		/* KVM_HC_SEND_IPI */
	movl	$1, %ebx		/* a0: bitmap, bit 0 = APIC ID a2 */
	xorl	%ecx, %ecx		/* a1: bitmap high */
	vmcall				/* a2 (edx): lowest APIC ID of the bitmap */
	popl	%esi
	ret

/* Stop with an error code the VMM reports. */
guest_error:
	movl	%eax, C(CTRL_ERROR)
	movw	$PORT_ERROR, %dx
	outb	%al, %dx
	cli
6:	hlt
	jmp	6b

.macro	apic_eoi
	cmpl	$0, C(CTRL_X2APIC)
	je	7f
	movl	$0x80b, %ecx
	xorl	%eax, %eax
	xorl	%edx, %edx
	wrmsr
	jmp	8f
7:	movl	$(APIC_MMIO_BASE + 0xb0), %edi
	movl	$0, %fs:(%edi)
8:
.endm

ipi_handler:
	pushal
	/* guest-side send->EOI sample, taken just before the EOI write */
	rdtsc
	subl	C(CTRL_SEND_TSC), %eax
	movl	$1, %ecx
	lock xaddl %ecx, C(CTRL_NSAMPLES)
	andl	$(SAMPLES_MAX - 1), %ecx
	movl	%eax, %fs:SAMPLES_BASE(,%ecx,4)
	apic_eoi
	count_delivery
	popal
	iret

/* An NMI that interrupted HLT is acknowledged after its IRET, by the halt loop: acked here,
 * the sender's next NMI could reach the target before it halts again, as the IRET itself
 * may exit (SVM intercepts it while NMIs are masked), and 'halt' targets would then stay up
 * from NMI to NMI. Anywhere else (spin targets) it is acknowledged at once. */
nmi_handler:
	pushal
	movw	%sp, %bx
	cmpw	$after_hlt, %ss:32(%bx)	/* the IP IRET returns to, above the 32 of PUSHAL */
	jne	1f
	movl	$1, %ss:NMI_DEFERRED
	popal
	iret
1:	count_delivery
	popal
	iret

other_handler:
	pushal
	lock incl C(CTRL_UNEXPECTED)
	apic_eoi
	popal
	iret

spurious_handler:			/* no EOI for the spurious vector */
	iret

	.balign	8
real_gdt:
	.quad	0
	.quad	0
	.quad	0x00cf92000000ffff	/* 0x10: data, base 0, limit 4 GiB, 32-bit */
real_gdtr:
	.word	real_gdtr - real_gdt - 1
	.long	real_gdt
	.balign	8
run_start:
	.quad	0
expected_acks:
	.long	0
