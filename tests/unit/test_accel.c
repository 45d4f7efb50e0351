/* Unit tests for daemon/lib/accel.c: fixture /proc, /sys and /dev trees in a temp dir (Intel
 * Sapphire Rapids with and without enable_ipiv, Intel without IPIv, AMD AVIC/x2AVIC, PVM,
 * nothing at all, malformed files, an MSR file of the wrong size), and the MSR facts file
 * (--dump-msr-facts, --collector.msr-facts): round trips and every kind of bad file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "accel.h"

#define SPR_CPUINFO                                                                         \
	"processor\t: 0\n"                                                                  \
	"vendor_id\t: GenuineIntel\n"                                                       \
	"cpu family\t: 6\n"                                                                 \
	"model\t\t: 143\n"                                                                  \
	"model name\t: Intel(R) Xeon(R) Platinum 8480+\n"                                   \
	"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic vmx smx est x2apic avx512f\n"   \
	"vmx flags\t: vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad "         \
	"flexpriority apicv tsc_offset vtpr mtf vapic ept vpid unrestricted_guest "         \
	"vapic_reg vid ple shadow_vmcs pml ept_mode_based_exec tsc_scaling usr_wait_pause " \
	"notify_vm_exiting ipi_virt\n"                                                      \
	"bugs\t\t: spectre_v1\n"                                                            \
	"\n"                                                                                \
	"processor\t: 1\n"                                                                  \
	"vendor_id\t: GenuineIntel\n"                                                       \
	"flags\t\t: fpu\n"                                                                  \
	"vmx flags\t: vnmi\n\n"

#define ICX_CPUINFO                                                                       \
	"processor\t: 0\n"                                                                \
	"vendor_id\t: GenuineIntel\n"                                                     \
	"cpu family\t: 6\n"                                                               \
	"model\t\t: 106\n"                                                                \
	"model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\n"                        \
	"flags\t\t: fpu vme msr apic vmx x2apic\n"                                        \
	"vmx flags\t: vnmi preemption_timer posted_intr invvpid ept_x_only flexpriority " \
	"apicv tsc_offset vtpr mtf vapic ept vpid unrestricted_guest vapic_reg vid ple\n"

#define GENOA_CPUINFO                                                                  \
	"processor\t: 0\n"                                                             \
	"vendor_id\t: AuthenticAMD\n"                                                  \
	"cpu family\t: 25\n"                                                           \
	"model\t\t: 17\n"                                                              \
	"model name\t: AMD EPYC 9654 96-Core Processor\n"                              \
	"flags\t\t: fpu vme de pse tsc msr svm extapic npt lbrv svm_lock nrip_save "   \
	"tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold avic " \
	"v_vmsave_vmload vgif x2avic v_spec_ctrl vnmi\n"

static char root[PATH_MAX];

static void put(const char *rel, const char *body)
{
	char path[PATH_MAX * 2], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*slash = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(body, 1, strlen(body), f), strlen(body));
	assert_int_equal(fclose(f), 0);
}

static void put_dir(const char *rel)
{
	char file[PATH_MAX];

	snprintf(file, sizeof(file), "%s/.keep", rel);
	put(file, "");
}

/* An MSR device stand-in: a sparse file with ctls at 0x482 and ctls3 at 0x492. */
static void put_msr(uint64_t ctls, uint64_t ctls3)
{
	char path[PATH_MAX * 2];
	int fd;

	put("dev/cpu/0/msr", "");
	snprintf(path, sizeof(path), "%s/dev/cpu/0/msr", root);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &ctls, 8, ACCEL_MSR_VMX_PROCBASED_CTLS), 8);
	assert_int_equal(pwrite(fd, &ctls3, 8, ACCEL_MSR_VMX_PROCBASED_CTLS3), 8);
	close(fd);
}

