/* The counter table: for every kind include/ipiv_counters.h declares, its fields in struct
 * ipiv_counts, its JSON keys and its metric families. The collector adds map entries through
 * it; ipivd's metrics and JSON writers and ipivtop's JSON parser iterate it. Pure. */
#ifndef IPIV_COUNTERS_H
#define IPIV_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"

/* The fields a kind can have, in the order the JSON API writes them. */
enum counter_slot {
	COUNTER_TOTAL,	/* every count of the kind */
	COUNTER_BY_SUB, /* an array by the key's sub */
	COUNTER_WHEN,	/* counts whose key passes the kind's test (sub != 0 by default) */
	COUNTER_UNLESS, /* the others */
	COUNTER_SLOTS,
};

struct counter_field {
	const char *name; /* the JSON key (the C field, stem_seconds for stem_ns); NULL: none */
	size_t offset;	  /* of the uint64_t, or the array, in struct ipiv_counts */
	bool ns;	  /* nanoseconds, exported as seconds */
};

/* What a metric family's series are. */
enum counter_from {
	COUNTER_FROM_TOTAL,  /* one series, the total */
	COUNTER_FROM_BY_SUB, /* one per sub, labelled by the kind's sub_name */
	COUNTER_FROM_WHEN,   /* one series, the WHEN field */
	COUNTER_FROM_SPLIT,  /* two: split[0] for WHEN, split[1] for UNLESS (or TOTAL - WHEN) */
};

#define COUNTER_ALL UINT32_MAX

/* One metric family of a kind in one scope: per VM (labels vm and the kind's label), host
 * totals (the kind's label only) or per vCPU (vm, vcpu and the kind's label). */
struct counter_family {
	const char *name; /* without _total; NULL: the kind has no family in this scope */
	const char *help;
	enum counter_from from;
	/* Series are written when they counted, or when their bit (the index of the sub or of
	 * the split value; 0 for one series) is in zeros (COUNTER_ALL: always), or, with
	 * if_any, when any series of the family counted. */
	uint32_t zeros;
	bool if_any;
};

struct counter_kind {
	const char *name; /* "SEND": the enumerator without IPIV_CNT_; NULL: no such kind */
	struct counter_field field[COUNTER_SLOTS];
	unsigned n_sub;	    /* size of the BY_SUB array: a key with sub >= n_sub is not counted */
	unsigned first_sub; /* subs below it are never counted: not exported nor parsed */
	/* The WHEN/UNLESS test on the key's sub2 (SEND: ICR classes IPIv/AVIC deliver without
	 * an exit); NULL: sub != 0. */
	int (*when_sub2)(uint32_t sub2);
	const char *label;		       /* the label name of BY_SUB and SPLIT series */
	const char *(*sub_name)(uint32_t sub); /* label values (and JSON keys) of BY_SUB */
	const char *(*sub_name_before)(uint32_t sub); /* what an older ipivd wrote, or NULL */
	const char *split[2];			      /* SPLIT values; NULL: "true", "false" */
	bool patched; /* JSON: under counts.patched_tracepoints (kernel-patches/ tracepoints) */
	struct counter_family vm, host, vcpu;
};

/* By enum ipiv_counter_kind; [IPIV_CNT_NONE] has no name and no fields. */
extern const struct counter_kind counter_kinds[IPIV_CNT_KIND_COUNT];

static inline uint64_t *counter_at(struct ipiv_counts *c, const struct counter_field *f)
{
	return (uint64_t *)((char *)c + f->offset);
}

static inline const uint64_t *counter_get(const struct ipiv_counts *c,
					  const struct counter_field *f)
{
	return (const uint64_t *)((const char *)c + f->offset);
}

/* Adds value, the count of one map entry, to the fields its kind has; unknown kinds, and
 * subs beyond a BY_SUB array, add nothing. */
void counter_add(struct ipiv_counts *c, const struct ipiv_counter_key *key, uint64_t value);

/* One series of a family: the value of the kind's label (NULL for a family without one). */
struct counter_sample {
	const char *label_value;
	uint64_t value;
	bool ns; /* value is nanoseconds: the series is value / 1e9 */
};

#define COUNTER_MAX_SAMPLES 32

/* The series family f of kind k writes for the counts c, in order (only those zeros and
 * if_any keep when 0); returns how many, at most COUNTER_MAX_SAMPLES. */
size_t counter_samples(const struct counter_kind *k, const struct counter_family *f,
		       const struct ipiv_counts *c, struct counter_sample *out);

#endif
