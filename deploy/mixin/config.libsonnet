// What an importer may change: selectors, alert thresholds and durations, the runbook's
// address and the dashboard's identity. Override with
//   (import 'mixin.libsonnet') + { _config+:: { ipivSelector: 'cluster="prod"' } }
{
  _config+:: {
    // Added to the selector of every ipiv_* series (and every series the recording rules
    // write from them) in the rules, alerts and dashboard, e.g. 'cluster="prod"' where one
    // Prometheus holds several fleets. Empty: ipivd's series from whatever job scrapes it.
    ipivSelector: '',
    // The `up` series of ipivd's scrape job(s): IpivDown fires when one is 0.
    ipivdUpSelector: 'job="ipiv"',

    // IpivDown: how long scrapes fail first.
    ipivDownFor: '5m',
    // IpivDegraded: how long a required probe is missing first.
    ipivDegradedFor: '10m',
    // IpivEventsDropped: the window in which a lost event counts, and how long losses last.
    eventsDroppedWindow: '10m',
    eventsDroppedFor: '5m',
    // IpivFinding and IpivHostFinding: how long ipivd's finding holds first, by severity
    // (longer as the severity gets lower).
    findingFor: { critical: '5m', warning: '15m', info: '1h' },
    // IpivAccelerationLost: how far back acceleration counts as "had" (host, VM), and how
    // long its loss lasts first. An intentional change stops alerting after the window.
    accelerationLostHostWindow: '6h',
    accelerationLostVmWindow: '1h',
    accelerationLostFor: '10m',
    // IpivLatencyRegression: a VM and path's p99 send->EOI over 30 minutes is this many
    // times its value a day earlier, while it sends at least latencyRegressionMinRate
    // IPIs/s now and then (1 IPI/s: 1800 observations, enough for a p99).
    latencyRegressionFactor: 1.5,
    latencyRegressionMinRate: 1,
    latencyRegressionFor: '30m',

    // runbook_url of each alert: the lower-case alert name goes in for %s. Relative to
    // the ipiv source tree by default; point it at wherever docs/runbook.md is served.
    runbookURLPattern: 'docs/runbook.md#%s',

    dashboardUid: 'ipiv-kvm-ipis',
    dashboardTitle: 'ipiv: IPIs on KVM hosts',
    dashboardTags: ['ipiv', 'kvm', 'ipi'],
    dashboardRefresh: '30s',
    dashboardFrom: 'now-1h',
  },
}
