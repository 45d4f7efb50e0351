/* Fuzzes the readers of /proc, /sys and /dev/cpu files (accel_read, vm_name_from_proc)
 * through a file tree under a temp root, as the unit tests point them at one. Properties:
 * accel_read never fails on content; every fact is known exactly when it has no error and
 * holds printable text; what the facts add up to is consistent; and a VM is named from
 * /proc/<pid>/cmdline as from the same bytes handed over directly.
 *
 * Input: the files' contents one after another, separated by a line "====": cpuinfo, the
 * KVM module parameters, the MSR device (its bytes from offset 0x482, so 0x492 is 16 bytes
 * in), the VMM's cmdline and comm, and the kvm_pvm module. A file whose section is missing
 * or is "!" is absent; a module's directory is there when one of its files is. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel.h"
#include "fuzz.h"

#define PID	       4242
#define MSR_FILE_INDEX 8

static const char *const files[] = {
	"proc/cpuinfo",
	"sys/module/kvm_intel/parameters/enable_apicv",
	"sys/module/kvm_intel/parameters/enable_ipiv",
	"sys/module/kvm/parameters/enable_ipiv",
	"sys/module/kvm_intel/parameters/enable_device_posted_irqs",
	"sys/module/kvm_amd/parameters/avic",
	"sys/module/kvm_amd/parameters/enable_ipiv",
	"sys/module/kvm_amd/parameters/force_avic",
	"dev/cpu/0/msr",
	"proc/4242/cmdline",
	"proc/4242/comm",
	"sys/module/kvm_pvm/parameters/.present",
};
#define N_FILES (sizeof(files) / sizeof(files[0]))

/* Deepest first, so that each is empty when it is removed. */
static const char *const dirs[] = {
	"sys/module/kvm_intel/parameters",
	"sys/module/kvm_intel",
	"sys/module/kvm/parameters",
	"sys/module/kvm",
	"sys/module/kvm_amd/parameters",
	"sys/module/kvm_amd",
	"sys/module/kvm_pvm/parameters",
	"sys/module/kvm_pvm",
	"dev/cpu/0",
	"proc/4242",
};

static char root[256];

static void path_of(const char *rel, char *out, size_t size)
{
	FUZZ_CHECK((size_t)snprintf(out, size, "%s/%s", root, rel) < size, "%s", "path too long");
}

static void make_root(void)
{
	static const char *const always[] = {"proc", "sys", "sys/module", "dev", "dev/cpu"};
	const char *tmp = getenv("TMPDIR");
	char path[512];

	snprintf(root, sizeof(root), "%s/ipiv-fuzz-proc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	FUZZ_CHECK(mkdtemp(root), "cannot create %s", root);
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++) {
		path_of(always[i], path, sizeof(path));
		FUZZ_CHECK(mkdir(path, 0755) == 0, "cannot create %s", path);
	}
}

