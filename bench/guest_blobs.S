/* The assembled guest images, embedded in ipivbench. */
	.section .rodata
	.balign 16
	.globl guest16_start, guest16_end, guest64_start, guest64_end
guest16_start:
	.incbin "guest16.bin"
guest16_end:
	.balign 16
guest64_start:
	.incbin "guest64.bin"
guest64_end:
	.section .note.GNU-stack,"",@progbits
