// Recording rules for ipivd's metrics (docs/metrics.md): fleet views of IPI rates,
// acceleration eligibility, exits, wakeups, latency quantiles and ipivd's own losses.
local promql = import 'lib/promql.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local s(m=[]) = promql.selector(c, m),
    // Every metric's selector: ipivSelector, then the query's own matchers.
    local q = {
      all: s(),
      eligible: s(['delivery="fixed"', 'dest_mode="physical"', 'shorthand="none"', 'dest!="broadcast"']),
      fallback: s(['path=~"apic_write_trap|avic_incomplete"']),
      pv: s(['path=~"pv_kvm|pv_hyperv"']),
      lost: s(['reason=~".+_map_full"']),
      blocked: s(['halted="true"']),
    },
    local vmLabels = 'vm, path, delivery, dest_mode, shorthand, dest',
    local classLabels = 'path, delivery, dest_mode, shorthand, dest',
    // A share of ipiv_ipis_sent_total (0, not no series, where the numerator has none).
    local share(without, num) = |||
      (
          sum without (%(w)s) (rate(ipiv_ipis_sent_total%(num)s[5m]))
        or
          sum without (%(w)s) (rate(ipiv_ipis_sent_total%(all)s[5m])) * 0
      )
        / (sum without (%(w)s) (rate(ipiv_ipis_sent_total%(all)s[5m])) > 0)
    ||| % { w: without, num: num, all: q.all },
    local quantile(record, metric, phi, window='5m') = {
      record: record,
      expr: 'histogram_quantile(%s, rate(%s_bucket%s[%s])) > 0' % [phi, metric, q.all, window],
      labels: { quantile: phi },
    },

    comment:: |||
      Names follow level:metric:operations. Every rule aggregates with `without`, so the
      target's labels (job, instance and whatever relabelling adds: cluster, rack...) stay
      on the result; the level names the labels beyond those ("instance" alone: one series
      per ipivd, i.e. per KVM host). Ratios are only recorded where the denominator is not
      zero, and quantiles only where the window has observations (no NaN series).

      Latency: ipivd writes, per series, only the buckets from its first to its last
      non-empty one, so bucket sets differ between VMs and paths and `sum by (le)` across
      them would mix cumulative counts of different ranges. Quantiles are therefore taken
      per VM and path (exact); the host view is the worst VM's quantile, and the host mean
      comes from _sum/_count, which do aggregate.
    |||,
    groups+: [
      {
        name: 'ipiv-host.rules',
        rules: [
          {
            comment:: |||
              IPIs per second that reached KVM, by path, from the host totals (which keep the
              counts of exited VMs, so the rate holds across VM churn).
            |||,
            record: 'instance_path:ipiv_host_ipis_sent:rate5m',
            expr: 'rate(ipiv_host_ipis_sent_total%(all)s[5m])' % q,
          },
          {
            record: 'instance:ipiv_host_ipis_sent:rate5m',
            expr: 'sum without (path) (rate(ipiv_host_ipis_sent_total%(all)s[5m]))' % q,
          },
          {
            record: 'instance:ipiv_host_interrupts_accepted:rate5m',
            expr: 'rate(ipiv_host_interrupts_accepted_total%(all)s[5m])' % q,
          },
          {
            comment:: |||
              Every VM exit (kvm_exit) per IPI that reached KVM. kvm_exit does not fire on
              kvm_pvm, where this is 0.
            |||,
            record: 'instance:ipiv_host_vm_exits_per_ipi:ratio_rate5m',
            expr: |||
              rate(ipiv_host_vm_exits_total%(all)s[5m])
                / (sum without (path) (rate(ipiv_host_ipis_sent_total%(all)s[5m])) > 0)
            ||| % q,
          },
          {
            comment:: |||
              Halts that ended per accepted interrupt: how often an interrupt found its target
              halted (ipivtop's HALT%).
            |||,
            record: 'instance:ipiv_host_vcpu_wakeups_per_interrupt:ratio_rate5m',
            expr: |||
              rate(ipiv_host_vcpu_wakeups_total%(all)s[5m])
                / (rate(ipiv_host_interrupts_accepted_total%(all)s[5m]) > 0)
            ||| % q,
          },
          {
            comment:: |||
              Share of the IPIs reaching KVM whose ICR class IPIv/AVIC could deliver without an
              exit: fixed, physical, no shorthand, one destination (icr_class_accel_eligible in
              include/icr.h; ipivd exports no per-VM series of it, see docs/metrics.md). A host
              whose guests sent none of those has 0, not no series.
            |||,
            record: 'instance:ipiv_ipis_sent_accel_eligible:ratio_rate5m',
            expr: share(vmLabels, q.eligible),
          },
          {
            comment:: |||
              Events ipivd did not count, by reason, and the ones that are real losses
              (*_map_full). no_identity and eoi_duplicate are filtered on purpose, not lost.
            |||,
            record: 'instance_reason:ipiv_events_dropped:rate5m',
            expr: 'rate(ipiv_events_dropped_total%(all)s[5m])' % q,
          },
          {
            record: 'instance:ipiv_events_lost:rate5m',
            expr: 'sum without (reason) (rate(ipiv_events_dropped_total%(lost)s[5m]))' % q,
          },
          {
            comment:: "ipivd's BPF cost per traced event, by program (needs kernel.bpf_stats_enabled).",
            record: 'instance_program:ipiv_bpf_program_run_seconds_per_run:ratio_rate5m',
            expr: |||
              rate(ipiv_bpf_program_run_seconds_total%(all)s[5m])
                / (rate(ipiv_bpf_program_runs_total%(all)s[5m]) > 0)
            ||| % q,
          },
        ],
      },
      {
        name: 'ipiv-vm.rules',
        rules: [
          {
            record: 'instance_vm_path:ipiv_ipis_sent:rate5m',
            expr: 'sum without (delivery, dest_mode, shorthand, dest) (rate(ipiv_ipis_sent_total%(all)s[5m]))' % q,
          },
          {
            record: 'instance_vm:ipiv_ipis_sent:rate5m',
            expr: 'sum without (path, delivery, dest_mode, shorthand, dest) (rate(ipiv_ipis_sent_total%(all)s[5m]))' % q,
          },
          {
            comment:: 'The ICR class mix (summed over paths).',
            record: 'instance_vm_delivery_dest_mode_shorthand_dest:ipiv_ipis_sent:rate5m',
            expr: 'sum without (path) (rate(ipiv_ipis_sent_total%(all)s[5m]))' % q,
          },
          {
            comment:: "The same per VM, from the eligible classes' series (0 for a VM that sent none).",
            record: 'instance_vm:ipiv_ipis_sent_accel_eligible:ratio_rate5m',
            expr: share(classLabels, q.eligible),
          },
          {
            comment:: |||
              Share sent through the APICv/IPIv fallback (APIC-write trap) or AVIC incomplete
              IPI exits, and share sent by PV hypercall (ipivtop's FALLB% and PV%). A VM only
              has series for the paths it used: the `or ... * 0` makes a missing path a 0.
            |||,
            record: 'instance_vm:ipiv_ipis_sent_fallback:ratio_rate5m',
            expr: share(classLabels, q.fallback),
          },
          {
            record: 'instance_vm:ipiv_ipis_sent_pv:ratio_rate5m',
            expr: share(classLabels, q.pv),
          },
          {
            record: 'instance_vm:ipiv_interrupts_accepted:rate5m',
            expr: 'sum without (delivery) (rate(ipiv_interrupts_accepted_total%(all)s[5m]))' % q,
          },
          {
            comment:: 'VM exits (VMX/SVM only: kvm_exit never fires on kvm_pvm), by reason and per IPI.',
            record: 'instance_vm_reason:ipiv_vm_exits:rate5m',
            expr: 'sum without (isa) (rate(ipiv_vm_exits_total%(all)s[5m]))' % q,
          },
          {
            record: 'instance_vm:ipiv_vm_exits_per_ipi:ratio_rate5m',
            expr: |||
              sum without (isa, reason) (rate(ipiv_vm_exits_total%(all)s[5m]))
                / (sum without (path, delivery, dest_mode, shorthand, dest) (rate(ipiv_ipis_sent_total%(all)s[5m])) > 0)
            ||| % q,
          },
          {
            comment:: |||
              Halts that ended per accepted interrupt, and the share of those wakeups that had
              really blocked (halt-polling did not catch the interrupt).
            |||,
            record: 'instance_vm:ipiv_vcpu_wakeups_per_interrupt:ratio_rate5m',
            expr: |||
              sum without (halted) (rate(ipiv_vcpu_wakeups_total%(all)s[5m]))
                / (sum without (delivery) (rate(ipiv_interrupts_accepted_total%(all)s[5m])) > 0)
            ||| % q,
          },
          {
            record: 'instance_vm:ipiv_vcpu_wakeups_blocked:ratio_rate5m',
            expr: |||
              sum without (halted) (rate(ipiv_vcpu_wakeups_total%(blocked)s[5m]))
                / (sum without (halted) (rate(ipiv_vcpu_wakeups_total%(all)s[5m])) > 0)
            ||| % q,
          },
          {
            comment:: 'vCPUs in halt on average (halt seconds per second).',
            record: 'instance_vm:ipiv_vcpu_halt_seconds:rate5m',
            expr: 'rate(ipiv_vcpu_halt_seconds_total%(all)s[5m])' % q,
          },
          {
            comment:: 'AMD AVIC incomplete-IPI exits by cause (AVIC hosts only).',
            record: 'instance_vm_cause:ipiv_avic_incomplete_ipis:rate5m',
            expr: 'rate(ipiv_avic_incomplete_ipis_total%(all)s[5m])' % q,
          },
        ],
      },
      {
        local p = 'instance_vm_path_quantile:ipiv_ipi_send_to_eoi_seconds:histogram_quantile_rate',
        name: 'ipiv-latency.rules',
        rules: [
          quantile(p + '5m', 'ipiv_ipi_send_to_eoi_seconds', '0.5') {
            comment:: "ICR write to the target's EOI, per VM and path.",
          },
          quantile(p + '5m', 'ipiv_ipi_send_to_eoi_seconds', '0.9'),
          quantile(p + '5m', 'ipiv_ipi_send_to_eoi_seconds', '0.99'),
          quantile(p + '30m', 'ipiv_ipi_send_to_eoi_seconds', '0.99', '30m') {
            comment:: |||
              The same p99 over 30 minutes: the baseline IpivLatencyRegression compares with
              itself a day earlier.
            |||,
          },
          {
            comment:: "The host's worst VM, per path and quantile.",
            record: 'instance_path_quantile:ipiv_ipi_send_to_eoi_seconds:max_histogram_quantile_rate5m',
            expr: 'max without (vm) (%s5m%s)' % [p, q.all],
          },
          {
            comment:: 'Means aggregate exactly: per VM and path, and per host and path.',
            record: 'instance_vm_path:ipiv_ipi_send_to_eoi_seconds:mean5m',
            expr: |||
              rate(ipiv_ipi_send_to_eoi_seconds_sum%(all)s[5m])
                / (rate(ipiv_ipi_send_to_eoi_seconds_count%(all)s[5m]) > 0)
            ||| % q,
          },
          {
            record: 'instance_path:ipiv_ipi_send_to_eoi_seconds:mean5m',
            expr: |||
              sum without (vm) (rate(ipiv_ipi_send_to_eoi_seconds_sum%(all)s[5m]))
                / (sum without (vm) (rate(ipiv_ipi_send_to_eoi_seconds_count%(all)s[5m])) > 0)
            ||| % q,
          },
          quantile('instance_vm_path_quantile:ipiv_ipi_send_to_accept_seconds:histogram_quantile_rate5m',
                   'ipiv_ipi_send_to_accept_seconds',
                   '0.5') {
            comment:: |||
              The four families below are opt-in: ipivd writes them only with
              --collector.vm-histograms=all (or --collector.per-vcpu); by default a VM carries
              only send_to_eoi (docs/metrics.md#series-budget), and these rules record nothing.
              ICR write to each target's accept (KVM's delivery work).
            |||,
          },
          quantile('instance_vm_path_quantile:ipiv_ipi_send_to_accept_seconds:histogram_quantile_rate5m',
                   'ipiv_ipi_send_to_accept_seconds',
                   '0.99'),
          quantile('instance_vm_target_quantile:ipiv_ipi_accept_to_running_seconds:histogram_quantile_rate5m',
                   'ipiv_ipi_accept_to_running_seconds',
                   '0.5') {
            comment:: |||
              Accept to the target running again (target="halted": woken; "running": next
              entry, VMX/SVM only).
            |||,
          },
          quantile('instance_vm_target_quantile:ipiv_ipi_accept_to_running_seconds:histogram_quantile_rate5m',
                   'ipiv_ipi_accept_to_running_seconds',
                   '0.99'),
          quantile('instance_vm_path_quantile:ipiv_ipi_sender_exit_seconds:histogram_quantile_rate5m',
                   'ipiv_ipi_sender_exit_seconds',
                   '0.5') {
            comment:: "The sender's exit that sent the IPI (VMX/SVM only).",
          },
          quantile('instance_vm_path_quantile:ipiv_ipi_sender_exit_seconds:histogram_quantile_rate5m',
                   'ipiv_ipi_sender_exit_seconds',
                   '0.99'),
          quantile('instance_vm_halted_quantile:ipiv_vcpu_halt_duration_seconds:histogram_quantile_rate5m',
                   'ipiv_vcpu_halt_duration_seconds',
                   '0.5') {
            comment:: 'Halt durations (halted="false": ended by halt-polling).',
          },
          quantile('instance_vm_halted_quantile:ipiv_vcpu_halt_duration_seconds:histogram_quantile_rate5m',
                   'ipiv_vcpu_halt_duration_seconds',
                   '0.99'),
          {
            comment:: 'Deliveries that could not be timed, by reason.',
            record: 'instance_vm_reason:ipiv_ipi_latency_unmatched:rate5m',
            expr: 'rate(ipiv_ipi_latency_unmatched_total%(all)s[5m])' % q,
          },
        ],
      },
    ],
  },
}
