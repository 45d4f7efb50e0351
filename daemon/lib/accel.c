/* Host IPI acceleration state read from a root prefix: /proc/cpuinfo, the VMX capability
 * MSRs and the KVM modules' parameters, then what they mean for IPIv and AVIC. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel.h"

#define CPUINFO_MAX (256 * 1024)
#define PARAM_MAX   64

static const char *const fact_names[ACCEL_FACT_COUNT] = {
	[ACCEL_CPU_VMX] = "cpu.vmx",
	[ACCEL_CPU_SVM] = "cpu.svm",
	[ACCEL_CPU_VAPIC_REG] = "cpu.vapic_reg",
	[ACCEL_CPU_VID] = "cpu.vid",
	[ACCEL_CPU_POSTED_INTR] = "cpu.posted_intr",
	[ACCEL_CPU_IPI_VIRT] = "cpu.ipi_virt",
	[ACCEL_MSR_TERTIARY] = "msr.vmx_tertiary_controls",
	[ACCEL_MSR_IPI_VIRT] = "msr.vmx_ipi_virt",
	[ACCEL_CPU_AVIC] = "cpu.avic",
	[ACCEL_CPU_X2AVIC] = "cpu.x2avic",
	[ACCEL_MOD_KVM_INTEL] = "module.kvm_intel",
	[ACCEL_INTEL_ENABLE_APICV] = "kvm_intel.enable_apicv",
	[ACCEL_INTEL_ENABLE_IPIV] = "kvm_intel.enable_ipiv",
	[ACCEL_INTEL_ENABLE_DEVICE_POSTED_IRQS] = "kvm_intel.enable_device_posted_irqs",
	[ACCEL_MOD_KVM_AMD] = "module.kvm_amd",
	[ACCEL_AMD_AVIC] = "kvm_amd.avic",
	[ACCEL_AMD_ENABLE_IPIV] = "kvm_amd.enable_ipiv",
	[ACCEL_AMD_FORCE_AVIC] = "kvm_amd.force_avic",
	[ACCEL_MOD_KVM_PVM] = "module.kvm_pvm",
};

const char *accel_fact_name(enum accel_fact_id id)
{
	return (unsigned)id < ACCEL_FACT_COUNT ? fact_names[id] : "invalid";
}

const char *accel_state_name(enum accel_state_value v)
{
	return v == ACCEL_YES ? "yes" : v == ACCEL_NO ? "no" : "unknown";
}

const char *accel_vendor_name(enum accel_vendor v)
{
	static const char *const names[] = {"unknown", "intel", "amd", "other"};

	return (unsigned)v < 4 ? names[v] : "unknown";
}

const char *accel_backend_name(enum accel_backend b)
{
	static const char *const names[] = {"unknown", "none", "kvm_intel", "kvm_amd", "kvm_pvm"};

	return (unsigned)b < 5 ? names[b] : "unknown";
}

struct paths {
	char root[192]; /* without a trailing slash; "" for the real host */
};

/* root without trailing slashes; -ENAMETOOLONG where it leaves no room for the paths. */
static int paths_init(struct paths *p, const char *root)
{
	size_t len = strlen(root);

	while (len && root[len - 1] == '/')
		len--;
	if (len >= sizeof(p->root) - 64)
		return -ENAMETOOLONG;
	memcpy(p->root, root, len);
	p->root[len] = '\0';
	return 0;
}

static int path_join(const struct paths *p, const char *rel, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s", p->root, rel);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Reads at most size - 1 bytes of a small file. Returns the length or a negative errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	if (fd < 0)
		return -errno;
	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, size - 1 - n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			close(fd);
			return r;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd);
	return (ssize_t)n;
}

static void trim(char *s)
{
	size_t len = strlen(s), start = 0;

	while (len && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	while (s[start] && isspace((unsigned char)s[start]))
		start++;
	memmove(s, s + start, len - start + 1);
}

/* Copies printable ASCII only: cpuinfo and sysfs text is shown to people and in labels. */
static void copy_printable(char *dst, size_t size, const char *src, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < size; i++)
		if (src[i] >= 0x20 && src[i] < 0x7f)
			dst[o++] = src[i];
	dst[o] = '\0';
}

static void fact_set(struct accel_fact *f, enum accel_state_value state, const char *value,
		     const char *source, int err, const char *note)
{
	f->state = state;
	copy_printable(f->value, sizeof(f->value), value ? value : "", value ? strlen(value) : 0);
	snprintf(f->source, sizeof(f->source), "%s", source ? source : "");
	f->err = err;
	f->note = note;
}

/* ---- /proc/cpuinfo ---- */

struct cpuinfo {
	bool read;
	bool have_flags, have_vmx_flags;
	char *flags;	 /* points into the buffer; NULL if the line is missing */
	char *vmx_flags; /* the "vmx flags" line */
};