static void intel_params(const char *apicv, const char *ipiv)
{
	put("sys/module/kvm_intel/parameters/enable_apicv", apicv);
	if (ipiv)
		put("sys/module/kvm_intel/parameters/enable_ipiv", ipiv);
	put("sys/module/kvm_intel/parameters/enable_device_posted_irqs", "Y\n");
	put_dir("sys/module/kvm/parameters");
}

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/ipiv-accel-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void read_ok(struct accel_state *st)
{
	assert_int_equal(accel_read(root, st), 0);
}

static void assert_source(const struct accel_fact *f, const char *rel)
{
	char want[PATH_MAX * 2];

	snprintf(want, sizeof(want), "%s/%s", root, rel);
	assert_string_equal(f->source, want);
}

#define MSR_TERTIARY (1ull << ACCEL_VMX_TERTIARY_BIT)
#define MSR_IPIV     (1ull << ACCEL_VMX_IPI_VIRT_BIT)

static void test_intel_spr_ipiv_on(void **state)
{
	struct accel_state st;

	put("proc/cpuinfo", SPR_CPUINFO);
	put_msr(MSR_TERTIARY | 0xfff9fffe0401e172ull, MSR_IPIV | 0x5);
	intel_params("Y\n", "Y\n");
	read_ok(&st);

	assert_int_equal(st.vendor, ACCEL_VENDOR_INTEL);
	assert_string_equal(st.model_name, "Intel(R) Xeon(R) Platinum 8480+");
	assert_int_equal(st.family, 6);
	assert_int_equal(st.model, 143);
	assert_int_equal(st.facts[ACCEL_CPU_VMX].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_CPU_SVM].state, ACCEL_NO);
	assert_int_equal(st.facts[ACCEL_CPU_IPI_VIRT].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_CPU_VAPIC_REG].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_CPU_VID].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_CPU_POSTED_INTR].state, ACCEL_YES);
	assert_source(&st.facts[ACCEL_CPU_IPI_VIRT], "proc/cpuinfo");
	assert_int_equal(st.facts[ACCEL_MSR_TERTIARY].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_YES);
	assert_string_equal(st.facts[ACCEL_MSR_IPI_VIRT].value, "0x0000000000000015");
	assert_source(&st.facts[ACCEL_MSR_IPI_VIRT], "dev/cpu/0/msr");
	assert_int_equal(st.facts[ACCEL_INTEL_ENABLE_IPIV].state, ACCEL_YES);
	assert_string_equal(st.facts[ACCEL_INTEL_ENABLE_IPIV].value, "Y");
	assert_source(&st.facts[ACCEL_INTEL_ENABLE_IPIV],
		      "sys/module/kvm_intel/parameters/enable_ipiv");
	assert_int_equal(st.facts[ACCEL_INTEL_ENABLE_DEVICE_POSTED_IRQS].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_MOD_KVM_AMD].state, ACCEL_NO);
	assert_int_equal(st.facts[ACCEL_AMD_AVIC].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_AMD_AVIC].err, -ENOENT);
	assert_string_equal(st.facts[ACCEL_AMD_AVIC].note, "module not loaded");
	assert_string_equal(st.facts[ACCEL_CPU_IPI_VIRT].value, "");

	assert_int_equal(st.backend, ACCEL_BACKEND_KVM_INTEL);
	assert_string_equal(st.mechanism, "ipiv");
	assert_int_equal(st.apicv_hw, ACCEL_YES);
	assert_int_equal(st.apicv_enabled, ACCEL_YES);
	assert_int_equal(st.ipiv_hw, ACCEL_YES);
	assert_int_equal(st.ipiv_enabled, ACCEL_YES);
	assert_int_equal(st.ipiv_effective, ACCEL_YES);
}

static void test_intel_spr_ipiv_off(void **state)
{
	struct accel_state st;

	put("proc/cpuinfo", SPR_CPUINFO);
	intel_params("Y\n", "N\n");
	read_ok(&st);

	/* no MSR device: normal, and cpuinfo still tells */
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].err, -ENOENT);
	assert_non_null(st.facts[ACCEL_MSR_IPI_VIRT].note);
	assert_int_equal(st.ipiv_hw, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_INTEL_ENABLE_IPIV].state, ACCEL_NO);
	assert_int_equal(st.ipiv_enabled, ACCEL_NO);
	assert_int_equal(st.ipiv_effective, ACCEL_NO);
	assert_string_equal(st.why, "kvm_intel.enable_ipiv=N");
}

