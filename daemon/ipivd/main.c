/* ipivd: per-VM IPI accounting from KVM tracepoints, served to Prometheus and as JSON.
 * This file is flags, start-up and signals; the work is in daemon/ipivd/manager.c. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <bpf/libbpf.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <yaml.h>

#include "accel.h"
#include "diag.h"
#include "httpd.h"
#include "log.h"
#include "manager.h"
#include "privs.h"
#include "process.h"

#ifndef IPIV_VERSION
#define IPIV_VERSION "unknown"
#endif
#ifndef IPIV_REVISION
#define IPIV_REVISION "unknown"
#endif
#ifndef IPIV_BUILD_DATE
#define IPIV_BUILD_DATE "unknown"
#endif
#ifndef IPIV_BRANCH
#define IPIV_BRANCH "unknown"
#endif
#ifndef IPIV_BUILD_USER
#define IPIV_BUILD_USER "unknown"
#endif
#if defined(__clang__)
#define IPIV_CC_VERSION __VERSION__ /* "Debian Clang 14.0.6" */
#elif defined(__GNUC__)
#define IPIV_CC_VERSION "gcc " __VERSION__
#else
#define IPIV_CC_VERSION "unknown"
#endif

#define DEFAULT_LISTEN	       "127.0.0.1:9712"
#define MANAGER_MAX_LISTEN_STR "8"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* SIGHUP: re-read --web.config.file at the next connection, changed or not. */
static void on_hangup(int sig)
{
	(void)sig;
	httpd_web_config_reload();
}

static const char usage_text[] =
	"Usage: ipivd [OPTIONS]\n"
	"       ipivd diagnose [--vm NAME] [--json] [--window SECS] [--diag.NAME=VALUE...]\n"
	"Counts the IPIs of every KVM VM on this host from KVM's tracepoints and serves them\n"
	"to Prometheus (/metrics) and as JSON (/api/v1/vms, /api/v1/vms/<name>, /api/v1/status).\n"
	"\n"
	"  --web.listen-address ADDR    host:port, [v6]:port or :port (default " DEFAULT_LISTEN
	");\n"
	"                               repeat it to listen on several addresses\n"
	"  --web.telemetry-path PATH    path of the metrics (default /metrics)\n"
	"  --web.config.file FILE       TLS and basic auth, in exporter-toolkit's YAML format;\n"
	"                               re-read when it changes and on SIGHUP\n"
	"  --web.max-connections N      open HTTP connections in total (default 512); one more\n"
	"                               closes the one that waited longest for its request\n"
	"  --web.max-connections-per-ip N  from one client address (default 32)\n"
	"  --web.read-timeout SECS      a request must arrive whole within this, or its\n"
	"                               connection is closed; also the idle timeout (default 10)\n"
	"  --web.write-timeout SECS     a response must be taken whole within this of its\n"
	"                               request, or its connection is closed (default 30)\n"
	"  --web.workers N              HTTP worker threads (default 4)\n"
	"  --collector.per-vcpu         also export per-vCPU series and the vCPU matrix;\n"
	"                               implies --collector.vm-histograms=all\n"
	"  --collector.vm-histograms WHICH\n"
	"                               the latency histograms a VM's series carry: eoi (only\n"
	"                               ipiv_ipi_send_to_eoi_seconds, per path) or all (the five\n"
	"                               families; the JSON API has them all but send_to_accept,\n"
	"                               recorded with all only: a clock read per accept)\n"
	"                               (default eoi)\n"
	"  --collector.latency-buckets LAYOUT\n"
	"                               the latency histograms' buckets in /metrics, the same\n"
	"                               on every series: coarse (10, a power of 4 apart, 1 us\n"
	"                               to 268 ms), octave (29, to 17 s) or fine (449)\n"
	"                               (default coarse)\n"
	"  --collector.poll-interval MS VM discovery and reclaim interval (default 1000)\n"
	"  --collector.msr-facts FILE   take the VMX capability MSRs from FILE, written by\n"
	"                               --dump-msr-facts, instead of /dev/cpu/0/msr\n"
	"  --collector.exited-retention SECS\n"
	"                               keep an exited VM's final series this long (default 60;\n"
	"                               0: drop them when it is reclaimed)\n"
	"  --no-bpf-stats               leave kernel.bpf_stats_enabled alone (no BPF run time)\n"
	"  --no-latency                 count only: no latency histograms (cheaper per event)\n"
	"  --diag.window SECS           findings are evaluated over this window (default 30)\n"
	"  --diag.NAME=VALUE            a diagnosis threshold (see below)\n"
	"  --log.level LEVEL            debug, info, warn or error (default info)\n"
	"  --log.format FORMAT          logfmt or json (default logfmt)\n"
	"  --capabilities.keep CAPS     after start-up keep these capabilities too (CAP_X,CAP_Y\n"
	"                               or all; default: only what this kernel needs)\n"
	"  --check                      load and attach, report what works, exit 0 or 1\n"
	"  --dump-msr-facts FILE        read /dev/cpu/0/msr (needs CAP_SYS_RAWIO), write what it\n"
	"                               gave to FILE (- for stdout) for --collector.msr-facts,\n"
	"                               exit\n"
	"  -V, --version                print the version and what it was built with\n"
	"  -h, --help                   this text\n"
	"\n"
	"diagnose: attach, watch every VM for --window seconds (default 10), and print why IPI\n"
	"acceleration underperforms (host state, findings with evidence and remedies).\n"
	"\n"
	"Diagnosis thresholds:\n";

