/* Unit tests for daemon/lib/naming.c: temp-dir proc trees for each VMM's naming rule, every
 * kind of malformed /proc content, sanitising and bounding, and making names unique. */
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

#include "naming.h"
#include "utf8.h"

static char proc_root[] = "/tmp/ipiv-naming-XXXXXX";

static void write_proc(int pid, const char *file, const void *content, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d", proc_root, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/%s", proc_root, pid, file);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A command line given as one string with '\0' separators: pass its sizeof - 1 as len. */
#define CMDLINE(pid, lit) write_proc(pid, "cmdline", lit, sizeof(lit) - 1)

static void assert_named(int pid, const char *want, enum vm_name_source source)
{
	char name[VM_NAME_MAX];
	int got = vm_name_from_proc(proc_root, pid, name);

	if (got != (int)source || strcmp(name, want) != 0)
		fail_msg("pid %d: got \"%s\" from %s, want \"%s\" from %s", pid, name,
			 got < 0 ? "error" : vm_name_source_str(got), want,
			 vm_name_source_str(source));
}

/* What every name must be, whatever the input: short, valid UTF-8, no control characters. */
static void assert_clean(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t left = strlen(name), n;
	uint32_t cp;

	assert_true(left > 0 && left < VM_NAME_MAX);
	while (left) {
		n = utf8_decode(p, left, &cp);
		if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			fail_msg("name \"%s\" holds a bad character", name);
		p += n, left -= n;
	}
}

static void test_qemu_name_forms(void **state)
{
	CMDLINE(101, "/usr/bin/qemu-system-x86_64\0-name\0guest=web,debug-threads=on\0-m\0"
		     "1024\0");
	assert_named(101, "web", VM_NAME_QEMU);
	CMDLINE(102, "qemu-system-x86_64\0-enable-kvm\0-name\0db,process=qemu:db\0");
	assert_named(102, "db", VM_NAME_QEMU);
	CMDLINE(103, "qemu-kvm\0-name\0debug-threads=on,guest=late-key\0");
	assert_named(103, "late-key", VM_NAME_QEMU);
	CMDLINE(104, "kvm\0-name\0first\0-name\0guest=second\0");
	assert_named(104, "second", VM_NAME_QEMU);
	CMDLINE(105, "qemu-system-aarch64\0--name\0guest=dashdash\0");
	assert_named(105, "dashdash", VM_NAME_QEMU);
}

static void test_qemu_comma_escapes(void **state)
{
	CMDLINE(111, "qemu-system-x86_64\0-name\0guest=a,,b,,,,c,debug-threads=on\0");
	assert_named(111, "a,b,,c", VM_NAME_QEMU);
	CMDLINE(112, "qemu-system-x86_64\0-name\0x,,y,process=p\0");
	assert_named(112, "x,y", VM_NAME_QEMU);
	CMDLINE(113, "qemu-system-x86_64\0-name\0guest=trailing,,\0");
	assert_named(113, "trailing,", VM_NAME_QEMU);
	/* A key is never found inside an escaped value. */
	CMDLINE(114, "qemu-system-x86_64\0-name\0process=a,,guest=evil\0");
	assert_named(114, "pid-114", VM_NAME_PID);
	CMDLINE(115, "qemu-system-x86_64\0-name\0guest=a=b\0");
	assert_named(115, "a=b", VM_NAME_QEMU);
}

