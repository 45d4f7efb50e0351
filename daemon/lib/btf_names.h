/* SPDX-License-Identifier: GPL-2.0 */
/* Names the running kernel gives in its BTF (enum kvm_apicv_inhibit), read at collector_open
 * and handed on in struct ipiv_inhibit_names (labels.h). Uses libbpf's BTF reader. */
#ifndef IPIV_BTF_NAMES_H
#define IPIV_BTF_NAMES_H

#include "labels.h"

struct btf;

/* Fills names[bit] with the lower-case name of each APICV_INHIBIT_REASON_* enumerator of
 * enum kvm_apicv_inhibit in btf; returns how many, or -ENOENT if btf (may be NULL) has none. */
int ipiv_inhibit_names_from_btf(const struct btf *btf, char (*names)[IPIV_INHIBIT_NAME_MAX]);
/* The table for a kernel: from kvm's BTF (KVM built as a module, may be NULL), else from
 * vmlinux's, with "reason_<n>" for the bits that kernel does not define; all zero (the
 * built-in list) when neither has the enum. */
void ipiv_inhibit_names_load(const struct btf *vmlinux, const struct btf *kvm,
			     struct ipiv_inhibit_names *out);

#endif /* IPIV_BTF_NAMES_H */
