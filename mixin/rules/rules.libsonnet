// Recording rules: the success ratios and latency quantiles that the alerts
// and dashboards use. Every rule keeps the job label, so dashboards can
// filter on it; per-pair rules keep origin_id and source_id (the leaf).
local quantiles = ['0.5', '0.9', '0.99'];

{
  prometheusRules+:: {
    local c = $._config,
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

    groups+: [
      {
        name: 'oxcross-leaf-probes',
        rules: [
          {
            record: 'origin_source:oxcross_leaf_probe_success:ratio_rate5m',
            expr: ratio('job, origin_id, source_id'),
          },
          {
            record: 'origin:oxcross_leaf_probe_success:ratio_rate5m',
            expr: ratio('job, origin_id'),
          },
        ] + [
          {
            record: 'origin_source_quantile:oxcross_leaf_probe_timings:histogram_quantile5m',
            expr: quantile(q, 'job, origin_id, source_id'),
            labels: { quantile: q },
          }
          for q in quantiles
        ] + [
          {
            record: 'origin_quantile:oxcross_leaf_probe_timings:histogram_quantile5m',
            expr: quantile(q, 'job, origin_id'),
            labels: { quantile: q },
          }
          for q in quantiles
        ],
      },
    ],
  },
}