#define usage_error(...) ipiv_usage_error("ipivd", __VA_ARGS__)

static unsigned parse_seconds(const char *arg, const char *flag)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (*end || errno || arg[0] == '-' || !arg[0] || v < 1 || v > 86400)
		usage_error("%s must be 1..86400 seconds", flag);
	return v;
}

/* A count flag, 1..max; exits with one line naming the flag otherwise. */
static unsigned parse_count(const char *arg, const char *flag, unsigned long max)
{
	char *end, msg[160];
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (*end || errno || arg[0] == '-' || !arg[0] || v < 1 || v > max) {
		snprintf(msg, sizeof(msg), "%s must be 1..%lu, not '%.40s'", flag, max, arg);
		usage_error("%s", msg);
	}
	return v;
}

/* A test-only root directory: it must exist, or ipivd would watch an empty host silently. */
static const char *must_be_dir(const char *path, const char *flag)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		usage_error(flag[2] == 'p' ? "--proc-root '%s' is not a directory"
					   : "--sys-root '%s' is not a directory",
			    path);
	return path;
}

/* Prometheus' style (common/version): name, version, branch, revision, who built it when,
 * with what (the compiler where Go's says its go version; then the libraries), platform. */
static void print_version(void)
{
	struct utsname u;

	printf("ipivd, version %s (branch: %s, revision: %s)\n", IPIV_VERSION, IPIV_BRANCH,
	       IPIV_REVISION);
	printf("  build user:    %s\n", IPIV_BUILD_USER);
	printf("  build date:    %s\n", IPIV_BUILD_DATE);
	printf("  cc version:    %s\n", IPIV_CC_VERSION);
	printf("  libbpf:        %s\n", libbpf_version_string());
	printf("  libmicrohttpd: %s\n", MHD_get_version());
	printf("  gnutls:        %s\n", gnutls_check_version(NULL));
	printf("  libyaml:       %s\n", yaml_get_version_string());
	printf("  platform:      %s/%s\n", "linux", uname(&u) == 0 ? u.machine : "unknown");
}

/*
 * --dump-msr-facts: the unit's privileged ExecStartPre step. The file is replaced in one
 * rename and readable by all (the values are the CPU's, /proc/cpuinfo shows as much), so the
 * daemon's transient user can read what root wrote whatever the unit's UMask=.
 */