static bool word_in(const char *list, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t l = strcspn(p, " \t");

		if (l == wl && !strncmp(p, word, wl))
			return true;
		p += l;
	}
	return false;
}

/* Key and value of a "key<tabs>: value" line, in place; false for lines without a colon. */
static bool split_line(char *line, char **key, char **value)
{
	char *colon = strchr(line, ':');

	if (!colon)
		return false;
	*colon = '\0';
	*key = line;
	*value = colon + 1;
	trim(*key);
	trim(*value);
	return true;
}

static int parse_int(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 0xffff)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Only the first processor block is read: KVM needs the same features on every CPU. */
static void parse_cpuinfo(struct accel_state *st, char *buf, struct cpuinfo *ci)
{
	char *save = NULL;

	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *key, *value;

		if (!split_line(line, &key, &value))
			continue;
		if (!strcmp(key, "processor") && (ci->have_flags || st->vendor_id[0]))
			break; /* the second processor */
		if (!strcmp(key, "vendor_id")) {
			copy_printable(st->vendor_id, sizeof(st->vendor_id), value, strlen(value));
		} else if (!strcmp(key, "model name")) {
			copy_printable(st->model_name, sizeof(st->model_name), value,
				       strlen(value));
		} else if (!strcmp(key, "cpu family")) {
			if (parse_int(value, &st->family))
				st->family = -1;
		} else if (!strcmp(key, "model")) {
			if (parse_int(value, &st->model))
				st->model = -1;
		} else if (!strcmp(key, "flags")) {
			ci->have_flags = true;
			ci->flags = value;
		} else if (!strcmp(key, "vmx flags")) {
			ci->have_vmx_flags = true;
			ci->vmx_flags = value;
		}
	}
	if (!strcmp(st->vendor_id, "GenuineIntel"))
		st->vendor = ACCEL_VENDOR_INTEL;
	else if (!strcmp(st->vendor_id, "AuthenticAMD") || !strcmp(st->vendor_id, "HygonGenuine"))
		st->vendor = ACCEL_VENDOR_AMD;
	else if (st->vendor_id[0])
		st->vendor = ACCEL_VENDOR_OTHER;
}

static void cpu_flag(struct accel_state *st, enum accel_fact_id id, const struct cpuinfo *ci,
		     const char *word)
{
	if (!ci->read)
		fact_set(&st->facts[id], ACCEL_UNKNOWN, NULL, st->cpuinfo_path, st->cpuinfo_err,
			 "cpuinfo unreadable");
	else if (!ci->have_flags)
		fact_set(&st->facts[id], ACCEL_UNKNOWN, NULL, st->cpuinfo_path, -ENODATA,
			 "no flags line in cpuinfo");
	else
		fact_set(&st->facts[id], word_in(ci->flags, word) ? ACCEL_YES : ACCEL_NO, NULL,
			 st->cpuinfo_path, 0, NULL);
}

/* "vmx flags" exists since Linux 5.8; without it a VMX CPU's features are unknown, while a
 * CPU without VMX has none of them. */
static void vmx_flag(struct accel_state *st, enum accel_fact_id id, const struct cpuinfo *ci,
		     const char *word)
{
	struct accel_fact *f = &st->facts[id];

	if (st->facts[ACCEL_CPU_VMX].state != ACCEL_YES)
		fact_set(f, st->facts[ACCEL_CPU_VMX].state == ACCEL_NO ? ACCEL_NO : ACCEL_UNKNOWN,
			 NULL, st->cpuinfo_path, st->facts[ACCEL_CPU_VMX].err,
			 st->facts[ACCEL_CPU_VMX].state == ACCEL_NO ? "no VMX" : "VMX unknown");
	else if (!ci->have_vmx_flags)
		fact_set(f, ACCEL_UNKNOWN, NULL, st->cpuinfo_path, -ENODATA,
			 "no \"vmx flags\" line (kernel older than 5.8)");
	else
		fact_set(f, word_in(ci->vmx_flags, word) ? ACCEL_YES : ACCEL_NO, NULL,
			 st->cpuinfo_path, 0, NULL);
}

static void read_cpuinfo(const struct paths *p, struct accel_state *st)
{
	struct cpuinfo ci = {0};
	char *buf = malloc(CPUINFO_MAX);
	ssize_t n;

	st->family = st->model = -1;
	if (path_join(p, "/proc/cpuinfo", st->cpuinfo_path, sizeof(st->cpuinfo_path)) < 0)
		st->cpuinfo_err = -ENAMETOOLONG;
	else if (!buf)
		st->cpuinfo_err = -ENOMEM;
	else if ((n = read_small(st->cpuinfo_path, buf, CPUINFO_MAX)) < 0)
		st->cpuinfo_err = (int)n;
	else if (n == 0 || memchr(buf, '\0', (size_t)n))
		st->cpuinfo_err = -EINVAL; /* empty or binary */
	else
		ci.read = true;
	if (ci.read)
		parse_cpuinfo(st, buf, &ci);

	cpu_flag(st, ACCEL_CPU_VMX, &ci, "vmx");
	cpu_flag(st, ACCEL_CPU_SVM, &ci, "svm");
	cpu_flag(st, ACCEL_CPU_AVIC, &ci, "avic");
	cpu_flag(st, ACCEL_CPU_X2AVIC, &ci, "x2avic");
	vmx_flag(st, ACCEL_CPU_VAPIC_REG, &ci, "vapic_reg");
	vmx_flag(st, ACCEL_CPU_VID, &ci, "vid");
	vmx_flag(st, ACCEL_CPU_POSTED_INTR, &ci, "posted_intr");
	vmx_flag(st, ACCEL_CPU_IPI_VIRT, &ci, "ipi_virt");
	free(buf);
}