static void test_intel_apicv_off_disables_ipiv(void **state)
{
	struct accel_state st;

	put("proc/cpuinfo", SPR_CPUINFO);
	intel_params("N\n", "N\n");
	read_ok(&st);
	assert_int_equal(st.apicv_enabled, ACCEL_NO);
	assert_int_equal(st.ipiv_enabled, ACCEL_NO);
	assert_non_null(strstr(st.why, "enable_apicv=N"));
}

static void test_intel_enable_ipiv_in_kvm_module(void **state)
{
	struct accel_state st;

	/* 6.17 moved enable_ipiv to x86.c: the parameter may live under kvm */
	put("proc/cpuinfo", SPR_CPUINFO);
	intel_params("Y\n", NULL);
	put("sys/module/kvm/parameters/enable_ipiv", "Y\n");
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_INTEL_ENABLE_IPIV].state, ACCEL_YES);
	assert_source(&st.facts[ACCEL_INTEL_ENABLE_IPIV], "sys/module/kvm/parameters/enable_ipiv");
	assert_int_equal(st.ipiv_effective, ACCEL_YES);
}

static void test_intel_kernel_without_ipiv(void **state)
{
	struct accel_state st;

	/* Before 5.19 there is no enable_ipiv anywhere: IPIv cannot be on */
	put("proc/cpuinfo", SPR_CPUINFO);
	intel_params("Y\n", NULL);
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_INTEL_ENABLE_IPIV].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_INTEL_ENABLE_IPIV].err, -ENOENT);
	assert_source(&st.facts[ACCEL_INTEL_ENABLE_IPIV],
		      "sys/module/kvm_intel/parameters/enable_ipiv");
	assert_int_equal(st.ipiv_enabled, ACCEL_NO);
	assert_int_equal(st.ipiv_effective, ACCEL_NO);
	assert_non_null(strstr(st.why, "5.19"));
}

static void test_intel_without_ipi_virt(void **state)
{
	struct accel_state st;

	put("proc/cpuinfo", ICX_CPUINFO);
	put_msr(0xfff9fffe0401e172ull, 0); /* no tertiary controls on Ice Lake */
	intel_params("Y\n", "N\n");
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_CPU_IPI_VIRT].state, ACCEL_NO);
	assert_int_equal(st.facts[ACCEL_CPU_VID].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_MSR_TERTIARY].state, ACCEL_NO);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_NO);
	assert_int_equal(st.apicv_hw, ACCEL_YES);
	assert_int_equal(st.ipiv_hw, ACCEL_NO);
	assert_int_equal(st.ipiv_effective, ACCEL_NO);
	assert_non_null(strstr(st.why, "no IPI virtualization"));
}

static void test_msr_overrides_cpuinfo(void **state)
{
	struct accel_state st;

	/* the MSR is what KVM checks: tertiary allowed but IPI virtualization not */
	put("proc/cpuinfo", SPR_CPUINFO);
	put_msr(MSR_TERTIARY, 0x1);
	intel_params("Y\n", "Y\n");
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_CPU_IPI_VIRT].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_NO);
	assert_int_equal(st.ipiv_hw, ACCEL_NO);
	assert_int_equal(st.ipiv_effective, ACCEL_NO);
}

static void test_msr_file_wrong_size(void **state)
{
	struct accel_state st;

	put("proc/cpuinfo", SPR_CPUINFO);
	put("dev/cpu/0/msr", "0123456789abcdef"); /* 16 bytes: no offset 0x482 */
	intel_params("Y\n", "Y\n");
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_TERTIARY].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_MSR_TERTIARY].err, -EIO);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_UNKNOWN);
	assert_source(&st.facts[ACCEL_MSR_IPI_VIRT], "dev/cpu/0/msr");
	/* cpuinfo still decides */
	assert_int_equal(st.ipiv_hw, ACCEL_YES);
	assert_int_equal(st.ipiv_effective, ACCEL_YES);
}

