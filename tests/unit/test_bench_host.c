/* Unit tests for bench/host.c: fake /proc and /sys trees in a temp dir for an Intel host
 * with IPIv parameters, an AMD host, a PVM host, an empty host and malformed files. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "host.h"

static const char intel_cpuinfo[] = "processor\t: 0\n"
				    "vendor_id\t: GenuineIntel\n"
				    "cpu family\t: 6\n"
				    "model\t\t: 143\n"
				    "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
				    "flags\t\t: fpu vme x2apic\n"
				    "\n"
				    "processor\t: 1\n"
				    "vendor_id\t: SecondCPU\n"
				    "model name\t: Not the first processor\n";

static const char amd_cpuinfo[] = "processor\t: 0\n"
				  "vendor_id\t: AuthenticAMD\n"
				  "cpu family\t: 25\n"
				  "model\t\t: 17\n"
				  "model name\t: AMD EPYC 9654 96-Core Processor\n";

static void write_file(const char *root, const char *rel, const void *content, size_t len)
{
	char path[PATH_MAX], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
		*slash = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_str(const char *root, const char *rel, const char *content)
{
	write_file(root, rel, content, strlen(content));
}

static void make_dir(const char *root, const char *rel)
{
	char path[PATH_MAX];

	/* write_file creates parents; a placeholder then makes the leaf itself exist */
	snprintf(path, sizeof(path), "%s/.placeholder", rel);
	write_str(root, path, "");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup_root(void **state)
{
	char *root = strdup("/tmp/test_bench_host.XXXXXX");

	if (!root || !mkdtemp(root))
		return -1;
	*state = root;
	return 0;
}

static int teardown_root(void **state)
{
	char *root = *state;

	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(root);
	return 0;
}

static const char *param(const struct bench_host *h, const char *name)
{
	unsigned i;

	for (i = 0; i < h->n_params; i++)
		if (strcmp(h->params[i].name, name) == 0)
			return h->params[i].value;
	return NULL;
}