/* ---- /dev/cpu/0/msr, or the facts file ipivd --dump-msr-facts wrote from it ---- */

/* What the device gave: each read's value or the negative errno that stopped it. */
struct msr_raw {
	char device[192];
	int open_err;
	int ctls_err; /* MSR 0x482, read when the device opened */
	uint64_t ctls;
	bool have_ctls3; /* MSR 0x492, read only with tertiary controls: it faults otherwise */
	int ctls3_err;
	uint64_t ctls3;
};

static bool has_tertiary(uint64_t ctls)
{
	return ctls & (1ull << ACCEL_VMX_TERTIARY_BIT);
}

static int msr_read(int fd, uint32_t msr, uint64_t *value)
{
	ssize_t r = pread(fd, value, sizeof(*value), msr);

	if (r < 0)
		return -errno;
	return r == sizeof(*value) ? 0 : -EIO; /* short: not an MSR device */
}

static void msr_raw_read(const char *device, struct msr_raw *raw)
{
	int fd;

	memset(raw, 0, sizeof(*raw));
	snprintf(raw->device, sizeof(raw->device), "%s", device);
	fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		raw->open_err = -errno;
		return;
	}
	raw->ctls_err = msr_read(fd, ACCEL_MSR_VMX_PROCBASED_CTLS, &raw->ctls);
	if (!raw->ctls_err && has_tertiary(raw->ctls)) {
		raw->have_ctls3 = true;
		raw->ctls3_err = msr_read(fd, ACCEL_MSR_VMX_PROCBASED_CTLS3, &raw->ctls3);
	}
	close(fd);
}

/* Both MSR facts unknown, for the same reason. */
static void msr_facts_unknown(struct accel_state *st, const char *source, int err, const char *note)
{
	fact_set(&st->facts[ACCEL_MSR_TERTIARY], ACCEL_UNKNOWN, NULL, source, err, note);
	fact_set(&st->facts[ACCEL_MSR_IPI_VIRT], ACCEL_UNKNOWN, NULL, source, err, note);
}

/* The two MSR facts from what the device gave; source is where it was read (the device, or
 * the facts file naming it). */
static void msr_facts(const struct msr_raw *raw, const char *source, struct accel_state *st)
{
	struct accel_fact *tert = &st->facts[ACCEL_MSR_TERTIARY];
	struct accel_fact *ipiv = &st->facts[ACCEL_MSR_IPI_VIRT];
	char value[32];

	if (raw->open_err) {
		int r = raw->open_err;
		const char *note =
			r == -ENOENT ? "no msr device (modprobe msr; PrivateDevices= hides it)"
			: r == -EPERM || r == -EACCES ? "needs CAP_SYS_RAWIO"
						      : "cannot open";

		msr_facts_unknown(st, source, r, note);
		return;
	}
	if (raw->ctls_err) {
		msr_facts_unknown(st, source, raw->ctls_err, "MSR 0x482 unreadable");
		return;
	}
	snprintf(value, sizeof(value), "0x%016llx", (unsigned long long)raw->ctls);
	if (!has_tertiary(raw->ctls)) {
		fact_set(tert, ACCEL_NO, value, source, 0, NULL);
		fact_set(ipiv, ACCEL_NO, NULL, source, 0, "no tertiary controls");
		return;
	}
	fact_set(tert, ACCEL_YES, value, source, 0, NULL);
	if (raw->ctls3_err) {
		fact_set(ipiv, ACCEL_UNKNOWN, NULL, source, raw->ctls3_err, "MSR 0x492 unreadable");
	} else {
		snprintf(value, sizeof(value), "0x%016llx", (unsigned long long)raw->ctls3);
		fact_set(ipiv, raw->ctls3 & (1ull << ACCEL_VMX_IPI_VIRT_BIT) ? ACCEL_YES : ACCEL_NO,
			 value, source, 0, NULL);
	}
}

/* The MSR facts accel_msr_preload read for one root: opening the device needs CAP_SYS_RAWIO,
 * which ipivd drops after start-up, and capability MSRs do not change while the host runs. */
