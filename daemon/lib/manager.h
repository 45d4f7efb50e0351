/* ipivd's manager: owns the collector, the VM-name cache and the HTTP endpoints, and runs
 * the discovery loop. main() only parses flags and handles signals. */
#ifndef IPIV_MANAGER_H
#define IPIV_MANAGER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct manager;

struct manager_opts {
	const char *listen_address;	/* --web.listen-address */
	const char *telemetry_path;	/* --web.telemetry-path */
	const char *proc_root;		/* where /proc is (tests point it elsewhere) */
	bool per_vcpu;			/* --collector.per-vcpu */
	bool bpf_stats;			/* keep kernel.bpf_stats_enabled on */
	unsigned poll_ms;		/* discovery/reclaim interval */
	const char *version;
};

/* Loads the collector and starts serving. Returns 0 or a negative errno after printing
 * one line on stderr naming what failed. */
int manager_start(struct manager **out, const struct manager_opts *opts);

/* Prints which probes attached and which are missing (one line each). Returns true when
 * every required probe is attached. */
bool manager_report(struct manager *m, FILE *f);

/* Polls until *stop is set; tells systemd READY/WATCHDOG when it is watching. */
int manager_run(struct manager *m, volatile sig_atomic_t *stop);

void manager_free(struct manager *m);

/* The port the HTTP server bound (after :0). */
unsigned manager_port(struct manager *m);

#endif
