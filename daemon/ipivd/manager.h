/* ipivd's manager: owns the collector, the VM-name cache and the HTTP endpoints, and runs
 * the discovery loop. main() only parses flags and handles signals. */
#ifndef IPIV_MANAGER_H
#define IPIV_MANAGER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "diag.h"
#include "httpd.h"
#include "latency.h"
#include "metrics.h"

struct manager;

#define MANAGER_MAX_LISTEN 8

struct manager_opts {
	/* --web.listen-address, repeatable: one HTTP server each (none: no HTTP) */
	const char *listen_addresses[MANAGER_MAX_LISTEN];
	size_t n_listen;
	const char *telemetry_path;	     /* --web.telemetry-path */
	struct httpd_limits http_limits;     /* --web.max-connections, ...; 0: the default */
	const char *proc_root;		     /* where /proc is (tests point it elsewhere) */
	bool per_vcpu;			     /* --collector.per-vcpu */
	enum latency_layout latency_buckets; /* --collector.latency-buckets */
	bool bpf_stats;			     /* keep kernel.bpf_stats_enabled on */
	bool no_latency;		     /* --no-latency: counting only */
	bool per_vcpu_latency;		     /* histograms per vCPU too (JSON) */
	unsigned poll_ms;		     /* discovery/reclaim interval */
	unsigned exited_retention_s;	     /* --collector.exited-retention */
	unsigned diag_ms;     /* diagnosis window: findings are re-evaluated this often */
	const char *sys_root; /* prefix of /proc/cpuinfo, /sys/module, /dev/cpu ("" live) */
	struct diag_thresholds thresholds;
	const char *version;
	enum metrics_vm_histograms vm_histograms; /* --collector.vm-histograms */
};

/* Loads the collector and starts serving. Returns 0 or a negative errno after printing
 * one line on stderr naming what failed. */
int manager_start(struct manager **out, const struct manager_opts *opts);

/* Prints which probes attached and which are missing (one line each). Returns true when
 * every required probe is attached. */
bool manager_report(struct manager *m, FILE *f);

/* Polls until *stop is set; tells systemd READY/WATCHDOG when it is watching. */
int manager_run(struct manager *m, volatile sig_atomic_t *stop);

/* One-shot diagnosis: watches for window_s seconds, then prints the report (text or JSON)
 * for every VM or the one named vm. Returns 0, -ENOENT for an unknown VM, or an error. */
int manager_diagnose(struct manager *m, unsigned window_s, const char *vm, bool json, FILE *f);

void manager_free(struct manager *m);

#endif
