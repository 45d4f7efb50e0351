/* ipivbench: ICR encodings and destinations of each IPI pattern, and the exact deliveries
 * they imply, so the guest's own counts can be checked. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "plan.h"
#include "guest/layout.h"

#define ICR_DEST_LOGICAL    (1u << 11)
#define ICR_DM_NMI	    (4u << 8)
#define ICR_SH_ALL_BUT_SELF (3u << 18)

/* x2APIC logical ID of an x2APIC ID: cluster in bits 31:16, one bit of 16 below. */
static uint32_t x2apic_logical_id(unsigned id)
{
	return ((id >> 4) << 16) | (1u << (id & 0xf));
}

static void add_unicast(struct bench_plan *plan, unsigned vcpu, uint32_t dest)
{
	plan->dest[plan->nslots] = dest;
	plan->reach[plan->nslots] = 1ull << vcpu;
	plan->nslots++;
}

int bench_plan_make(const struct bench_config *cfg, struct bench_plan *plan, char *err,
		    size_t errlen)
{
	unsigned n = cfg->vcpus, id;
	uint64_t others = 0;

	memset(plan, 0, sizeof(*plan));
	if (n < 2 || n > BENCH_MAX_VCPUS) {
		snprintf(err, errlen, "vCPU count %u out of range 2..%u", n, BENCH_MAX_VCPUS);
		return -EINVAL;
	}
	for (id = 1; id < n; id++)
		others |= 1ull << id;
	plan->x2apic = true;
	plan->send_kind = SEND_X2APIC_ICR;
	plan->fanout = 1;

	switch (cfg->pattern) {
	case BENCH_X2APIC_PHYS:
		plan->icr_low = IPI_VECTOR;
		for (id = 1; id < n; id++)
			add_unicast(plan, id, id);
		break;
	case BENCH_X2APIC_LOGICAL:
		plan->icr_low = IPI_VECTOR | ICR_DEST_LOGICAL;
		for (id = 1; id < n; id++)
			add_unicast(plan, id, x2apic_logical_id(id));
		break;
	case BENCH_X2APIC_MULTICAST:
		/* Every odd vCPU of cluster 0 in one IPI: the even ones prove that a
		 * multicast reaches exactly the addressed vCPUs. */
		plan->icr_low = IPI_VECTOR | ICR_DEST_LOGICAL;
		plan->nslots = 1;
		for (id = 1; id < n && id < 16; id += 2) {
			plan->dest[0] |= 1u << id;
			plan->reach[0] |= 1ull << id;
		}
		plan->fanout = __builtin_popcountll(plan->reach[0]);
		break;
	case BENCH_X2APIC_BROADCAST:
		plan->icr_low = IPI_VECTOR | ICR_SH_ALL_BUT_SELF;
		plan->nslots = 1;
		plan->reach[0] = others;
		plan->fanout = n - 1;
		break;
	case BENCH_X2APIC_SELF:
		plan->send_kind = SEND_X2APIC_SELF;
		plan->icr_low = IPI_VECTOR;
		add_unicast(plan, 0, 0);
		break;
	case BENCH_XAPIC_PHYS:
		plan->x2apic = false;
		plan->send_kind = SEND_XAPIC_ICR;
		plan->icr_low = IPI_VECTOR;
		for (id = 1; id < n; id++)
			add_unicast(plan, id, id);
		break;
	case BENCH_XAPIC_LOGICAL:
		/* Flat model: 8 bits of logical destination, so vCPUs 1..7 take part. */
		plan->x2apic = false;
		plan->send_kind = SEND_XAPIC_ICR;
		plan->icr_low = IPI_VECTOR | ICR_DEST_LOGICAL;
		for (id = 1; id < n && id < 8; id++)
			add_unicast(plan, id, 1u << id);
		break;
	case BENCH_XAPIC_BROADCAST:
		plan->x2apic = false;
		plan->send_kind = SEND_XAPIC_ICR;
		plan->icr_low = IPI_VECTOR | ICR_SH_ALL_BUT_SELF;
		plan->nslots = 1;
		plan->reach[0] = others;
		plan->fanout = n - 1;
		break;
	case BENCH_NMI:
		plan->icr_low = ICR_DM_NMI;
		for (id = 1; id < n; id++)
			add_unicast(plan, id, id);
		break;
	case BENCH_PV_SEND_IPI:
		plan->needs_pv = true;
		plan->send_kind = SEND_PV_HYPERCALL;
		plan->icr_low = IPI_VECTOR;
		for (id = 1; id < n; id++)
			add_unicast(plan, id, id);
		break;
	default: snprintf(err, errlen, "unknown IPI pattern %d", cfg->pattern); return -EINVAL;
	}
	return 0;
}

void bench_plan_expected(const struct bench_config *cfg, const struct bench_plan *plan,
			 unsigned total_runs, uint64_t expected[BENCH_MAX_VCPUS])
{
	uint64_t per_slot[BENCH_MAX_VCPUS] = {0};
	unsigned s, id;

	memset(expected, 0, sizeof(uint64_t) * BENCH_MAX_VCPUS);
	if (!plan->nslots)
		return;
	/* The slot index restarts at 0 with every run. */
	for (s = 0; s < plan->nslots; s++) {
		per_slot[s] = cfg->ipis / plan->nslots;
		if (s < cfg->ipis % plan->nslots)
			per_slot[s]++;
	}
	for (s = 0; s < plan->nslots; s++)
		for (id = 0; id < BENCH_MAX_VCPUS; id++)
			if (plan->reach[s] & (1ull << id))
				expected[id] += per_slot[s] * total_runs;
}
