// Alerts on ipivd's metrics (docs/metrics.md). Each has a severity (critical, warning, info:
// the same scale as ipivd's findings), a summary, a description and a runbook_url into
// docs/runbook.md, whose section for an alert is headed by the alert's name.
local promql = import 'lib/promql.libsonnet';

// '5m' -> '5 minutes'; within(d) -> 'the last 5 minutes', 'the last hour'.
local digits = { [c]: true for c in std.stringChars('0123456789') };
local units = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };
local parse(d) =
  local n = d[0:std.length(d) - 1], u = d[std.length(d) - 1];
  if std.objectHas(units, u) && n != '' && std.length([c for c in std.stringChars(n) if !std.objectHas(digits, c)]) == 0
  then { n: std.parseInt(n), unit: units[u] }
  else error "ipiv mixin: duration '%s' is not a number and one unit of s, m, h, d, w (90m, not 1h30m)" % d;
local words(d) = local p = parse(d); '%d %s%s' % [p.n, p.unit, if p.n == 1 then '' else 's'];
local within(d) = local p = parse(d); 'the last ' + (if p.n == 1 then p.unit else words(d));
// A YAML folded (>-) paragraph: the lines joined with spaces.
local fold(s) = std.join(' ', std.split(std.rstripChars(s, '\n'), '\n'));