/* accel_msr_dump into root/run/msr-facts; returns its path. */
static const char *dump_facts(void)
{
	static char path[PATH_MAX * 2];
	FILE *f;

	put_dir("run");
	snprintf(path, sizeof(path), "%s/run/msr-facts", root);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(accel_msr_dump(root, f), 0);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void assert_facts_source(const struct accel_fact *f, const char *file)
{
	char want[PATH_MAX * 3];

	snprintf(want, sizeof(want), "%s (from %s/dev/cpu/0/msr)", file, root);
	assert_string_equal(f->source, want);
}

/* The unit's path: root reads the device outside the sandbox, the daemon reads the file. */
static void test_msr_facts_file_round_trip(void **state)
{
	struct accel_state st;
	char err[512] = "", dev[PATH_MAX * 2];
	const char *file;

	put("proc/cpuinfo", SPR_CPUINFO);
	put_msr(MSR_TERTIARY | 0xfff9fffe0401e172ull, MSR_IPIV | 0x5);
	intel_params("Y\n", "Y\n");
	file = dump_facts();
	snprintf(dev, sizeof(dev), "%s/dev/cpu/0/msr", root);
	assert_int_equal(unlink(dev), 0); /* PrivateDevices= */
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].err, -ENOENT);

	assert_int_equal(accel_msr_load(root, file, err, sizeof(err)), 0);
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_TERTIARY].state, ACCEL_YES);
	assert_string_equal(st.facts[ACCEL_MSR_TERTIARY].value, "0xfffbfffe0401e172");
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_YES);
	assert_string_equal(st.facts[ACCEL_MSR_IPI_VIRT].value, "0x0000000000000015");
	assert_facts_source(&st.facts[ACCEL_MSR_IPI_VIRT], file);
	assert_int_equal(st.ipiv_effective, ACCEL_YES);

	/* preloaded (ipivd before dropping capabilities) it stays after the file is gone */
	assert_int_equal(accel_msr_preload(root), 0);
	assert_int_equal(unlink(file), 0);
	read_ok(&st);
	assert_string_equal(st.facts[ACCEL_MSR_IPI_VIRT].value, "0x0000000000000015");

	/* an AMD host's file says nothing: the vendor decides first */
	put("proc/cpuinfo", GENOA_CPUINFO);
	assert_int_equal(accel_msr_load(root, NULL, err, sizeof(err)), 0);
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].err, -ENODEV);
}

/* What the device did not give goes through the file as its errno, with the same notes. */
static void test_msr_facts_file_errors_and_no_tertiary(void **state)
{
	struct accel_state st;
	char err[512] = "";
	const char *file;

	put("proc/cpuinfo", SPR_CPUINFO);
	intel_params("Y\n", "Y\n");
	file = dump_facts(); /* no device at all */
	assert_int_equal(accel_msr_load(root, file, err, sizeof(err)), 0);
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].err, -ENOENT);
	assert_non_null(strstr(st.facts[ACCEL_MSR_IPI_VIRT].note, "modprobe msr"));
	assert_facts_source(&st.facts[ACCEL_MSR_TERTIARY], file);

	put("dev/cpu/0/msr", "0123456789abcdef"); /* no offset 0x482: EIO */
	file = dump_facts();
	assert_int_equal(accel_msr_load(root, file, err, sizeof(err)), 0);
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_TERTIARY].err, -EIO);
	assert_string_equal(st.facts[ACCEL_MSR_TERTIARY].note, "MSR 0x482 unreadable");

	put_msr(0xfff9fffe0401e172ull, MSR_IPIV); /* Ice Lake: no tertiary controls */
	file = dump_facts();
	assert_int_equal(accel_msr_load(root, file, err, sizeof(err)), 0);
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_TERTIARY].state, ACCEL_NO);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_NO);
	assert_string_equal(st.facts[ACCEL_MSR_IPI_VIRT].note, "no tertiary controls");
	assert_int_equal(st.ipiv_hw, ACCEL_NO);
	assert_int_equal(accel_msr_load(root, NULL, err, sizeof(err)), 0);
}

