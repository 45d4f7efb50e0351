/* Fuzzes VM naming (naming.h) with what a guest's owner controls: VMM command lines and the
 * names in them. Properties: a name is always there, bounded and sanitised; naming the
 * name's own command line again gives it back; a cut sanitised text is a prefix of the
 * whole; and a snapshot's VMs get distinct names that the same snapshot gives again.
 *
 * Input: a flags byte (bit 0: the command line was cut), a byte choosing an output size for
 * vm_name_sanitize, then a command line (NUL-separated arguments). The command line is also
 * split into the VMs of a snapshot: per VM a byte choosing its pid and a length byte. */
#include <errno.h>

#include "fuzz.h"

#define PID 4242

static void check_name(const char *what, int source, const char *name, int pid)
{
	char pid_name[VM_NAME_MAX];

	FUZZ_CHECK(source >= VM_NAME_PID && source <= VM_NAME_IPIVBENCH, "%s returned %d", what,
		   source);
	fuzz_check_sanitized(what, name, VM_NAME_MAX);
	FUZZ_CHECK(name[0] != '\0', "%s: empty name (source %s)", what, vm_name_source_str(source));
	snprintf(pid_name, sizeof(pid_name), "pid-%d", pid);
	FUZZ_CHECK(source != VM_NAME_PID || strcmp(name, pid_name) == 0,
		   "%s: source pid but name \"%s\"", what, name);
}

/* The command line a VMM of this kind would have to be called name. */
static size_t cmdline_for(int source, const char *name, char *out, size_t size)
{
	const char *argv0, *opt;
	size_t n, len = strlen(name);

	switch (source) {
	case VM_NAME_QEMU: argv0 = "qemu-system-x86_64", opt = "-name"; break;
	case VM_NAME_FIRECRACKER: argv0 = "firecracker", opt = "--id"; break;
	case VM_NAME_IPIVBENCH: argv0 = "ipivbench", opt = "--name"; break;
	default: return 0;
	}
	/* QEMU's value always starts with guest=; the others are given as --opt=NAME, since
	 * the parser takes any later argument that looks like the option ("--id --id=x": x) */
	n = (size_t)snprintf(out, size, "%s%c%s%c", argv0, 0, opt,
			     source == VM_NAME_QEMU ? 0 : '=');
	if (source == VM_NAME_QEMU) {
		/* QEMU option syntax: the value after guest=, with ",," for a comma */
		n += (size_t)snprintf(out + n, size - n, "guest=");
		for (size_t i = 0; i < len && n + 2 < size; i++) {
			out[n++] = name[i];
			if (name[i] == ',')
				out[n++] = ',';
		}
	} else {
		memcpy(out + n, name, len);
		n += len;
	}
	out[n++] = '\0';
	return n;
}

static void name_cmdline(const char *cmdline, size_t len, bool cut)
{
	char name[VM_NAME_MAX], again[VM_NAME_MAX], line[4 * VM_NAME_MAX];
	int source, source2;
	size_t n;

	source = vm_name_from_cmdline(cmdline, len, cut, PID, name);
	check_name("vm_name_from_cmdline", source, name, PID);
	n = cmdline_for(source, name, line, sizeof(line));
	if (n == 0)
		return;
	source2 = vm_name_from_cmdline(line, n, false, PID, again);
	FUZZ_CHECK(source2 == source && strcmp(name, again) == 0,
		   "\"%s\" (%s) named again: \"%s\" (%s)", name, vm_name_source_str(source), again,
		   vm_name_source_str(source2));
}

static void sanitize(const char *in, size_t len, size_t size)
{
	char whole[4096 + 1], *cut = malloc(size);
	size_t n;

	FUZZ_CHECK(cut, "%s", "out of memory");
	n = vm_name_sanitize(in, len, cut, size);
	fuzz_check_sanitized("vm_name_sanitize", cut, size);
	FUZZ_CHECK(n == strlen(cut), "returned %zu for \"%s\"", n, cut);
	if (len < sizeof(whole)) {
		vm_name_sanitize(in, len, whole, sizeof(whole));
		FUZZ_CHECK(strncmp(cut, whole, n) == 0, "\"%s\" is not the start of \"%s\"", cut,
			   whole);
	}
	free(cut);
}

/* The VMs of a snapshot, their command lines taken from the input. */
static void name_snapshot(const uint8_t *data, size_t size)
{
	struct ipiv_vm_stats vms[8];
	struct ipiv_snapshot snap = {.vms = vms};
	struct vm_name_cache cache = {0};
	char(*names)[VM_NAME_MAX] = NULL, (*again)[VM_NAME_MAX] = NULL;
	size_t i, j, len;

	memset(vms, 0, sizeof(vms));
	while (snap.n_vms < 8 && size >= 2) {
		struct ipiv_vm_stats *vm = &vms[snap.n_vms];

		vm->vm = 0xffff888000000000ull + snap.n_vms * 0x1000;
		/* a few pids, so that processes hold several VMs; 0: not known yet */
		vm->pid = data[0] % 5 ? 100 + data[0] % 4 : 0;
		vm->cmdline_cut = data[0] & 0x80;
		len = data[1] < size - 2 ? data[1] : size - 2;
		if (len > sizeof(vm->cmdline))
			len = sizeof(vm->cmdline);
		memcpy(vm->cmdline, data + 2, len);
		vm->cmdline_len = (uint32_t)len;
		data += 2 + len, size -= 2 + len;
		snap.n_vms++;
	}
	/* proc_root names nothing: names come from the kept command lines */
	FUZZ_CHECK(vm_names_for_snapshot(&cache, "/nonexistent", &snap, &names) == 0, "%s",
		   "vm_names_for_snapshot failed");
	FUZZ_CHECK(vm_names_for_snapshot(&cache, "/nonexistent", &snap, &again) == 0, "%s",
		   "vm_names_for_snapshot failed the second time");
	for (i = 0; i < snap.n_vms; i++) {
		fuzz_check_sanitized("snapshot name", names[i], VM_NAME_MAX);
		FUZZ_CHECK(names[i][0], "VM %zu has an empty name", i);
		FUZZ_CHECK(strcmp(names[i], again[i]) == 0, "VM %zu: \"%s\", then \"%s\"", i,
			   names[i], again[i]);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(names[i], names[j]) != 0, "VMs %zu and %zu both \"%s\"",
				   j, i, names[i]);
	}
	free(names);
	free(again);
	vm_name_cache_free(&cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool cut;
	size_t out_size;

	if (size < 2)
		return 0;
	cut = data[0] & 1;
	out_size = 1 + data[1];
	data += 2, size -= 2;
	name_cmdline((const char *)data, size, cut);
	sanitize((const char *)data, size, out_size);
	name_snapshot(data, size);
	return 0;
}
