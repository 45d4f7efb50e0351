// SPDX-License-Identifier: GPL-2.0
/* The running kernel's APICv inhibit reason names, from its BTF (btf_names.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/btf.h>

#include "btf_names.h"

int ipiv_inhibit_names_from_btf(const struct btf *btf, char (*names)[IPIV_INHIBIT_NAME_MAX])
{
	static const char prefix[] = "APICV_INHIBIT_REASON_";
	const struct btf_type *t;
	const struct btf_enum *e;
	int id, found = 0;

	id = btf ? btf__find_by_name_kind(btf, "kvm_apicv_inhibit", BTF_KIND_ENUM) : -ENOENT;
	if (id < 0)
		return -ENOENT;
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, e++) {
		const char *name = btf__name_by_offset(btf, e->name_off);
		size_t j;

		/* NR_APICV_INHIBIT_REASONS and anything not a reason bit is skipped */
		if (!name || strncmp(name, prefix, sizeof(prefix) - 1) || e->val < 0 ||
		    e->val >= IPIV_INHIBIT_COUNT)
			continue;
		name += sizeof(prefix) - 1;
		for (j = 0; name[j] && j < IPIV_INHIBIT_NAME_MAX - 1; j++)
			names[e->val][j] = isalnum((unsigned char)name[j])
						   ? tolower((unsigned char)name[j])
						   : '_';
		names[e->val][j] = '\0';
		found++;
	}
	return found ? found : -ENOENT;
}

void ipiv_inhibit_names_load(const struct btf *vmlinux, const struct btf *kvm,
			     struct ipiv_inhibit_names *out)
{
	memset(out, 0, sizeof(*out));
	/* KVM's types are in kvm's BTF when KVM is a module */
	if (ipiv_inhibit_names_from_btf(kvm, out->name) > 0)
		snprintf(out->source, sizeof(out->source), "btf:kvm");
	else if (ipiv_inhibit_names_from_btf(vmlinux, out->name) > 0)
		snprintf(out->source, sizeof(out->source), "btf:vmlinux");
	else
		return;
	for (unsigned r = 0; r < IPIV_INHIBIT_COUNT; r++)
		if (!out->name[r][0]) /* a bit this kernel does not define */
			snprintf(out->name[r], sizeof(out->name[r]), "reason_%u", r);
}
