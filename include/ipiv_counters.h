/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every counter kind, declared once: the BPF side counts it under IPIV_CNT_<KIND> (the key's
 * kind, see struct ipiv_counter_key), and user space reads everything else from the same line:
 * the fields of the snapshot (struct ipiv_counts), the JSON API's keys and the metric families.
 * docs/architecture.md ("Adding a counter kind") walks through adding one.
 *
 * No include guard: an includer defines IPIV_COUNTER(kind, fields, ...) and the CNT_ field
 * macros, includes this file, and gets them undefined again at its end. ipiv.h makes the
 * enum, daemon/lib/snapshot.h the struct, daemon/lib/counters.c the table; the table's
 * members are described in daemon/lib/counters.h.
 *
 * fields: where the counts go (all uint64_t, named as the JSON API names them):
 *   CNT_TOTAL(f)           f: every count of the kind
 *   CNT_BY_SUB(f, n)       f[n]: by the key's sub; a key with sub >= n is not counted at all
 *   CNT_WHEN(f)            f: counts whose key has sub != 0 (or, with .when_sub2, whose sub2
 *                          passes that test)
 *   CNT_UNLESS(f)          f: the other counts
 *   CNT_TOTAL_NS(stem), CNT_BY_SUB_NS(stem, n): nanoseconds in stem_ns, seconds in the JSON
 *                          API (stem_seconds) and the metrics
 * The rest of an entry initializes struct counter_kind (counters.h): the label the sub or the
 * WHEN/UNLESS split is exported under, the JSON group, and a metric family per scope (.vm,
 * .host, .vcpu; one without a name is not written). Kinds are numbered in this order from 1:
 * add new ones at the end.
 */

/* IPIs a guest asked KVM to send. sub = enum ipiv_path, sub2 = ICR class (icr.h); vcpu = the
 * sender. By class the VM's sends are kept apart too (ipiv_vm_stats.send_cells, snapshot.c). */
IPIV_COUNTER(
	SEND,
	CNT_TOTAL(sent) CNT_BY_SUB(sent_by_path, IPIV_PATH_COUNT) CNT_WHEN(sent_accel_eligible),
	.label = "path", .sub_name = ipiv_path_name, .when_sub2 = icr_class_accel_eligible,
	/* No VM family: ipiv_ipis_sent_accel_eligible_total{vm} was ipiv_ipis_sent_total's
	 * eligible classes (icr_class_accel_eligible) summed, a series of the 60 per VM
	 * (docs/metrics.md#series-budget) Prometheus computes as well:
	 *   sum without (path, delivery, dest_mode, shorthand, dest) (ipiv_ipis_sent_total{
	 *     delivery="fixed", dest_mode="physical", shorthand="none", dest!="broadcast"})
	 * The JSON API keeps sent_accel_eligible (diagnosis, ipivtop). */
	.host = {"ipiv_host_ipis_sent",
		 "IPIs every VM asked KVM to send since ipivd started, exited VMs included, by "
		 "path.",
		 .from = COUNTER_FROM_BY_SUB, .zeros = COUNTER_ALL},
	.vcpu = {"ipiv_vcpu_ipis_sent", "IPIs the vCPU sent through KVM.", .zeros = COUNTER_ALL})

/* Interrupts KVM's local APIC emulation accepted (kvm_apic_accept_irq): IPIs and device
 * interrupts. sub = delivery mode; vcpu = the target (its APIC ID, which KVM makes its id). */
IPIV_COUNTER(
	RECV, CNT_TOTAL(received) CNT_BY_SUB(received_by_delivery, ICR_DM_COUNT),
	.label = "delivery", .sub_name = icr_accept_delivery_name,
	/* an ipivd before pv_kick named accepted mode 3 by the ICR's table: "reserved3" */
	.sub_name_before = icr_delivery_name,
	/* fixed is always there (a zero rate is information); other modes when seen */
	.vm = {"ipiv_interrupts_accepted",
	       "Interrupts KVM's local APIC emulation accepted for a vCPU of the VM "
	       "(kvm_apic_accept_irq), by delivery mode: IPIs and device interrupts.",
	       .from = COUNTER_FROM_BY_SUB, .zeros = 1u << ICR_DM_FIXED},
	.host = {"ipiv_host_interrupts_accepted",
		 "Interrupts KVM accepted for every VM's vCPUs since ipivd started, exited VMs "
		 "included.",
		 .zeros = COUNTER_ALL},
	.vcpu = {"ipiv_vcpu_interrupts_accepted", "Interrupts accepted for the vCPU.",
		 .zeros = COUNTER_ALL})

