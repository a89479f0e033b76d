// Recording rules: the clock loop (drifts checked against each other), and
// the success ratios and latency quantiles that the alerts
// and dashboards use. Every rule keeps the cluster label
// (_config.clusterLabel) and the job label, so that clusters never mix and
// dashboards can filter on both; per-pair rules keep origin_id and
// source_id (the leaf).
local quantiles = ['0.5', '0.9', '0.99'];

{
  prometheusRules+:: {
    local c = $._config,
    local cl = c.clusterLabel,
    local results = 'oxcross_leaf_probe_results{%s}' % c.leafSelector,
    local ok = 'oxcross_leaf_probe_results{%s, result="true"}' % c.leafSelector,
    local buckets = 'oxcross_leaf_probe_timings_bucket{%s}' % c.leafSelector,
    local native = 'oxcross_leaf_probe_timings{%s}' % c.leafSelector,

    // Success ratio over 5 minutes, aggregated by the given labels.
    local ratio(by) =
      |||
        sum by (%(by)s) (rate(%(ok)s[5m]))
        /
        sum by (%(by)s) (rate(%(results)s[5m]))
      ||| % { by: by, ok: ok, results: results },

    // Latency quantile of successful probes over 5 minutes, from the classic
    // buckets or, when Prometheus stores only the native histogram, from that.
    local quantile(q, by) =
      |||
        histogram_quantile(%(q)s, sum by (le, %(by)s) (rate(%(buckets)s[5m])))
        or
        histogram_quantile(%(q)s, sum by (%(by)s) (rate(%(native)s[5m])))
      ||| % { q: q, by: by, buckets: buckets, native: native },

    // The clock loop. For leaves A, B and origins X, Y the drifts must agree
    // around the loop: (A→X − A→Y) − (B→X − B→Y) = 0, whatever the leaves'
    // clocks. Rather than every pair of leaves × pair of origins, each
    // drift is compared with the leaf's median over its origins (which
    // cancels the leaf's clock), and that with the median over the leaves
    // (the fleet's consensus about the origin); see mixin/README.md.
    local drift = 'avg by (%s, job, origin_id, source_id) (oxcross_leaf_origin_time_drift{%s})' % [cl, c.leafSelector],
    local unc = 'avg by (%s, job, origin_id, source_id) (oxcross_leaf_origin_time_drift_uncertainty_seconds{%s})' % [cl, c.leafSelector],
    local loop = 'oxcross_leaf_origin_time_drift',
    local loopUnc = 'oxcross_leaf_origin_time_drift_uncertainty_seconds',

    groups+: [
      {
        name: 'oxcross-leaf-clock-loop',
        rules: [
          {
            // r_L(X): leaf L's drift to X less its median drift over all
            // its origins. The leaf's own clock cancels out.
            record: 'origin_source:%s:offset_from_median_origin' % loop,
            expr: |||
              %(drift)s
              - on (%(clusterLabel)s, job, source_id) group_left ()
                quantile by (%(clusterLabel)s, job, source_id) (0.5, %(drift)s)
            ||| % { drift: drift, clusterLabel: cl },
          },
          {
            // Its bound: the drift's uncertainty plus how far the median
            // could be off. A median is monotone in its inputs, so it lies
            // between the median of (drift − uncertainty) and that of
            // (drift + uncertainty): the larger of the two distances.
            record: 'origin_source:%s:offset_from_median_origin' % loopUnc,
            expr: |||
              %(unc)s
              + on (%(clusterLabel)s, job, source_id) group_left ()
                (
                  (
                    quantile by (%(clusterLabel)s, job, source_id) (0.5, %(drift)s + %(unc)s)
                    - quantile by (%(clusterLabel)s, job, source_id) (0.5, %(drift)s)
                    >=
                    quantile by (%(clusterLabel)s, job, source_id) (0.5, %(drift)s)
                    - quantile by (%(clusterLabel)s, job, source_id) (0.5, %(drift)s - %(unc)s)
                  )
                  or
                  quantile by (%(clusterLabel)s, job, source_id) (0.5, %(drift)s)
                  - quantile by (%(clusterLabel)s, job, source_id) (0.5, %(drift)s - %(unc)s)
                )
            ||| % { drift: drift, unc: unc, clusterLabel: cl },
          },
          {
            // c(X): the fleet's consensus about origin X, the median over the
            // leaves of r_L(X): X's clock minus the median origin's clock.
            record: 'origin:%s:consensus' % loop,
            expr: |||
              quantile by (%(clusterLabel)s, job, origin_id) (0.5, origin_source:%(loop)s:offset_from_median_origin)
            ||| % { loop: loop, clusterLabel: cl },
          },
          {
            // Its bound, the same way: the larger distance from c(X) to the
            // median over the leaves of r ± its bound.
            record: 'origin:%s:consensus' % loopUnc,
            expr: |||
              (
                quantile by (%(clusterLabel)s, job, origin_id) (0.5, %(r)s + %(br)s)
                - %(c)s
                >=
                %(c)s
                - quantile by (%(clusterLabel)s, job, origin_id) (0.5, %(r)s - %(br)s)
              )
              or
              %(c)s
              - quantile by (%(clusterLabel)s, job, origin_id) (0.5, %(r)s - %(br)s)
            ||| % {
              r: 'origin_source:%s:offset_from_median_origin' % loop,
              br: 'origin_source:%s:offset_from_median_origin' % loopUnc,
              c: 'origin:%s:consensus' % loop,
              clusterLabel: cl,
            },
          },
          {
            // e_L(X): the loop residual of leaf L and origin X, r_L(X) − c(X).
            // 0 when the paths are symmetric; the residual of leaves A, B and
            // origins X, Y is e_A(X) − e_A(Y) − e_B(X) + e_B(Y).
            record: 'origin_source:%s:loop_residual' % loop,
            expr: |||
              origin_source:%(loop)s:offset_from_median_origin
              - on (%(clusterLabel)s, job, origin_id) group_left ()
                origin:%(loop)s:consensus
            ||| % { loop: loop, clusterLabel: cl },
          },
          {
            record: 'origin_source:%s:loop_residual' % loopUnc,
            expr: |||
              origin_source:%(unc)s:offset_from_median_origin
              + on (%(clusterLabel)s, job, origin_id) group_left ()
                origin:%(unc)s:consensus
            ||| % { unc: loopUnc, clusterLabel: cl },
          },
          {
            // |e_L(X)| beyond its bound: above 0, the path from L to X is
            // asymmetric beyond its uncertainty (or a clock stepped).
            record: 'origin_source:%s:loop_residual_excess' % loop,
            expr: |||
              abs(origin_source:%(loop)s:loop_residual)
              - origin_source:%(unc)s:loop_residual
            ||| % { loop: loop, unc: loopUnc },
          },
          {
            // |c(X)| beyond its bound: above 0, origin X's clock is off the
            // median origin's by at least that much.
            record: 'origin:%s:consensus_excess' % loop,
            expr: |||
              abs(origin:%(loop)s:consensus)
              - origin:%(unc)s:consensus
            ||| % { loop: loop, unc: loopUnc },
          },
        ],
      },
      {
        name: 'oxcross-leaf-probes',
        rules: [
          {
            record: 'origin_source:oxcross_leaf_probe_success:ratio_rate5m',
            expr: ratio(cl + ', job, origin_id, source_id'),
          },
          {
            record: 'origin:oxcross_leaf_probe_success:ratio_rate5m',
            expr: ratio(cl + ', job, origin_id'),
          },
        ] + [
          {
            record: 'origin_source_quantile:oxcross_leaf_probe_timings:histogram_quantile5m',
            expr: quantile(q, cl + ', job, origin_id, source_id'),
            labels: { quantile: q },
          }
          for q in quantiles
        ] + [
          {
            record: 'origin_quantile:oxcross_leaf_probe_timings:histogram_quantile5m',
            expr: quantile(q, cl + ', job, origin_id'),
            labels: { quantile: q },
          }
          for q in quantiles
        ],
      },
    ],
  },
}