/* mkdir -p of the directory holding rel, under root */
static void make_parents(const char *rel)
{
	char path[512];
	size_t base = strlen(root) + 1;

	path_of(rel, path, sizeof(path));
	for (char *p = path + base; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
}

static void write_file(const char *rel, const uint8_t *data, size_t len, off_t at)
{
	char path[512];
	int fd;

	make_parents(rel);
	path_of(rel, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd >= 0, "cannot create %s", path);
	FUZZ_CHECK(len == 0 || pwrite(fd, data, len, at) == (ssize_t)len, "cannot write %s", path);
	close(fd);
}

static void clear_tree(void)
{
	char path[512];

	for (size_t i = 0; i < N_FILES; i++) {
		path_of(files[i], path, sizeof(path));
		unlink(path);
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		path_of(dirs[i], path, sizeof(path));
		rmdir(path);
	}
}

static bool printable(const char *s, size_t size)
{
	size_t len = strnlen(s, size);

	if (len == size)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static bool state_valid(enum accel_state_value v)
{
	return v == ACCEL_UNKNOWN || v == ACCEL_NO || v == ACCEL_YES;
}

static void check_accel(void)
{
	struct accel_state st;
	int r = accel_read(root, &st);

	FUZZ_CHECK(r == 0, "accel_read returned %d", r);
	FUZZ_CHECK(printable(st.vendor_id, sizeof(st.vendor_id)), "vendor_id \"%s\"", st.vendor_id);
	FUZZ_CHECK(printable(st.model_name, sizeof(st.model_name)), "model name \"%s\"",
		   st.model_name);
	FUZZ_CHECK(st.family >= -1 && st.family <= 0xffff, "family %d", st.family);
	FUZZ_CHECK(st.model >= -1 && st.model <= 0xffff, "model %d", st.model);
	FUZZ_CHECK(st.vendor >= ACCEL_VENDOR_UNKNOWN && st.vendor <= ACCEL_VENDOR_OTHER,
		   "vendor %d", st.vendor);
	for (int i = 0; i < ACCEL_FACT_COUNT; i++) {
		const struct accel_fact *f = &st.facts[i];
		const char *name = accel_fact_name(i);

		FUZZ_CHECK(state_valid(f->state), "%s: state %d", name, f->state);
		FUZZ_CHECK((f->state == ACCEL_UNKNOWN) == (f->err < 0), "%s: state %s with err %d",
			   name, accel_state_name(f->state), f->err);
		FUZZ_CHECK(f->err <= 0, "%s: err %d", name, f->err);
		FUZZ_CHECK(printable(f->value, sizeof(f->value)), "%s: value \"%s\"", name,
			   f->value);
		FUZZ_CHECK(printable(f->source, sizeof(f->source)), "%s: source \"%s\"", name,
			   f->source);
	}
	FUZZ_CHECK(st.mechanism && st.why, "%s", "mechanism or why missing");
	FUZZ_CHECK(st.backend >= ACCEL_BACKEND_UNKNOWN && st.backend <= ACCEL_BACKEND_KVM_PVM,
		   "backend %d", st.backend);
	FUZZ_CHECK(state_valid(st.apicv_hw) && state_valid(st.apicv_enabled) &&
			   state_valid(st.ipiv_hw) && state_valid(st.ipiv_enabled) &&
			   state_valid(st.ipiv_effective),
		   "%s", "a derived state out of range");
	if (st.ipiv_effective == ACCEL_YES)
		FUZZ_CHECK((st.backend == ACCEL_BACKEND_KVM_INTEL ||
			    st.backend == ACCEL_BACKEND_KVM_AMD) &&
				   st.ipiv_hw == ACCEL_YES && st.ipiv_enabled == ACCEL_YES,
			   "IPIs accelerated with backend %s, hardware %s, enabled %s",
			   accel_backend_name(st.backend), accel_state_name(st.ipiv_hw),
			   accel_state_name(st.ipiv_enabled));
	if (st.backend == ACCEL_BACKEND_NONE || st.backend == ACCEL_BACKEND_KVM_PVM)
		FUZZ_CHECK(st.ipiv_effective == ACCEL_NO, "backend %s yet IPIv %s",
			   accel_backend_name(st.backend), accel_state_name(st.ipiv_effective));
}

static void check_naming(const uint8_t *cmdline, size_t len, bool have_cmdline)
{
	char proc[512], name[VM_NAME_MAX], direct[VM_NAME_MAX];
	int source, direct_source;

	path_of("proc", proc, sizeof(proc));
	source = vm_name_from_proc(proc, PID, name);
	FUZZ_CHECK(source >= VM_NAME_PID && source <= VM_NAME_IPIVBENCH, "returned %d", source);
	fuzz_check_sanitized("name from /proc", name, VM_NAME_MAX);
	FUZZ_CHECK(name[0], "%s", "empty name from /proc");
	if (!have_cmdline)
		return;
	direct_source = vm_name_from_cmdline((const char *)cmdline, len, false, PID, direct);
	if (direct_source != VM_NAME_PID)
		FUZZ_CHECK(direct_source == source && strcmp(direct, name) == 0,
			   "/proc gives \"%s\" (%s), the same command line \"%s\" (%s)", name,
			   vm_name_source_str(source), direct, vm_name_source_str(direct_source));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n====\n";
	const uint8_t *section[N_FILES] = {0};
	size_t len[N_FILES] = {0}, n = 0;

	if (!root[0])
		make_root();
	while (n < N_FILES) {
		const uint8_t *end = memmem(data, size, sep, sizeof(sep) - 1);
		size_t l = end ? (size_t)(end - data) : size;

		section[n] = data;
		len[n++] = l;
		if (!end)
			break;
		data += l + sizeof(sep) - 1;
		size -= l + sizeof(sep) - 1;
	}
	clear_tree();
	for (size_t i = 0; i < N_FILES; i++)
		if (section[i] && !(len[i] == 1 && section[i][0] == '!'))
			write_file(files[i], section[i], len[i], i == MSR_FILE_INDEX ? 0x482 : 0);
	check_accel();
	check_naming(section[9], len[9], section[9] && !(len[9] == 1 && section[9][0] == '!'));
	return 0;
}