static int dump_msr(const char *root, const char *path)
{
	char tmp_path[4096];
	FILE *f;
	int fd, r;

	if (!strcmp(path, "-"))
		return accel_msr_dump(root, stdout) ? 1 : 0;
	if (snprintf(tmp_path, sizeof(tmp_path), "%s.new", path) >= (int)sizeof(tmp_path)) {
		log_error("ipivd", "--dump-msr-facts: file name too long");
		return 1;
	}
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || fchmod(fd, 0644) || !(f = fdopen(fd, "w"))) {
		log_error("ipivd", "--dump-msr-facts: cannot write %s: %s", tmp_path,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp_path);
		return 1;
	}
	r = accel_msr_dump(root, f);
	if (fclose(f) && !r)
		r = -errno;
	if (!r && rename(tmp_path, path))
		r = -errno;
	if (r) {
		log_error("ipivd", "--dump-msr-facts: cannot write %s: %s", path, strerror(-r));
		unlink(tmp_path);
		return 1;
	}
	return 0;
}

/* The start-up report (probes attached, degraded or not) as log lines. */
static void log_report(struct manager *m)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	manager_report(m, f);
	fclose(f);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool bad = strstr(line, "REQUIRED") || strstr(line, "degraded");

		if (!strncmp(line, "ipivd: ", 7))
			line += 7;
		ipiv_log(bad ? IPIV_LOG_WARN : IPIV_LOG_INFO, "collector", "%s", line);
	}
	free(buf);
}

/*
 * glibc's defaults suit ipivd badly: each HTTP worker thread gets an arena of its own, and
 * after a large response is freed the mmap threshold rises to its size, so every later body
 * and snapshot comes from the arenas and stays held (at 512 VMs, 24-38 MiB per worker and
 * 156 MiB in all, for ~40 MiB in use). Two arenas, and blocks of 128 KiB or more always
 * mmapped (a fixed threshold does not rise), hand a scrape's memory back when it is freed.
 */