#define FACTS_HEAD "ipivd-msr-facts 1\ndevice /dev/cpu/0/msr\n"

static const struct {
	const char *body, *want;
} bad_facts[] = {
	{"", "empty (no \"ipivd-msr-facts 1\" line)"},
	{"# only a comment\n\n", "empty"},
	{"hello\n", "line 1: not an ipivd MSR facts file"},
	{"# c\nipivd-msr-facts 2\n", "line 2: not an ipivd MSR facts file"},
	{"ipivd-msr-facts 1\n", "no device line"},
	{"ipivd-msr-facts 1\nopen ok\n", "line 2: open before device"},
	{"ipivd-msr-facts 1\ndevice dev/cpu/0/msr\n", "line 2: device \"dev/cpu/0/msr\" is not an "
						      "absolute path"},
	{FACTS_HEAD "device /x\n", "line 3: device given twice"},
	{FACTS_HEAD, "no open line"},
	{FACTS_HEAD "open maybe\n", "line 3: open: want ok or error ERRNO, not \"maybe\""},
	{FACTS_HEAD "open error 0\n", "open: want ok or error ERRNO"},
	{FACTS_HEAD "open error 99999\n", "open: want ok or error ERRNO"},
	{FACTS_HEAD "open error -2\n", "open: want ok or error ERRNO"},
	{FACTS_HEAD "open ok\nopen ok\n", "line 4: open given twice"},
	{FACTS_HEAD "open ok\n", "open ok but no msr 0x482 line"},
	{FACTS_HEAD "open error 2\nmsr 0x482 0x1\n", "line 4: an MSR value without open ok"},
	{FACTS_HEAD "open ok\nmsr 0x483 0x1\n", "line 4: msr \"0x483 0x1\": want 0x482 or 0x492"},
	{FACTS_HEAD "open ok\nmsr 0x482 0xzz\n", "line 4: msr value \"0xzz\": want 0x and 1 to 16"},
	{FACTS_HEAD "open ok\nmsr 0x482 0x\n", "want 0x and 1 to 16 hex digits"},
	{FACTS_HEAD "open ok\nmsr 0x482 0x12345678901234567\n", "want 0x and 1 to 16 hex digits"},
	{FACTS_HEAD "open ok\nmsr 0x482 1\n", "want 0x and 1 to 16 hex digits"},
	{FACTS_HEAD "open ok\nmsr 0x482 0x1 \n", "want 0x and 1 to 16 hex digits"},
	{FACTS_HEAD "open ok\nmsr 0x482 0x1\nmsr 0x482 0x1\n", "line 5: msr 0x482 given twice"},
	{FACTS_HEAD "open ok\nmsr 0x482 0x1\nmsr 0x492 0x10\n",
	 "line 5: msr 0x492 without a 0x482 that allows tertiary controls"},
	{FACTS_HEAD "open ok\nmsr 0x482 error 5\nmsr 0x492 0x10\n", "msr 0x492 without a 0x482"},
	{FACTS_HEAD "open ok\nmsr 0x492 0x10\n", "msr 0x492 without a 0x482"},
	{FACTS_HEAD "open ok\nmsr 0x482 0x2000000000000\n",
	 "msr 0x482 allows tertiary controls but no msr 0x492 line"},
	{FACTS_HEAD "open ok\r\n", "line 3: control character"},
	{FACTS_HEAD "opened ok\n", "line 3: unknown line \"opened ok\""},
};

