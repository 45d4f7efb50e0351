/* ipivbench: guest-measured cycles per IPI on this host's KVM, with exact guest-side counts,
 * and the w/o vs w/ acceleration comparison of two runs. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"
#include "report.h"
#include "vmm.h"

#ifndef IPIV_VERSION
#define IPIV_VERSION "unknown"
#endif

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
	"Usage: ipivbench [OPTIONS]          run an IPI benchmark in a tiny KVM guest\n"
	"       ipivbench compare A.json B.json  the %%Reduction table of two runs, \"~\" when\n"
	"                                        a rank test finds no difference (p >= 0.05)\n"
	"       ipivbench check                  what this host's KVM offers\n"
	"\n"
	"Options:\n"
	"  -m, --mode PATTERN     IPI pattern (default x2apic-phys); --list shows all\n"
	"  -c, --cpu-mode MODE    guest CPU mode: real (default) or long\n"
	"  -t, --target MODE      spin: targets never halt (default); halt: HLT between IPIs\n"
	"  -n, --vcpus N          vCPUs, 2..%d (default 2); vCPU 0 sends\n"
	"  -r, --runs R           measured runs (default 20)\n"
	"  -k, --ipis K           IPIs per run (default 1000)\n"
	"  -w, --warmup W         runs before the measured ones, not reported (default 1)\n"
	"      --pin[=CPUS]       pin vCPU i to CPU i (or to CPUS[i %% n], e.g. --pin=2,3)\n"
	"      --timeout SECS     fail when the guest makes no progress this long (default 10)\n"
	"      --name NAME        VM name shown by ipivd/ipivtop (default ipivbench-<pid>)\n"
	"      --uuid UUID        the VM's UUID, as ipivd reports it for joins (8-4-4-4-12 hex)\n"
	"      --json             print JSON instead of the table\n"
	"  -o, --output FILE      also write the JSON to FILE\n"
	"      --wait-for-go      create the VM, then run it on SIGUSR2\n"
	"      --hold SECS|inf    keep the VM after the runs (until SIGINT/SIGTERM for inf)\n"
	"      --list             list IPI patterns\n"
	"  -h, --help             this text\n"
	"  -V, --version          version\n";

static const char *const pattern_help[BENCH_PATTERN_COUNT] = {
	[BENCH_X2APIC_PHYS] = "x2APIC physical unicast (WRMSR 0x830): IPIv/AVIC-eligible",
	[BENCH_X2APIC_LOGICAL] = "x2APIC cluster-mode unicast: never virtualized by IPIv",
	[BENCH_X2APIC_MULTICAST] = "x2APIC cluster-mode multicast to the odd vCPUs of cluster 0",
	[BENCH_X2APIC_BROADCAST] = "x2APIC all-but-self shorthand",
	[BENCH_X2APIC_SELF] = "x2APIC SELF IPI register (MSR 0x83f)",
	[BENCH_XAPIC_PHYS] = "xAPIC MMIO physical unicast: IPIv/AVIC-eligible",
	[BENCH_XAPIC_LOGICAL] = "xAPIC MMIO flat-logical unicast (vCPUs 1..7)",
	[BENCH_XAPIC_BROADCAST] = "xAPIC MMIO all-but-self shorthand",
	[BENCH_NMI] = "x2APIC physical unicast with NMI delivery mode",
	[BENCH_PV_SEND_IPI] = "KVM PV send-IPI hypercall (KVM_HC_SEND_IPI)",
};

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "ipivbench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see ipivbench --help)\n");
	exit(EXIT_USAGE);
}

static unsigned parse_uint(const char *s, const char *what, unsigned min, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || v < min || v > max) {
		fprintf(stderr, "ipivbench: %s must be a whole number from %u to %u, not '%s'\n",
			what, min, max, s);
		exit(EXIT_USAGE);
	}
	return v;
}

static void parse_pin(struct bench_config *cfg, const char *list)
{
	cpu_set_t allowed;
	char *copy, *tok, *save;

	cfg->pin = true;
	cfg->n_pin_cpus = 0;
	if (!list) {
		/* vCPU i on the i-th CPU this process may run on */
		if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0) {
			fprintf(stderr, "ipivbench: cannot read the CPU affinity: %s\n",
				strerror(errno));
			exit(EXIT_RUNTIME);
		}
		for (int c = 0; c < CPU_SETSIZE && cfg->n_pin_cpus < BENCH_MAX_VCPUS; c++)
			if (CPU_ISSET(c, &allowed))
				cfg->pin_cpus[cfg->n_pin_cpus++] = c;
		return;
	}
	copy = strdup(list);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (cfg->n_pin_cpus == BENCH_MAX_VCPUS)
			die_usage("--pin lists more than 64 CPUs: '%s'", list);
		cfg->pin_cpus[cfg->n_pin_cpus++] =
			parse_uint(tok, "a --pin CPU", 0, CPU_SETSIZE - 1);
	}
	free(copy);
	if (!cfg->n_pin_cpus)
		die_usage("--pin needs a list of CPUs such as 0,1, not '%s'", list);
}