static void test_libvirt_qemu_and_uuid(void **state)
{
	CMDLINE(121,
		"/usr/bin/qemu-system-x86_64\0-name\0guest=prod-db-01,debug-threads=on\0-S\0"
		"-object\0{\"qom-type\":\"secret\",\"id\":\"masterKey0\"}\0-machine\0pc-q35-7.2\0"
		"-uuid\0c7a5fdbd-cdaf-9455-926a-d65c16db1809\0-no-user-config\0");
	assert_named(121, "prod-db-01", VM_NAME_QEMU);
	CMDLINE(122, "qemu-system-x86_64\0-uuid\0c7a5fdbd-cdaf-9455-926a-d65c16db1809\0");
	assert_named(122, "c7a5fdbd-cdaf-9455-926a-d65c16db1809", VM_NAME_QEMU_UUID);
	/* -name without a guest name, or with an empty one, falls back to -uuid. */
	CMDLINE(123, "qemu-system-x86_64\0-name\0process=x\0-uuid\0u-123\0");
	assert_named(123, "u-123", VM_NAME_QEMU_UUID);
	CMDLINE(124, "qemu-system-x86_64\0-name\0guest=,debug-threads=on\0");
	assert_named(124, "pid-124", VM_NAME_PID);
	/* -name as the last argument has no value. */
	CMDLINE(125, "qemu-system-x86_64\0-name\0");
	assert_named(125, "pid-125", VM_NAME_PID);
}

static void test_other_vmms(void **state)
{
	CMDLINE(131, "/usr/bin/firecracker\0--api-sock\0/run/fc.sock\0--id\0fc-vm-7\0");
	assert_named(131, "fc-vm-7", VM_NAME_FIRECRACKER);
	CMDLINE(132, "/firecracker\0--id=jailed\0");
	assert_named(132, "jailed", VM_NAME_FIRECRACKER);
	CMDLINE(133, "firecracker\0--no-api\0");
	assert_named(133, "pid-133", VM_NAME_PID);

	CMDLINE(141, "cloud-hypervisor\0--api-socket\0path=/run/ch/vm1.sock\0--cpus\0boot=2\0");
	assert_named(141, "/run/ch/vm1.sock", VM_NAME_CLOUD_HYPERVISOR);
	CMDLINE(142, "/usr/bin/cloud-hypervisor\0--api-socket=/tmp/bare.sock\0");
	assert_named(142, "/tmp/bare.sock", VM_NAME_CLOUD_HYPERVISOR);
	CMDLINE(143, "cloud-hypervisor\0--api-socket\0fd=3\0");
	assert_named(143, "pid-143", VM_NAME_PID);
	CMDLINE(144, "cloud-hypervisor\0--api-socket\0fd=3,path=/run/x.sock\0");
	assert_named(144, "/run/x.sock", VM_NAME_CLOUD_HYPERVISOR);
	/* Too long: the end, which tells VMs apart, is kept. */
	CMDLINE(145, "cloud-hypervisor\0--api-socket\0path=/run/vc/vm/"
		     "0123456789abcdef0123456789abcdef0123456789abcdef/sandbox-42.sock\0");
	assert_named(145, "123456789abcdef0123456789abcdef0123456789abcdef/sandbox-42.sock",
		     VM_NAME_CLOUD_HYPERVISOR);

	CMDLINE(151, "./ipivbench\0--vcpus\0004\0--name\0bench-a\0");
	assert_named(151, "bench-a", VM_NAME_IPIVBENCH);
	CMDLINE(152, "ipivbench\0--name=bench-b\0");
	assert_named(152, "bench-b", VM_NAME_IPIVBENCH);

	/* An unknown program is never named from its arguments. */
	CMDLINE(161, "/bin/bash\0-name\0guest=nope\0--id\0nope\0");
	assert_named(161, "pid-161", VM_NAME_PID);
}

