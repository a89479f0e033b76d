// What the Oxcross dashboards share: their variables and label selectors.
local g = import '../lib/grafana.libsonnet';

{
  // Variables, the same on every dashboard: datasource, job (the leaves'
  // jobs), instance (the leaves' scrape targets), origin and leaf
  // (source_id), each multi-select with "All". Each narrows the next:
  // picking an instance leaves only its origins and its leaf.
  //
  // Before them, cluster (_config.clusterLabel), as in kubernetes-mixin: one
  // cluster at a time, so that no panel mixes two; shown with
  // _config.showMultiCluster, hidden otherwise (it then holds the only
  // cluster, or none: without the label, cluster="" matches every series).
  variables(c):: [
    g.datasourceVariable(c.datasourceRegex),
    g.queryVariable('cluster', 'Cluster', 'up{%s}' % c.leafSelector, c.clusterLabel, multi=false) {
      hide: if c.showMultiCluster then 0 else 2,
    },
    g.queryVariable('job', 'Job', 'oxcross_leaf_config_origins{%s, %s}' % [c.leafSelector, $.clusterSel(c)], 'job'),
    g.queryVariable('instance', 'Leaf (instance)', 'up{%s, %s, job=~"$job"}' % [c.leafSelector, $.clusterSel(c)], 'instance'),
    g.queryVariable('origin', 'Origin', 'oxcross_leaf_probe_results{%s, %s, job=~"$job", instance=~"$instance"}' % [c.leafSelector, $.clusterSel(c)], 'origin_id'),
    g.queryVariable('leaf', 'Leaf', 'oxcross_leaf_probe_results{%s, %s, job=~"$job", instance=~"$instance", origin_id=~"$origin"}' % [c.leafSelector, $.clusterSel(c)], 'source_id'),
  ],

  // Selector of the selected cluster.
  clusterSel(c):: '%s="$cluster"' % c.clusterLabel,
  // Selector of raw leaf metrics of the selected origins and leaves.
  sel(c):: '%s, %s, job=~"$job", instance=~"$instance", origin_id=~"$origin", source_id=~"$leaf"' % [c.leafSelector, $.clusterSel(c)],
  // Selector of the recording rules' series (already restricted to the
  // leaves' jobs).
  ruleSel(c):: '%s, job=~"$job", origin_id=~"$origin", source_id=~"$leaf"' % $.clusterSel(c),
  // Origin-level recording rules have no source_id.
  originRuleSel(c):: '%s, job=~"$job", origin_id=~"$origin"' % $.clusterSel(c),

  pair:: '{{source_id}} → {{origin_id}}',

  // Success ratio colours.
  ratioSteps:: [[null, 'red'], [0.9, 'orange'], [0.99, 'green']],
  // Latency colours, from the alert threshold.
  latencySteps(c):: [[null, 'green'], [c.latencyThresholdSeconds / 2, 'orange'], [c.latencyThresholdSeconds, 'red']],
}
