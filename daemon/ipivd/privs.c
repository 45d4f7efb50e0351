/* ipivd's least privilege: after attach, every thread drops the capabilities it no longer
 * needs, the bounding set follows and no_new_privs is set. Raw system calls, no libcap. */
#include <dirent.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "privs.h"

#define CAP_BIT(cap) (1ull << (cap))

/* capabilities(7) names, indexed by number; a kernel may know fewer (cap_last_cap) */
static const char *const cap_names[] = {
	[CAP_CHOWN] = "CAP_CHOWN",
	[CAP_DAC_OVERRIDE] = "CAP_DAC_OVERRIDE",
	[CAP_DAC_READ_SEARCH] = "CAP_DAC_READ_SEARCH",
	[CAP_FOWNER] = "CAP_FOWNER",
	[CAP_FSETID] = "CAP_FSETID",
	[CAP_KILL] = "CAP_KILL",
	[CAP_SETGID] = "CAP_SETGID",
	[CAP_SETUID] = "CAP_SETUID",
	[CAP_SETPCAP] = "CAP_SETPCAP",
	[CAP_LINUX_IMMUTABLE] = "CAP_LINUX_IMMUTABLE",
	[CAP_NET_BIND_SERVICE] = "CAP_NET_BIND_SERVICE",
	[CAP_NET_BROADCAST] = "CAP_NET_BROADCAST",
	[CAP_NET_ADMIN] = "CAP_NET_ADMIN",
	[CAP_NET_RAW] = "CAP_NET_RAW",
	[CAP_IPC_LOCK] = "CAP_IPC_LOCK",
	[CAP_IPC_OWNER] = "CAP_IPC_OWNER",
	[CAP_SYS_MODULE] = "CAP_SYS_MODULE",
	[CAP_SYS_RAWIO] = "CAP_SYS_RAWIO",
	[CAP_SYS_CHROOT] = "CAP_SYS_CHROOT",
	[CAP_SYS_PTRACE] = "CAP_SYS_PTRACE",
	[CAP_SYS_PACCT] = "CAP_SYS_PACCT",
	[CAP_SYS_ADMIN] = "CAP_SYS_ADMIN",
	[CAP_SYS_BOOT] = "CAP_SYS_BOOT",
	[CAP_SYS_NICE] = "CAP_SYS_NICE",
	[CAP_SYS_RESOURCE] = "CAP_SYS_RESOURCE",
	[CAP_SYS_TIME] = "CAP_SYS_TIME",
	[CAP_SYS_TTY_CONFIG] = "CAP_SYS_TTY_CONFIG",
	[CAP_MKNOD] = "CAP_MKNOD",
	[CAP_LEASE] = "CAP_LEASE",
	[CAP_AUDIT_WRITE] = "CAP_AUDIT_WRITE",
	[CAP_AUDIT_CONTROL] = "CAP_AUDIT_CONTROL",
	[CAP_SETFCAP] = "CAP_SETFCAP",
	[CAP_MAC_OVERRIDE] = "CAP_MAC_OVERRIDE",
	[CAP_MAC_ADMIN] = "CAP_MAC_ADMIN",
	[CAP_SYSLOG] = "CAP_SYSLOG",
	[CAP_WAKE_ALARM] = "CAP_WAKE_ALARM",
	[CAP_BLOCK_SUSPEND] = "CAP_BLOCK_SUSPEND",
	[CAP_AUDIT_READ] = "CAP_AUDIT_READ",
	[CAP_PERFMON] = "CAP_PERFMON",
	[CAP_BPF] = "CAP_BPF",
	[CAP_CHECKPOINT_RESTORE] = "CAP_CHECKPOINT_RESTORE",
};
#define N_CAP_NAMES ((int)(sizeof(cap_names) / sizeof(cap_names[0])))

/* CAP_X, cap_x or x, whole */
static int cap_by_name(const char *name, size_t len)
{
	if (len > 4 && !strncasecmp(name, "cap_", 4)) {
		name += 4;
		len -= 4;
	}
	for (int cap = 0; cap < N_CAP_NAMES; cap++)
		if (strlen(cap_names[cap]) - 4 == len &&
		    !strncasecmp(cap_names[cap] + 4, name, len))
			return cap;
	return -1;
}