/* End-of-interrupt writes KVM saw (kvm_eoi); vcpu = the vCPU that EOIed. */
IPIV_COUNTER(EOI, CNT_TOTAL(eois),
	     .vm = {"ipiv_eois",
		    "End-of-interrupt writes KVM saw (trapped EOIs; virtualized EOIs are not "
		    "visible).",
		    .zeros = COUNTER_ALL},
	     .host = {"ipiv_host_eois",
		      "EOIs KVM saw from every VM since ipivd started, exited VMs included.",
		      .zeros = COUNTER_ALL})

/* vCPU halts that ended (kvm_vcpu_wakeup). sub = 1 if the vCPU really blocked (halted), 0 if
 * halt-polling caught the event. */
IPIV_COUNTER(WAKEUP, CNT_TOTAL(wakeups) CNT_WHEN(wakeups_halted), .label = "halted",
	     .vm = {"ipiv_vcpu_wakeups",
		    "vCPU halts that ended (kvm_vcpu_wakeup); halted=\"true\" when the vCPU really "
		    "blocked, \"false\" when halt-polling caught the event.",
		    .from = COUNTER_FROM_SPLIT, .zeros = COUNTER_ALL},
	     .host = {"ipiv_host_vcpu_wakeups",
		      "Halts that ended, of every VM since ipivd started, exited VMs included.",
		      .zeros = COUNTER_ALL},
	     .vcpu = {"ipiv_vcpu_halt_wakeups", "Halts of the vCPU that ended.",
		      .zeros = COUNTER_ALL})

/* Time in halt, the ns kvm_vcpu_wakeup reports; sub as for WAKEUP (summed, not kept apart). */
IPIV_COUNTER(HALT_NS, CNT_TOTAL_NS(halt),
	     .vm = {"ipiv_vcpu_halt_seconds",
		    "Time vCPUs spent in halt (polling and blocked), summed over vCPUs.",
		    .zeros = COUNTER_ALL})

/* AMD AVIC_INCOMPLETE_IPI exits; sub = enum ipiv_avic_cause. */
IPIV_COUNTER(AVIC_CAUSE, CNT_BY_SUB(avic_incomplete, IPIV_AVIC_CAUSE_COUNT), .label = "cause",
	     .sub_name = ipiv_avic_cause_name,
	     .vm = {"ipiv_avic_incomplete_ipis", "AMD AVIC_INCOMPLETE_IPI exits by failure cause.",
		    .from = COUNTER_FROM_BY_SUB})

/* VM exits where kvm_exit fires. sub = enum ipiv_isa, sub2 = exit reason (VMX: basic reason);
 * by reason the VM's exits are kept apart too (ipiv_vm_stats.exits, snapshot.c). */
IPIV_COUNTER(EXIT, CNT_TOTAL(exits),
	     .host = {"ipiv_host_vm_exits",
		      "VM exits of every VM since ipivd started, exited VMs included (where "
		      "kvm_exit fires).",
		      .zeros = COUNTER_ALL})

/* APICv/AVIC inhibit reasons set or cleared: vcpu = IPIV_VCPU_NONE, sub = inhibit reason bit,
 * sub2 = 1 set / 0 clear. VM-wide only (ipiv_vm_stats.inhibit_set/_clear, snapshot.c). */
IPIV_COUNTER(INHIBIT, /* no fields in struct ipiv_counts */)

/* From here on, what the first kernel-patches/ series traced. kvm_pi_wakeup (v2) still needs
 * a patched kernel; the others come from fexit on KVM functions or from stock tracepoints
 * (daemon/lib/sources.c says which on a host, kernel-patches/README.md why). Their JSON keys
 * stay under counts.patched_tracepoints, where API users found them. */

/* Blocked vCPUs a posted interrupt woke (kvm_pi_wakeup, patched kernels); sub = 1 if the PIR
 * held an IPI vector (IPIV_PI_IPI_VECTORS). */
