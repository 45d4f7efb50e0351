/* ipivd's manager: the collector behind a lock, VM names cached per VMM process, and the
 * HTTP endpoints (/metrics, /api/v1/...), each answered from a fresh snapshot. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "accel.h"
#include "collector.h"
#include "diag_report.h"
#include "expo.h"
#include "httpd.h"
#include "landing.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "naming.h"
#include "sources.h"

struct manager {
	struct manager_opts opts;
	struct collector *collector;
	pthread_mutex_t lock;			 /* the collector and the name cache */
	struct httpd *httpd[MANAGER_MAX_LISTEN]; /* one per --web.listen-address */
	struct vm_name_cache names;		 /* under lock */
	uint64_t id_key;
	/* diagnosis: the snapshot the current window started with, and the latest report */
	struct ipiv_snapshot *diag_prev;
	struct diag_report *report; /* under lock */
	double last_diag;
	/* the previous /metrics response, whole (under lock) */
	bool have_last_scrape;
	double last_scrape_s;
	uint64_t last_scrape_bytes;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Names of a snapshot's VMs as the pointer array the writers take; one allocation.
 * Caller holds m->lock. */
static char **name_vms(struct manager *m, struct ipiv_snapshot *snap)
{
	char(*names)[VM_NAME_MAX];
	char **ptrs;
	size_t n = snap->n_vms;

	if (vm_names_for_snapshot(&m->names, m->opts.proc_root, snap, &names))
		return NULL;
	ptrs = malloc((n ? n : 1) * (sizeof(char *) + VM_NAME_MAX));
	if (ptrs) {
		char *storage = (char *)(ptrs + (n ? n : 1));

		for (size_t i = 0; i < n; i++) {
			ptrs[i] = storage + i * VM_NAME_MAX;
			memcpy(ptrs[i], names[i], VM_NAME_MAX);
		}
	}
	free(names);
	return ptrs;
}