static struct {
	bool filling, filled;
	char root[sizeof(((struct paths *)0)->root)];
	struct accel_fact tertiary, ipi_virt;
} msr_preloaded;

/* The facts file accel_msr_load read for one root: used instead of the device. */
static struct {
	bool loaded;
	char root[sizeof(((struct paths *)0)->root)];
	char source[256]; /* "<file> (from <device>)" */
	struct msr_raw raw;
} msr_file;

static void read_msrs(const struct paths *p, struct accel_state *st)
{
	struct accel_fact *tert = &st->facts[ACCEL_MSR_TERTIARY];
	struct accel_fact *ipiv = &st->facts[ACCEL_MSR_IPI_VIRT];
	char path[256];

	if (msr_preloaded.filled && !strcmp(msr_preloaded.root, p->root)) {
		*tert = msr_preloaded.tertiary;
		*ipiv = msr_preloaded.ipi_virt;
		return;
	}
	if (path_join(p, "/dev/cpu/0/msr", path, sizeof(path)) < 0) {
		msr_facts_unknown(st, "", -ENAMETOOLONG, "path too long");
	} else if (st->vendor != ACCEL_VENDOR_INTEL || st->facts[ACCEL_CPU_VMX].state == ACCEL_NO) {
		msr_facts_unknown(st, path, -ENODEV, "not an Intel VMX CPU");
	} else if (msr_file.loaded && !strcmp(msr_file.root, p->root)) {
		msr_facts(&msr_file.raw, msr_file.source, st);
	} else {
		struct msr_raw raw;

		msr_raw_read(path, &raw);
		msr_facts(&raw, path, st);
	}
	if (msr_preloaded.filling) {
		memcpy(msr_preloaded.root, p->root, sizeof(msr_preloaded.root));
		msr_preloaded.tertiary = *tert;
		msr_preloaded.ipi_virt = *ipiv;
		msr_preloaded.filled = true;
	}
}

/*
 * The facts file, written by root outside the unit's sandbox and read by the sandboxed
 * daemon. Line-based, '#' starts a comment line; errno values are positive decimals:
 *
 *	ipivd-msr-facts 1
 *	device /dev/cpu/0/msr
 *	open ok                         (or: open error 2)
 *	msr 0x482 0x0002000000000000    (or: msr 0x482 error 5); only after open ok
 *	msr 0x492 0x0000000000000010    only when 0x482 allows tertiary controls
 */
#define MSR_FILE_MAGIC "ipivd-msr-facts 1"
#define MSR_FILE_MAX   4096

static int msr_write_one(FILE *out, uint32_t msr, int err, uint64_t value)
{
	if (err)
		return fprintf(out, "msr 0x%x error %d\n# %s\n", msr, -err, strerror(-err));
	return fprintf(out, "msr 0x%x 0x%016llx\n", msr, (unsigned long long)value);
}

