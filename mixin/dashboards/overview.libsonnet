// Overview: every origin as seen from every leaf at a glance.
local g = import '../lib/grafana.libsonnet';
local common = import 'common.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local cl = c.clusterLabel,
    local sel = common.sel(c),
    local rs = common.ruleSel(c),
    local ors = common.originRuleSel(c),

    // A leaf × origin grid from a per-pair instant query.
    local grid(title, description, expr, unit, steps) =
      g.table(
        title,
        description,
        [g.instantTarget(expr)],
        unit=unit,
        steps=steps,
        colored=true,
        decimals=if unit == 's' then null else 1,
        h=10,
        transformations=[{
          id: 'groupingToMatrix',
          options: { rowField: 'origin_id', columnField: 'source_id', valueField: 'Value', emptyValue: 'null' },
        }],
        overrides=[g.override('byName', 'origin_id\\source_id', [['displayName', 'origin \\ leaf'], ['custom.cellOptions', { type: 'auto' }]])],
      ),

    // A ranking of pairs: origin, leaf and one value.
    local ranking(title, description, expr, unit, steps, desc) =
      g.table(
        title,
        description,
        [g.instantTarget(expr)],
        unit=unit,
        steps=steps,
        sortBy=[{ displayName: 'Value', desc: desc }],
        overrides=[g.override('byName', 'Value', [['custom.cellOptions', { type: 'color-text' }]])],
        transformations=[{
          id: 'organize',
          options: {
            excludeByName: { Time: true, __name__: true, job: true, quantile: true, [cl]: true },
            indexByName: { origin_id: 0, source_id: 1, Value: 2 },
            renameByName: { origin_id: 'origin', source_id: 'leaf' },
          },
        }],
      ),

    'oxcross-overview.json': g.dashboard(
      c,
      'overview',
      'Overview',
      'Every origin as seen from every leaf: success, latency, the worst pairs, clock drift and the clock loop.',
      common.variables(c),
      [
        g.row('At a glance'),
        g.stat(
          'Origins',
          'Origins that the selected leaves probe.',
          [g.target('count by (%s) (count by (%s, origin_id) (oxcross_leaf_probe_results{%s}))' % [cl, cl, sel])],
          'none',
          w=6,
        ),
        g.stat(
          'Leaves',
          'Leaves that probe the selected origins.',
          [g.target('count by (%s) (count by (%s, source_id) (oxcross_leaf_probe_results{%s}))' % [cl, cl, sel])],
          'none',
          w=6,
        ),
        g.stat(
          'Pairs down',
          'Leaf → origin pairs whose last probe failed.',
          [g.target('count by (%s) (oxcross_leaf_origin_status{%s} == 0) or on () vector(0)' % [cl, sel])],
          'none',
          steps=[[null, 'green'], [1, 'red']],
          w=6,
        ),
        g.stat(
          'Success ratio',
          'Probes that succeeded over $__rate_interval, all selected pairs together.',
          [g.target(|||
            sum by (%(cl)s) (rate(oxcross_leaf_probe_results{%(sel)s, result="true"}[$__rate_interval]))
            /
            sum by (%(cl)s) (rate(oxcross_leaf_probe_results{%(sel)s}[$__rate_interval]))
          ||| % { sel: sel, cl: cl })],
          'percentunit',
          steps=common.ratioSteps,
          decimals=2,
          graph=true,
          w=6,
        ),
        grid(
          'Success ratio, origin × leaf (5m)',
          'Share of the probes of the last 5 minutes that succeeded, for every origin (rows) from every leaf (columns).',
          'origin_source:oxcross_leaf_probe_success:ratio_rate5m{%s}' % rs,
          'percentunit',
          common.ratioSteps,
        ),
        grid(
          'Median latency, origin × leaf (5m)',
          'Median round trip of the successful probes of the last 5 minutes, for every origin (rows) from every leaf (columns).',
          'origin_source_quantile:oxcross_leaf_probe_timings:histogram_quantile5m{%s, quantile="0.5"}' % rs,
          's',
          common.latencySteps(c),
        ),

        g.row('Over time'),
        g.timeseries(
          'Median latency per origin (all leaves)',
          'Median round trip of successful probes over 5 minutes, all leaves of the job together (the leaf selection does not apply).',
          [g.target('origin_quantile:oxcross_leaf_probe_timings:histogram_quantile5m{%s, quantile="0.5"}' % ors, '{{origin_id}}')],
          's',
          min=0,
        ),
        g.timeseries(
          'Success ratio per origin (all leaves)',
          'Share of probes that succeeded over 5 minutes, all leaves of the job together (the leaf selection does not apply).',
          [g.target('origin:oxcross_leaf_probe_success:ratio_rate5m{%s}' % ors, '{{origin_id}}')],
          'percentunit',
          min=0,
          max=1,
          calcs=['mean', 'min', 'lastNotNull'],
        ),

        g.row('Worst pairs'),
        ranking(
          'Lowest success ratio (5m)',
          'The ten leaf → origin pairs with the lowest share of successful probes over the last 5 minutes.',
          'bottomk by (%s) (10, origin_source:oxcross_leaf_probe_success:ratio_rate5m{%s})' % [cl, rs],
          'percentunit',
          common.ratioSteps,
          false,
        ),
        ranking(
          'Slowest pairs, 90th percentile (5m)',
          'The ten leaf → origin pairs with the highest 90th percentile round trip over the last 5 minutes.',
          'topk by (%s) (10, origin_source_quantile:oxcross_leaf_probe_timings:histogram_quantile5m{%s, quantile="0.9"})' % [cl, rs],
          's',
          common.latencySteps(c),
          true,
        ),

        g.row('Clock drift'),
        g.timeseries(
          'Clock drift per origin (median over leaves)',
          "Origin clock minus leaf clock, the median of the selected leaves' estimates (advanced mode only). A drift that only one leaf sees is that leaf's clock.",
          [g.target('quantile by (%s, origin_id) (0.5, oxcross_leaf_origin_time_drift{%s})' % [cl, sel], '{{origin_id}}')],
          's',
        ),
        g.timeseries(
          'Clock drift per pair',
          'Origin clock minus leaf clock, as each leaf estimates it (advanced mode only).',
          [g.target('oxcross_leaf_origin_time_drift{%s}' % sel, common.pair)],
          's',
        ),
        g.timeseries(
          "Origin clock against the fleet's consensus",
          "Each origin's clock minus the median origin's, the median over all leaves of the job (the clock loop's consensus; the leaf selection does not apply). Leaves' clocks cancel out; an origin further from 0 than its bound (dashed) is the origin to fix.",
          [
            g.target('origin:oxcross_leaf_origin_time_drift:consensus{%s}' % ors, '{{origin_id}}'),
            g.target('origin:oxcross_leaf_origin_time_drift_uncertainty_seconds:consensus{%s}' % ors, 'bound {{origin_id}}'),
          ],
          's',
          overrides=[g.override('byRegexp', '^bound .*', [['custom.lineStyle', { fill: 'dash', dash: [10, 10] }]])],
        ),
        ranking(
          'Worst loop residuals (beyond the bound)',
          "The ten leaf → origin pairs whose drift disagrees most with the fleet's consensus around the clock loop, less the sum of the uncertainties: above 0 (red), the path is asymmetric beyond its bound or a clock stepped.",
          'topk by (%s) (10, origin_source:oxcross_leaf_origin_time_drift:loop_residual_excess{%s})' % [cl, rs],
          's',
          [[null, 'green'], [0, 'red']],
          true,
        ),
      ],
    ),
  },
}
