/* process_* metrics: the families Prometheus' client libraries export for the process that
 * serves them, with their names, types and units, read from /proc/self. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "process.h"

static const char *enabled_root; /* process_metrics_enable: set once before serving */

static int read_text(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/* Boot time, for the start time: /proc/stat's btime line. */
static int read_boot_time(const char *proc_root, uint64_t *btime)
{
	char path[4096], line[256];
	FILE *f;
	int r = -EINVAL;

	snprintf(path, sizeof(path), "%s/stat", proc_root);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %" SCNu64, btime) == 1) {
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

static int count_fds(const char *proc_root, uint64_t *n)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/self/fd", proc_root);
	d = opendir(path);
	if (!d)
		return -errno;
	*n = 0;
	while ((de = readdir(d)))
		*n += de->d_name[0] != '.';
	closedir(d);
	if (*n)
		(*n)--; /* the directory stream's own descriptor */
	return 0;
}

/* "Max open files  <soft>  <hard>  files": the soft limit, as the client libraries report. */
static int read_max_fds(const char *proc_root, struct process_stats *out)
{
	char path[4096], line[256], soft[32];
	FILE *f;
	int r = -EINVAL;

	snprintf(path, sizeof(path), "%s/self/limits", proc_root);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Max open files", 14))
			continue;
		if (sscanf(line + 14, "%31s", soft) != 1)
			break;
		r = 0;
		if (!strcmp(soft, "unlimited"))
			out->have_max_fds = false;
		else if (sscanf(soft, "%" SCNu64, &out->max_fds) == 1)
			out->have_max_fds = true;
		else
			r = -EINVAL;
		break;
	}
	fclose(f);
	return r;
}

int process_read(const char *proc_root, long ticks_per_second, long page_size,
		 struct process_stats *out)
{
	char path[4096], buf[2048], *p;
	unsigned long long utime, stime, start_ticks, vsize;
	long long rss;
	uint64_t btime;
	int r;

	if (ticks_per_second <= 0 || page_size <= 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/self/stat", proc_root);
	r = read_text(path, buf, sizeof(buf));
	if (r)
		return r;
	/* The command name may hold spaces and parentheses: the fields start after the last
	 * ')'. Then: state(3) ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24). */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1,
			 " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
			 "%*d %*d %llu %llu %lld",
			 &utime, &stime, &start_ticks, &vsize, &rss) != 5)
		return -EINVAL;
	r = read_boot_time(proc_root, &btime);
	if (r)
		return r;
	out->cpu_seconds = (double)(utime + stime) / (double)ticks_per_second;
	out->start_time_seconds = (double)btime + (double)start_ticks / (double)ticks_per_second;
	out->virtual_bytes = vsize;
	out->resident_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page_size : 0;
	r = count_fds(proc_root, &out->open_fds);
	if (r)
		return r;
	return read_max_fds(proc_root, out);
}

void process_metrics_enable(const char *proc_root)
{
	enabled_root = proc_root;
}

int process_metrics_write(struct expo *e)
{
	struct process_stats ps;

	if (!enabled_root ||
	    process_read(enabled_root, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), &ps))
		return 0;
	EXPO_TRY(expo_begin(e, "process_cpu_seconds", EXPO_COUNTER,
			    "Total user and system CPU time spent in seconds."));
	EXPO_TRY(expo_counter_f(e, NULL, 0, ps.cpu_seconds));
	EXPO_TRY(expo_begin(e, "process_max_fds", EXPO_GAUGE,
			    "Maximum number of open file descriptors."));
	if (ps.have_max_fds)
		EXPO_TRY(expo_gauge(e, NULL, 0, (double)ps.max_fds));
	EXPO_TRY(expo_begin(e, "process_open_fds", EXPO_GAUGE, "Number of open file descriptors."));
	EXPO_TRY(expo_gauge(e, NULL, 0, (double)ps.open_fds));
	EXPO_TRY(expo_begin(e, "process_resident_memory_bytes", EXPO_GAUGE,
			    "Resident memory size in bytes."));
	EXPO_TRY(expo_gauge(e, NULL, 0, (double)ps.resident_bytes));
	EXPO_TRY(expo_begin(e, "process_start_time_seconds", EXPO_GAUGE,
			    "Start time of the process since unix epoch in seconds."));
	EXPO_TRY(expo_gauge(e, NULL, 0, ps.start_time_seconds));
	EXPO_TRY(expo_begin(e, "process_virtual_memory_bytes", EXPO_GAUGE,
			    "Virtual memory size in bytes."));
	EXPO_TRY(expo_gauge(e, NULL, 0, (double)ps.virtual_bytes));
	return 0;
}