int privs_parse_caps(const char *list, uint64_t *mask, char *err, size_t size)
{
	const char *p = list;

	*mask = 0;
	if (!strcasecmp(list, "all")) {
		*mask = PRIVS_KEEP_ALL;
		return 0;
	}
	if (!strcasecmp(list, "none"))
		return 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		int cap = cap_by_name(p, len);

		if (cap < 0) {
			snprintf(err, size,
				 "--capabilities.keep: no capability '%.*s' (names as in "
				 "capabilities(7), e.g. CAP_SYS_PTRACE; or all, none)",
				 (int)(len > 40 ? 40 : len), p);
			return -EINVAL;
		}
		*mask |= CAP_BIT(cap);
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

void privs_format(uint64_t mask, char *buf, size_t size)
{
	size_t off = 0;

	snprintf(buf, size, "none");
	for (int cap = 0; cap < 64 && off < size; cap++) {
		if (!(mask & CAP_BIT(cap)))
			continue;
		if (cap < N_CAP_NAMES)
			off += snprintf(buf + off, size - off, "%s%s", off ? "," : "",
					cap_names[cap]);
		else
			off += snprintf(buf + off, size - off, "%scap_%d", off ? "," : "", cap);
	}
}

struct capsets {
	uint64_t effective, permitted, inheritable;
};

/* The calling thread's sets (capabilities are per thread). */
static int caps_get(struct capsets *c)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	c->effective = data[0].effective | (uint64_t)data[1].effective << 32;
	c->permitted = data[0].permitted | (uint64_t)data[1].permitted << 32;
	c->inheritable = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
	return 0;
}

/* Async-signal-safe: the drop signal's handler calls it. */
static int caps_set(const struct capsets *c)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {
		{(uint32_t)c->effective, (uint32_t)c->permitted, (uint32_t)c->inheritable},
		{c->effective >> 32, c->permitted >> 32, c->inheritable >> 32},
	};

	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

uint64_t privs_needed(const char **reason)
{
	union bpf_attr attr;
	struct capsets held, probe;
	long r;
	int err;

	if (caps_get(&held)) {
		*reason = "capget failed, so kept in case";
		return CAP_BIT(CAP_BPF);
	}
	/* a map command on no map: EBADF where bpf() lets it through, EPERM where the
	 * unprivileged_bpf_disabled check comes first (Linux before 6.5 checks it on every
	 * command; since then only map creation and program loading) */
	probe = held;
	probe.effective &= ~(CAP_BIT(CAP_BPF) | CAP_BIT(CAP_SYS_ADMIN));
	if (caps_set(&probe)) {
		*reason = "could not probe bpf() without it, so kept in case";
		return CAP_BIT(CAP_BPF);
	}
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (uint32_t)-1;
	r = syscall(SYS_bpf, BPF_MAP_GET_NEXT_KEY, &attr, sizeof(attr));
	err = errno;
	caps_set(&held);
	if (r < 0 && err == EPERM) {
		*reason = "this kernel checks it on every bpf() call: map reads, iterators";
		return CAP_BIT(CAP_BPF);
	}
	*reason = "bpf() on loaded maps and iterators needs none on this kernel";
	return 0;
}

/* What every thread applies to itself; set before the drop signal is sent. */
static struct {
	uint64_t keep;
	bool bounding; /* CAP_SETPCAP held: the bounding set can be cut too */
	int last_cap;
	int done_tid, err; /* the last thread's answer (atomic) */
} drop;

/* Async-signal-safe: raw system calls only. The bounding set goes first, while CAP_SETPCAP
 * is still effective. */
