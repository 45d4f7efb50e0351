// SPDX-License-Identifier: GPL-2.0
/* The collector's owner: struct collector's life (open, close). Its jobs live beside it:
 * probes.c (probe, load, attach), discovery.c (discovery, retire, reclaim), snapshot.c (maps
 * to snapshot); labels.c and snapshot_query.c are the plain-C parts others use. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector_priv.h"
#include "ipiv.skel.h"
#include "log.h"

int collector_open(struct collector **out, const struct collector_opts *opts)
{
	struct collector *c;
	int err;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (opts)
		c->opts = *opts;
	if (!c->opts.reclaim_after)
		c->opts.reclaim_after = 2;
	c->stats_fd = -1;
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		err = c->ncpus ? c->ncpus : -EINVAL;
		log_error("collector", "cannot count possible CPUs: %s", strerror(-err));
		goto cleanup;
	}
	collector_libbpf_log();
	err = collector_load(c);
	if (err)
		goto cleanup;
	err = collector_attach(c);
	if (err)
		goto cleanup;
	/* vCPU threads live in task storage: these iterators are how user space sees them */
	c->threads_iter = bpf_program__attach_iter(c->skel->progs.ipiv_dump_threads, NULL);
	c->prune_iter = bpf_program__attach_iter(c->skel->progs.ipiv_prune_threads, NULL);
	if (!c->threads_iter || !c->prune_iter) {
		err = -errno;
		log_error("collector",
			  "attaching the task iterators failed: %s (needs iter/task, "
			  "Linux 5.8+)",
			  strerror(-err));
		goto cleanup;
	}
	if (c->opts.bpf_stats) {
		c->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (c->stats_fd < 0)
			log_warn("collector",
				 "kernel.bpf_stats_enabled not available: %s; program "
				 "run counts stay 0",
				 strerror(errno));
	}
	*out = c;
	return 0;
cleanup:
	collector_close(c);
	return err;
}

void collector_close(struct collector *c)
{
	if (!c)
		return;
	for (size_t i = 0; c->links && i < c->n_probes; i++)
		bpf_link__destroy(c->links[i]);
	bpf_link__destroy(c->threads_iter);
	bpf_link__destroy(c->prune_iter);
	if (c->stats_fd >= 0)
		close(c->stats_fd);
	ipiv_bpf__destroy(c->skel);
	for (size_t i = 0; i < c->n_retired; i++)
		vm_stats_free(&c->retired[i].stats);
	free(c->retired);
	free(c->gone_lat);
	free(c->seen);
	free(c->found);
	free(c->found_vcpus);
	free(c->probes);
	free(c->links);
	free(c);
}

struct ipiv_bpf *collector_skel(struct collector *c)
{
	return c->skel;
}

const struct ipiv_inhibit_names *collector_inhibit_names(const struct collector *c)
{
	return &c->inhibit_names;
}
