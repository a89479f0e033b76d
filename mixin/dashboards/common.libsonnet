// What the Oxcross dashboards share: their variables and label selectors.
local g = import '../lib/grafana.libsonnet';

{
  // Variables, the same on every dashboard: datasource, job (the leaves'
  // jobs), instance (the leaves' scrape targets), origin and leaf
  // (source_id), each multi-select with "All". Each narrows the next:
  // picking an instance leaves only its origins and its leaf.
  variables(c):: [
    g.datasourceVariable(c.datasourceRegex),
    g.queryVariable('job', 'Job', 'oxcross_leaf_config_origins{%s}' % c.leafSelector, 'job'),
    g.queryVariable('instance', 'Leaf (instance)', 'up{%s, job=~"$job"}' % c.leafSelector, 'instance'),
    g.queryVariable('origin', 'Origin', 'oxcross_leaf_probe_results{%s, job=~"$job", instance=~"$instance"}' % c.leafSelector, 'origin_id'),
    g.queryVariable('leaf', 'Leaf', 'oxcross_leaf_probe_results{%s, job=~"$job", instance=~"$instance", origin_id=~"$origin"}' % c.leafSelector, 'source_id'),
  ],

  // Selector of raw leaf metrics of the selected origins and leaves.
  sel(c):: '%s, job=~"$job", instance=~"$instance", origin_id=~"$origin", source_id=~"$leaf"' % c.leafSelector,
  // Selector of the recording rules' series (already restricted to the
  // leaves' jobs).
  ruleSel:: 'job=~"$job", origin_id=~"$origin", source_id=~"$leaf"',
  // Origin-level recording rules have no source_id.
  originRuleSel:: 'job=~"$job", origin_id=~"$origin"',

  pair:: '{{source_id}} → {{origin_id}}',

  // Success ratio colours.
  ratioSteps:: [[null, 'red'], [0.9, 'orange'], [0.99, 'green']],
  // Latency colours, from the alert threshold.
  latencySteps(c):: [[null, 'green'], [c.latencyThresholdSeconds / 2, 'orange'], [c.latencyThresholdSeconds, 'red']],
}
