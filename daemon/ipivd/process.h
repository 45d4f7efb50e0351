/* process_* metrics as Prometheus' client libraries export them (CPU, memory, descriptors,
 * start time), read from /proc for the process itself. */
#ifndef IPIV_PROCESS_H
#define IPIV_PROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "expo.h"

struct process_stats {
	double cpu_seconds;	   /* user + system */
	double start_time_seconds; /* since the Unix epoch */
	uint64_t virtual_bytes, resident_bytes;
	uint64_t open_fds;
	bool have_max_fds; /* "unlimited" has no number */
	uint64_t max_fds;
};

/*
 * Reads proc_root/self/stat, proc_root/self/fd, proc_root/self/limits and proc_root/stat
 * (btime). ticks_per_second and page_size convert /proc's units (sysconf's values; tests
 * pass their own). Returns 0 or a negative errno: -EINVAL for content that does not parse.
 */
int process_read(const char *proc_root, long ticks_per_second, long page_size,
		 struct process_stats *out);

/*
 * From now on, metrics_write() ends with the process_* families of this process, read from
 * proc_root ("/proc"). Off by default, so that a render of a hand-made snapshot (the golden
 * files) stays the same from run to run. Call once, before serving.
 */
void process_metrics_enable(const char *proc_root);

/* The process_* families, if enabled; a /proc that cannot be read leaves them out. */
int process_metrics_write(struct expo *e);

#endif