int accel_msr_dump(const char *root, FILE *out)
{
	struct paths p;
	struct msr_raw raw;
	char path[256];

	if (!root || !out)
		return -EINVAL;
	if (paths_init(&p, root) || path_join(&p, "/dev/cpu/0/msr", path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	msr_raw_read(path, &raw);
	fprintf(out, "# the VMX capability MSRs of CPU 0: ipivd --dump-msr-facts wrote this for "
		     "ipivd --collector.msr-facts\n" MSR_FILE_MAGIC "\n");
	fprintf(out, "device %s\n", raw.device);
	if (raw.open_err)
		fprintf(out, "open error %d\n# %s\n", -raw.open_err, strerror(-raw.open_err));
	else
		fprintf(out, "open ok\n");
	if (!raw.open_err)
		msr_write_one(out, ACCEL_MSR_VMX_PROCBASED_CTLS, raw.ctls_err, raw.ctls);
	if (raw.have_ctls3)
		msr_write_one(out, ACCEL_MSR_VMX_PROCBASED_CTLS3, raw.ctls3_err, raw.ctls3);
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}

static int msr_file_fail(char *err, size_t err_size, const char *name, unsigned line,
			 const char *fmt, const char *arg)
{
	char what[160];

	snprintf(what, sizeof(what), fmt, arg);
	if (line)
		snprintf(err, err_size, "%s: line %u: %s", name, line, what);
	else
		snprintf(err, err_size, "%s: %s", name, what);
	return -EINVAL;
}

/* "error N": a positive errno below 4096, as the negative one. */
static bool parse_errno(const char *s, int *out)
{
	char *end;
	long v;

	if (strncmp(s, "error ", 6) || !isdigit((unsigned char)s[6]))
		return false;
	errno = 0;
	v = strtol(s + 6, &end, 10);
	if (*end || errno || v < 1 || v > 4095)
		return false;
	*out = (int)-v;
	return true;
}

/* "0x" and 1 to 16 hex digits. */
static bool parse_u64_hex(const char *s, uint64_t *out)
{
	char *end;

	if (strncmp(s, "0x", 2) || !isxdigit((unsigned char)s[2]) || strlen(s) > 18)
		return false;
	errno = 0;
	*out = strtoull(s + 2, &end, 16);
	return !*end && !errno;
}

static int msr_file_parse(const char *text, size_t len, const char *name, struct msr_raw *raw,
			  char *err, size_t err_size)
{
	bool magic = false, device = false, opened = false, ctls = false;
	unsigned line = 0;
	const char *pos = text, *end = text + len;

	memset(raw, 0, sizeof(*raw));
	if (memchr(text, '\0', len))
		return msr_file_fail(err, err_size, name, 0, "%s", "holds a NUL byte");
	while (pos < end) {
		const char *nl = memchr(pos, '\n', end - pos);
		size_t n = nl ? (size_t)(nl - pos) : (size_t)(end - pos);
		char buf[256];
		int e;

		line++;
		if (n >= sizeof(buf))
			return msr_file_fail(err, err_size, name, line, "%s", "line too long");
		memcpy(buf, pos, n);
		buf[n] = '\0';
		pos += n + (nl ? 1 : 0);
		if (!buf[0] || buf[0] == '#')
			continue;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
				return msr_file_fail(err, err_size, name, line, "%s",
						     "control character");
		if (!magic) {
			if (strcmp(buf, MSR_FILE_MAGIC))
				return msr_file_fail(err, err_size, name, line,
						     "not an ipivd MSR facts file (want \"%s\" "
						     "first, from ipivd --dump-msr-facts)",
						     MSR_FILE_MAGIC);
			magic = true;
		} else if (!strncmp(buf, "device ", 7)) {
			if (device)
				return msr_file_fail(err, err_size, name, line, "%s",
						     "device given twice");
			if (buf[7] != '/' || strlen(buf + 7) >= sizeof(raw->device))
				return msr_file_fail(err, err_size, name, line,
						     "device \"%.60s\" is not an absolute path",
						     buf + 7);
			snprintf(raw->device, sizeof(raw->device), "%s", buf + 7);
			device = true;
		} else if (!strncmp(buf, "open ", 5)) {
			if (opened || !device)
				return msr_file_fail(err, err_size, name, line, "%s",
						     opened ? "open given twice"
							    : "open before device");
			if (strcmp(buf + 5, "ok") && !parse_errno(buf + 5, &raw->open_err))
				return msr_file_fail(err, err_size, name, line,
						     "open: want ok or error ERRNO, not \"%.40s\"",
						     buf + 5);
			opened = true;
		} else if (!strncmp(buf, "msr ", 4)) {
			bool is_ctls = !strncmp(buf + 4, "0x482 ", 6);
			bool is_ctls3 = !strncmp(buf + 4, "0x492 ", 6);
			uint64_t v = 0;

			if (!is_ctls && !is_ctls3)
				return msr_file_fail(err, err_size, name, line,
						     "msr \"%.20s\": want 0x482 or 0x492", buf + 4);
			if (!opened || raw->open_err)
				return msr_file_fail(err, err_size, name, line, "%s",
						     "an MSR value without open ok before it");
			if (is_ctls ? ctls : raw->have_ctls3)
				return msr_file_fail(err, err_size, name, line,
						     "msr %.5s given twice", buf + 4);
			if (is_ctls3 && (!ctls || raw->ctls_err || !has_tertiary(raw->ctls)))
				return msr_file_fail(
					err, err_size, name, line, "%s",
					"msr 0x492 without a 0x482 that allows tertiary "
					"controls before it");
			if (!parse_errno(buf + 10, &e)) {
				e = 0;
				if (!parse_u64_hex(buf + 10, &v))
					return msr_file_fail(
						err, err_size, name, line,
						"msr value \"%.40s\": want 0x and 1 to 16 "
						"hex digits, or error ERRNO",
						buf + 10);
			}
			if (is_ctls) {
				ctls = true;
				raw->ctls_err = e;
				raw->ctls = v;
			} else {
				raw->have_ctls3 = true;
				raw->ctls3_err = e;
				raw->ctls3 = v;
			}
		} else {
			return msr_file_fail(err, err_size, name, line, "unknown line \"%.40s\"",
					     buf);
		}
	}
	if (!magic)
		return msr_file_fail(err, err_size, name, 0, "%s",
				     "empty (no \"" MSR_FILE_MAGIC "\" line)");
	if (!device || !opened)
		return msr_file_fail(err, err_size, name, 0, "%s",
				     !device ? "no device line" : "no open line");
	if (!raw->open_err && !ctls)
		return msr_file_fail(err, err_size, name, 0, "%s", "open ok but no msr 0x482 line");
	if (ctls && !raw->ctls_err && has_tertiary(raw->ctls) && !raw->have_ctls3)
		return msr_file_fail(err, err_size, name, 0, "%s",
				     "msr 0x482 allows tertiary controls but no msr 0x492 line");
	return 0;
}

int accel_msr_load(const char *root, const char *path, char *err, size_t err_size)
{
	char buf[MSR_FILE_MAX + 2]; /* one byte more than allowed tells a larger file */
	struct msr_raw raw;
	struct paths p;
	ssize_t n;
	int r;

	if (!root || !err || !err_size)
		return -EINVAL;
	if (!path) {
		msr_file.loaded = false;
		msr_preloaded.filled = false;
		return 0;
	}
	if (paths_init(&p, root))
		return -ENAMETOOLONG;
	n = read_small(path, buf, sizeof(buf));
	if (n < 0) {
		snprintf(err, err_size, "%s: %s", path, strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n > MSR_FILE_MAX)
		return msr_file_fail(err, err_size, path, 0, "%s",
				     "larger than 4 KiB: not an MSR facts file");
	r = msr_file_parse(buf, (size_t)n, path, &raw, err, err_size);
	if (r)
		return r;
	msr_file.raw = raw;
	memcpy(msr_file.root, p.root, sizeof(msr_file.root));
	snprintf(msr_file.source, sizeof(msr_file.source), "%.120s (from %.120s)", path,
		 raw.device);
	msr_file.loaded = true;
	msr_preloaded.filled = false; /* read again, from the file */
	return 0;
}

/* ---- /sys/module ---- */

static void module_present(const struct paths *p, struct accel_state *st, enum accel_fact_id id,
			   const char *module)
{
	char rel[96], path[256];
	struct stat sb;

	snprintf(rel, sizeof(rel), "/sys/module/%s", module);
	if (path_join(p, rel, path, sizeof(path)) < 0) {
		fact_set(&st->facts[id], ACCEL_UNKNOWN, NULL, "", -ENAMETOOLONG, "path too long");
		return;
	}
	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode))
			fact_set(&st->facts[id], ACCEL_YES, NULL, path, 0, NULL);
		else
			fact_set(&st->facts[id], ACCEL_UNKNOWN, NULL, path, -ENOTDIR,
				 "not a directory");
	} else if (errno != ENOENT) {
		fact_set(&st->facts[id], ACCEL_UNKNOWN, NULL, path, -errno, "unreadable");
	} else {
		/* absent means not loaded only if /sys/module itself is there to say so */
		char dir[256];

		if (path_join(p, "/sys/module", dir, sizeof(dir)) == 0 && stat(dir, &sb) == 0)
			fact_set(&st->facts[id], ACCEL_NO, NULL, path, 0, "not loaded");
		else
			fact_set(&st->facts[id], ACCEL_UNKNOWN, NULL, path, -ENOENT,
				 "no /sys/module");
	}
}

