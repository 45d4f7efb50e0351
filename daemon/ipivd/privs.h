/* ipivd's least privilege: once the BPF programs are loaded and attached, every thread gives
 * up the capabilities the rest of the daemon's life does not need. */
#ifndef IPIV_PRIVS_H
#define IPIV_PRIVS_H

#include <stddef.h>
#include <stdint.h>

/* --capabilities.keep=all: keep every capability held at start-up. */
#define PRIVS_KEEP_ALL UINT64_MAX

/*
 * Parses --capabilities.keep: comma-separated capability names (CAP_SYS_PTRACE, cap_sys_ptrace
 * or sys_ptrace), "none" or "all", into a mask of capability numbers. Returns 0, or -EINVAL
 * with one line in err naming the bad name.
 */
int privs_parse_caps(const char *list, uint64_t *mask, char *err, size_t size);

/*
 * What the running daemon needs once attached: CAP_BPF where this kernel checks it on every
 * bpf() command (before Linux 6.5 while kernel.unprivileged_bpf_disabled is set: map reads,
 * iterators, program statistics), nothing otherwise. Probed, with the capability out of the
 * effective set for the moment; reason says why in a few words.
 */
uint64_t privs_needed(const char **reason);

/*
 * Keeps needed | keep (of what the process holds) and drops everything else from the
 * permitted, effective, inheritable and ambient sets of every thread of the process, the
 * bounding set too where CAP_SETPCAP allows it, and sets no_new_privs, so that no later
 * execve regains anything. Checks each thread's /proc/self/task/<tid>/status afterwards.
 * Logs one line saying what is kept. Returns 0, or a negative errno after one line naming
 * what failed (the caller should exit: privileges would be half dropped).
 */
int privs_drop(uint64_t keep);

/* "CAP_BPF,CAP_PERFMON" for a mask ("none" if empty). */
void privs_format(uint64_t mask, char *buf, size_t size);

#endif