static void print_result(const struct bench_result *res, void *arg)
{
	const char *const *out = arg; /* [0] = "json" or NULL, [1] = output file or NULL */

	int r = out[0] ? bench_report_json(stdout, res) : bench_report_table(stdout, res);

	if (r < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "ipivbench: cannot print the results: %s\n",
			strerror(r < 0 ? -r : errno));
		exit(EXIT_RUNTIME);
	}
	if (out[1]) {
		FILE *f = fopen(out[1], "w");

		int r = f ? bench_report_json(f, res) : -errno;

		if (f && fclose(f) != 0 && !r)
			r = -errno;
		if (r < 0) {
			fprintf(stderr, "ipivbench: cannot write %s: %s\n", out[1], strerror(-r));
			exit(EXIT_RUNTIME);
		}
	}
}

/* Says at once, not after the whole benchmark, that the results could not be written. */
static void check_writable(const char *path)
{
	char *copy = strdup(path);
	const char *dir = copy ? dirname(copy) : ".";
	int err = 0;

	if (access(path, F_OK) == 0 ? access(path, W_OK) : access(dir, W_OK))
		err = errno;
	free(copy);
	if (err) {
		fprintf(stderr, "ipivbench: cannot write %s: %s\n", path, strerror(err));
		exit(EXIT_RUNTIME);
	}
}

static int cmd_compare(int argc, char **argv)
{
	struct bench_result *a, *b;
	char err[512];
	int r;

	if (argc != 3) {
		fprintf(stderr, "ipivbench: compare takes exactly two JSON files "
				"(ipivbench compare A.json B.json)\n");
		return EXIT_USAGE;
	}
	a = calloc(1, sizeof(*a));
	b = calloc(1, sizeof(*b));
	if (bench_result_from_json(argv[1], a, err, sizeof(err)) < 0 ||
	    bench_result_from_json(argv[2], b, err, sizeof(err)) < 0) {
		fprintf(stderr, "ipivbench: %s\n", err);
		r = EXIT_RUNTIME;
	} else if (bench_compare(stdout, a, b, err, sizeof(err)) < 0) {
		fprintf(stderr, "ipivbench: %s\n", err);
		r = EXIT_RUNTIME;
	} else {
		r = 0;
	}
	free(a);
	free(b);
	return r;
}

static int cmd_check(void)
{
	struct bench_host host;
	unsigned max_vcpus;
	char err[512];

	memset(&host, 0, sizeof(host));
	bench_host_read("", &host);
	if (vmm_probe(&host, &max_vcpus, err, sizeof(err)) < 0) {
		fprintf(stderr, "ipivbench: %s\n", err);
		return EXIT_RUNTIME;
	}
	printf("cpu:         %s %s\n", host.cpu_vendor, host.cpu_model);
	printf("kernel:      %s\n", host.kernel);
	printf("kvm module:  %s\n", host.kvm_module[0] ? host.kvm_module : "(unknown)");
	for (unsigned i = 0; i < host.n_params; i++)
		printf("  %s=%s\n", host.params[i].name, host.params[i].value);
	printf("max vCPUs:   %u\n", max_vcpus);
	printf("x2APIC:      %s\n", host.x2apic ? "offered" : "not offered");
	printf("PV send-IPI: %s\n", host.pv_send_ipi ? "offered" : "not offered");
	return 0;
}

/* A UUID in its canonical form, as QEMU's -uuid takes it. */
static bool is_uuid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (i >= 36 || (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])))
			return false;
	}
	return i == 36;
}