/* Module parameters: bool shows Y/N, older int parameters 1/0; anything else is kept as
 * text and unknown (kvm_amd.avic=auto before it resolves, garbage in a fixture). */
static int param_read_one(const struct paths *p, const char *module, const char *param,
			  struct accel_fact *f)
{
	char rel[128], path[256], buf[PARAM_MAX];
	ssize_t n;

	snprintf(rel, sizeof(rel), "/sys/module/%s/parameters/%s", module, param);
	if (path_join(p, rel, path, sizeof(path)) < 0) {
		fact_set(f, ACCEL_UNKNOWN, NULL, "", -ENAMETOOLONG, "path too long");
		return -ENAMETOOLONG;
	}
	n = read_small(path, buf, sizeof(buf));
	if (n < 0) {
		fact_set(f, ACCEL_UNKNOWN, NULL, path, (int)n,
			 n == -ENOENT ? "no such parameter" : "unreadable");
		return (int)n;
	}
	trim(buf);
	if (!strcmp(buf, "Y") || !strcmp(buf, "y") || !strcmp(buf, "1"))
		fact_set(f, ACCEL_YES, buf, path, 0, NULL);
	else if (!strcmp(buf, "N") || !strcmp(buf, "n") || !strcmp(buf, "0"))
		fact_set(f, ACCEL_NO, buf, path, 0, NULL);
	else
		fact_set(f, ACCEL_UNKNOWN, buf, path, -EINVAL,
			 !strcmp(buf, "auto") ? "auto: decided by KVM at load" : "not a boolean");
	return 0;
}

/* Tries module first, then fallback (enable_ipiv moved from kvm_intel to kvm in 6.17). */
static void param_read(const struct paths *p, struct accel_state *st, enum accel_fact_id id,
		       const char *module, const char *fallback, const char *param)
{
	struct accel_fact first;

	if (param_read_one(p, module, param, &st->facts[id]) != -ENOENT || !fallback)
		return;
	first = st->facts[id];
	if (param_read_one(p, fallback, param, &st->facts[id]) == -ENOENT)
		st->facts[id] = first; /* report the usual place as the one missing */
}

/* ---- what it adds up to ---- */