{
  prometheusAlerts+:: {
    local c = $._config,
    local s(m=[]) = promql.selector(c, m),
    local runbook(name) = c.runbookURLPattern % std.asciiLower(name),
    local severities = ['critical', 'warning', 'info'],
    // One alert per severity of ipivd's finding, the alert keeping that severity.
    local finding(name, metric, annotations) = [
      {
        alert: name,
        expr: '%s%s == 1' % [metric, s(['severity="%s"' % sev])],
        'for': c.findingFor[sev],
        labels: { severity: sev },
        annotations: annotations { runbook_url: runbook(name) },
      }
      for sev in severities
    ],
    local accelLabels = 'vendor, model, backend, mechanism, apicv_hardware, apicv_enabled, ipiv_hardware, ipiv_enabled, ipiv_effective',

    comment:: |||
      runbook_url is relative to the ipiv source tree unless _config.runbookURLPattern says
      otherwise; where the docs are served from a web server, set it, or rewrite the prefix:
        sed 's#runbook_url: docs/#runbook_url: https://docs.example.org/ipiv/#' ipiv-alerts.yml

      IpivDown watches the up series of %(up)s; the other alerts work on whatever job
      scrapes ipivd. IpivLatencyRegression needs the recording rules of ipiv-rules.yml.
    ||| % { up: if c.ipivdUpSelector == '' then 'every job' else c.ipivdUpSelector },
    groups+: [
      {
        name: 'ipiv-collector.alerts',
        rules: [
          {
            alert: 'IpivDown',
            expr: 'up{%s} == 0' % promql.matchers(c, [c.ipivdUpSelector], ','),
            'for': c.ipivDownFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'ipivd on {{ $labels.instance }} cannot be scraped',
              description: fold(|||
                Prometheus has failed to scrape ipivd at {{ $labels.instance }} (job
                {{ $labels.job }}) for %s: the IPIs of the VMs on that host are not
                being recorded and none of the other ipiv alerts can fire for it.
              ||| % words(c.ipivDownFor)),
              runbook_url: runbook('IpivDown'),
            },
          },
          {
            alert: 'IpivDegraded',
            expr: 'ipiv_degraded%s == 1' % s(),
            'for': c.ipivDegradedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'ipivd on {{ $labels.instance }} runs without a required probe',
              description: fold(|||
                ipivd at {{ $labels.instance }} could not attach a required BPF probe
                (ipiv_probe_attached{optional="false"} == 0), so its IPI counts on that host
                are incomplete. /api/v1/status names the probe and the error.
              |||),
              runbook_url: runbook('IpivDegraded'),
            },
          },
          {
            comment:: |||
              Only *_map_full reasons are losses: no_identity (an event from a thread of no
              known VM) and eoi_duplicate (the second kvm_eoi of each EOI) are filtered on
              purpose and grow all the time.
            |||,
            alert: 'IpivEventsDropped',
            expr: 'increase(ipiv_events_dropped_total%s[%s]) > 0' % [s(['reason=~".+_map_full"']), c.eventsDroppedWindow],
            'for': c.eventsDroppedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'ipivd on {{ $labels.instance }} is losing events ({{ $labels.reason }})',
              description: fold(|||
                ipivd at {{ $labels.instance }} dropped {{ $value | printf "%%.0f" }} events in
                %s because a BPF map was full (reason
                {{ $labels.reason }}); counts or latency samples on that host are missing
                what was dropped.
              ||| % within(c.eventsDroppedWindow)),
              runbook_url: runbook('IpivEventsDropped'),
            },
          },
        ],
      },
      {
        name: 'ipiv-diagnosis.alerts',
        local vmFindings = finding('IpivFinding', 'ipiv_finding', {
          summary: 'VM {{ $labels.vm }} on {{ $labels.instance }}: {{ $labels.rule }} ({{ $labels.severity }})',
          description: fold(|||
            ipivd's diagnosis rule {{ $labels.rule }} holds for VM {{ $labels.vm }} on
            {{ $labels.instance }}: its IPIs are not getting the acceleration the host can
            give. Evidence and remedy: curl -s
            'http://{{ $labels.instance }}/api/v1/findings?vm={{ $labels.vm | urlquery }}'
          |||),
        }),
        rules: [vmFindings[0] {
          comment:: |||
            A finding is ipivd's own diagnosis (every --diag.window seconds); the alert keeps
            its severity. The for: gets longer as the severity gets lower.
          |||,
        }] + vmFindings[1:] + finding('IpivHostFinding', 'ipiv_host_finding', {
          summary: 'Host {{ $labels.instance }}: {{ $labels.rule }} ({{ $labels.severity }})',
          description: fold(|||
            ipivd's host diagnosis rule {{ $labels.rule }} holds on {{ $labels.instance }}:
            the host does not give IPI acceleration it could, or has none. Evidence and
            remedy: curl -s 'http://{{ $labels.instance }}/api/v1/findings'
          |||),
        }) + [
          {
            comment:: |||
              The host had IPI virtualization in effect (ipiv_effective), or APICv/AVIC enabled,
              within %(w)s and, while ipivd still reports the host's state, no longer
              has (a module reload with enable_ipiv/enable_apicv/avic off, a kernel without it, a
              BIOS change). An intentional change stops alerting after %(d)s.
            ||| % { w: within(c.accelerationLostHostWindow), d: words(c.accelerationLostHostWindow) },
            alert: 'IpivAccelerationLost',
            expr: |||
              (
                  max without (%(l)s)
                    (max_over_time(ipiv_host_accel_info%(ipiv)s[%(w)s]))
                  unless on (job, instance) ipiv_host_accel_info%(ipiv)s
                or
                  max without (%(l)s)
                    (max_over_time(ipiv_host_accel_info%(apicv)s[%(w)s]))
                  unless on (job, instance) ipiv_host_accel_info%(apicv)s
              )
              and on (job, instance) ipiv_host_accel_info%(all)s
            ||| % {
              l: accelLabels,
              w: c.accelerationLostHostWindow,
              ipiv: s(['ipiv_effective="yes"']),
              apicv: s(['apicv_enabled="yes"']),
              all: s(),
            },
            'for': c.accelerationLostFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Host {{ $labels.instance }} lost APICv/AVIC or IPI virtualization',
              description: fold(|||
                ipiv_host_accel_info on {{ $labels.instance }} said IPIs were accelerated
                (ipiv_effective="yes") or APICv/AVIC was enabled within %s, and
                no longer does: more IPIs (or all) of every VM on the host now exit to KVM.
              ||| % within(c.accelerationLostHostWindow)),
              runbook_url: runbook('IpivAccelerationLost'),
            },
          },
          {
            comment:: |||
              A running VM had vCPUs with APICv/AVIC active within %s and now has
              none (an inhibit was set: ipiv_apicv_inhibited says which).
            ||| % within(c.accelerationLostVmWindow),
            alert: 'IpivAccelerationLost',
            expr: |||
              ipiv_vm_vcpus_apicv_active%(all)s == 0
              and max_over_time(ipiv_vm_vcpus_apicv_active%(all)s[%(w)s]) > 0
              unless on (job, instance, vm) ipiv_vm_exited%(all)s == 1
            ||| % { all: s(), w: c.accelerationLostVmWindow },
            'for': c.accelerationLostFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'VM {{ $labels.vm }} on {{ $labels.instance }} lost APICv/AVIC',
              description: fold(|||
                VM {{ $labels.vm }} on {{ $labels.instance }} had vCPUs with APICv/AVIC active
                within %s and has none now: its IPIs and EOIs exit again.
                ipiv_apicv_inhibited{vm="{{ $labels.vm }}"} names the inhibit reasons.
              ||| % within(c.accelerationLostVmWindow)),
              runbook_url: runbook('IpivAccelerationLost'),
            },
          },
        ],
      },
      {
        name: 'ipiv-latency.alerts',
        rules: [
          {
            comment:: |||
              p99 send->EOI over the last 30 minutes at least %(f)s times what it was at the same
              time a day earlier, for a VM and path that sent at least %(r)s IPI/s then and now
              (1 IPI/s: 1800 observations, enough for a p99).
            ||| % { f: c.latencyRegressionFactor, r: c.latencyRegressionMinRate },
            alert: 'IpivLatencyRegression',
            expr: |||
              %(p99)s
                > %(f)s * (%(p99)s offset 1d)
              and ignoring (quantile) rate(ipiv_ipi_send_to_eoi_seconds_count%(all)s[30m]) >= %(r)s
              and ignoring (quantile) rate(ipiv_ipi_send_to_eoi_seconds_count%(all)s[30m] offset 1d) >= %(r)s
            ||| % {
              p99: 'instance_vm_path_quantile:ipiv_ipi_send_to_eoi_seconds:histogram_quantile_rate30m' + s(['quantile="0.99"']),
              f: c.latencyRegressionFactor,
              r: c.latencyRegressionMinRate,
              all: s(),
            },
            'for': c.latencyRegressionFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'VM {{ $labels.vm }} on {{ $labels.instance }}: p99 send→EOI {{ $value | humanizeDuration }}, %s× yesterday' % c.latencyRegressionFactor,
              description: fold(|||
                The 99th percentile of the time from the ICR write to the target's EOI
                ({{ $labels.path }} path) of VM {{ $labels.vm }} on {{ $labels.instance }} is
                {{ $value | humanizeDuration }} over the last 30 minutes, more than %s times
                its value at the same time yesterday.
              ||| % c.latencyRegressionFactor),
              runbook_url: runbook('IpivLatencyRegression'),
            },
          },
        ],
      },
    ],
  },
}