static void limit_heap(void)
{
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

int main(int argc, char **argv)
{
	enum {
		OPT_LISTEN = 256,
		OPT_PATH,
		OPT_PER_VCPU,
		OPT_POLL,
		OPT_NO_STATS,
		OPT_CHECK,
		OPT_VERSION,
		OPT_HELP,
		OPT_PROC,
		OPT_SYS,
		OPT_DIAG_WINDOW,
		OPT_VM,
		OPT_JSON,
		OPT_WINDOW,
		OPT_NO_LATENCY,
		OPT_RETENTION,
		OPT_MAX_CONNS,
		OPT_MAX_CONNS_IP,
		OPT_READ_TIMEOUT,
		OPT_WRITE_TIMEOUT,
		OPT_WORKERS,
		OPT_LOG_LEVEL,
		OPT_LAT_BUCKETS,
		OPT_LOG_FORMAT,
		OPT_CAPS_KEEP,
		OPT_WEB_CONFIG,
		OPT_VM_HISTOGRAMS,
		OPT_MSR_FACTS,
		OPT_DUMP_MSR_FACTS,
	};
	static const struct option longopts[] = {
		{"web.listen-address", required_argument, NULL, OPT_LISTEN},
		{"web.telemetry-path", required_argument, NULL, OPT_PATH},
		{"web.config.file", required_argument, NULL, OPT_WEB_CONFIG},
		{"web.max-connections", required_argument, NULL, OPT_MAX_CONNS},
		{"web.max-connections-per-ip", required_argument, NULL, OPT_MAX_CONNS_IP},
		{"web.read-timeout", required_argument, NULL, OPT_READ_TIMEOUT},
		{"web.write-timeout", required_argument, NULL, OPT_WRITE_TIMEOUT},
		{"web.workers", required_argument, NULL, OPT_WORKERS},
		{"collector.per-vcpu", no_argument, NULL, OPT_PER_VCPU},
		{"collector.latency-buckets", required_argument, NULL, OPT_LAT_BUCKETS},
		{"collector.vm-histograms", required_argument, NULL, OPT_VM_HISTOGRAMS},
		{"collector.poll-interval", required_argument, NULL, OPT_POLL},
		{"collector.exited-retention", required_argument, NULL, OPT_RETENTION},
		{"collector.msr-facts", required_argument, NULL, OPT_MSR_FACTS},
		{"dump-msr-facts", required_argument, NULL, OPT_DUMP_MSR_FACTS},
		{"no-bpf-stats", no_argument, NULL, OPT_NO_STATS},
		{"no-latency", no_argument, NULL, OPT_NO_LATENCY},
		{"log.level", required_argument, NULL, OPT_LOG_LEVEL},
		{"log.format", required_argument, NULL, OPT_LOG_FORMAT},
		{"capabilities.keep", required_argument, NULL, OPT_CAPS_KEEP},
		{"check", no_argument, NULL, OPT_CHECK},
		{"version", no_argument, NULL, OPT_VERSION},
		{"help", no_argument, NULL, OPT_HELP},
		{"proc-root", required_argument, NULL, OPT_PROC}, /* tests */
		{"sys-root", required_argument, NULL, OPT_SYS},	  /* tests */
		{"diag.window", required_argument, NULL, OPT_DIAG_WINDOW},
		{"vm", required_argument, NULL, OPT_VM},	 /* diagnose */
		{"json", no_argument, NULL, OPT_JSON},		 /* diagnose */
		{"window", required_argument, NULL, OPT_WINDOW}, /* diagnose */
		{0},
	};
	struct manager_opts opts = {
		.telemetry_path = "/metrics",
		.proc_root = "/proc",
		.bpf_stats = true,
		.poll_ms = 1000,
		.exited_retention_s = 60,
		.http_limits =
			{
				.max_connections = HTTPD_DEFAULT_MAX_CONNECTIONS,
				.max_connections_per_ip = HTTPD_DEFAULT_MAX_CONNECTIONS_PER_IP,
				.read_timeout_s = HTTPD_DEFAULT_READ_TIMEOUT_S,
				.write_timeout_s = HTTPD_DEFAULT_WRITE_TIMEOUT_S,
				.workers = HTTPD_DEFAULT_WORKERS,
			},
		.diag_ms = 30000,
		.sys_root = "",
		.version = IPIV_VERSION,
	};
	struct httpd_limits *http_limits = &opts.http_limits;
	bool per_ip_given = false;
	struct sigaction sa = {.sa_handler = on_signal};
	struct manager *m;
	bool check = false, diagnose = false, json = false;
	const char *vm = NULL;
	unsigned window = 10;
	char *end, err[256];
	uint64_t keep_caps = 0; /* --capabilities.keep */
	const char *web_config = NULL;
	const char *msr_facts = NULL, *dump_msr_facts = NULL;
	int c, r;

	limit_heap();
	/* ipivd's lines are log lines (logfmt unless --log.format says otherwise) from here on,
	 * the collector's too; a usage error while the flags are parsed stays plain text */
	ipiv_log_set_format("logfmt");
	diag_thresholds_default(&opts.thresholds);
	if (argc > 1 && !strcmp(argv[1], "diagnose")) {
		diagnose = true;
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			for (size_t i = 0; i < opts.n_listen; i++)
				if (!strcmp(opts.listen_addresses[i], optarg))
					usage_error("--web.listen-address %s is given twice",
						    optarg);
			if (opts.n_listen == MANAGER_MAX_LISTEN)
				usage_error("--web.listen-address: at most %s addresses",
					    MANAGER_MAX_LISTEN_STR);
			opts.listen_addresses[opts.n_listen++] = optarg;
			break;
		case OPT_LAT_BUCKETS:
			if (latency_layout_parse(optarg, &opts.latency_buckets))
				usage_error("--collector.latency-buckets must be coarse, octave or "
					    "fine, not '%s'",
					    optarg);
			break;
		case OPT_VM_HISTOGRAMS:
			if (metrics_vm_histograms_parse(optarg, &opts.vm_histograms))
				usage_error("--collector.vm-histograms must be eoi or all, "
					    "not '%s'",
					    optarg);
			break;
		case OPT_LOG_LEVEL:
			if (ipiv_log_set_level(optarg))
				usage_error("--log.level must be debug, info, warn or error, "
					    "not '%s'",
					    optarg);
			break;
		case OPT_LOG_FORMAT:
			if (ipiv_log_set_format(optarg))
				usage_error("--log.format must be logfmt or json, not '%s'",
					    optarg);
			break;
		case OPT_WEB_CONFIG:
			if (!optarg[0])
				usage_error("%s", "--web.config.file needs a file name");
			web_config = optarg;
			break;
		case OPT_PATH:
			if (optarg[0] != '/' || optarg[1] == '\0' || !strncmp(optarg, "/api/", 5))
				usage_error("--web.telemetry-path must be a path like /metrics, "
					    "not '%s'",
					    optarg);
			opts.telemetry_path = optarg;
			break;
		case OPT_MAX_CONNS:
			http_limits->max_connections =
				parse_count(optarg, "--web.max-connections", 65536);
			break;
		case OPT_MAX_CONNS_IP:
			http_limits->max_connections_per_ip =
				parse_count(optarg, "--web.max-connections-per-ip", 65536);
			per_ip_given = true;
			break;
		case OPT_READ_TIMEOUT:
			http_limits->read_timeout_s = parse_seconds(optarg, "--web.read-timeout");
			break;
		case OPT_WRITE_TIMEOUT:
			http_limits->write_timeout_s = parse_seconds(optarg, "--web.write-timeout");
			break;
		case OPT_WORKERS:
			http_limits->workers = parse_count(optarg, "--web.workers", 64);
			break;
		case OPT_PER_VCPU:
			opts.per_vcpu = true;
			opts.per_vcpu_latency = true;
			break;
		case OPT_POLL:
			errno = 0;
			opts.poll_ms = strtoul(optarg, &end, 10);
			if (*end || errno || opts.poll_ms < 50 || opts.poll_ms > 600000 ||
			    optarg[0] == '-')
				usage_error("--collector.poll-interval must be 50..600000 ms, "
					    "not '%s'",
					    optarg);
			break;
		case OPT_NO_STATS: opts.bpf_stats = false; break;
		case OPT_NO_LATENCY: opts.no_latency = true; break;
		case OPT_CAPS_KEEP:
			if (privs_parse_caps(optarg, &keep_caps, err, sizeof(err)))
				usage_error("%s", err);
			break;
		case OPT_CHECK: check = true; break;
		case OPT_MSR_FACTS:
			if (!optarg[0])
				usage_error("%s", "--collector.msr-facts needs a file name");
			msr_facts = optarg;
			break;
		case OPT_DUMP_MSR_FACTS:
			if (!optarg[0])
				usage_error("%s",
					    "--dump-msr-facts needs a file name (- for stdout)");
			dump_msr_facts = optarg;
			break;
		case 'V':
		case OPT_VERSION: print_version(); return 0;
		case 'h':
		case OPT_HELP:
			fputs(usage_text, stdout);
			diag_thresholds_usage(stdout);
			return 0;
		case OPT_PROC: opts.proc_root = must_be_dir(optarg, "--proc-root"); break;
		case OPT_SYS: opts.sys_root = must_be_dir(optarg, "--sys-root"); break;
		case OPT_RETENTION:
			errno = 0;
			opts.exited_retention_s = strtoul(optarg, &end, 10);
			if (*end || errno || !optarg[0] || optarg[0] == '-' ||
			    opts.exited_retention_s > 86400)
				usage_error(
					"--collector.exited-retention must be 0..86400 seconds, "
					"not '%s'",
					optarg);
			break;
		case OPT_DIAG_WINDOW:
			opts.diag_ms = parse_seconds(optarg, "--diag.window") * 1000;
			break;
		case OPT_VM: vm = optarg; break;
		case OPT_JSON: json = true; break;
		case OPT_WINDOW: window = parse_seconds(optarg, "--window"); break;
		case '?':
			/* --diag.<threshold>=value: the table in diag.c knows the names */
			if (!strncmp(argv[optind - 1], "--diag.", 7)) {
				if (diag_threshold_parse(&opts.thresholds, argv[optind - 1], err,
							 sizeof(err)) < 0) {
					fprintf(stderr, "ipivd: %s\n", err);
					return 2;
				}
				break;
			}
			usage_error("unknown option '%s'", argv[optind - 1]);
			break;
		case ':': usage_error("option '%s' needs a value", argv[optind - 1]); break;
		default: usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!opts.n_listen)
		opts.listen_addresses[opts.n_listen++] = DEFAULT_LISTEN;

	if (http_limits->max_connections_per_ip > http_limits->max_connections) {
		/* A smaller total alone lowers the per-address default with it. */
		if (per_ip_given) {
			snprintf(err, sizeof(err),
				 "--web.max-connections-per-ip %u exceeds "
				 "--web.max-connections %u",
				 http_limits->max_connections_per_ip, http_limits->max_connections);
			usage_error("%s", err);
		}
		http_limits->max_connections_per_ip = http_limits->max_connections;
	}

	if (dump_msr_facts)
		return dump_msr(opts.sys_root, dump_msr_facts);
	/* Read before anything starts (as root, or before the unit's sandbox); a bad file is a
	 * usage error, said in one log line. */
	if (msr_facts) {
		char msr_err[512];

		if (accel_msr_load(opts.sys_root, msr_facts, msr_err, sizeof(msr_err))) {
			log_error("ipivd", "--collector.msr-facts: %s", msr_err);
			return 2;
		}
	}

	if (web_config) {
		char web_err[768];

		if (httpd_web_config_load(web_config, web_err, sizeof(web_err))) {
			log_error("ipivd", "web config: %s", web_err);
			return 2;
		}
	}

	if ((vm || json || window != 10) && !diagnose)
		usage_error("%s only goes with 'ipivd diagnose'", vm	 ? "--vm"
								  : json ? "--json"
									 : "--window");
	if (diagnose) {
		opts.n_listen = 0;
		if (manager_start(&m, &opts))
			return 1;
		r = manager_diagnose(m, window, vm, json, stdout);
		manager_free(m);
		if (r == -ENOENT) {
			log_error("diag", "no VM named '%s' on this host", vm);
			return 1;
		}
		if (r) {
			log_error("diag", "diagnosis failed: %s", strerror(-r));
			return 1;
		}
		return 0;
	}
	if (check) {
		opts.n_listen = 0;
		r = manager_start(&m, &opts);
		if (r)
			return 1;
		r = manager_report(m, stdout) ? 0 : 1;
		manager_free(m);
		return r;
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hangup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	process_metrics_enable("/proc");
	accel_msr_preload(opts.sys_root); /* MSRs need CAP_SYS_RAWIO, dropped below */
	r = manager_start(&m, &opts);
	if (r)
		return 1;
	if (privs_drop(keep_caps)) {
		manager_free(m);
		return 1;
	}
	log_report(m);
	for (size_t i = 0; i < opts.n_listen; i++)
		log_info("ipivd", "ipivd %s: serving %s://%s%s", IPIV_VERSION,
			 httpd_web_config_tls() ? "https" : "http", opts.listen_addresses[i],
			 opts.telemetry_path);
	manager_run(m, &stop);
	manager_free(m);
	log_info("ipivd", "stopped, all probes detached");
	return 0;
}