static void test_comm_identifies_vmm_when_argv0_does_not(void **state)
{
	CMDLINE(171, "renamed\0-name\0guest=by-comm\0");
	write_proc(171, "comm", "qemu-system-x86\n", 16);
	assert_named(171, "by-comm", VM_NAME_QEMU);
	CMDLINE(172, "x\0--api-socket\0/run/c.sock\0");
	write_proc(172, "comm", "cloud-hyperviso\n", 16);
	assert_named(172, "/run/c.sock", VM_NAME_CLOUD_HYPERVISOR);
	/* An exited VMM has an empty cmdline: comm alone names nothing. */
	write_proc(173, "cmdline", "", 0);
	write_proc(173, "comm", "qemu-system-x86\n", 16);
	assert_named(173, "pid-173", VM_NAME_PID);
	/* comm without a newline, or full of junk. */
	CMDLINE(174, "?\0--id\0c\0");
	write_proc(174, "comm", "firecracker", 11);
	assert_named(174, "c", VM_NAME_FIRECRACKER);
	CMDLINE(175, "?\0--id\0c\0");
	write_proc(175, "comm", "\xff\xfe\0\n\x01", 5);
	assert_named(175, "pid-175", VM_NAME_PID);
}

static void test_malformed_files_never_fail(void **state)
{
	char path[256], name[VM_NAME_MAX];
	static const char junk[] = "\x00\x00\xff-name\x00\x01\x02\xc3";

	assert_named(999999, "pid-999999", VM_NAME_PID); /* no such process */
	write_proc(201, "cmdline", "", 0);
	assert_named(201, "pid-201", VM_NAME_PID);
	/* No NUL after the last argument: still whole, since the file was read to its end. */
	write_proc(202, "cmdline", "qemu-system-x86_64\0-name\0guest=nonul", 36);
	assert_named(202, "nonul", VM_NAME_QEMU);
	write_proc(203, "cmdline", junk, sizeof(junk) - 1);
	assert_named(203, "pid-203", VM_NAME_PID);
	/* cmdline that is a directory, and one that is a FIFO (must not block). */
	snprintf(path, sizeof(path), "%s/204/cmdline", proc_root);
	write_proc(204, "comm", "kvm\n", 4);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_named(204, "pid-204", VM_NAME_PID);
	snprintf(path, sizeof(path), "%s/205/cmdline", proc_root);
	write_proc(205, "comm", "kvm\n", 4);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_named(205, "pid-205", VM_NAME_PID);
	/* Just the NULs. */
	write_proc(206, "cmdline", "\0\0\0\0", 4);
	assert_named(206, "pid-206", VM_NAME_PID);

	assert_int_equal(vm_name_from_proc(NULL, 1, name), -EINVAL);
	assert_int_equal(vm_name_from_proc(proc_root, -1, name), -EINVAL);
	assert_int_equal(vm_name_from_proc(proc_root, 1, NULL), -EINVAL);
	assert_named(0, "pid-0", VM_NAME_PID);
	assert_named(INT_MAX, "pid-2147483647", VM_NAME_PID);
}

static void test_huge_cmdline_is_read_up_to_its_bound(void **state)
{
	static const char head[] = "qemu-system-x86_64\0-name\0guest=early\0";
	size_t size = VM_CMDLINE_MAX * 4, i;
	char *big = malloc(size);

	assert_non_null(big);
	/* -name early, then megabytes of arguments: found without reading them all. */
	memcpy(big, head, sizeof(head) - 1);
	for (i = sizeof(head) - 1; i < size; i++)
		big[i] = i % 64 ? 'a' : '\0';
	write_proc(211, "cmdline", big, size);
	assert_named(211, "early", VM_NAME_QEMU);

	/* A -name value cut off by the bound is not used half-read. */
	memcpy(big, "qemu-system-x86_64\0", 19);
	memset(big + 19, 'x', VM_CMDLINE_MAX - 19 - 32);
	big[VM_CMDLINE_MAX - 33] = '\0';
	memcpy(big + VM_CMDLINE_MAX - 32, "-name\0guest=", 12);
	memset(big + VM_CMDLINE_MAX - 20, 'n', 100);
	big[VM_CMDLINE_MAX + 80] = '\0';
	write_proc(212, "cmdline", big, VM_CMDLINE_MAX + 81);
	assert_named(212, "pid-212", VM_NAME_PID);
	free(big);
}