IPIV_COUNTER(PI_WAKEUP, CNT_TOTAL(posted_wakeups) CNT_WHEN(posted_wakeups_ipi), .patched = true,
	     .label = "vector", .split = {"ipi", "other"},
	     .vm = {"ipiv_posted_interrupt_wakeups",
		    "Blocked vCPUs woken by a posted interrupt (kvm_pi_wakeup, patched kernels); "
		    "vector=\"ipi\" when the PIR held a Linux IPI vector, the exit-free IPIs to "
		    "halted targets the host can count.",
		    .from = COUNTER_FROM_SPLIT, .if_any = true})

/* Posted-interrupt descriptor changes (fexit on vmx_vcpu_pi_load/put); sub = enum
 * ipiv_pi_trigger. */
IPIV_COUNTER(
	PI_DESC, CNT_BY_SUB(pi_descriptor_updates, IPIV_PI_TRIGGER_COUNT), .patched = true,
	.label = "trigger", .sub_name = ipiv_pi_trigger_name,
	.vm = {"ipiv_posted_interrupt_descriptor_updates",
	       "Posted-interrupt descriptor changes by trigger (fexit on vmx_vcpu_pi_load/put, "
	       "where the kernel permits fexit); trigger=\"migrate\" counts vCPU moves "
	       "between CPUs.",
	       .from = COUNTER_FROM_BY_SUB})

/* Time out of the running state; sub = enum ipiv_vcpu_state, never running. */
IPIV_COUNTER(STATE_NS, CNT_BY_SUB_NS(state, IPIV_VSTATE_COUNT), .patched = true, .label = "state",
	     .sub_name = ipiv_vcpu_state_name, .first_sub = IPIV_VSTATE_RUNNING + 1,
	     .vm = {"ipiv_vcpu_state_seconds",
		    "Time vCPUs could not take an accelerated IPI directly, summed over vCPUs: "
		    "blocked or preempted (Intel posted-interrupt descriptor), preempted or "
		    "not_running (AMD AVIC IsRunning); from fexit on KVM's vCPU load/put.",
		    .from = COUNTER_FROM_BY_SUB})

/* ICR writes the CPU did not virtualize: an APIC-write exit (kvm_exit) then kvm_apic_ipi on
 * the thread; sub = enum ipiv_icr_trap, sub2 = ICR class. */
IPIV_COUNTER(ICR_TRAP, CNT_BY_SUB(icr_write_traps, IPIV_TRAP_COUNT), .patched = true,
	     .label = "reason", .sub_name = ipiv_icr_trap_name,
	     .vm = {"ipiv_icr_write_traps",
		    "ICR writes the CPU did not virtualize (an APIC-write VM exit followed by "
		    "kvm_apic_ipi), by why.",
		    .from = COUNTER_FROM_BY_SUB})

/* Intercepted x2APIC ICR writes offered to the exit fastpath (fexit of KVM's WRMSR fastpath);
 * sub = 1 if it sent them, sub2 = ICR class. */
IPIV_COUNTER(
	FASTPATH, CNT_WHEN(x2apic_fastpath_handled) CNT_UNLESS(x2apic_fastpath_missed),
	.patched = true, .label = "handled",
	.vm = {"ipiv_x2apic_icr_fastpath",
	       "Intercepted x2APIC ICR writes by whether the exit fastpath sent them (fexit on "
	       "KVM's WRMSR fastpath, where the kernel permits fexit).",
	       .from = COUNTER_FROM_SPLIT, .if_any = true})

/* AVIC IsRunning changes of a vCPU's physical APIC ID entry (fexit on avic_vcpu_load/put/
 * blocking/unblocking); sub = the new IsRunning. */
IPIV_COUNTER(AVIC_RUN, CNT_WHEN(avic_running_set) CNT_UNLESS(avic_running_cleared), .patched = true,
	     .label = "running",
	     .vm = {"ipiv_avic_running_changes",
		    "AMD AVIC IsRunning changes of vCPUs' physical APIC ID entries (fexit on KVM's "
		    "AVIC vCPU load/put).",
		    .from = COUNTER_FROM_SPLIT, .if_any = true})

#undef IPIV_COUNTER
#undef CNT_TOTAL
#undef CNT_TOTAL_NS
#undef CNT_BY_SUB
#undef CNT_BY_SUB_NS
#undef CNT_WHEN
#undef CNT_UNLESS
