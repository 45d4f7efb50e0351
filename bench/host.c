/* ipivbench: reads the host facts behind a measurement from /proc and /sys. Every file
 * is untrusted: lines may be endless, unterminated or binary, and none of that may crash
 * or leak control characters into a table. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"

/* Longer lines are read in pieces; only the piece holding the key is used, the rest of
 * the line is skipped. cpuinfo's fields are far shorter. */
#define HOST_LINE_MAX 512

struct kvm_module_params {
	const char *module;
	const char *params[6];
};

/* The parameters that decide whether an IPI exits: APICv/AVIC as a whole, IPI
 * virtualisation itself, and posted-interrupt delivery. */
static const struct kvm_module_params kvm_modules[] = {
	{"kvm_intel", {"enable_apicv", "enable_ipiv", "enable_device_posted_irqs", NULL}},
	{"kvm_amd", {"avic", "enable_ipiv", "force_avic", "x2avic", NULL}},
	{"kvm_pvm", {NULL}},
};

/* Copies src into dst (size dst_size), stopping at NUL, newline or len, trimming
 * surrounding blanks and replacing anything outside printable ASCII with '?'. */
static void copy_sanitised(char *dst, size_t dst_size, const char *src, size_t len)
{
	size_t start = 0, end, i, n = 0;

	for (end = 0; end < len && src[end] != '\0' && src[end] != '\n'; end++)
		;
	while (start < end && (src[start] == ' ' || src[start] == '\t'))
		start++;
	while (end > start && (src[end - 1] == ' ' || src[end - 1] == '\t' || src[end - 1] == '\r'))
		end--;
	for (i = start; i < end && n + 1 < dst_size; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[n] = '\0';
}

static int host_path(char *buf, size_t size, const char *root, const char *rel)
{
	int n = snprintf(buf, size, "%s%s", root, rel);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Reads the first line of a small file (sysfs parameter, osrelease) into dst.
 * Returns 0, or -errno when the file cannot be opened or read. */
static int read_first_line(const char *path, char *dst, size_t dst_size)
{
	char line[HOST_LINE_MAX];
	size_t len;
	int err = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	len = fread(line, 1, sizeof(line), f);
	/* A directory opens but does not read (EISDIR): that is not a value. */
	if (ferror(f))
		err = -EIO;
	fclose(f);
	if (err)
		return err;
	copy_sanitised(dst, dst_size, line, len);
	return 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "key<blanks>: value": true and *value set when the line's key is exactly key. */
static bool cpuinfo_key_is(const char *line, size_t len, const char *key, const char **value)
{
	const char *colon = memchr(line, ':', len);
	size_t key_len;

	if (!colon)
		return false;
	key_len = colon - line;
	while (key_len > 0 && (line[key_len - 1] == ' ' || line[key_len - 1] == '\t'))
		key_len--;
	if (key_len != strlen(key) || memcmp(line, key, key_len) != 0)
		return false;
	*value = colon + 1;
	return true;
}

static void read_cpuinfo(const char *root, struct bench_host *out)
{
	char path[PATH_MAX], line[HOST_LINE_MAX];
	bool line_start = true;
	FILE *f;

	if (host_path(path, sizeof(path), root, "/proc/cpuinfo"))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	/* The first processor's block carries both keys; stop once they are known. */
	while ((!out->cpu_vendor[0] || !out->cpu_model[0]) && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		bool was_line_start = line_start;
		const char *value;

		/* A piece without newline continues on the next read: only the piece that
		 * starts a line can hold a key. NULs in binary junk shorten len harmlessly. */
		line_start = len > 0 && line[len - 1] == '\n';
		if (!was_line_start)
			continue;
		if (!out->cpu_vendor[0] && cpuinfo_key_is(line, len, "vendor_id", &value))
			copy_sanitised(out->cpu_vendor, sizeof(out->cpu_vendor), value,
				       len - (value - line));
		else if (!out->cpu_model[0] && cpuinfo_key_is(line, len, "model name", &value))
			copy_sanitised(out->cpu_model, sizeof(out->cpu_model), value,
				       len - (value - line));
	}
	fclose(f);
}

static void add_param(struct bench_host *out, const char *name, const char *path)
{
	size_t max = sizeof(out->params) / sizeof(out->params[0]);
	unsigned i = out->n_params;

	if (i >= max)
		return;
	if (read_first_line(path, out->params[i].value, sizeof(out->params[i].value)))
		return;
	copy_sanitised(out->params[i].name, sizeof(out->params[i].name), name, strlen(name));
	out->n_params++;
}

static void read_kvm(const char *root, struct bench_host *out)
{
	char path[PATH_MAX];
	size_t m, p;

	for (m = 0; m < sizeof(kvm_modules) / sizeof(kvm_modules[0]); m++) {
		const struct kvm_module_params *km = &kvm_modules[m];

		if (snprintf(path, sizeof(path), "%s/sys/module/%s", root, km->module) >=
		    (int)sizeof(path))
			return;
		if (!is_dir(path))
			continue;
		copy_sanitised(out->kvm_module, sizeof(out->kvm_module), km->module,
			       strlen(km->module));
		for (p = 0; km->params[p]; p++) {
			snprintf(path, sizeof(path), "%s/sys/module/%s/parameters/%s", root,
				 km->module, km->params[p]);
			add_param(out, km->params[p], path);
		}
		break;
	}
	/* Halt polling decides how fast a halted target wakes, whichever vendor module. */
	snprintf(path, sizeof(path), "%s/sys/module/kvm/parameters/halt_poll_ns", root);
	add_param(out, "kvm.halt_poll_ns", path);
}

int bench_host_read(const char *root, struct bench_host *out)
{
	char path[PATH_MAX];

	if (!root || !out)
		return -EINVAL;
	/* Leave room for the longest relative path read below. */
	if (strlen(root) + 128 >= sizeof(path))
		return -ENAMETOOLONG;
	memset(out, 0, sizeof(*out));

	read_cpuinfo(root, out);
	if (!host_path(path, sizeof(path), root, "/proc/sys/kernel/osrelease"))
		read_first_line(path, out->kernel, sizeof(out->kernel));
	read_kvm(root, out);
	return 0;
}