int main(int argc, char **argv)
{
	enum {
		OPT_PIN = 256,
		OPT_TIMEOUT,
		OPT_NAME,
		OPT_UUID,
		OPT_JSON,
		OPT_GO,
		OPT_HOLD,
		OPT_LIST
	};
	static const struct option longopts[] = {
		{"mode", required_argument, NULL, 'm'},
		{"cpu-mode", required_argument, NULL, 'c'},
		{"target", required_argument, NULL, 't'},
		{"vcpus", required_argument, NULL, 'n'},
		{"runs", required_argument, NULL, 'r'},
		{"ipis", required_argument, NULL, 'k'},
		{"warmup", required_argument, NULL, 'w'},
		{"pin", optional_argument, NULL, OPT_PIN},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"name", required_argument, NULL, OPT_NAME},
		{"uuid", required_argument, NULL, OPT_UUID},
		{"json", no_argument, NULL, OPT_JSON},
		{"output", required_argument, NULL, 'o'},
		{"wait-for-go", no_argument, NULL, OPT_GO},
		{"hold", required_argument, NULL, OPT_HOLD},
		{"list", no_argument, NULL, OPT_LIST},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	static struct bench_result res;
	struct bench_config *cfg = &res.config;
	struct vmm_opts opts = {0};
	const char *out[2] = {NULL, NULL};
	char err[512];
	int c;

	if (argc > 1 && !strcmp(argv[1], "compare"))
		return cmd_compare(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "check"))
		return cmd_check();

	cfg->pattern = BENCH_X2APIC_PHYS;
	cfg->cpu_mode = BENCH_CPU_REAL;
	cfg->target = BENCH_TARGET_SPIN;
	cfg->vcpus = 2;
	cfg->runs = 20;
	cfg->ipis = 1000;
	cfg->warmup = 1;
	cfg->timeout_s = 10;
	snprintf(cfg->name, sizeof(cfg->name), "ipivbench-%d", (int)getpid());

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:c:t:n:r:k:w:o:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (bench_pattern_parse(optarg, &cfg->pattern) < 0)
				die_usage("unknown IPI pattern '%s' (ipivbench --list shows them)",
					  optarg);
			break;
		case 'c':
			if (bench_cpu_mode_parse(optarg, &cfg->cpu_mode) < 0)
				die_usage("unknown CPU mode '%s': use real or long", optarg);
			break;
		case 't':
			if (bench_target_parse(optarg, &cfg->target) < 0)
				die_usage("unknown target mode '%s': use spin or halt", optarg);
			break;
		case 'n': cfg->vcpus = parse_uint(optarg, "--vcpus", 2, BENCH_MAX_VCPUS); break;
		case 'r': cfg->runs = parse_uint(optarg, "--runs", 1, BENCH_MAX_RUNS); break;
		case 'k': cfg->ipis = parse_uint(optarg, "--ipis", 1, 100000000); break;
		case 'w': cfg->warmup = parse_uint(optarg, "--warmup", 0, 20); break;
		case OPT_PIN: parse_pin(cfg, optarg); break;
		case OPT_TIMEOUT: cfg->timeout_s = parse_uint(optarg, "--timeout", 1, 3600); break;
		case OPT_NAME:
			if (!*optarg || strlen(optarg) >= sizeof(cfg->name))
				die_usage("--name must be 1 to 63 characters: '%s'", optarg);
			snprintf(cfg->name, sizeof(cfg->name), "%s", optarg);
			break;
		case OPT_UUID:
			/* ipivd reads it from this process' command line; nothing else uses it */
			if (!is_uuid(optarg))
				die_usage("--uuid must be a UUID (8-4-4-4-12 hex digits): '%s'",
					  optarg);
			break;
		case OPT_JSON: out[0] = "json"; break;
		case 'o': out[1] = optarg; break;
		case OPT_GO: opts.wait_for_go = true; break;
		case OPT_HOLD:
			if (!strcmp(optarg, "inf"))
				opts.hold_seconds = -1;
			else
				opts.hold_seconds = parse_uint(optarg, "--hold", 0, 86400);
			break;
		case OPT_LIST:
			for (int p = 0; p < BENCH_PATTERN_COUNT; p++)
				printf("%-18s %s\n", bench_pattern_name(p), pattern_help[p]);
			return 0;
		case 'h': printf(usage_text, BENCH_MAX_VCPUS); return 0;
		case 'V': printf("ipivbench %s\n", IPIV_VERSION); return 0;
		case ':': die_usage("option '%s' needs a value", argv[optind - 1]); break;
		default: die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (cfg->pin && cfg->n_pin_cpus == 0)
		die_usage("--pin found no CPU to pin to%s", "");
	if (out[1])
		check_writable(out[1]);

	bench_host_read("", &res.host);
	opts.on_result = print_result;
	opts.on_result_arg = out;
	if (vmm_run(&res, &opts, err, sizeof(err)) < 0) {
		fprintf(stderr, "ipivbench: %s\n", err);
		return EXIT_RUNTIME;
	}
	return 0;
}