static int drop_self(void)
{
	struct capsets c = {.effective = drop.keep, .permitted = drop.keep};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno; /* EINVAL: a kernel before ambient capabilities (4.3) */
	for (int cap = 0; drop.bounding && cap <= drop.last_cap; cap++)
		if (!(drop.keep & CAP_BIT(cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
			return -errno;
	return caps_set(&c);
}

static void on_drop_signal(int sig)
{
	int saved = errno, err = drop_self();

	(void)sig;
	__atomic_store_n(&drop.err, err, __ATOMIC_RELAXED);
	__atomic_store_n(&drop.done_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
	errno = saved;
}

static int last_cap(void)
{
	int cap = 0;

	while (cap < 63 && prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0)
		cap++;
	return cap;
}

/* A thread's sets as /proc/self/task/<tid>/status shows them; -ENOENT once it is gone. */
struct thread_caps {
	uint64_t inh, prm, eff, bnd, amb;
	int no_new_privs;
};

static int thread_caps(int tid, struct thread_caps *t)
{
	char path[64], line[128];
	unsigned long long v;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "CapInh: %llx", &v) == 1)
			t->inh = v, found++;
		else if (sscanf(line, "CapPrm: %llx", &v) == 1)
			t->prm = v, found++;
		else if (sscanf(line, "CapEff: %llx", &v) == 1)
			t->eff = v, found++;
		else if (sscanf(line, "CapBnd: %llx", &v) == 1)
			t->bnd = v, found++;
		else if (sscanf(line, "CapAmb: %llx", &v) == 1)
			t->amb = v, found++;
		else if (sscanf(line, "NoNewPrivs: %d", &t->no_new_privs) == 1)
			found++;
	}
	fclose(f);
	return found == 6 ? 0 : -EIO;
}

static bool thread_dropped(const struct thread_caps *t)
{
	return t->inh == 0 && t->amb == 0 && t->prm == drop.keep && t->eff == drop.keep &&
	       (!drop.bounding || t->bnd == drop.keep) && t->no_new_privs == 1;
}

/* Has thread tid drop its own capabilities (no system call changes another thread's) and
 * waits for its answer. */
static int drop_in_thread(int tid, int sig)
{
	struct timespec ms = {0, 1000000};

	__atomic_store_n(&drop.done_tid, 0, __ATOMIC_RELAXED);
	if (syscall(SYS_tgkill, getpid(), tid, sig))
		return errno == ESRCH ? 0 : -errno;
	for (int waited = 0; waited < 2000; waited++) {
		if (__atomic_load_n(&drop.done_tid, __ATOMIC_ACQUIRE) == tid)
			return __atomic_load_n(&drop.err, __ATOMIC_RELAXED);
		if (syscall(SYS_tgkill, getpid(), tid, 0) && errno == ESRCH)
			return 0; /* exited */
		nanosleep(&ms, NULL);
	}
	return -ETIMEDOUT; /* the signal is blocked there */
}

/*
 * One pass over the threads: each one not yet dropped is told to. *n_threads counts them,
 * *pending those that were not dropped when the pass began. On failure, *bad_tid names the
 * thread.
 */
static int drop_pass(int sig, int *n_threads, int *pending, int *bad_tid)
{
	struct dirent *de;
	struct thread_caps t;
	DIR *d = opendir("/proc/self/task");
	int err = 0;

	*n_threads = *pending = 0;
	if (!d)
		return -errno;
	while (!err && (de = readdir(d))) {
		int tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		err = thread_caps(tid, &t);
		if (err == -ENOENT) {
			err = 0;
			continue;
		}
		(*n_threads)++;
		if (!err && !thread_dropped(&t)) {
			(*pending)++;
			err = tid == (int)syscall(SYS_gettid) ? drop_self()
							      : drop_in_thread(tid, sig);
		}
		if (err)
			*bad_tid = tid;
	}
	closedir(d);
	return err;
}

int privs_drop(uint64_t keep)
{
	struct sigaction sa = {.sa_handler = on_drop_signal, .sa_flags = SA_RESTART}, old;
	int sig = SIGRTMIN + 5; /* nothing in ipivd or its libraries uses it */
	int n_threads = 0, pending = 1, bad_tid = 0, err = 0;
	char kept[512], extra[512], missing[512];
	const char *reason;
	uint64_t needed = privs_needed(&reason);
	struct capsets held;

	err = caps_get(&held);
	if (err) {
		log_error("privs", "cannot read this process's capabilities: %s", strerror(-err));
		return err;
	}
	if (keep == PRIVS_KEEP_ALL)
		keep = held.permitted;
	drop.keep = (needed | keep) & held.permitted;
	drop.bounding = held.effective & CAP_BIT(CAP_SETPCAP);
	drop.last_cap = last_cap();

	sigfillset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old)) {
		err = -errno;
		log_error("privs", "cannot drop capabilities: sigaction: %s", strerror(-err));
		return err;
	}
	/* threads the dropped ones start inherit their sets; a few passes catch any started
	 * meanwhile, the last one only checks */
	for (int pass = 0; !err && pending && pass < 4; pass++)
		err = drop_pass(sig, &n_threads, &pending, &bad_tid);
	sigaction(sig, &old, NULL);
	if (err || pending) {
		log_error("privs", "cannot drop capabilities in thread %d: %s", bad_tid,
			  err ? strerror(-err) : "it keeps its own");
		return err ? err : -EAGAIN;
	}

	privs_format(needed & drop.keep, kept, sizeof(kept));
	privs_format(drop.keep & ~needed, extra, sizeof(extra));
	privs_format((needed | keep) & ~held.permitted, missing, sizeof(missing));
	log_info("privs",
		 "capabilities kept: %s (%s)%s%s%s; all others dropped in %d threads, %s, "
		 "no_new_privs set",
		 needed & drop.keep ? kept : "none needed", reason, drop.keep & ~needed ? ", " : "",
		 drop.keep & ~needed ? extra : "",
		 drop.keep & ~needed ? " (--capabilities.keep)" : "", n_threads,
		 drop.bounding
			 ? "bounding set cut to the same"
			 : "bounding set left as the service manager set it (no CAP_SETPCAP)");
	if ((needed | keep) & ~held.permitted)
		log_warn("privs", "not held at start-up, so not kept: %s", missing);
	return 0;
}
