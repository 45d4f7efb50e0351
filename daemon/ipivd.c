/* ipivd: per-VM IPI accounting from KVM tracepoints, served to Prometheus and as JSON.
 * This file is flags, start-up and signals; the work is in daemon/lib/manager.c. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"

#ifndef IPIV_VERSION
#define IPIV_VERSION "unknown"
#endif

#define DEFAULT_LISTEN "127.0.0.1:9712"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static const char usage_text[] =
	"Usage: ipivd [OPTIONS]\n"
	"Counts the IPIs of every KVM VM on this host from KVM's tracepoints and serves them\n"
	"to Prometheus (/metrics) and as JSON (/api/v1/vms, /api/v1/vms/<name>, /api/v1/status).\n"
	"\n"
	"  --web.listen-address ADDR    host:port, [v6]:port or :port (default " DEFAULT_LISTEN ")\n"
	"  --web.telemetry-path PATH    path of the metrics (default /metrics)\n"
	"  --collector.per-vcpu         also export per-vCPU series and the vCPU matrix\n"
	"  --collector.poll-interval MS VM discovery and reclaim interval (default 1000)\n"
	"  --no-bpf-stats               leave kernel.bpf_stats_enabled alone (no BPF run time)\n"
	"  --check                      load and attach, report what works, exit 0 or 1\n"
	"  --version                    print the version\n"
	"  --help                       this text\n";

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "ipivd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see ipivd --help)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	enum { OPT_LISTEN = 256, OPT_PATH, OPT_PER_VCPU, OPT_POLL, OPT_NO_STATS, OPT_CHECK,
	       OPT_VERSION, OPT_HELP, OPT_PROC };
	static const struct option longopts[] = {
		{ "web.listen-address", required_argument, NULL, OPT_LISTEN },
		{ "web.telemetry-path", required_argument, NULL, OPT_PATH },
		{ "collector.per-vcpu", no_argument, NULL, OPT_PER_VCPU },
		{ "collector.poll-interval", required_argument, NULL, OPT_POLL },
		{ "no-bpf-stats", no_argument, NULL, OPT_NO_STATS },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "proc-root", required_argument, NULL, OPT_PROC },	/* tests */
		{ 0 },
	};
	struct manager_opts opts = {
		.listen_address = DEFAULT_LISTEN,
		.telemetry_path = "/metrics",
		.proc_root = "/proc",
		.bpf_stats = true,
		.poll_ms = 1000,
		.version = IPIV_VERSION,
	};
	struct sigaction sa = { .sa_handler = on_signal };
	struct manager *m;
	bool check = false;
	char *end;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			opts.listen_address = optarg;
			break;
		case OPT_PATH:
			if (optarg[0] != '/' || optarg[1] == '\0' || !strncmp(optarg, "/api/", 5))
				usage_error("--web.telemetry-path must be a path like /metrics, "
					    "not '%s'", optarg);
			opts.telemetry_path = optarg;
			break;
		case OPT_PER_VCPU:
			opts.per_vcpu = true;
			break;
		case OPT_POLL:
			errno = 0;
			opts.poll_ms = strtoul(optarg, &end, 10);
			if (*end || errno || opts.poll_ms < 50 || opts.poll_ms > 600000 ||
			    optarg[0] == '-')
				usage_error("--collector.poll-interval must be 50..600000 ms, "
					    "not '%s'", optarg);
			break;
		case OPT_NO_STATS:
			opts.bpf_stats = false;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case OPT_VERSION:
			printf("ipivd %s\n", IPIV_VERSION);
			return 0;
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 0;
		case OPT_PROC:
			opts.proc_root = optarg;
			break;
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);

	if (check) {
		opts.listen_address = NULL;
		r = manager_start(&m, &opts);
		if (r)
			return 1;
		r = manager_report(m, stdout) ? 0 : 1;
		manager_free(m);
		return r;
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	r = manager_start(&m, &opts);
	if (r)
		return 1;
	manager_report(m, stderr);
	fprintf(stderr, "ipivd %s: serving http://%s%s\n", IPIV_VERSION, opts.listen_address,
		opts.telemetry_path);
	manager_run(m, &stop);
	manager_free(m);
	fprintf(stderr, "ipivd: stopped, all probes detached\n");
	return 0;
}