static void test_names_are_sanitized_and_bounded(void **state)
{
	char name[VM_NAME_MAX], out[8];
	char longname[300] = "qemu-system-x86_64\0-name\0guest=";
	size_t n, prefix = 31;

	CMDLINE(301, "qemu-system-x86_64\0-name\0guest=we\x1b[31mb\x07\r\n\t,debug-threads=on\0");
	assert_named(301, "we[31mb", VM_NAME_QEMU);
	CMDLINE(302, "qemu-system-x86_64\0-name\0caf\xc3\xa9\xff\xc0\xaf\xed\xa0\x80!\0");
	assert_named(302, "caf\xc3\xa9!", VM_NAME_QEMU);
	/* U+202E (right-to-left override), U+0085 (C1 NEL), DEL. */
	CMDLINE(303, "qemu-system-x86_64\0-name\0a\xe2\x80\xae"
		     "b\xc2\x85"
		     "c\x7f"
		     "d\0");
	assert_named(303, "abcd", VM_NAME_QEMU);
	CMDLINE(304, "qemu-system-x86_64\0-name\0  padded name  \0");
	assert_named(304, "padded name", VM_NAME_QEMU);
	CMDLINE(305, "qemu-system-x86_64\0-name\0\x01\x02\x1b\0");
	assert_named(305, "pid-305", VM_NAME_PID);

	/* 62 ASCII bytes then 3-byte characters: the cut lands on a character boundary. */
	memset(longname + prefix, 'a', 62);
	for (n = prefix + 62; n + 3 < prefix + 200; n += 3)
		memcpy(longname + n, "\xe2\x82\xac", 3);
	longname[n] = '\0';
	write_proc(306, "cmdline", longname, n + 1);
	assert_int_equal(vm_name_from_proc(proc_root, 306, name), VM_NAME_QEMU);
	assert_int_equal(strlen(name), 62);
	assert_clean(name);

	assert_int_equal(vm_name_sanitize("abcdefgh", 8, out, sizeof(out)), 7);
	assert_string_equal(out, "abcdefg");
	assert_int_equal(vm_name_sanitize("ab\xc3\xa9", 4, out, 4), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(vm_name_sanitize("x", 1, out, 0), 0);
}

static void test_random_junk_gives_clean_names(void **state)
{
	static const char *const argv0[] = {"qemu-system-x86_64", "firecracker", "ipivbench",
					    "cloud-hypervisor"};
	static const char *const opt[] = {"-name", "--id", "--name", "--api-socket"};
	uint32_t x = 12345;
	char buf[200], name[VM_NAME_MAX];
	size_t i, j, len;

	for (i = 0; i < 2000; i++) {
		int k = i % 4;

		len = (size_t)snprintf(buf, sizeof(buf), "%s%c%s%c", argv0[k], 0, opt[k], 0);
		for (j = 0; j < 40 + i % 100; j++) {
			x = x * 1103515245 + 12345;
			buf[len++] = (char)(x >> 16);
		}
		write_proc(400, "cmdline", buf, len);
		assert_true(vm_name_from_proc(proc_root, 400, name) >= 0);
		assert_clean(name);
	}
}

/* The command line ipivd keeps in BPF: the same parsing from a buffer, argv[0] telling the
 * VMM, a last argument cut off ignored, nothing usable giving the pid name. */
#define KEPT(literal) literal, sizeof(literal) - 1

static void test_name_from_kept_cmdline(void **state)
{
	char name[VM_NAME_MAX];

	assert_int_equal(
		vm_name_from_cmdline(KEPT("/opt/ipivbench\0--name=web-01\0"), false, 7, name),
		VM_NAME_IPIVBENCH);
	assert_string_equal(name, "web-01");
	assert_int_equal(
		vm_name_from_cmdline(KEPT("qemu-system-x86_64\0-name\0guest=db,debug-threads=on\0"),
				     true, 7, name),
		VM_NAME_QEMU);
	assert_string_equal(name, "db");
	/* cut inside the value: the partial argument is not a name */
	assert_int_equal(vm_name_from_cmdline(KEPT("firecracker\0--id\0vm-12"), true, 7, name),
			 VM_NAME_PID);
	assert_string_equal(name, "pid-7");
	/* the whole command line, its last NUL missing: the argument counts */
	assert_int_equal(vm_name_from_cmdline(KEPT("firecracker\0--id\0vm-12"), false, 7, name),
			 VM_NAME_FIRECRACKER);
	assert_string_equal(name, "vm-12");
	assert_int_equal(vm_name_from_cmdline("", 0, false, 8, name), VM_NAME_PID);
	assert_string_equal(name, "pid-8");
	assert_int_equal(vm_name_from_cmdline(NULL, 4, false, 8, name), -EINVAL);
	assert_int_equal(vm_name_from_cmdline("x", 1, false, -1, name), -EINVAL);
}

/* ---- the VMM and the UUID ---- */

#define UUID_A "c7a5fdbd-cdaf-9455-926a-d65c16db1809"
#define UUID_B "0b6e0f7e-1d3a-4c55-8d2f-9a1b2c3d4e5f"

static void assert_identity(const char *cmdline, size_t len, enum vm_vmm vmm, const char *uuid)
{
	struct vm_identity id;

	assert_int_equal(vm_identity_from_cmdline(cmdline, len, false, &id), 0);
	if (id.vmm != vmm || strcmp(id.uuid, uuid) != 0)
		fail_msg("got vmm %s uuid \"%s\", want %s \"%s\"", vm_vmm_name(id.vmm), id.uuid,
			 vm_vmm_name(vmm), uuid);
}

static void test_uuid_format(void **state)
{
	char out[VM_UUID_LEN];

	assert_true(vm_uuid_parse(UUID_A, 36, out));
	assert_string_equal(out, UUID_A);
	assert_true(vm_uuid_parse("C7A5FDBD-CDAF-9455-926A-D65C16DB1809", 36, out));
	assert_string_equal(out, UUID_A); /* lower case out */
	assert_true(vm_uuid_parse(UUID_A, 36, NULL));
	/* not canonical: no dashes, braces, urn, a dash moved, a non-hex digit, cut, longer */
	assert_false(vm_uuid_parse("c7a5fdbdcdaf9455926ad65c16db1809", 32, out));
	assert_false(vm_uuid_parse("{" UUID_A "}", 38, out));
	assert_false(vm_uuid_parse("urn:uuid:" UUID_A, 45, out));
	assert_false(vm_uuid_parse("c7a5fdb-dcdaf-9455-926a-d65c16db1809", 36, out));
	assert_false(vm_uuid_parse("g7a5fdbd-cdaf-9455-926a-d65c16db1809", 36, out));
	assert_false(vm_uuid_parse(UUID_A, 35, out));
	assert_false(vm_uuid_parse(UUID_A "0", 37, out));
	assert_false(vm_uuid_parse("c7a5fdbd-cdaf-9455-926a-d65c16db180\0", 36, out));
	assert_false(vm_uuid_parse("c7a5fdbd-cdaf-9455-926a-d65c16db18\"}", 36, out));
	assert_false(vm_uuid_parse(NULL, 36, out));
}

static void test_vmm_names(void **state)
{
	for (unsigned v = 0; v < VM_VMM_COUNT; v++)
		assert_int_equal(vm_vmm_from_name(vm_vmm_name(v)), v);
	assert_string_equal(vm_vmm_name(VM_VMM_LIBVIRT_QEMU), "libvirt-qemu");
	assert_string_equal(vm_vmm_name(VM_VMM_COUNT), "unknown");
	assert_int_equal(vm_vmm_from_name("QEMU"), VM_VMM_UNKNOWN);
	assert_int_equal(vm_vmm_from_name(""), VM_VMM_UNKNOWN);
	assert_int_equal(vm_vmm_from_name(NULL), VM_VMM_UNKNOWN);
}

static void test_identity_qemu_and_libvirt(void **state)
{
	/* libvirt: guest= spelled out, its master key, -uuid (as Nova and KubeVirt run it) */
	assert_identity(KEPT("/usr/bin/qemu-system-x86_64\0-name\0guest=instance-0000002a,"
			     "debug-threads=on\0-S\0-object\0{\"qom-type\":\"secret\",\"id\":"
			     "\"masterKey0\",\"format\":\"raw\"}\0-uuid\0" UUID_A "\0"),
			VM_VMM_LIBVIRT_QEMU, UUID_A);
	assert_identity(KEPT("qemu-system-x86_64\0-object\0secret,id=masterKey0,format=raw\0"),
			VM_VMM_LIBVIRT_QEMU, "");
	assert_identity(KEPT("qemu-system-x86_64\0-name\0web\0-uuid\0" UUID_A "\0"), VM_VMM_QEMU,
			UUID_A);
	/* -smbios type=1 sets the same UUID; the last one given wins */
	assert_identity(KEPT("qemu-kvm\0-smbios\0type=1,manufacturer=x,uuid=" UUID_B "\0"),
			VM_VMM_QEMU, UUID_B);
	assert_identity(KEPT("qemu-kvm\0-uuid\0" UUID_A "\0-smbios\0type=1,uuid=" UUID_B "\0"),
			VM_VMM_QEMU, UUID_B);
	assert_identity(KEPT("qemu-kvm\0-smbios\0type=1,uuid=" UUID_B "\0-uuid\0" UUID_A "\0"),
			VM_VMM_QEMU, UUID_A);
	/* other SMBIOS tables carry no system UUID; a UUID-looking key elsewhere is not it */
	assert_identity(KEPT("qemu-kvm\0-smbios\0type=2,uuid=" UUID_B "\0"), VM_VMM_QEMU, "");
	assert_identity(KEPT("qemu-kvm\0-smbios\0type=1,serial=x,,uuid=" UUID_B "\0"), VM_VMM_QEMU,
			"");
	/* what is not a UUID is no UUID: not "-uuid junk", not the name */
	assert_identity(KEPT("qemu-kvm\0-uuid\0u-123\0"), VM_VMM_QEMU, "");
	assert_identity(KEPT("qemu-kvm\0-uuid\0" UUID_A "\0-uuid\0nope\0"), VM_VMM_QEMU, "");
	assert_identity(KEPT("qemu-kvm\0-name\0" UUID_A "\0"), VM_VMM_QEMU, "");
	assert_identity(KEPT("qemu-kvm\0-uuid\0"), VM_VMM_QEMU, "");
	/* a plain -name is not libvirt's */
	assert_identity(KEPT("qemu-system-aarch64\0-name\0web,debug-threads=on\0"), VM_VMM_QEMU,
			"");
}

static void test_identity_other_vmms(void **state)
{
	struct vm_identity id;

	assert_identity(KEPT("firecracker\0--id\0" UUID_A "\0"), VM_VMM_FIRECRACKER, UUID_A);
	assert_identity(KEPT("firecracker\0--id=fc-vm-7\0"), VM_VMM_FIRECRACKER, "");
	assert_identity(KEPT("cloud-hypervisor\0--platform\0num_pci_segments=1,uuid=" UUID_B
			     ",oem_strings=[a]\0"),
			VM_VMM_CLOUD_HYPERVISOR, UUID_B);
	assert_identity(KEPT("cloud-hypervisor\0--api-socket\0/run/ch.sock\0"),
			VM_VMM_CLOUD_HYPERVISOR, "");
	assert_identity(KEPT("/usr/bin/crosvm\0run\0--socket\0/run/c.sock\0"), VM_VMM_CROSVM, "");
	assert_identity(KEPT("ipivbench\0--name\0he-a\0--uuid\0" UUID_A "\0"), VM_VMM_IPIVBENCH,
			UUID_A);
	assert_identity(KEPT("ipivbench\0--uuid=" UUID_B "\0"), VM_VMM_IPIVBENCH, UUID_B);
	assert_identity(KEPT("/bin/bash\0-uuid\0" UUID_A "\0--uuid\0" UUID_A "\0"), VM_VMM_UNKNOWN,
			"");
	assert_identity("", 0, VM_VMM_UNKNOWN, "");
	/* a UUID cut off by the kept command line's bound is not taken half-read */
	assert_int_equal(
		vm_identity_from_cmdline(KEPT("ipivbench\0--uuid\0c7a5fdbd-cdaf"), true, &id), 0);
	assert_int_equal(id.vmm, VM_VMM_IPIVBENCH);
	assert_string_equal(id.uuid, "");
	assert_int_equal(vm_identity_from_cmdline(NULL, 3, false, &id), -EINVAL);
	assert_int_equal(vm_identity_from_cmdline("x", 1, false, NULL), -EINVAL);
}

static void test_identity_from_proc(void **state)
{
	struct vm_identity id;

	CMDLINE(501, "/usr/bin/qemu-system-x86_64\0-name\0guest=prod,debug-threads=on\0-uuid\0"
		     "C7A5FDBD-CDAF-9455-926A-D65C16DB1809\0");
	assert_int_equal(vm_identity_from_proc(proc_root, 501, &id), 0);
	assert_int_equal(id.vmm, VM_VMM_LIBVIRT_QEMU);
	assert_string_equal(id.uuid, UUID_A);
	/* argv[0] renamed: comm tells the VMM */
	CMDLINE(502, "vmm\0--id\0" UUID_B "\0");
	write_proc(502, "comm", "firecracker\n", 12);
	assert_int_equal(vm_identity_from_proc(proc_root, 502, &id), 0);
	assert_int_equal(id.vmm, VM_VMM_FIRECRACKER);
	assert_string_equal(id.uuid, UUID_B);
	/* gone, or junk: unknown, no UUID */
	assert_int_equal(vm_identity_from_proc(proc_root, 999998, &id), 0);
	assert_int_equal(id.vmm, VM_VMM_UNKNOWN);
	assert_string_equal(id.uuid, "");
	write_proc(503, "cmdline", "\xff\0-uuid\0\x1b[31m\0", 14);
	assert_int_equal(vm_identity_from_proc(proc_root, 503, &id), 0);
	assert_int_equal(id.vmm, VM_VMM_UNKNOWN);
	assert_int_equal(vm_identity_from_proc(NULL, 1, &id), -EINVAL);
	assert_int_equal(vm_identity_from_proc(proc_root, -1, &id), -EINVAL);
}

static int remove_tree(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", proc_root);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_name_forms),
		cmocka_unit_test(test_qemu_comma_escapes),
		cmocka_unit_test(test_libvirt_qemu_and_uuid),
		cmocka_unit_test(test_other_vmms),
		cmocka_unit_test(test_comm_identifies_vmm_when_argv0_does_not),
		cmocka_unit_test(test_malformed_files_never_fail),
		cmocka_unit_test(test_huge_cmdline_is_read_up_to_its_bound),
		cmocka_unit_test(test_names_are_sanitized_and_bounded),
		cmocka_unit_test(test_random_junk_gives_clean_names),
		cmocka_unit_test(test_name_from_kept_cmdline),
		cmocka_unit_test(test_uuid_format),
		cmocka_unit_test(test_vmm_names),
		cmocka_unit_test(test_identity_qemu_and_libvirt),
		cmocka_unit_test(test_identity_other_vmms),
		cmocka_unit_test(test_identity_from_proc),
	};

	if (!mkdtemp(proc_root)) {
		perror("mkdtemp");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, remove_tree);
}
