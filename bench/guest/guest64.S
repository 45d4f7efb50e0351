/* ipivbench long-mode guest: the VMM enters every vCPU in 64-bit mode with paging on;
 * the logic mirrors guest16.S (vCPU 0 sends and times, the others take IPIs). */
#include "layout.h"

#define C(off)	(GUEST_CTRL + (off))

	.code64
	.text
	.globl _start
_start:
	jmp	entry
	.org	8
	/* Handler table read by the VMM to build the IDT (absolute addresses). */
	.quad	ipi_handler
	.quad	nmi_handler
	.quad	other_handler
	.quad	spurious_handler

/* %eax = this vCPU's index, read from the bottom of its stack area. */
.macro	vcpu_index reg
	movq	%rsp, \reg
	andq	$~(STACK_SIZE - 1), \reg
	movl	(\reg), %eax
.endm

/* Count a delivery for this vCPU and acknowledge it to the sender. */
.macro	count_delivery
	vcpu_index %rbx
	shll	$6, %eax		/* PERVCPU_SIZE */
	incq	C(CTRL_PERVCPU + PERVCPU_RECEIVED)(%rax)
	lock incl C(CTRL_ACKS)
.endm

entry:
	cli
	cld
	cmpl	$0, C(CTRL_X2APIC)
	je	xapic_setup

	movl	$0x1b, %ecx
	rdmsr
	orl	$0xc00, %eax
	wrmsr
	rdmsr
	testl	$0x400, %eax
	jnz	1f
	movl	$GUEST_ERR_NO_X2APIC, %eax
	jmp	guest_error
1:	movl	$0x80f, %ecx
	movl	$(0x100 | SPURIOUS_VECTOR), %eax
	xorl	%edx, %edx
	wrmsr
	jmp	online

xapic_setup:
	movl	$APIC_MMIO_BASE, %r8d	/* above 2 GiB: not encodable as a displacement */
	movl	$(0x100 | SPURIOUS_VECTOR), 0xf0(%r8)
	movl	$0xffffffff, 0xe0(%r8)
	vcpu_index %rbx
	movl	%eax, %ecx
	xorl	%eax, %eax
	cmpl	$8, %ecx
	jae	1f
	movl	$1, %eax
	shll	%cl, %eax
	shll	$24, %eax
1:	movl	%eax, 0xd0(%r8)

online:
	lock incl C(CTRL_ONLINE)
	vcpu_index %rbx
	testl	%eax, %eax
	jz	sender

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
	movq	%rsp, %rbx		/* an NMI that woke this halt is acknowledged here */
	andq	$~(STACK_SIZE - 1), %rbx
	cmpl	$0, NMI_DEFERRED(%rbx)
	je	halt_loop
	movl	$0, NMI_DEFERRED(%rbx)
	count_delivery
	jmp	halt_loop

sender:
	sti
	movl	C(CTRL_NVCPUS), %eax
1:	pause
	cmpl	C(CTRL_ONLINE), %eax
	jne	1b

	xorl	%ebp, %ebp		/* run index */
run_loop:
	cmpl	C(CTRL_RUNS), %ebp
	jae	runs_done
	rdtsc
	shlq	$32, %rdx
	orq	%rax, %rdx
	movq	%rdx, %r12		/* run start */
	xorl	%esi, %esi		/* IPIs sent in this run */
	xorl	%edi, %edi		/* slot */
ipi_loop:
	movl	C(CTRL_ACKS), %r13d
	addl	C(CTRL_FANOUT), %r13d	/* acks expected after this IPI */
	rdtsc
	shlq	$32, %rdx
	orq	%rax, %rdx
	movq	%rdx, C(CTRL_SEND_TSC)
	call	send_ipi
	incq	C(CTRL_PERVCPU + PERVCPU_SENT)
	lock incl C(CTRL_PROGRESS)
2:	movl	C(CTRL_ACKS), %eax
	subl	%r13d, %eax
	jns	3f
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
	shlq	$32, %rdx
	orq	%rax, %rdx
	subq	%r12, %rdx
	movq	%rdx, C(CTRL_RESULTS)(,%rbp,8)
	incl	%ebp
	jmp	run_loop

runs_done:
	movw	$PORT_DONE, %dx
	outb	%al, %dx
	cli
5:	hlt
	jmp	5b

/* Send one IPI to slot %edi. Clobbers rax, rbx, rcx, rdx, r8. */
send_ipi:
	movl	C(CTRL_DEST)(,%rdi,4), %edx
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
	shll	$24, %edx
	movl	$APIC_MMIO_BASE, %r8d
	movl	%edx, 0x310(%r8)
	movl	C(CTRL_ICR_LOW), %eax
	movl	%eax, 0x300(%r8)
	ret
send_self:
	movl	$0x83f, %ecx
	movl	C(CTRL_VECTOR), %eax
	xorl	%edx, %edx
	wrmsr
	ret
send_pv:
	pushq	%rsi
	movl	C(CTRL_ICR_LOW), %esi	/* a3: ICR */
	movl	$10, %eax		/* KVM_HC_SEND_IPI */
	movl	$1, %ebx		/* a0: bitmap, bit 0 = APIC ID a2 (rdx) */
	xorl	%ecx, %ecx		/* a1 */
	vmcall
	popq	%rsi
	ret

guest_error:
	movl	%eax, C(CTRL_ERROR)
	movw	$PORT_ERROR, %dx
	outb	%al, %dx
	cli
6:	hlt
	jmp	6b

.macro	save
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%r8
.endm
.macro	restore
	popq	%r8
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
.endm

.macro	apic_eoi
	cmpl	$0, C(CTRL_X2APIC)
	je	7f
	movl	$0x80b, %ecx
	xorl	%eax, %eax
	xorl	%edx, %edx
	wrmsr
	jmp	8f
7:	movl	$APIC_MMIO_BASE, %r8d
	movl	$0, 0xb0(%r8)
8:
.endm

ipi_handler:
	save
	/* guest-side send->EOI sample, taken just before the EOI write */
	rdtsc
	subl	C(CTRL_SEND_TSC), %eax
	movl	$1, %ecx
	lock xaddl %ecx, C(CTRL_NSAMPLES)
	andl	$(SAMPLES_MAX - 1), %ecx
	movl	%eax, SAMPLES_BASE(,%rcx,4)
	apic_eoi
	count_delivery
	restore
	iretq

/* As in guest16.S: an NMI that interrupted HLT is acknowledged by the halt loop, after
 * the IRET (which SVM may intercept), so 'halt' targets halt between NMIs. */
nmi_handler:
	save
	leaq	after_hlt(%rip), %rax
	cmpq	%rax, 40(%rsp)		/* RIP of the IRET frame, above the 5 saved registers */
	jne	1f
	movq	%rsp, %rbx
	andq	$~(STACK_SIZE - 1), %rbx
	movl	$1, NMI_DEFERRED(%rbx)
	restore
	iretq
1:	count_delivery
	restore
	iretq

other_handler:
	save
	lock incl C(CTRL_UNEXPECTED)
	apic_eoi
	restore
	iretq

spurious_handler:
	iretq