static enum accel_state_value all3(enum accel_state_value a, enum accel_state_value b,
				   enum accel_state_value c)
{
	if (a == ACCEL_NO || b == ACCEL_NO || c == ACCEL_NO)
		return ACCEL_NO;
	if (a == ACCEL_YES && b == ACCEL_YES && c == ACCEL_YES)
		return ACCEL_YES;
	return ACCEL_UNKNOWN;
}

static void derive_intel(struct accel_state *st)
{
	const struct accel_fact *f = st->facts;
	enum accel_state_value ipiv_param = f[ACCEL_INTEL_ENABLE_IPIV].state;

	st->mechanism = "ipiv";
	st->apicv_hw = all3(f[ACCEL_CPU_VAPIC_REG].state, f[ACCEL_CPU_VID].state,
			    f[ACCEL_CPU_POSTED_INTR].state);
	/* the MSR is what KVM itself checks; cpuinfo mirrors it */
	st->ipiv_hw = f[ACCEL_MSR_IPI_VIRT].state != ACCEL_UNKNOWN ? f[ACCEL_MSR_IPI_VIRT].state
								   : f[ACCEL_CPU_IPI_VIRT].state;
	st->apicv_enabled = f[ACCEL_INTEL_ENABLE_APICV].state;
	/* Missing while kvm_intel is loaded: a kernel before 5.19, which has no IPIv. KVM forces
	 * the parameter to N when APICv is off or the CPU lacks IPIv, so Y means usable. */
	if (ipiv_param == ACCEL_UNKNOWN && f[ACCEL_INTEL_ENABLE_IPIV].err == -ENOENT &&
	    f[ACCEL_MOD_KVM_INTEL].state == ACCEL_YES)
		ipiv_param = ACCEL_NO;
	st->ipiv_enabled = st->apicv_enabled == ACCEL_NO ? ACCEL_NO : ipiv_param;
	st->ipiv_effective = all3(f[ACCEL_MOD_KVM_INTEL].state, st->ipiv_hw, st->ipiv_enabled);
	if (st->ipiv_effective == ACCEL_YES)
		st->why = "CPU has IPI virtualization and kvm_intel enables it";
	else if (f[ACCEL_MOD_KVM_INTEL].state == ACCEL_NO)
		st->why = "kvm_intel is not loaded";
	else if (st->ipiv_hw == ACCEL_NO)
		st->why = "the CPU has no IPI virtualization (Sapphire Rapids or later has it)";
	else if (st->apicv_enabled == ACCEL_NO)
		st->why = "kvm_intel.enable_apicv=N (IPIv needs APICv)";
	else if (st->ipiv_enabled == ACCEL_NO)
		st->why = f[ACCEL_INTEL_ENABLE_IPIV].err == -ENOENT
				  ? "this kernel's KVM has no IPIv support (added in 5.19)"
				  : "kvm_intel.enable_ipiv=N";
	else
		st->why = "not all of CPU capability and module parameters could be read";
}

static void derive_amd(struct accel_state *st)
{
	const struct accel_fact *f = st->facts;
	enum accel_state_value hw = f[ACCEL_CPU_AVIC].state;
	enum accel_state_value ipiv_param = f[ACCEL_AMD_ENABLE_IPIV].state;

	st->mechanism = f[ACCEL_CPU_X2AVIC].state == ACCEL_YES ? "x2avic" : "avic";
	/* force_avic turns AVIC on where CPUID does not advertise it */
	if (hw != ACCEL_YES && f[ACCEL_AMD_FORCE_AVIC].state == ACCEL_YES &&
	    f[ACCEL_AMD_AVIC].state == ACCEL_YES)
		hw = ACCEL_YES;
	st->apicv_hw = hw;
	st->ipiv_hw = hw;
	st->apicv_enabled = f[ACCEL_AMD_AVIC].state;
	/* enable_ipiv exists from 6.17; before that AVIC always accelerated IPIs */
	if (ipiv_param == ACCEL_UNKNOWN && f[ACCEL_AMD_ENABLE_IPIV].err == -ENOENT)
		ipiv_param = ACCEL_YES;
	st->ipiv_enabled = st->apicv_enabled == ACCEL_NO    ? ACCEL_NO
			   : st->apicv_enabled == ACCEL_YES ? ipiv_param
							    : ACCEL_UNKNOWN;
	st->ipiv_effective = all3(f[ACCEL_MOD_KVM_AMD].state, st->ipiv_hw, st->ipiv_enabled);
	if (st->ipiv_effective == ACCEL_YES)
		st->why = "CPU has AVIC and kvm_amd enables it";
	else if (f[ACCEL_MOD_KVM_AMD].state == ACCEL_NO)
		st->why = "kvm_amd is not loaded";
	else if (st->ipiv_hw == ACCEL_NO)
		st->why = "the CPU does not advertise AVIC";
	else if (st->apicv_enabled == ACCEL_NO)
		st->why = "kvm_amd.avic=N";
	else if (st->ipiv_enabled == ACCEL_NO)
		st->why = "kvm_amd.enable_ipiv=N: every IPI exits (AVIC_INCOMPLETE_IPI)";
	else
		st->why = "not all of CPU capability and module parameters could be read";
}

