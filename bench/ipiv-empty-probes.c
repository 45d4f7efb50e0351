// SPDX-License-Identifier: GPL-2.0
/* Attaches bpf/empty.bpf.c's do-nothing programs to the collector's KVM tracepoints and
 * holds them until SIGINT/SIGTERM: the "empty programs" condition of bench/overhead.sh. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "empty.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct empty_bpf *skel;
	struct bpf_program *prog;
	int attached = 0, stats_fd, err;

	libbpf_set_print(quiet);
	skel = empty_bpf__open_and_load();
	if (!skel) {
		err = -errno;
		fprintf(stderr,
			"ipiv-empty-probes: loading the BPF object failed: %s (needs "
			"CAP_BPF and CAP_PERFMON)\n",
			strerror(-err));
		return 1;
	}
	/* attached one by one: a tracepoint this kernel lacks leaves the others running,
	 * as it does in ipivd, so both conditions cover the same set */
	bpf_object__for_each_program(prog, skel->obj)
	{
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "ipiv-empty-probes: %s: %s not attached: %s\n",
				bpf_program__name(prog), bpf_program__section_name(prog),
				strerror(errno));
			continue;
		}
		attached++;
	}
	/* ipivd turns run-time stats on the same way, so both pay the same clock reads */
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0)
		fprintf(stderr, "ipiv-empty-probes: kernel.bpf_stats_enabled not available: %s\n",
			strerror(errno));
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("ready: %d programs attached\n", attached);
	fflush(stdout);
	while (!stop)
		pause();
	if (stats_fd >= 0)
		close(stats_fd);
	empty_bpf__destroy(skel);
	return attached ? 0 : 1;
}