static void test_msr_facts_file_refused(void **state)
{
	struct accel_state st;
	char path[PATH_MAX * 2], err[512], big[5000];

	put("proc/cpuinfo", SPR_CPUINFO);
	snprintf(path, sizeof(path), "%s/facts", root);
	for (size_t i = 0; i < sizeof(bad_facts) / sizeof(bad_facts[0]); i++) {
		err[0] = '\0';
		put("facts", bad_facts[i].body);
		if (accel_msr_load(root, path, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted:\n%s", bad_facts[i].body);
		if (!strstr(err, bad_facts[i].want))
			fail_msg("error \"%s\" lacks \"%s\" for:\n%s", err, bad_facts[i].want,
				 bad_facts[i].body);
		assert_null(strchr(err, '\n'));
		assert_int_equal(strncmp(err, path, strlen(path)), 0);
	}
	/* refused files left nothing behind: the (absent) device is read */
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].err, -ENOENT);
	assert_non_null(strstr(st.facts[ACCEL_MSR_IPI_VIRT].source, "dev/cpu/0/msr"));

	memset(big, '#', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put("facts", big);
	assert_int_equal(accel_msr_load(root, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "larger than 4 KiB"));
	snprintf(path, sizeof(path), "%s/absent", root);
	assert_int_equal(accel_msr_load(root, path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "absent: No such file or directory"));

	/* comments and blank lines anywhere, and an errno for an MSR that faulted */
	put("facts", "# x\n\nipivd-msr-facts 1\n# y\ndevice /dev/cpu/0/msr\n\nopen ok\n"
		     "msr 0x482 0x2000000000000\nmsr 0x492 error 5\n# Input/output error\n");
	snprintf(path, sizeof(path), "%s/facts", root);
	assert_int_equal(accel_msr_load(root, path, err, sizeof(err)), 0);
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MSR_TERTIARY].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].err, -EIO);
	assert_string_equal(st.facts[ACCEL_MSR_IPI_VIRT].note, "MSR 0x492 unreadable");
	assert_int_equal(accel_msr_load(root, NULL, err, sizeof(err)), 0);
}

static void test_amd_x2avic(void **state)
{
	struct accel_state st;

	put("proc/cpuinfo", GENOA_CPUINFO);
	put("sys/module/kvm_amd/parameters/avic", "Y\n");
	put("sys/module/kvm_amd/parameters/enable_ipiv", "Y\n");
	put("sys/module/kvm_amd/parameters/force_avic", "N\n");
	put_msr(MSR_TERTIARY, MSR_IPIV); /* must not be read on AMD */
	read_ok(&st);
	assert_int_equal(st.vendor, ACCEL_VENDOR_AMD);
	assert_int_equal(st.family, 25);
	assert_int_equal(st.facts[ACCEL_CPU_SVM].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_CPU_AVIC].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_CPU_X2AVIC].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_CPU_VMX].state, ACCEL_NO);
	assert_int_equal(st.facts[ACCEL_CPU_IPI_VIRT].state, ACCEL_NO);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_MSR_IPI_VIRT].err, -ENODEV);
	assert_int_equal(st.facts[ACCEL_AMD_FORCE_AVIC].state, ACCEL_NO);
	assert_source(&st.facts[ACCEL_AMD_AVIC], "sys/module/kvm_amd/parameters/avic");
	assert_int_equal(st.backend, ACCEL_BACKEND_KVM_AMD);
	assert_string_equal(st.mechanism, "x2avic");
	assert_int_equal(st.ipiv_hw, ACCEL_YES);
	assert_int_equal(st.ipiv_enabled, ACCEL_YES);
	assert_int_equal(st.ipiv_effective, ACCEL_YES);
}