static void derive(struct accel_state *st)
{
	const struct accel_fact *f = st->facts;

	if (f[ACCEL_MOD_KVM_PVM].state == ACCEL_YES)
		st->backend = ACCEL_BACKEND_KVM_PVM;
	else if (f[ACCEL_MOD_KVM_INTEL].state == ACCEL_YES)
		st->backend = ACCEL_BACKEND_KVM_INTEL;
	else if (f[ACCEL_MOD_KVM_AMD].state == ACCEL_YES)
		st->backend = ACCEL_BACKEND_KVM_AMD;
	else if (f[ACCEL_MOD_KVM_INTEL].state == ACCEL_NO && f[ACCEL_MOD_KVM_AMD].state == ACCEL_NO)
		st->backend = ACCEL_BACKEND_NONE;
	else
		st->backend = ACCEL_BACKEND_UNKNOWN;

	st->mechanism = "none";
	st->apicv_hw = st->apicv_enabled = st->ipiv_hw = st->ipiv_enabled = ACCEL_UNKNOWN;
	st->ipiv_effective = ACCEL_UNKNOWN;
	st->why = "CPU vendor unknown";
	if (st->vendor == ACCEL_VENDOR_INTEL) {
		derive_intel(st);
	} else if (st->vendor == ACCEL_VENDOR_AMD) {
		derive_amd(st);
	} else if (st->vendor == ACCEL_VENDOR_OTHER) {
		st->ipiv_hw = ACCEL_UNKNOWN;
		st->why = "CPU vendor is neither Intel nor AMD";
	}
	if (st->backend == ACCEL_BACKEND_NONE) {
		st->ipiv_effective = ACCEL_NO;
		st->why = "no KVM backend module is loaded";
	} else if (st->backend == ACCEL_BACKEND_KVM_PVM) {
		/* PVM runs guests without VMX/SVM non-root mode: the APIC is fully emulated, so
		 * whatever the CPU offers, no IPI is accelerated */
		st->mechanism = "none";
		st->ipiv_effective = ACCEL_NO;
		st->why = "kvm_pvm backend: guests run without hardware APIC virtualization";
	}
}

int accel_msr_preload(const char *root)
{
	struct accel_state *st = malloc(sizeof(*st));
	int r;

	if (!st)
		return -ENOMEM;
	msr_preloaded.filled = false;
	msr_preloaded.filling = true;
	r = accel_read(root, st);
	msr_preloaded.filling = false;
	free(st);
	return r;
}

int accel_read(const char *root, struct accel_state *st)
{
	struct paths p;

	if (!root || !st)
		return -EINVAL;
	if (paths_init(&p, root))
		return -ENAMETOOLONG;

	memset(st, 0, sizeof(*st));
	read_cpuinfo(&p, st);
	read_msrs(&p, st);
	module_present(&p, st, ACCEL_MOD_KVM_INTEL, "kvm_intel");
	module_present(&p, st, ACCEL_MOD_KVM_AMD, "kvm_amd");
	module_present(&p, st, ACCEL_MOD_KVM_PVM, "kvm_pvm");
	param_read(&p, st, ACCEL_INTEL_ENABLE_APICV, "kvm_intel", NULL, "enable_apicv");
	param_read(&p, st, ACCEL_INTEL_ENABLE_IPIV, "kvm_intel", "kvm", "enable_ipiv");
	param_read(&p, st, ACCEL_INTEL_ENABLE_DEVICE_POSTED_IRQS, "kvm_intel", "kvm",
		   "enable_device_posted_irqs");
	param_read(&p, st, ACCEL_AMD_AVIC, "kvm_amd", NULL, "avic");
	param_read(&p, st, ACCEL_AMD_ENABLE_IPIV, "kvm_amd", "kvm", "enable_ipiv");
	param_read(&p, st, ACCEL_AMD_FORCE_AVIC, "kvm_amd", NULL, "force_avic");
	/* a parameter of a module that is not loaded is missing for that reason alone */
	for (unsigned i = ACCEL_INTEL_ENABLE_APICV; i < ACCEL_FACT_COUNT; i++) {
		enum accel_fact_id mod = i < ACCEL_MOD_KVM_AMD	 ? ACCEL_MOD_KVM_INTEL
					 : i < ACCEL_MOD_KVM_PVM ? ACCEL_MOD_KVM_AMD
								 : ACCEL_MOD_KVM_PVM;

		if (i != mod && st->facts[mod].state == ACCEL_NO && st->facts[i].err == -ENOENT)
			st->facts[i].note = "module not loaded";
	}
	derive(st);
	return 0;
}