/* A snapshot and the names of its VMs, taken under the lock. */
static int take(struct manager *m, struct ipiv_snapshot **snap, char ***names)
{
	int r;

	pthread_mutex_lock(&m->lock);
	r = collector_snapshot(m->collector, snap);
	if (!r) {
		*names = name_vms(m, *snap);
		if (!*names) {
			collector_snapshot_free(*snap);
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/*
 * Hands the heap pages that freed snapshots leave back to the system, at most once a second
 * (a trim costs ~3 ms at 512 VMs; clients that poll faster leave at most a second's worth):
 * a snapshot is thousands of small blocks (~10 MiB at 512 VMs), and freed between the
 * long-lived ones (the diagnosis window's snapshot, names) they would stay in ipivd's RSS
 * until the next request reused them.
 */
static void trim_heap(void)
{
	static _Atomic uint64_t last_ms;
	uint64_t now = (uint64_t)(now_s() * 1000), last = last_ms;

	if (now - last < 1000 || !atomic_compare_exchange_strong(&last_ms, &last, now))
		return;
	malloc_trim(0);
}

/* Frees what take() gave. */
static void give_back(struct ipiv_snapshot *snap, char **names)
{
	collector_snapshot_free(snap);
	free(names);
	trim_heap();
}

static int serve_metrics(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	struct manager *m = ctx;
	struct metrics_opts mo = {.per_vcpu = m->opts.per_vcpu,
				  .version = m->opts.version,
				  .buckets = m->opts.latency_buckets,
				  .vm_histograms = m->opts.vm_histograms,
				  .id_key = m->id_key};
	enum expo_format fmt = expo_negotiate(httpd_header(req, "Accept"));
	struct ipiv_snapshot *snap;
	struct expo *e;
	char **names;
	double t0 = now_s();
	int r;

	double last_s;

	r = take(m, &snap, &names);
	if (r)
		return r;
	pthread_mutex_lock(&m->lock);
	mo.have_last_scrape = m->have_last_scrape;
	mo.last_scrape_bytes = m->last_scrape_bytes;
	last_s = m->last_scrape_s;
	pthread_mutex_unlock(&m->lock);
	r = expo_new(fmt, &e);
	if (!r) {
		r = metrics_write(e, snap, (const char *const *)names, &mo, last_s);
		pthread_mutex_lock(&m->lock);
		if (!r && m->report)
			r = diag_metrics_write(e, m->report);
		pthread_mutex_unlock(&m->lock);
		if (!r)
			r = expo_finish(e, &resp->body, &resp->len);
		expo_free(e);
	}
	if (!r) {
		pthread_mutex_lock(&m->lock);
		m->have_last_scrape = true;
		m->last_scrape_s = now_s() - t0;
		m->last_scrape_bytes = resp->len;
		pthread_mutex_unlock(&m->lock);
	}
	resp->content_type = expo_content_type(fmt);
	give_back(snap, names);
	return r;
}

static int json_reply(struct httpd_response *resp, json_t *doc, unsigned status)
{
	if (!doc)
		return -ENOMEM;
	resp->body = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	json_decref(doc);
	if (!resp->body)
		return -ENOMEM;
	resp->len = strlen(resp->body);
	resp->status = status;
	resp->content_type = "application/json";
	return 0;
}

static int serve_vms(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	struct manager *m = ctx;
	struct ipiv_snapshot *snap;
	unsigned hists;
	char **names;
	int r;

	if (api_vms_histograms(httpd_query(req, "histograms"), &hists))
		return json_reply(
			resp,
			json_pack("{s:s}", "error",
				  "histograms: unknown value (send_to_eoi is the one known)"),
			400);
	r = take(m, &snap, &names);
	if (r)
		return r;
	r = json_reply(resp, api_vms_with(snap, (const char *const *)names, m->id_key, hists), 200);
	give_back(snap, names);
	return r;
}

static int serve_vm(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	struct manager *m = ctx;
	const char *key = httpd_path(req) + strlen("/api/v1/vms/");
	struct ipiv_snapshot *snap;
	json_t *doc;
	char **names;
	int r = take(m, &snap, &names);

	if (r)
		return r;
	doc = api_vm_detail(snap, (const char *const *)names, m->id_key, key);
	if (doc)
		r = json_reply(resp, doc, 200);
	else
		r = json_reply(resp, json_pack("{s:s}", "error", "no VM with that name or id"),
			       404);
	give_back(snap, names);
	return r;
}

static int serve_status(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	struct manager *m = ctx;
	struct ipiv_snapshot *snap;
	char **names;
	int r = take(m, &snap, &names);

	if (r)
		return r;
	r = json_reply(resp, api_status(snap, m->opts.version), 200);
	give_back(snap, names);
	return r;
}

static int serve_findings(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	struct manager *m = ctx;
	const char *vm = httpd_query(req, "vm");
	json_t *doc;

	pthread_mutex_lock(&m->lock);
	doc = m->report ? diag_report_json(m->report, vm) : NULL;
	pthread_mutex_unlock(&m->lock);
	if (doc)
		return json_reply(resp, doc, 200);
	if (!m->report)
		return json_reply(resp, json_pack("{s:s}", "error", "first diagnosis not done yet"),
				  503);
	return json_reply(resp, json_pack("{s:s}", "error", "no VM with that name"), 404);
}

/* Drops the findings of VMs the collector has reclaimed: a VM that exits must leave the
 * output at once, not at the end of the diagnosis window. */
static void prune_report(struct manager *m)
{
	struct ipiv_snapshot *snap;
	size_t kept = 0;

	pthread_mutex_lock(&m->lock);
	if (m->report && !collector_snapshot(m->collector, &snap)) {
		for (size_t i = 0; i < m->report->n_vms; i++)
			if (snapshot_find_vm(snap, m->report->vms[i].vm))
				m->report->vms[kept++] = m->report->vms[i];
		m->report->n_vms = kept;
		collector_snapshot_free(snap);
	}
	pthread_mutex_unlock(&m->lock);
}

/* A full map loses counts or latency: one warning per map and diagnosis window in which it
 * lost any. */
static void warn_map_full(const struct ipiv_snapshot *prev, const struct ipiv_snapshot *cur)
{
	static const char suffix[] = "_map_full";
	const size_t n = sizeof(suffix) - 1;

	for (uint32_t r = 0; prev && r < IPIV_DROP_COUNT; r++) {
		const char *reason = ipiv_drop_name(r);
		size_t len = strlen(reason);

		if (len <= n || strcmp(reason + len - n, suffix) ||
		    cur->self.drops[r] <= prev->self.drops[r])
			continue;
		if (r == IPIV_DROP_TARGETS_FULL) { /* the IPIs are counted, not timed */
			log_warn("collector",
				 "the targets map is full: %llu deliveries not timed in the last "
				 "%.0f s, so latency histograms are incomplete "
				 "(ipiv_events_dropped_total{reason=\"%s\"}, per VM "
				 "ipiv_ipi_latency_unmatched_total{reason=\"%s\"})",
				 (unsigned long long)(cur->self.drops[r] - prev->self.drops[r]),
				 (cur->taken_ns - prev->taken_ns) / 1e9, reason,
				 ipiv_lat_unmatched_name(IPIV_UNM_PENDING_FULL));
			continue;
		}
		log_warn("collector",
			 "the %.*s map is full: %llu events not counted in the last %.0f s, so "
			 "counts are incomplete (ipiv_events_dropped_total{reason=\"%s\"})",
			 (int)(len - n), reason,
			 (unsigned long long)(cur->self.drops[r] - prev->self.drops[r]),
			 (cur->taken_ns - prev->taken_ns) / 1e9, reason);
	}
}

/* Re-evaluates the findings over the window since the last evaluation. */
static int diagnose_window(struct manager *m)
{
	struct ipiv_snapshot *cur;
	struct diag_report *report = NULL;
	struct accel_state *host = calloc(1, sizeof(*host));
	char **names;
	int r;

	if (!host)
		return -ENOMEM;
	r = accel_read(m->opts.sys_root, host);
	if (!r)
		r = take(m, &cur, &names);
	if (r) {
		free(host);
		return r;
	}
	warn_map_full(m->diag_prev, cur);
	/* the previous report is read only by this thread, which alone replaces it */
	r = diag_evaluate_snapshot(host, m->diag_prev, cur, (const char *const *)names, NULL,
				   &m->opts.thresholds, m->report, &report);
	free(names);
	free(host);
	if (r) {
		collector_snapshot_free(cur);
		return r;
	}
	pthread_mutex_lock(&m->lock);
	diag_report_free(m->report);
	m->report = report;
	pthread_mutex_unlock(&m->lock);
	collector_snapshot_free(m->diag_prev);
	m->diag_prev = cur;
	m->last_diag = now_s();
	trim_heap(); /* the window's old snapshot */
	return 0;
}

static int serve_landing(const struct httpd_request *req, struct httpd_response *resp, void *ctx)
{
	struct manager *m = ctx;
	static const struct landing_link extra[] = {
		{"/api/v1/findings", "Diagnosis: why IPI acceleration underperforms (JSON)"},
		{"/api/v1/status", "Collector status (JSON)"},
	};
	struct landing_page page = {
		.version = m->opts.version,
		.telemetry_path = m->opts.telemetry_path,
		.extra = extra,
		.n_extra = 2,
	};

	if (strcmp(httpd_path(req), "/")) {
		resp->status = 404;
		resp->body = strdup("404 page not found\n");
		resp->len = resp->body ? strlen(resp->body) : 0;
		return resp->body ? 0 : -ENOMEM;
	}
	resp->content_type = "text/html; charset=utf-8";
	return landing_render(&page, &resp->body, &resp->len);
}

int manager_start(struct manager **out, const struct manager_opts *opts)
{
	struct collector_opts co = {
		.bpf_stats = opts->bpf_stats,
		.no_latency = opts->no_latency,
		.per_vcpu_latency = opts->per_vcpu_latency,
		/* recorded where /metrics exports it (a clock read per accept) */
		.send_accept_latency =
			opts->per_vcpu || opts->vm_histograms == METRICS_VM_HISTOGRAMS_ALL,
		.exited_retention_ns = opts->exited_retention_s * 1000000000ull,
	};
	struct manager *m = calloc(1, sizeof(*m));
	char err[256];
	int r;

	if (!m)
		return -ENOMEM;
	m->opts = *opts;
	pthread_mutex_init(&m->lock, NULL);
	if (getrandom(&m->id_key, sizeof(m->id_key), 0) != sizeof(m->id_key))
		m->id_key = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;

	r = collector_open(&m->collector, &co);
	if (r) {
		manager_free(m);
		return r; /* collector_open said what was missing */
	}
	for (size_t i = 0; i < opts->n_listen; i++) {
		const struct httpd_route routes[] = {
			{.path = opts->telemetry_path, .handler = serve_metrics, .ctx = m},
			{.path = "/api/v1/vms", .handler = serve_vms, .ctx = m},
			{.path = "/api/v1/vms/", .prefix = true, .handler = serve_vm, .ctx = m},
			{.path = "/api/v1/status", .handler = serve_status, .ctx = m},
			{.path = "/api/v1/findings", .handler = serve_findings, .ctx = m},
			{.path = "/", .prefix = true, .handler = serve_landing, .ctx = m},
		};
		struct httpd_config hc = {
			.listen_address = opts->listen_addresses[i],
			.routes = routes,
			.n_routes = sizeof(routes) / sizeof(routes[0]),
			.limits = opts->http_limits,
		};

		r = httpd_start(&hc, &m->httpd[i], err, sizeof(err));
		if (r) {
			log_error("ipivd", "%s", err);
			manager_free(m);
			return r;
		}
	}
	*out = m;
	return 0;
}

/* Why a probe is not attached, in words for --check. */
static const char *probe_why(const struct ipiv_probe *p)
{
	bool fexit = !strncmp(p->name, "fexit/", 6);

	if (p->err == -ENOENT)
		return fexit ? "no such function in this kernel's BTF"
			     : "no such tracepoint on this kernel";
	return strerror(-p->err);
}

bool manager_report(struct manager *m, FILE *f)
{
	struct ipiv_quantity_source src[IPIV_N_QUANTITIES];
	struct ipiv_snapshot *snap;
	bool ok = true;

	pthread_mutex_lock(&m->lock);
	if (collector_snapshot(m->collector, &snap) < 0) {
		pthread_mutex_unlock(&m->lock);
		fprintf(f, "ipivd: cannot read the collector's state\n");
		return false;
	}
	pthread_mutex_unlock(&m->lock);
	fprintf(f, "ipivd: %zu of %zu probes attached\n", snap->self.n_attached,
		snap->self.n_probes);
	for (size_t i = 0; i < snap->self.n_probes; i++) {
		const struct ipiv_probe *p = &snap->self.probes[i];

		if (p->attached)
			continue;
		fprintf(f, "ipivd: %s %s not attached: %s\n", p->optional ? "optional" : "REQUIRED",
			p->name, probe_why(p));
		if (!p->optional)
			ok = false;
	}
	if (!ok)
		fprintf(f, "ipivd: running degraded: ipiv_degraded is 1 and some counts are "
			   "missing\n");
	ipiv_quantity_sources(snap->self.probes, snap->self.n_probes, src);
	for (size_t q = 0; q < IPIV_N_QUANTITIES; q++)
		fprintf(f, "ipivd: source of %s: %s (%s)\n", src[q].quantity,
			src[q].probe ? src[q].probe : "none attached",
			ipiv_source_kind_name(src[q].kind));
	fprintf(f, "ipivd: BPF run-time statistics %s\n",
		snap->self.bpf_stats_enabled ? "on" : "off");
	collector_snapshot_free(snap);
	return ok;
}

int manager_run(struct manager *m, volatile sig_atomic_t *stop)
{
	uint64_t watchdog_usec = 0;
	bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
	int last_err = 0;
	uint64_t reclaimed = 0;

	char serving[MANAGER_MAX_LISTEN * 64] = "nothing";
	size_t len = 0;

	for (size_t i = 0; i < m->opts.n_listen && len < sizeof(serving); i++)
		len += (size_t)snprintf(serving + len, sizeof(serving) - len, "%s%s", i ? " " : "",
					m->opts.listen_addresses[i]);
	sd_notifyf(0, "READY=1\nSTATUS=watching KVM IPIs; serving %s", serving);
	while (!*stop) {
		int r;

		pthread_mutex_lock(&m->lock);
		r = collector_poll(m->collector);
		{
			/* name VMs while their processes exist (cached per pid) */
			int pids[256];
			size_t n = collector_vm_pids(m->collector, pids, 256);

			for (size_t i = 0; i < n; i++)
				vm_name_cache_prefetch(&m->names, m->opts.proc_root, pids[i]);
		}
		pthread_mutex_unlock(&m->lock);
		if (r && r != last_err)
			log_warn("collector", "VM discovery failed: %s (will retry)", strerror(-r));
		last_err = r;
		if (collector_reclaimed(m->collector) != reclaimed) {
			reclaimed = collector_reclaimed(m->collector);
			prune_report(m);
		}
		if (now_s() - m->last_diag >= m->opts.diag_ms / 1000.0) {
			r = diagnose_window(m);
			if (r)
				log_error("diag", "diagnosis failed: %s", strerror(-r));
		}
		if (watchdog)
			sd_notify(0, "WATCHDOG=1");
		for (unsigned slept = 0; slept < m->opts.poll_ms && !*stop; slept += 50)
			usleep(50 * 1000);
	}
	sd_notify(0, "STOPPING=1");
	return 0;
}

int manager_diagnose(struct manager *m, unsigned window_s, const char *vm, bool json, FILE *f)
{
	int r;

	pthread_mutex_lock(&m->lock);
	r = collector_poll(m->collector);
	pthread_mutex_unlock(&m->lock);
	if (!r)
		r = diagnose_window(m); /* the window's start */
	for (unsigned s = 0; !r && s < window_s; s++) {
		sleep(1);
		pthread_mutex_lock(&m->lock);
		r = collector_poll(m->collector);
		pthread_mutex_unlock(&m->lock);
	}
	if (!r)
		r = diagnose_window(m);
	if (r)
		return r;
	if (json) {
		json_t *doc = diag_report_json(m->report, vm);

		if (!doc)
			return -ENOENT;
		json_dumpf(doc, f, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		fputc('\n', f);
		json_decref(doc);
		return 0;
	}
	return diag_report_print(f, m->report, vm);
}

void manager_free(struct manager *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < MANAGER_MAX_LISTEN; i++)
		httpd_stop(m->httpd[i]); /* no handler runs after this */
	collector_close(m->collector);
	collector_snapshot_free(m->diag_prev);
	diag_report_free(m->report);
	pthread_mutex_destroy(&m->lock);
	vm_name_cache_free(&m->names);
	free(m);
}
