// ipiv's monitoring mixin: prometheusRules (recording), prometheusAlerts and
// grafanaDashboards for ipivd's metrics, tuned through _config (config.libsonnet):
//   local ipiv = (import 'mixin.libsonnet') + { _config+:: { ipivSelector: 'cluster="prod"' } };
//   { 'ipiv-alerts.yml': std.manifestYamlDoc(ipiv.prometheusAlerts) }
// render writes deploy/'s rule files and dashboard from it. A rule's or group's hidden
// `comment::` field says why it is written so; render puts it in the YAML as a comment.
(import 'config.libsonnet') +
(import 'rules.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards.libsonnet')
