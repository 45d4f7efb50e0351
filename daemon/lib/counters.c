/* The counter table, made from include/ipiv_counters.h, and the two things every user of it
 * needs: adding a map entry to a snapshot's counts and listing a family's series. */
#include "counters.h"
#include "icr.h"

/* The ICR's name of a delivery mode, which an ipivd before pv_kick gave accepted mode 3. */
static const char *icr_delivery_name(uint32_t dm)
{
	return icr_delivery_names[dm];
}

/* Each entry of ipiv_counters.h becomes counter_kinds[IPIV_CNT_<KIND>]; a field keeps its
 * place in struct ipiv_counts and its name, the JSON key. */
#define FIELD(member, key, ns)                                    \
	{                                                         \
		(key), offsetof(struct ipiv_counts, member), (ns) \
	}
#define CNT_TOTAL(f)	   .field[COUNTER_TOTAL] = FIELD(f, #f, false),
#define CNT_TOTAL_NS(stem) .field[COUNTER_TOTAL] = FIELD(stem##_ns, #stem "_seconds", true),
#define CNT_BY_SUB(f, n)   .field[COUNTER_BY_SUB] = FIELD(f, #f, false), .n_sub = (n),
#define CNT_BY_SUB_NS(stem, n) \
	.field[COUNTER_BY_SUB] = FIELD(stem##_ns, #stem "_seconds", true), .n_sub = (n),
#define CNT_WHEN(f)			.field[COUNTER_WHEN] = FIELD(f, #f, false),
#define CNT_UNLESS(f)			.field[COUNTER_UNLESS] = FIELD(f, #f, false),
#define IPIV_COUNTER(kind, fields, ...) [IPIV_CNT_##kind] = {.name = #kind, fields __VA_ARGS__},

const struct counter_kind counter_kinds[IPIV_CNT_KIND_COUNT] = {
#include "ipiv_counters.h"
};

#undef FIELD

void counter_add(struct ipiv_counts *c, const struct ipiv_counter_key *key, uint64_t value)
{
	const struct counter_kind *k;
	enum counter_slot split;

	if (key->kind >= IPIV_CNT_KIND_COUNT)
		return;
	k = &counter_kinds[key->kind];
	if (k->field[COUNTER_BY_SUB].name) {
		if (key->sub >= k->n_sub)
			return;
		counter_at(c, &k->field[COUNTER_BY_SUB])[key->sub] += value;
	}
	if (k->field[COUNTER_TOTAL].name)
		*counter_at(c, &k->field[COUNTER_TOTAL]) += value;
	split = (k->when_sub2 ? k->when_sub2(key->sub2) : key->sub != 0) ? COUNTER_WHEN
									 : COUNTER_UNLESS;
	if (k->field[split].name)
		*counter_at(c, &k->field[split]) += value;
}

size_t counter_samples(const struct counter_kind *k, const struct counter_family *f,
		       const struct ipiv_counts *c, struct counter_sample *out)
{
	const struct counter_field *field;
	struct counter_sample all[COUNTER_MAX_SAMPLES];
	size_t n = 0, kept = 0;
	bool any = false;

	switch (f->from) {
	case COUNTER_FROM_TOTAL:
	case COUNTER_FROM_WHEN:
		field = &k->field[f->from == COUNTER_FROM_WHEN ? COUNTER_WHEN : COUNTER_TOTAL];
		all[n++] = (struct counter_sample){NULL, *counter_get(c, field), field->ns};
		break;
	case COUNTER_FROM_BY_SUB:
		field = &k->field[COUNTER_BY_SUB];
		for (unsigned sub = 0; sub < k->n_sub && sub < COUNTER_MAX_SAMPLES; sub++)
			all[n++] = (struct counter_sample){k->sub_name(sub),
							   counter_get(c, field)[sub], field->ns};
		break;
	case COUNTER_FROM_SPLIT: {
		const struct counter_field *when = &k->field[COUNTER_WHEN];
		const struct counter_field *unless = &k->field[COUNTER_UNLESS];
		uint64_t yes = *counter_get(c, when);
		uint64_t no = unless->name ? *counter_get(c, unless)
					   : *counter_get(c, &k->field[COUNTER_TOTAL]) - yes;

		all[n++] =
			(struct counter_sample){k->split[0] ? k->split[0] : "true", yes, when->ns};
		all[n++] =
			(struct counter_sample){k->split[1] ? k->split[1] : "false", no, when->ns};
		break;
	}
	}
	for (size_t i = 0; i < n; i++)
		any |= all[i].value != 0;
	for (size_t i = 0; i < n; i++) {
		/* subs below first_sub are never counted: not written even when zeros asks */
		if (f->from == COUNTER_FROM_BY_SUB && i < k->first_sub)
			continue;
		if (all[i].value || ((f->zeros >> i) & 1) || (f->if_any && any))
			out[kept++] = all[i];
	}
	return kept;
}