static void test_amd_avic_off_and_old_kernel(void **state)
{
	struct accel_state st;

	/* int-style parameter "0", no enable_ipiv (before 6.17), no x2avic */
	put("proc/cpuinfo", "vendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 49\n"
			    "flags\t\t: fpu svm avic\n");
	put("sys/module/kvm_amd/parameters/avic", "0\n");
	read_ok(&st);
	assert_string_equal(st.mechanism, "avic");
	assert_int_equal(st.facts[ACCEL_AMD_AVIC].state, ACCEL_NO);
	assert_int_equal(st.facts[ACCEL_AMD_ENABLE_IPIV].err, -ENOENT);
	assert_int_equal(st.ipiv_hw, ACCEL_YES);
	assert_int_equal(st.ipiv_enabled, ACCEL_NO);
	assert_int_equal(st.ipiv_effective, ACCEL_NO);
	assert_string_equal(st.why, "kvm_amd.avic=N");

	put("sys/module/kvm_amd/parameters/avic", "1\n");
	read_ok(&st);
	assert_int_equal(st.ipiv_enabled, ACCEL_YES); /* no enable_ipiv: AVIC sends IPIs */
	assert_int_equal(st.ipiv_effective, ACCEL_YES);

	put("sys/module/kvm_amd/parameters/enable_ipiv", "N\n");
	read_ok(&st);
	assert_int_equal(st.ipiv_enabled, ACCEL_NO);
	assert_non_null(strstr(st.why, "enable_ipiv=N"));
}

static void test_pvm(void **state)
{
	struct accel_state st;

	put("proc/cpuinfo", SPR_CPUINFO);
	put("sys/module/kvm_pvm/parameters/.keep", "");
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MOD_KVM_PVM].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_MOD_KVM_INTEL].state, ACCEL_NO);
	assert_int_equal(st.backend, ACCEL_BACKEND_KVM_PVM);
	assert_string_equal(st.mechanism, "none");
	assert_int_equal(st.ipiv_hw, ACCEL_YES); /* the CPU could; the backend does not */
	assert_int_equal(st.ipiv_effective, ACCEL_NO);
	assert_non_null(strstr(st.why, "kvm_pvm"));
}

static void test_nothing(void **state)
{
	struct accel_state st;

	read_ok(&st);
	assert_int_equal(st.vendor, ACCEL_VENDOR_UNKNOWN);
	assert_int_equal(st.cpuinfo_err, -ENOENT);
	assert_int_equal(st.family, -1);
	for (unsigned i = 0; i < ACCEL_FACT_COUNT; i++) {
		assert_int_equal(st.facts[i].state, ACCEL_UNKNOWN);
		assert_true(st.facts[i].source[0] != '\0');
		assert_true(st.facts[i].err < 0);
	}
	assert_int_equal(st.backend, ACCEL_BACKEND_UNKNOWN);
	assert_int_equal(st.ipiv_hw, ACCEL_UNKNOWN);
	assert_int_equal(st.ipiv_effective, ACCEL_UNKNOWN);
}

static void test_no_backend_loaded(void **state)
{
	struct accel_state st;

	put("proc/cpuinfo", SPR_CPUINFO);
	put_dir("sys/module/kvm");
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_MOD_KVM_INTEL].state, ACCEL_NO);
	assert_int_equal(st.backend, ACCEL_BACKEND_NONE);
	assert_int_equal(st.ipiv_effective, ACCEL_NO);
}

