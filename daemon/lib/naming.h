/* Names a VM the way its users know it, from its VMM process' command line under a proc root
 * that tests point at a temp dir; names are untrusted and come out sanitised and bounded. */
#ifndef IPIV_NAMING_H
#define IPIV_NAMING_H

#include <stdbool.h>
#include <stddef.h>

/* A VM name is at most VM_NAME_MAX - 1 bytes of UTF-8 (63), cut on a character boundary. */
#define VM_NAME_MAX    64
/* Bytes of /proc/<pid>/cmdline read at most; arguments past that point are not looked at. */
#define VM_CMDLINE_MAX (128 * 1024)

enum vm_name_source {
	VM_NAME_PID,		  /* "pid-<pid>": nothing better was found */
	VM_NAME_QEMU,		  /* QEMU (and libvirt's QEMU): -name guest=NAME or -name NAME */
	VM_NAME_QEMU_UUID,	  /* QEMU without -name: its -uuid */
	VM_NAME_FIRECRACKER,	  /* Firecracker: --id ID */
	VM_NAME_CLOUD_HYPERVISOR, /* cloud-hypervisor: its --api-socket path */
	VM_NAME_IPIVBENCH,	  /* our benchmark: ipivbench --name NAME */
};

/*
 * Names the VM whose VMM is process pid, reading <proc_root>/<pid>/cmdline (and comm when
 * argv[0] does not say which VMM it is). The VMM is recognised by the file name of argv[0]
 * (qemu-system-*, qemu-kvm, kvm, firecracker, cloud-hypervisor, ipivbench), else by comm.
 *
 * - QEMU: the last -name option; its value is QEMU option syntax, where ",," is a literal
 *   comma and the first element without "=" is the guest name ("-name web,process=x" and
 *   "-name guest=web,debug-threads=on" both give "web"). Without -name, the -uuid value.
 * - Firecracker: --id ID (also --id=ID), as passed by the jailer.
 * - cloud-hypervisor has no name option; the API socket (--api-socket path=P, or P) is what
 *   tells one VM from another on a host and what ch-remote users type, so the name is P.
 *   A path longer than the bound keeps its end, the part that differs between VMs.
 * - ipivbench: --name NAME (also --name=NAME).
 *
 * Malformed content never fails: a missing, unreadable, empty, binary, unterminated or huge
 * file (only VM_CMDLINE_MAX bytes are read, and a cut-off last argument is ignored) gives the
 * next source down, ending with "pid-<pid>". The name is written to name (VM_NAME_MAX bytes).
 * Returns the vm_name_source used, or -EINVAL for a NULL argument or a negative pid.
 */
int vm_name_from_proc(const char *proc_root, int pid, char name[VM_NAME_MAX]);

/*
 * The same from a command line already read: len bytes, NUL-separated like
 * /proc/<pid>/cmdline, cut when the command line was longer (a last argument without its
 * NUL is then ignored). argv[0] alone tells the VMM. ipivd keeps the start of each VMM's
 * command line when the VM first shows up, for VMs whose process exits before discovery
 * reads /proc. Returns the vm_name_source used ("pid-<pid>" when nothing names it),
 * -EINVAL for a bad argument, -ENOMEM.
 */
int vm_name_from_cmdline(const char *cmdline, size_t len, bool cut, int pid,
			 char name[VM_NAME_MAX]);

const char *vm_name_source_str(enum vm_name_source source);

/*
 * Copies the printable text of in[0..len) into out (size bytes, NUL-terminated): invalid
 * UTF-8, control characters (C0, DEL, C1), bidirectional overrides and isolates, and
 * line/paragraph separators are dropped, leading and trailing spaces trimmed, and the result
 * cut on a character boundary to fit. Returns the length written.
 */
size_t vm_name_sanitize(const char *in, size_t len, char *out, size_t size);

struct vm_name_claim {
	int pid;
	char name[VM_NAME_MAX];
};

/*
 * Makes the names of n VMs unique, since vm is a metric label. Every VM whose name another
 * VM also claims gets "-<pid>" appended (its name cut to make room): no VM keeps the bare
 * name, so "web" always means the only VM called web, whatever order the VMs are listed in.
 * In the contrived case that a suffixed name still collides (a VM literally named
 * "web-1234"), the suffixed VM falls back to "pid-<pid>". Names of VMs that do not collide
 * are left as they are. Returns 0, or -EINVAL if two claims have the same pid.
 */
int vm_names_make_unique(struct vm_name_claim *vms, size_t n);

#endif