static void test_intel_with_ipiv_params(void **state)
{
	const char *root = *state;
	struct bench_host h;

	write_str(root, "proc/cpuinfo", intel_cpuinfo);
	write_str(root, "proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
	write_str(root, "sys/module/kvm_intel/parameters/enable_apicv", "Y\n");
	write_str(root, "sys/module/kvm_intel/parameters/enable_ipiv", "N\n");
	write_str(root, "sys/module/kvm_intel/parameters/ept", "Y\n");
	write_str(root, "sys/module/kvm/parameters/halt_poll_ns", "200000\n");
	/* a second vendor module present too: kvm_intel comes first */
	write_str(root, "sys/module/kvm_amd/parameters/avic", "1\n");

	memset(&h, 0xa5, sizeof(h));
	assert_int_equal(bench_host_read(root, &h), 0);
	assert_string_equal(h.cpu_vendor, "GenuineIntel");
	assert_string_equal(h.cpu_model, "Intel(R) Xeon(R) Platinum 8480+");
	assert_string_equal(h.kernel, "6.1.0-18-amd64");
	assert_string_equal(h.kvm_module, "kvm_intel");
	/* enable_device_posted_irqs is absent, ept is not IPI-relevant, avic is kvm_amd's */
	assert_int_equal(h.n_params, 3);
	assert_string_equal(h.params[0].name, "enable_apicv");
	assert_string_equal(h.params[0].value, "Y");
	assert_string_equal(h.params[1].name, "enable_ipiv");
	assert_string_equal(h.params[1].value, "N");
	assert_string_equal(h.params[2].name, "kvm.halt_poll_ns");
	assert_string_equal(h.params[2].value, "200000");
	/* KVM ioctl facts are the VMM's: cleared here */
	assert_true(h.tsc_khz == 0);
	assert_false(h.pv_send_ipi);
	assert_false(h.x2apic);
}

static void test_intel_device_posted_irqs(void **state)
{
	const char *root = *state;
	struct bench_host h;

	write_str(root, "sys/module/kvm_intel/parameters/enable_apicv", "Y\n");
	write_str(root, "sys/module/kvm_intel/parameters/enable_ipiv", "Y\n");
	write_str(root, "sys/module/kvm_intel/parameters/enable_device_posted_irqs", "Y\n");

	assert_int_equal(bench_host_read(root, &h), 0);
	assert_int_equal(h.n_params, 3);
	assert_string_equal(param(&h, "enable_ipiv"), "Y");
	assert_string_equal(param(&h, "enable_device_posted_irqs"), "Y");
	assert_null(param(&h, "kvm.halt_poll_ns"));
}

static void test_amd(void **state)
{
	const char *root = *state;
	struct bench_host h;

	write_str(root, "proc/cpuinfo", amd_cpuinfo);
	write_str(root, "proc/sys/kernel/osrelease", "6.8.0-40-generic\n");
	write_str(root, "sys/module/kvm_amd/parameters/avic", "1\n");
	write_str(root, "sys/module/kvm_amd/parameters/force_avic", "0\n");
	write_str(root, "sys/module/kvm_amd/parameters/x2avic", "Y\n");
	write_str(root, "sys/module/kvm_amd/parameters/npt", "1\n");
	write_str(root, "sys/module/kvm/parameters/halt_poll_ns", "0\n");

	assert_int_equal(bench_host_read(root, &h), 0);
	assert_string_equal(h.cpu_vendor, "AuthenticAMD");
	assert_string_equal(h.cpu_model, "AMD EPYC 9654 96-Core Processor");
	assert_string_equal(h.kernel, "6.8.0-40-generic");
	assert_string_equal(h.kvm_module, "kvm_amd");
	assert_int_equal(h.n_params, 4);
	assert_string_equal(param(&h, "avic"), "1");
	assert_string_equal(param(&h, "force_avic"), "0");
	assert_string_equal(param(&h, "x2avic"), "Y");
	assert_string_equal(param(&h, "kvm.halt_poll_ns"), "0");
	assert_null(param(&h, "enable_ipiv"));
	assert_null(param(&h, "npt"));
}

static void test_pvm(void **state)
{
	const char *root = *state;
	struct bench_host h;

	make_dir(root, "sys/module/kvm_pvm");
	write_str(root, "sys/module/kvm/parameters/halt_poll_ns", "200000\n");

	assert_int_equal(bench_host_read(root, &h), 0);
	assert_string_equal(h.kvm_module, "kvm_pvm");
	assert_int_equal(h.n_params, 1);
	assert_string_equal(h.params[0].name, "kvm.halt_poll_ns");
	assert_string_equal(h.cpu_vendor, "");
	assert_string_equal(h.kernel, "");
}

static void test_nothing_present(void **state)
{
	const char *root = *state;
	struct bench_host h;

	memset(&h, 0xa5, sizeof(h));
	assert_int_equal(bench_host_read(root, &h), 0);
	assert_string_equal(h.cpu_vendor, "");
	assert_string_equal(h.cpu_model, "");
	assert_string_equal(h.kernel, "");
	assert_string_equal(h.kvm_module, "");
	assert_int_equal(h.n_params, 0);

	/* a root that does not exist at all is the same: nothing known */
	assert_int_equal(bench_host_read("/nonexistent/ipiv-test-root", &h), 0);
	assert_string_equal(h.kvm_module, "");
}

static void test_bad_arguments(void **state)
{
	struct bench_host h;
	char *long_root = malloc(PATH_MAX + 1);

	assert_non_null(long_root);
	memset(long_root, 'a', PATH_MAX);
	long_root[PATH_MAX] = '\0';
	assert_int_equal(bench_host_read(NULL, &h), -EINVAL);
	assert_int_equal(bench_host_read("", NULL), -EINVAL);
	assert_int_equal(bench_host_read(long_root, &h), -ENAMETOOLONG);
	free(long_root);
}

/* A fake key in the middle of an overlong line must never be taken for a key at the
 * start of a line, whatever size the reader reads lines in: one line per prefix length
 * puts the fake key at every possible piece boundary up to that length. */
static void test_malformed_cpuinfo_long_lines(void **state)
{
	const char *root = *state;
	const char fake[] = "vendor_id : Fake\n";
	size_t prefix, max_prefix = 1100, len = 0, cap = 0;
	char *content = NULL, *p;
	struct bench_host h;

	for (prefix = 1; prefix <= max_prefix; prefix++)
		cap += prefix + sizeof(fake);
	cap += 256;
	content = malloc(cap);
	assert_non_null(content);
	for (prefix = 1; prefix <= max_prefix; prefix++) {
		memset(content + len, 'x', prefix);
		len += prefix;
		memcpy(content + len, fake, sizeof(fake) - 1);
		len += sizeof(fake) - 1;
	}
	/* the real keys, the model longer than the field, the file without final newline */
	p = content + len;
	len += sprintf(p, "vendor_id\t: GenuineIntel\nmodel name\t: ");
	memset(content + len, 'M', 200);
	len += 200;
	write_file(root, "proc/cpuinfo", content, len);
	free(content);

	assert_int_equal(bench_host_read(root, &h), 0);
	assert_string_equal(h.cpu_vendor, "GenuineIntel");
	assert_int_equal(strlen(h.cpu_model), sizeof(h.cpu_model) - 1);
	assert_true(strspn(h.cpu_model, "M") == sizeof(h.cpu_model) - 1);
}

static void test_malformed_binary_content(void **state)
{
	const char *root = *state;
	static const char cpuinfo[] = "vendor_id\t: Genuine\x1b[2JIntel\n"
				      "model name\t: Bad\x01\xff\x7f name\0hidden\n";
	static const char osrelease[] = "\x00\x01\x02 6.1\xe2\x80\x8e";
	static const char junk_value[] = "Y\x1b]0;title\x07 and more\n";
	char long_value[4096];
	struct bench_host h;

	write_file(root, "proc/cpuinfo", cpuinfo, sizeof(cpuinfo) - 1);
	write_file(root, "proc/sys/kernel/osrelease", osrelease, sizeof(osrelease) - 1);
	write_str(root, "sys/module/kvm_intel/parameters/enable_ipiv", junk_value);
	memset(long_value, '9', sizeof(long_value));
	write_file(root, "sys/module/kvm_intel/parameters/enable_apicv", long_value,
		   sizeof(long_value));
	/* a directory where a parameter file should be: opens, does not read */
	make_dir(root, "sys/module/kvm/parameters/halt_poll_ns");

	assert_int_equal(bench_host_read(root, &h), 0);
	assert_string_equal(h.cpu_vendor, "Genuine?[2JInte");
	assert_string_equal(h.cpu_model, "Bad??? name");
	/* osrelease starts with NUL: nothing printable before it */
	assert_string_equal(h.kernel, "");
	assert_int_equal(h.n_params, 2);
	assert_string_equal(param(&h, "enable_ipiv"), "Y?]0;title? and more");
	assert_int_equal(strlen(param(&h, "enable_apicv")), sizeof(h.params[0].value) - 1);
	assert_null(param(&h, "kvm.halt_poll_ns"));
}

static void test_osrelease_without_newline(void **state)
{
	const char *root = *state;
	static const char osrelease[] = "6.9.0-rc1+ \r";
	struct bench_host h;

	write_file(root, "proc/sys/kernel/osrelease", osrelease, sizeof(osrelease) - 1);
	write_str(root, "proc/cpuinfo", "vendor_id:GenuineIntel");
	assert_int_equal(bench_host_read(root, &h), 0);
	assert_string_equal(h.kernel, "6.9.0-rc1+");
	assert_string_equal(h.cpu_vendor, "GenuineIntel");
	assert_string_equal(h.cpu_model, "");
}

#define host_test(f) cmocka_unit_test_setup_teardown(f, setup_root, teardown_root)

int main(void)
{
	const struct CMUnitTest tests[] = {
		host_test(test_intel_with_ipiv_params),
		host_test(test_intel_device_posted_irqs),
		host_test(test_amd),
		host_test(test_pvm),
		host_test(test_nothing_present),
		cmocka_unit_test(test_bad_arguments),
		host_test(test_malformed_cpuinfo_long_lines),
		host_test(test_malformed_binary_content),
		host_test(test_osrelease_without_newline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