static void test_malformed(void **state)
{
	struct accel_state st;

	/* lines without colons, a bad family, control bytes in the model, no flags line */
	put("proc/cpuinfo", "garbage line\n::::\nvendor_id\t: GenuineIntel\ncpu family\t: six\n"
			    "model name\t: Evil\x1b[31m CPU\x07\nmodel\t\t: -3\n");
	put("sys/module/kvm_intel/parameters/enable_apicv", "maybe\n");
	put("sys/module/kvm_intel/parameters/enable_ipiv", "");
	read_ok(&st);
	assert_int_equal(st.vendor, ACCEL_VENDOR_INTEL);
	assert_int_equal(st.family, -1);
	assert_int_equal(st.model, -1);
	assert_string_equal(st.model_name, "Evil[31m CPU");
	assert_int_equal(st.facts[ACCEL_CPU_VMX].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_CPU_VMX].err, -ENODATA);
	assert_int_equal(st.facts[ACCEL_CPU_IPI_VIRT].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_INTEL_ENABLE_APICV].state, ACCEL_UNKNOWN);
	assert_string_equal(st.facts[ACCEL_INTEL_ENABLE_APICV].value, "maybe");
	assert_string_equal(st.facts[ACCEL_INTEL_ENABLE_APICV].note, "not a boolean");
	assert_int_equal(st.facts[ACCEL_INTEL_ENABLE_IPIV].state, ACCEL_UNKNOWN);
	assert_int_equal(st.ipiv_effective, ACCEL_UNKNOWN);

	/* binary cpuinfo is refused whole */
	put("proc/cpuinfo", "vendor_id\t: GenuineIntel\n");
	{
		char path[PATH_MAX * 2];
		FILE *f;

		snprintf(path, sizeof(path), "%s/proc/cpuinfo", root);
		f = fopen(path, "a");
		assert_non_null(f);
		fputc('\0', f);
		fputs("flags: vmx\n", f);
		fclose(f);
	}
	read_ok(&st);
	assert_int_equal(st.cpuinfo_err, -EINVAL);
	assert_int_equal(st.vendor, ACCEL_VENDOR_UNKNOWN);

	/* "vmx flags" missing on a VMX CPU (kernel < 5.8): features unknown, not absent */
	put("proc/cpuinfo", "vendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n");
	put("sys/module/kvm_amd/parameters/avic", "auto\n");
	read_ok(&st);
	assert_int_equal(st.facts[ACCEL_CPU_VMX].state, ACCEL_YES);
	assert_int_equal(st.facts[ACCEL_CPU_IPI_VIRT].state, ACCEL_UNKNOWN);
	assert_int_equal(st.facts[ACCEL_CPU_IPI_VIRT].err, -ENODATA);
	assert_int_equal(st.facts[ACCEL_AMD_AVIC].state, ACCEL_UNKNOWN);
	assert_string_equal(st.facts[ACCEL_AMD_AVIC].value, "auto");
}

static void test_bad_arguments(void **state)
{
	struct accel_state st;
	char longroot[300];

	assert_int_equal(accel_read(NULL, &st), -EINVAL);
	assert_int_equal(accel_read(root, NULL), -EINVAL);
	memset(longroot, 'a', sizeof(longroot) - 1);
	longroot[0] = '/';
	longroot[sizeof(longroot) - 1] = '\0';
	assert_int_equal(accel_read(longroot, &st), -ENAMETOOLONG);
	/* trailing slashes do not double up in sources */
	put("proc/cpuinfo", SPR_CPUINFO);
	{
		char slashed[PATH_MAX + 2];

		snprintf(slashed, sizeof(slashed), "%s//", root);
		assert_int_equal(accel_read(slashed, &st), 0);
		assert_source(&st.facts[ACCEL_CPU_VMX], "proc/cpuinfo");
	}
}

static void test_names(void **state)
{
	for (unsigned i = 0; i < ACCEL_FACT_COUNT; i++) {
		assert_non_null(accel_fact_name(i));
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(accel_fact_name(i), accel_fact_name(j));
	}
	assert_string_equal(accel_fact_name(ACCEL_INTEL_ENABLE_IPIV), "kvm_intel.enable_ipiv");
	assert_string_equal(accel_fact_name(ACCEL_FACT_COUNT), "invalid");
	assert_string_equal(accel_state_name(ACCEL_YES), "yes");
	assert_string_equal(accel_backend_name(ACCEL_BACKEND_KVM_PVM), "kvm_pvm");
	assert_string_equal(accel_vendor_name(ACCEL_VENDOR_AMD), "amd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_intel_spr_ipiv_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intel_spr_ipiv_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intel_apicv_off_disables_ipiv, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_intel_enable_ipiv_in_kvm_module, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_intel_kernel_without_ipiv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intel_without_ipi_virt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_overrides_cpuinfo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_file_wrong_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_facts_file_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_facts_file_errors_and_no_tertiary, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_msr_facts_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_amd_x2avic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_amd_avic_off_and_old_kernel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_backend_loaded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
