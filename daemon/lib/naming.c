/* Names VMs from their VMM's command line; see naming.h for the rules per VMM. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "naming.h"
#include "utf8.h"

_Static_assert(sizeof(((struct ipiv_vm_stats *)0)->uuid) == VM_UUID_LEN,
	       "the snapshot holds a UUID as naming writes it");

static const char *const vmm_names[VM_VMM_COUNT] = {
	[VM_VMM_UNKNOWN] = "unknown",
	[VM_VMM_QEMU] = "qemu",
	[VM_VMM_LIBVIRT_QEMU] = "libvirt-qemu",
	[VM_VMM_FIRECRACKER] = "firecracker",
	[VM_VMM_CLOUD_HYPERVISOR] = "cloud-hypervisor",
	[VM_VMM_CROSVM] = "crosvm",
	[VM_VMM_IPIVBENCH] = "ipivbench",
};

const char *vm_vmm_name(enum vm_vmm vmm)
{
	return (unsigned)vmm < VM_VMM_COUNT ? vmm_names[vmm] : "unknown";
}

enum vm_vmm vm_vmm_from_name(const char *s)
{
	for (unsigned v = 0; s && v < VM_VMM_COUNT; v++)
		if (strcmp(s, vmm_names[v]) == 0)
			return (enum vm_vmm)v;
	return VM_VMM_UNKNOWN;
}

bool vm_uuid_parse(const char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char canon[VM_UUID_LEN];

	if (!in || len != VM_UUID_LEN - 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
			canon[i] = c;
			continue;
		}
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!memchr(hex, c, 16))
			return false;
		canon[i] = c;
	}
	canon[len] = '\0';
	if (out)
		memcpy(out, canon, VM_UUID_LEN);
	return true;
}

const char *vm_name_source_str(enum vm_name_source source)
{
	switch (source) {
	case VM_NAME_PID: return "pid";
	case VM_NAME_QEMU: return "qemu";
	case VM_NAME_QEMU_UUID: return "qemu-uuid";
	case VM_NAME_FIRECRACKER: return "firecracker";
	case VM_NAME_CLOUD_HYPERVISOR: return "cloud-hypervisor";
	case VM_NAME_IPIVBENCH: return "ipivbench";
	}
	return "unknown";
}

static bool dropped_code_point(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
	       cp == 0x2029;
}

size_t vm_name_sanitize(const char *in, size_t len, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = 0, seq;
	uint32_t cp;

	if (size == 0)
		return 0;
	while (len) {
		seq = utf8_decode(p, len, &cp);
		if (seq == 0) {
			p++, len--;
			continue;
		}
		if (!dropped_code_point(cp) && !(cp == ' ' && n == 0)) {
			if (n + seq > size - 1)
				break;
			memcpy(out + n, p, seq);
			n += seq;
		}
		p += seq, len -= seq;
	}
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return n;
}

/* Keeps the end of in when it does not fit (cut at a character boundary). */
static size_t sanitize_keep_tail(const char *in, size_t len, char *out, size_t size)
{
	char *all = malloc(len + 1);
	size_t n, start = 0;

	if (!all)
		return vm_name_sanitize(in, len, out, size);
	n = vm_name_sanitize(in, len, all, len + 1);
	if (n > size - 1) {
		start = n - (size - 1);
		/* past a character cut in two, and past spaces the cut left leading */
		while (start < n &&
		       (((unsigned char)all[start] & 0xc0) == 0x80 || all[start] == ' '))
			start++;
	}
	memmove(out, all + start, n - start);
	out[n - start] = '\0';
	free(all);
	return n - start;
}

/*
 * Reads up to max bytes of a /proc file into a NUL-terminated buffer. Sets *cut when the file
 * holds more. Non-regular files (a FIFO planted in a test tree) are refused without blocking.
 */
