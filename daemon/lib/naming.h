/* Names a VM the way its users know it, from its VMM process' command line under a proc root
 * that tests point at a temp dir; names are untrusted and come out sanitised and bounded. */
#ifndef IPIV_NAMING_H
#define IPIV_NAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"

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

/* ---- who runs a VM, for joins with the VMM's inventory (libvirt, OpenStack, KubeVirt) ---- */

/* The VMM recognised from a VM's command line: ipiv_vm_info's vmm label, the API's "vmm". */
enum vm_vmm {
	VM_VMM_UNKNOWN,		 /* "unknown": no VMM this module knows */
	VM_VMM_QEMU,		 /* "qemu" */
	VM_VMM_LIBVIRT_QEMU,	 /* "libvirt-qemu": QEMU started by libvirt (KubeVirt, Nova) */
	VM_VMM_FIRECRACKER,	 /* "firecracker" */
	VM_VMM_CLOUD_HYPERVISOR, /* "cloud-hypervisor" */
	VM_VMM_CROSVM,		 /* "crosvm" */
	VM_VMM_IPIVBENCH,	 /* "ipivbench" */
	VM_VMM_COUNT,
};

/* A UUID as text: 36 characters, canonical and lower case ("" when the VMM was given none). */
#define VM_UUID_LEN 37

struct vm_identity {
	enum vm_vmm vmm;
	char uuid[VM_UUID_LEN];
};

const char *vm_vmm_name(enum vm_vmm vmm); /* "qemu", ..., "unknown" for any other value */
/* The vmm whose name is s (as vm_vmm_name writes it); VM_VMM_UNKNOWN for anything else. */
enum vm_vmm vm_vmm_from_name(const char *s);

/*
 * Whether in[0..len) is a UUID in its canonical form (8-4-4-4-12 hex digits, either case,
 * as QEMU's -uuid takes it); if so its lower-case form goes to out (VM_UUID_LEN bytes, may
 * be NULL). Nothing else is taken: no braces, no "urn:uuid:", no missing dashes.
 */
bool vm_uuid_parse(const char *in, size_t len, char *out);

/*
 * The VMM and the VM's UUID from its VMM's command line (the same input as
 * vm_name_from_cmdline). The VMM is as for naming, and QEMU is libvirt's when its -name
 * spells the guest= key (libvirt always does) or libvirt's master key secret is there. The
 * UUID, validated and lower-cased, is:
 * - QEMU: the last of -uuid U and -smbios type=1,...,uuid=U (both set the same SMBIOS UUID);
 * - Firecracker: --id, when it is a UUID (the jailer's id often is);
 * - cloud-hypervisor: --platform ...,uuid=U (its SMBIOS UUID);
 * - ipivbench: --uuid U.
 * A value that is not a UUID leaves uuid "". Returns 0, or -EINVAL for a bad argument,
 * -ENOMEM.
 */
int vm_identity_from_cmdline(const char *cmdline, size_t len, bool cut, struct vm_identity *id);

/* The same from <proc_root>/<pid>/cmdline (and comm when argv[0] does not say the VMM);
 * unreadable or malformed content gives VM_VMM_UNKNOWN and no uuid. 0 or -EINVAL. */
int vm_identity_from_proc(const char *proc_root, int pid, struct vm_identity *id);

/*
 * Copies the printable text of in[0..len) into out (size bytes, NUL-terminated): invalid
 * UTF-8, control characters (C0, DEL, C1), bidirectional overrides and isolates, and
 * line/paragraph separators are dropped, leading and trailing spaces trimmed, and the result
 * cut on a character boundary to fit. Returns the length written.
 */
size_t vm_name_sanitize(const char *in, size_t len, char *out, size_t size);

/* ---- names of a snapshot's VMs ---- */

/* Names already read, by VMM pid; entries of processes gone from a snapshot are dropped
 * (a new process may reuse the pid). */
struct vm_name_process {
	int pid;
	char name[VM_NAME_MAX];
	struct vm_identity id;
};

/* The name a VM holds for its life. */
struct vm_name_held {
	uint64_t vm;	  /* ipiv_vm_stats.vm */
	int pid;	  /* its VMM process, 0 if not known when it was named */
	bool placeholder; /* "vm-<n>": named before its process was known */
	bool seen;	  /* in the snapshot being named */
	char name[VM_NAME_MAX];
	struct vm_identity id; /* fixed with the name */
};

/* Zero-initialise; free with vm_name_cache_free. */
struct vm_name_cache {
	struct vm_name_process *procs;
	size_t n_procs, cap_procs;
	struct vm_name_held *held;
	size_t n_held, cap_held;
	uint64_t anonymous; /* placeholders handed out */
};

/*
 * names[i] is the name of snap->vms[i]; *names is one allocation (free() it). Each VM's vmm
 * and uuid (vm_identity_from_proc) are written into snap->vms[i], read along with the name
 * and as fixed for the VM's life. A VM keeps the
 * name it got when first named for as long as it is in the snapshots, since it is a metric
 * label: its process' name (vm_name_from_proc), "<name>-vm<k>" for the k-th VM of one
 * process, and when another VM holds that name already, "-2", "-3"... appended to the
 * newcomer's: the VM that had the name first keeps it, and no pid enters a name. Among new
 * VMs of one snapshot the older process (lower pid) comes first. A VM whose process is
 * not known yet is "vm-<n>" until it is (the one rename in a VM's life).
 */
int vm_names_for_snapshot(struct vm_name_cache *cache, const char *proc_root,
			  struct ipiv_snapshot *snap, char (**names)[VM_NAME_MAX]);

/* Reads the name of pid now if the cache does not have it, so a VM whose process exits
 * before its first snapshot keeps its name until it is reclaimed. */
void vm_name_cache_prefetch(struct vm_name_cache *cache, const char *proc_root, int pid);

void vm_name_cache_free(struct vm_name_cache *cache);

#endif