static char *read_proc_file(const char *proc_root, int pid, const char *file, size_t max,
			    size_t *len, bool *cut)
{
	char path[4096], *buf;
	struct stat st;
	size_t n = 0;
	ssize_t r;
	int fd;

	*len = 0;
	*cut = false;
	if (snprintf(path, sizeof(path), "%s/%d/%s", proc_root, pid, file) >= (int)sizeof(path))
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return NULL;
	buf = malloc(max + 1);
	if (!buf || fstat(fd, &st) || !S_ISREG(st.st_mode))
		goto fail;
	while (n < max) {
		r = read(fd, buf + n, max - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n == max) {
		char probe;

		*cut = read(fd, &probe, 1) == 1;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

struct argv_view {
	const char **args;
	size_t n;
};

/* Splits a NUL-separated command line in place. A last argument without its NUL is kept
 * only when the whole file was read: otherwise it may be cut off mid-way. */
static int split_cmdline(char *buf, size_t len, bool cut, struct argv_view *av)
{
	size_t i, start = 0, count = 0;

	av->n = 0;
	for (i = 0; i < len; i++)
		count += buf[i] == '\0';
	av->args = calloc(count + 1, sizeof(*av->args));
	if (!av->args)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		if (buf[i] == '\0') {
			av->args[av->n++] = buf + start;
			start = i + 1;
		}
	}
	if (start < len && !cut)
		av->args[av->n++] = buf + start; /* buf[len] is the NUL read_proc_file added */
	return 0;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static enum vm_vmm kind_of(const char *name)
{
	if (has_prefix(name, "qemu-system-") || strcmp(name, "qemu-kvm") == 0 ||
	    strcmp(name, "kvm") == 0)
		return VM_VMM_QEMU;
	if (strcmp(name, "firecracker") == 0)
		return VM_VMM_FIRECRACKER;
	/* comm is cut to 15 characters: "cloud-hyperviso". */
	if (has_prefix(name, "cloud-hyperviso"))
		return VM_VMM_CLOUD_HYPERVISOR;
	if (strcmp(name, "crosvm") == 0)
		return VM_VMM_CROSVM;
	if (strcmp(name, "ipivbench") == 0)
		return VM_VMM_IPIVBENCH;
	return VM_VMM_UNKNOWN;
}

static enum vm_vmm kind_from_comm(const char *proc_root, int pid)
{
	enum vm_vmm kind = VM_VMM_UNKNOWN;
	char *comm, *nl;
	size_t len;
	bool cut;

	comm = read_proc_file(proc_root, pid, "comm", 64, &len, &cut);
	if (!comm)
		return VM_VMM_UNKNOWN;
	nl = strchr(comm, '\n');
	if (nl)
		*nl = '\0';
	kind = kind_of(comm);
	free(comm);
	return kind;
}

/* The value of the last --opt VALUE or --opt=VALUE (opt spelled as given); NULL if absent. */
static const char *option_value(const struct argv_view *av, const char *const *spellings)
{
	const char *found = NULL;
	size_t i, j, len;

	for (i = 1; i < av->n; i++) {
		for (j = 0; spellings[j]; j++) {
			len = strlen(spellings[j]);
			if (strcmp(av->args[i], spellings[j]) == 0 && i + 1 < av->n)
				found = av->args[i + 1];
			else if (strncmp(av->args[i], spellings[j], len) == 0 &&
				 av->args[i][len] == '=')
				found = av->args[i] + len + 1;
		}
	}
	return found;
}

/*
 * Finds key in a QEMU option string ("a=1,b=2", ",," a literal comma); the first element may
 * omit its key, which is then implied_key. Writes the unescaped value to out (same size as
 * opts at most) and returns its length, or -ENOENT.
 */
static int qemu_opt_get(const char *opts, const char *key, const char *implied_key, char *out)
{
	const char *p = opts;
	bool first = true;

	while (*p) {
		const char *elem = p, *eq = NULL;
		size_t n = 0;
		char *value;

		/* Find the element's end and its first '=' (keys hold no commas). */
		for (; *p; p++) {
			if (*p == ',' && p[1] == ',') {
				p++;
				continue;
			}
			if (*p == ',')
				break;
			if (*p == '=' && !eq)
				eq = p;
		}
		if (eq ? (size_t)(eq - elem) == strlen(key) && strncmp(elem, key, eq - elem) == 0
		       : first && implied_key && strcmp(implied_key, key) == 0) {
			value = out;
			for (elem = eq ? eq + 1 : elem; elem < p; elem++) {
				value[n++] = *elem;
				if (*elem == ',')
					elem++; /* ",," */
			}
			value[n] = '\0';
			return (int)n;
		}
		first = false;
		if (*p == ',')
			p++;
	}
	return -ENOENT;
}

static int name_qemu(const struct argv_view *av, char *name)
{
	static const char *const name_opt[] = {"-name", "--name", NULL};
	static const char *const uuid_opt[] = {"-uuid", "--uuid", NULL};
	const char *opts = option_value(av, name_opt);
	char *guest;
	int len;

	if (opts) {
		guest = malloc(strlen(opts) + 1);
		if (guest) {
			len = qemu_opt_get(opts, "guest", "guest", guest);
			if (len > 0 && vm_name_sanitize(guest, (size_t)len, name, VM_NAME_MAX)) {
				free(guest);
				return VM_NAME_QEMU;
			}
			free(guest);
		}
	}
	opts = option_value(av, uuid_opt);
	if (opts && vm_name_sanitize(opts, strlen(opts), name, VM_NAME_MAX))
		return VM_NAME_QEMU_UUID;
	return -ENOENT;
}

static int name_cloud_hypervisor(const struct argv_view *av, char *name)
{
	static const char *const opt[] = {"--api-socket", NULL};
	const char *value = option_value(av, opt);
	const char *path = NULL;

	if (!value)
		return -ENOENT;
	/* Either a bare path or "path=P[,fd=N]"; an inherited fd names nothing. */
	if (!strchr(value, '=')) {
		path = value;
	} else if (has_prefix(value, "path=")) {
		path = value + 5;
	} else {
		path = strstr(value, ",path=");
		if (path)
			path += 6;
	}
	if (!path)
		return -ENOENT;
	if (sanitize_keep_tail(path, strcspn(path, ","), name, VM_NAME_MAX) == 0)
		return -ENOENT;
	return VM_NAME_CLOUD_HYPERVISOR;
}

static int name_by_option(const struct argv_view *av, const char *opt, char *name, int source)
{
	const char *const spellings[] = {opt, NULL};
	const char *value = option_value(av, spellings);

	if (!value || vm_name_sanitize(value, strlen(value), name, VM_NAME_MAX) == 0)
		return -ENOENT;
	return source;
}

/* ---- the VMM and the UUID ---- */

/* value (len bytes) as the UUID when it is one, else none: the last option given wins. */
static void take_uuid(const char *value, size_t len, char *uuid)
{
	if (!vm_uuid_parse(value, len, uuid))
		uuid[0] = '\0';
}

/* The value of av->args[*i] when it is spelled opt ("opt VALUE" or "opt=VALUE"), moving *i
 * past it; NULL otherwise. */
static const char *option_at(const struct argv_view *av, size_t *i, const char *const *opt)
{
	const char *arg = av->args[*i];

	for (size_t j = 0; opt[j]; j++) {
		size_t len = strlen(opt[j]);

		if (strcmp(arg, opt[j]) == 0 && *i + 1 < av->n)
			return av->args[++*i];
		if (strncmp(arg, opt[j], len) == 0 && arg[len] == '=')
			return arg + len + 1;
	}
	return NULL;
}

/* The value of key in a QEMU-syntax option string, as a new string (NULL: absent, or out of
 * memory, which the caller cannot tell apart and need not: both leave a fact unknown). */
static char *qemu_opt_dup(const char *opts, const char *key, const char *implied_key)
{
	char *value = malloc(strlen(opts) + 1);

	if (value && qemu_opt_get(opts, key, implied_key, value) < 0) {
		free(value);
		value = NULL;
	}
	return value;
}

/* QEMU: libvirt's or not, and the last of -uuid U and -smbios type=1,uuid=U. */
static void identify_qemu(const struct argv_view *av, struct vm_identity *id)
{
	static const char *const uuid_opt[] = {"-uuid", "--uuid", NULL};
	static const char *const smbios_opt[] = {"-smbios", "--smbios", NULL};
	static const char *const name_opt[] = {"-name", "--name", NULL};
	static const char *const object_opt[] = {"-object", "--object", NULL};
	const char *value;
	char *type, *uuid, *guest;

	for (size_t i = 1; i < av->n; i++) {
		if ((value = option_at(av, &i, uuid_opt))) {
			take_uuid(value, strlen(value), id->uuid);
		} else if ((value = option_at(av, &i, smbios_opt))) {
			type = qemu_opt_dup(value, "type", NULL);
			uuid = type && strcmp(type, "1") == 0 ? qemu_opt_dup(value, "uuid", NULL)
							      : NULL;
			if (uuid)
				take_uuid(uuid, strlen(uuid), id->uuid);
			free(type);
			free(uuid);
		} else if ((value = option_at(av, &i, name_opt))) {
			/* libvirt spells the implied key out: -name guest=NAME,debug-threads=on */
			guest = qemu_opt_dup(value, "guest", NULL);
			if (guest)
				id->vmm = VM_VMM_LIBVIRT_QEMU;
			free(guest);
		} else if ((value = option_at(av, &i, object_opt))) {
			/* the secret every libvirt domain gets, in option or JSON syntax */
			if (strstr(value, "id=masterKey0") ||
			    strstr(value, "\"id\":\"masterKey0\""))
				id->vmm = VM_VMM_LIBVIRT_QEMU;
		}
	}
}

static void identify(const struct argv_view *av, struct vm_identity *id)
{
	static const char *const fc_id[] = {"--id", NULL};
	static const char *const ch_platform[] = {"--platform", NULL};
	static const char *const bench_uuid[] = {"--uuid", NULL};
	const char *value;
	char *uuid;

	switch (id->vmm) {
	case VM_VMM_QEMU: identify_qemu(av, id); break;
	case VM_VMM_FIRECRACKER:
		/* --id is any name of up to 64 characters; a UUID is what inventories join on */
		value = option_value(av, fc_id);
		if (value)
			take_uuid(value, strlen(value), id->uuid);
		break;
	case VM_VMM_CLOUD_HYPERVISOR:
		value = option_value(av, ch_platform);
		uuid = value ? qemu_opt_dup(value, "uuid", NULL) : NULL;
		if (uuid)
			take_uuid(uuid, strlen(uuid), id->uuid);
		free(uuid);
		break;
	case VM_VMM_IPIVBENCH:
		value = option_value(av, bench_uuid);
		if (value)
			take_uuid(value, strlen(value), id->uuid);
		break;
	default: break;
	}
}

/*
 * Names the VM of process pid whose VMM's command line is cmdline (len bytes, NUL-terminated
 * at cmdline[len]; cut: it was longer), into name; "pid-<pid>" when nothing names it. When
 * argv[0] does not tell the VMM, comm under proc_root does (NULL: no /proc to ask). id (if
 * not NULL) gets the VMM and the UUID.
 */
static int describe(char *cmdline, size_t len, bool cut, const char *proc_root, int pid, char *name,
		    struct vm_identity *id)
{
	struct argv_view av = {NULL, 0};
	enum vm_vmm kind = VM_VMM_UNKNOWN;
	int source = -ENOENT;

	if (cmdline && split_cmdline(cmdline, len, cut, &av) == 0 && av.n > 0) {
		const char *slash = strrchr(av.args[0], '/');

		kind = kind_of(slash ? slash + 1 : av.args[0]);
	}
	if (kind == VM_VMM_UNKNOWN && proc_root)
		kind = kind_from_comm(proc_root, pid);

	if (id) {
		memset(id, 0, sizeof(*id));
		id->vmm = kind;
		identify(&av, id);
	}
	if (name) {
		switch (kind) {
		case VM_VMM_QEMU: source = name_qemu(&av, name); break;
		case VM_VMM_FIRECRACKER:
			source = name_by_option(&av, "--id", name, VM_NAME_FIRECRACKER);
			break;
		case VM_VMM_CLOUD_HYPERVISOR: source = name_cloud_hypervisor(&av, name); break;
		case VM_VMM_IPIVBENCH:
			source = name_by_option(&av, "--name", name, VM_NAME_IPIVBENCH);
			break;
		default: break; /* crosvm has no name option */
		}
		if (source < 0) {
			snprintf(name, VM_NAME_MAX, "pid-%d", pid);
			source = VM_NAME_PID;
		}
	}
	free(av.args);
	return source;
}

/* A copy of cmdline NUL-terminated at [len], as describe() takes it. */
static char *cmdline_copy(const char *cmdline, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy) {
		if (len)
			memcpy(copy, cmdline, len);
		copy[len] = '\0';
	}
	return copy;
}

int vm_name_from_proc(const char *proc_root, int pid, char name[VM_NAME_MAX])
{
	int source;
	char *cmdline;
	size_t len;
	bool cut;

	if (!proc_root || !name || pid < 0)
		return -EINVAL;
	cmdline = read_proc_file(proc_root, pid, "cmdline", VM_CMDLINE_MAX, &len, &cut);
	source = describe(cmdline, len, cut, proc_root, pid, name, NULL);
	free(cmdline);
	return source;
}

int vm_name_from_cmdline(const char *cmdline, size_t len, bool cut, int pid, char name[VM_NAME_MAX])
{
	char *copy;
	int source;

	if (!name || (!cmdline && len) || pid < 0)
		return -EINVAL;
	copy = cmdline_copy(cmdline, len);
	if (!copy)
		return -ENOMEM;
	source = describe(copy, len, cut, NULL, pid, name, NULL);
	free(copy);
	return source;
}

int vm_identity_from_cmdline(const char *cmdline, size_t len, bool cut, struct vm_identity *id)
{
	char *copy;

	if (!id || (!cmdline && len))
		return -EINVAL;
	copy = cmdline_copy(cmdline, len);
	if (!copy)
		return -ENOMEM;
	describe(copy, len, cut, NULL, 0, NULL, id);
	free(copy);
	return 0;
}

int vm_identity_from_proc(const char *proc_root, int pid, struct vm_identity *id)
{
	char *cmdline;
	size_t len;
	bool cut;

	if (!proc_root || !id || pid < 0)
		return -EINVAL;
	cmdline = read_proc_file(proc_root, pid, "cmdline", VM_CMDLINE_MAX, &len, &cut);
	describe(cmdline, len, cut, proc_root, pid, NULL, id);
	free(cmdline);
	return 0;
}

/* ---- names of a snapshot's VMs: unique, and each VM's for its whole life ---- */

/* base + suffix in out, base cut on a character boundary to leave room for the suffix. */
static void with_suffix(const char *base, const char *suffix, char out[VM_NAME_MAX])
{
	size_t room = VM_NAME_MAX - 1 - strlen(suffix), len = strlen(base);

	if (len > room) {
		len = room;
		while (len && ((unsigned char)base[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(out, base, len);
	memcpy(out + len, suffix, strlen(suffix) + 1);
}

/* Grows *array (elements of size, *cap of them) to hold one more than n. */
static int grow(void **array, size_t *cap, size_t n, size_t size)
{
	void *a;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	a = realloc(*array, c * size);
	if (!a)
		return -ENOMEM;
	*array = a;
	*cap = c;
	return 0;
}

/*
 * The name, VMM and UUID of the VMM process pid, read from /proc once; vm (NULL: none) is the
 * snapshot row of its VM. When /proc named nothing (the process exited before discovery read
 * it: a VM that lived less than a poll interval), the command line the BPF side kept when the
 * VM appeared names it, as it would have.
 */
static const struct vm_name_process *process_of(struct vm_name_cache *cache, const char *proc_root,
						int pid, const struct ipiv_vm_stats *vm)
{
	struct vm_name_process *e = NULL;
	char pid_name[VM_NAME_MAX], name[VM_NAME_MAX], *cmdline;
	struct vm_identity id;
	size_t len;
	bool cut;

	for (size_t i = 0; i < cache->n_procs && !e; i++)
		if (cache->procs[i].pid == pid)
			e = &cache->procs[i];
	if (!e) {
		if (grow((void **)&cache->procs, &cache->cap_procs, cache->n_procs, sizeof(*e)))
			return NULL;
		e = &cache->procs[cache->n_procs++];
		e->pid = pid;
		/* A VMM's command line does not change: read it once per process. */
		cmdline = read_proc_file(proc_root, pid, "cmdline", VM_CMDLINE_MAX, &len, &cut);
		describe(cmdline, len, cut, proc_root, pid, e->name, &e->id);
		free(cmdline);
	}
	snprintf(pid_name, sizeof(pid_name), "pid-%d", pid);
	if (vm && vm->cmdline_len && strcmp(e->name, pid_name) == 0 &&
	    vm->cmdline_len <= sizeof(vm->cmdline) &&
	    (cmdline = cmdline_copy(vm->cmdline, vm->cmdline_len))) {
		if (describe(cmdline, vm->cmdline_len, vm->cmdline_cut, NULL, pid, name, &id) !=
		    VM_NAME_PID) {
			memcpy(e->name, name, sizeof(name));
			e->id = id;
		}
		free(cmdline);
	}
	return e;
}

/* Whether a VM of the snapshot other than self holds name. */
static bool name_held(const struct vm_name_cache *cache, const struct vm_name_held *self,
		      const char *name)
{
	for (size_t i = 0; i < cache->n_held; i++)
		if (&cache->held[i] != self && cache->held[i].seen &&
		    strcmp(cache->held[i].name, name) == 0)
			return true;
	return false;
}

/* Names a VM seen for the first time (or one named before its process was known) into h:
 * its process' name, "-vm<k>" for the k-th VM of one process, then "-2", "-3"... until no
 * other VM in the snapshot holds it. The VMs that hold a name keep it. */
static void name_new_vm(struct vm_name_cache *cache, const char *proc_root,
			const struct ipiv_vm_stats *vm, struct vm_name_held *h)
{
	const struct vm_name_process *e =
		vm->pid > 0 ? process_of(cache, proc_root, vm->pid, vm) : NULL;
	const char *proc = e ? e->name : NULL;
	char base[VM_NAME_MAX], suffix[24];
	unsigned k = 1;

	h->placeholder = !proc;
	if (e)
		h->id = e->id;
	else
		memset(&h->id, 0, sizeof(h->id));
	if (!proc) {
		snprintf(base, sizeof(base), "vm-%llu", (unsigned long long)++cache->anonymous);
	} else {
		for (size_t i = 0; i < cache->n_held; i++)
			k += cache->held[i].seen && cache->held[i].pid == vm->pid &&
			     !cache->held[i].placeholder && &cache->held[i] != h;
		snprintf(suffix, sizeof(suffix), "-vm%u", k);
		if (k > 1)
			with_suffix(proc, suffix, base);
		else
			snprintf(base, sizeof(base), "%s", proc);
	}
	snprintf(h->name, sizeof(h->name), "%s", base);
	for (unsigned n = 2; name_held(cache, h, h->name); n++) {
		snprintf(suffix, sizeof(suffix), "-%u", n);
		with_suffix(base, suffix, h->name);
	}
}

/* The entry of the VM vm names, or SIZE_MAX. */
static size_t held_find(const struct vm_name_cache *cache, const struct ipiv_vm_stats *vm)
{
	for (size_t i = 0; i < cache->n_held; i++) {
		const struct vm_name_held *h = &cache->held[i];

		/* a new VM at a reclaimed one's address comes with another process */
		if (h->vm == vm->vm && (h->pid == vm->pid || h->pid <= 0 || vm->pid <= 0))
			return i;
	}
	return SIZE_MAX;
}

int vm_names_for_snapshot(struct vm_name_cache *cache, const char *proc_root,
			  struct ipiv_snapshot *snap, char (**out)[VM_NAME_MAX])
{
	size_t n = snap->n_vms;
	char(*names)[VM_NAME_MAX] = calloc(n + 1, sizeof(*names));
	size_t *of = calloc(n + 1, sizeof(*of)); /* snapshot VM -> its held entry */
	int err = 0;

	if (!names || !of) {
		err = -ENOMEM;
		goto out;
	}
	/* Names VMs already hold stay theirs; entries of VMs gone from the snapshot go. */
	for (size_t i = 0; i < cache->n_held; i++)
		cache->held[i].seen = false;
	for (size_t i = 0; i < n; i++) {
		of[i] = held_find(cache, &snap->vms[i]);
		if (of[i] != SIZE_MAX)
			cache->held[of[i]].seen = true;
	}
	for (size_t i = 0; i < cache->n_held;) {
		if (cache->held[i].seen) {
			i++;
			continue;
		}
		cache->held[i] = cache->held[--cache->n_held];
		for (size_t j = 0; j < n; j++) /* the moved entry's VM */
			if (of[j] == cache->n_held)
				of[j] = i;
	}
	/* Then the new VMs, in snapshot order (by pid: the older process first). */
	for (size_t i = 0; i < n; i++) {
		const struct ipiv_vm_stats *vm = &snap->vms[i];
		struct vm_name_held *h;

		if (of[i] != SIZE_MAX && !(cache->held[of[i]].placeholder && vm->pid > 0))
			continue;
		if (of[i] == SIZE_MAX) {
			err = grow((void **)&cache->held, &cache->cap_held, cache->n_held,
				   sizeof(*h));
			if (err)
				goto out;
			of[i] = cache->n_held++;
			h = &cache->held[of[i]];
			memset(h, 0, sizeof(*h));
			h->vm = vm->vm;
			h->seen = true;
		}
		h = &cache->held[of[i]];
		h->pid = vm->pid;
		name_new_vm(cache, proc_root, vm, h);
	}
	for (size_t i = 0; i < n; i++) {
		const struct vm_name_held *h = &cache->held[of[i]];

		memcpy(names[i], h->name, VM_NAME_MAX);
		snap->vms[i].vmm = (uint8_t)h->id.vmm;
		memcpy(snap->vms[i].uuid, h->id.uuid, VM_UUID_LEN);
	}
	/* Forget processes that are gone: a new process may reuse the pid. */
	for (size_t i = 0; i < cache->n_procs;) {
		bool live = false;

		for (size_t j = 0; j < n && !live; j++)
			live = snap->vms[j].pid == cache->procs[i].pid;
		if (!live)
			cache->procs[i] = cache->procs[--cache->n_procs];
		else
			i++;
	}
out:
	free(of);
	if (err) {
		free(names);
		return err;
	}
	*out = names;
	return 0;
}

void vm_name_cache_prefetch(struct vm_name_cache *cache, const char *proc_root, int pid)
{
	if (pid > 0)
		process_of(cache, proc_root, pid, NULL);
}

void vm_name_cache_free(struct vm_name_cache *cache)
{
	free(cache->procs);
	free(cache->held);
	memset(cache, 0, sizeof(*cache));
}
