// Alerts. Each has a severity, a summary, a description and a runbook_url
// into docs/runbooks.md (the anchor is the alert name in lower case). The
// description starts with the cluster (_config.clusterLabel) when the alert
// has one.
{
  local c = $._config,
  local alert(name, severity, expr, forDuration, summary, description) = {
    alert: name,
    expr: expr,
    [if forDuration != '' then 'for']: forDuration,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: '{{ with $labels.%s }}Cluster {{ . }}: {{ end }}%s' % [c.clusterLabel, description],
      runbook_url: '%s#%s' % [c.runbookURLBase, std.asciiLower(name)],
    },
  },

  // The leaves whose clock is off: beyond the threshold, in the same
  // direction, against more than half of their origins (at least
  // leafClockMinOrigins of them). Against one origin only, that origin's
  // clock is the one that is off.
  local drift = 'oxcross_leaf_origin_time_drift{%(leafSelector)s}' % c,
  local uncertainty = 'oxcross_leaf_origin_time_drift_uncertainty_seconds{%(leafSelector)s}' % c,
  local leafClockOff = std.rstripChars(|||
    (
      (
        count by (%(clusterLabel)s, job, source_id) ((%(d)s - %(u)s) > %(t)g)
          > on (%(clusterLabel)s, job, source_id) count by (%(clusterLabel)s, job, source_id) (%(d)s) / 2
        or
        count by (%(clusterLabel)s, job, source_id) ((-%(d)s - %(u)s) > %(t)g)
          > on (%(clusterLabel)s, job, source_id) count by (%(clusterLabel)s, job, source_id) (%(d)s) / 2
      )
      and on (%(clusterLabel)s, job, source_id)
      count by (%(clusterLabel)s, job, source_id) (%(d)s) >= %(n)d
    )
  ||| % { d: drift, u: uncertainty, t: c.driftThresholdSeconds, n: c.leafClockMinOrigins, clusterLabel: c.clusterLabel }, '\n'),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'oxcross-origins',
        rules: [
          alert(
            'OxcrossOriginDown',
            'critical',
            |||
              origin:oxcross_leaf_probe_success:ratio_rate5m <= %(originDownRatio)g
            ||| % c,
            c.originDownFor,
            'An origin is down from every leaf.',
            'No leaf of job {{ $labels.job }} has reached origin {{ $labels.origin_id }}: {{ $value | humanizePercentage }} of the probes of the last 5 minutes succeeded, across all leaves.',
          ),
          alert(
            'OxcrossOriginDownFromSomeLeaves',
            'warning',
            |||
              origin_source:oxcross_leaf_probe_success:ratio_rate5m <= %(originDownRatio)g
              and on (%(clusterLabel)s, job, origin_id)
              origin:oxcross_leaf_probe_success:ratio_rate5m > %(originDownRatio)g
            ||| % c,
            c.originDownFor,
            'An origin is down from a leaf but not from every leaf.',
            'Leaf {{ $labels.source_id }} has not reached origin {{ $labels.origin_id }} ({{ $value | humanizePercentage }} of its probes of the last 5 minutes succeeded), while other leaves still do: a regional or network-path problem, or a problem of this leaf.',
          ),
          alert(
            'OxcrossOriginHighLatency',
            'warning',
            |||
              origin_source_quantile:oxcross_leaf_probe_timings:histogram_quantile5m{quantile="%(latencyQuantile)s"} > %(latencyThresholdSeconds)g
            ||| % c,
            c.latencyFor,
            'An origin is slow from a leaf.',
            'The %(latencyQuantile)s quantile of the round trips from leaf {{ $labels.source_id }} to origin {{ $labels.origin_id }} over the last 5 minutes is {{ $value | humanizeDuration }}, above the threshold of %(latencyThresholdSeconds)gs.' % c,
          ),
          alert(
            'OxcrossOriginClockDrift',
            'warning',
            |||
              max by (%(clusterLabel)s, job, origin_id) (
                (
                  abs(oxcross_leaf_origin_time_drift{%(leafSelector)s})
                  - oxcross_leaf_origin_time_drift_uncertainty_seconds{%(leafSelector)s}
                )
                unless on (%(clusterLabel)s, job, source_id)
                %(leafClockOff)s
              ) > %(driftThresholdSeconds)g
            ||| % (c { leafClockOff: std.strReplace(leafClockOff, '\n', '\n  ') }),
            c.driftFor,
            "An origin's clock differs from the leaves'.",
            "Origin {{ $labels.origin_id }}'s clock is at least {{ $value | humanizeDuration }} off the clock of a leaf of job {{ $labels.job }} that probes it (the largest estimate less its uncertainty), beyond the bound of %(driftThresholdSeconds)gs. Leaves whose clock is off against most of their origins are left out: OxcrossLeafClockDrift covers them." % c,
          ),
          alert(
            'OxcrossOriginClockOffConsensus',
            'warning',
            |||
              origin:oxcross_leaf_origin_time_drift:consensus_excess > %(clockConsensusThresholdSeconds)g
              and on (%(clusterLabel)s, job, origin_id)
                quantile by (%(clusterLabel)s, job, origin_id) (0.5, origin_source:oxcross_leaf_origin_time_drift:loop_residual_excess) <= 0
              and on (%(clusterLabel)s, job, origin_id)
                count by (%(clusterLabel)s, job, origin_id) (origin_source:oxcross_leaf_origin_time_drift:loop_residual) >= %(clockConsensusMinLeaves)d
              and on (%(clusterLabel)s, job)
                count by (%(clusterLabel)s, job) (origin:oxcross_leaf_origin_time_drift:consensus) >= %(clockConsensusMinOrigins)d
            ||| % c,
            c.clockConsensusFor,
            "An origin's clock disagrees with the fleet's consensus.",
            "Origin {{ $labels.origin_id }}'s clock is at least {{ $value | humanizeDuration }} off the fleet's consensus (the median origin's clock), beyond the uncertainty and the threshold of %(clockConsensusThresholdSeconds)gs, while the leaves of job {{ $labels.job }} agree among themselves about it: the origin's clock is the one to fix." % c,
          ),
          alert(
            'OxcrossOriginResponsesCached',
            'warning',
            |||
              sum by (%(clusterLabel)s, job, origin_id, source_id) (
                rate(oxcross_leaf_probe_results{%(leafSelector)s, reason="cached"}[5m])
              ) > 0
            ||| % c,
            c.cachedFor,
            'An origin answers a leaf from a cache.',
            'Probes from leaf {{ $labels.source_id }} to origin {{ $labels.origin_id }} keep getting answers that did not come from the origin (a repeated token or a foreign nonce): something between them caches /oxcross.',
          ),
          alert(
            'OxcrossOriginPacketLoss',
            'warning',
            |||
              count by (%(clusterLabel)s, job, origin_id) (
                (
                  1 - sum by (%(clusterLabel)s, job, origin_id, source_id) (
                    rate(oxcross_leaf_probe_packets_received_total{%(leafSelector)s}[5m])
                  )
                  / sum by (%(clusterLabel)s, job, origin_id, source_id) (
                    rate(oxcross_leaf_probe_packets_sent_total{%(leafSelector)s}[5m])
                  )
                ) > %(packetLossRatio)g
              ) >= %(packetLossMinLeaves)d
            ||| % c,
            c.packetLossFor,
            'Packets to an origin are lost from several leaves.',
            "{{ $value }} leaves of job {{ $labels.job }} lose more than %(packetLossPercent)s of the packets of their trains (icmp or tcp) to origin {{ $labels.origin_id }}, over 5 minutes. Seen from several leaves at once, the loss is near the origin or on a path they share, not one leaf's uplink." % (c { packetLossPercent: '%g%%' % (c.packetLossRatio * 100) }),
          ),
          alert(
            'OxcrossOriginTLSCertificateExpiring',
            'warning',
            |||
              (
                min by (%(clusterLabel)s, job, origin_id) (
                  oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds{%(leafSelector)s}
                ) - time() < %(tlsExpiryWarningDays)g * 86400
              )
              unless on (%(clusterLabel)s, job, origin_id)
              (
                min by (%(clusterLabel)s, job, origin_id) (
                  oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds{%(leafSelector)s}
                ) - time() < %(tlsExpiryCriticalDays)g * 86400
              )
            ||| % c,
            c.tlsExpiryFor,
            "An origin's TLS certificate expires soon.",
            'The TLS certificate that origin {{ $labels.origin_id }} presents to the leaves expires in {{ $value | humanizeDuration }} (less than %(tlsExpiryWarningDays)g days). From %(tlsExpiryCriticalDays)g days on, OxcrossOriginTLSCertExpiringCritical fires instead.' % c,
          ),
          alert(
            'OxcrossOriginTLSCertExpiringCritical',
            'critical',
            |||
              min by (%(clusterLabel)s, job, origin_id) (
                oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds{%(leafSelector)s}
              ) - time() < %(tlsExpiryCriticalDays)g * 86400
            ||| % c,
            c.tlsExpiryFor,
            "An origin's TLS certificate is about to expire.",
            'The TLS certificate that origin {{ $labels.origin_id }} presents to the leaves expires in {{ $value | humanizeDuration }} (less than %(tlsExpiryCriticalDays)g days); a negative duration means it has expired.' % c,
          ),
        ],
      },
      {
        name: 'oxcross-leaves',
        rules: [
          alert(
            'OxcrossLeafDown',
            'warning',
            |||
              up{%(leafSelector)s} == 0
            ||| % c,
            c.leafDownFor,
            'A leaf is down.',
            'Prometheus cannot scrape leaf {{ $labels.instance }} of job {{ $labels.job }}: the origins lose this vantage point.',
          ),
          alert(
            'OxcrossLeavesMissing',
            'warning',
            |||
              absent(up{%(leafSelector)s})
            ||| % c,
            c.leafDownFor,
            'Prometheus finds no Oxcross leaf to scrape.',
            'There is no target for the leaves (%(leafSelector)s{{ with $labels.job }}, job {{ . }}{{ end }}): service discovery of the leaves returns nothing, or the scrape job is gone.' % c,
          ),
          alert(
            'OxcrossLeafNotProbing',
            'warning',
            |||
              (
                sum by (%(clusterLabel)s, job, instance) (rate(oxcross_leaf_probe_results{%(leafSelector)s}[10m])) == 0
              )
              or
              (
                oxcross_leaf_config_origins{%(leafSelector)s} == 0
              )
            ||| % c,
            c.leafNotProbingFor,
            'A leaf probes nothing.',
            'Leaf {{ $labels.instance }} is up but has not run a probe in 10 minutes, or its config lists no origin.',
          ),
          alert(
            'OxcrossLeafClockDrift',
            'warning',
            |||
              quantile by (%(clusterLabel)s, job, source_id) (0.5, abs(%(d)s) - %(u)s)
              and on (%(clusterLabel)s, job, source_id)
              %(off)s
            ||| % { d: drift, u: uncertainty, off: leafClockOff, clusterLabel: c.clusterLabel },
            c.driftFor,
            "A leaf's clock is off.",
            "Leaf {{ $labels.source_id }} of job {{ $labels.job }} measures the clocks of most of its origins off in the same direction, by {{ $value | humanizeDuration }} (the median estimate less its uncertainty), beyond the bound of %(driftThresholdSeconds)gs: the leaf's own clock is the one that is wrong, and its drift measurements of every origin are off with it." % c,
          ),
          alert(
            'OxcrossLeafProbesSkipped',
            'warning',
            |||
              sum by (%(clusterLabel)s, job, instance) (
                increase(oxcross_leaf_probe_skipped_total{%(leafSelector)s}[10m])
              ) > 0
            ||| % c,
            c.probesSkippedFor,
            'A leaf skips probes.',
            'Leaf {{ $labels.instance }} of job {{ $labels.job }} skipped {{ $value | printf "%%.0f" }} probe slots in the last 10 minutes, and has kept skipping for %(probesSkippedFor)s: its scheduler cannot keep up (a probe still running when the next one is due, or no slot of --probe.max-concurrency free in time), so its origins are probed less often than configured.' % c,
          ),
          alert(
            'OxcrossLeafConfigStale',
            'warning',
            |||
              (
                time() - (
                  oxcross_leaf_config_last_refresh_success_timestamp_seconds{%(leafSelector)s} > 0
                  or process_start_time_seconds{%(leafSelector)s}
                )
              ) > %(configStaleSeconds)g
              and on (%(clusterLabel)s, job, instance)
              (increase(oxcross_leaf_config_refresh_failures_total{%(leafSelector)s}[10m]) > 0)
            ||| % c,
            c.configStaleFor,
            "A leaf's config is stale.",
            'Leaf {{ $labels.instance }} has not loaded its config for {{ $value | humanizeDuration }} (or since it started from its cache file) and its refreshes keep failing: it probes with its last good config and misses any change.',
          ),
        ],
      },
      {
        name: 'oxcross-configserver',
        rules: [
          alert(
            'OxcrossConfigserverDown',
            'warning',
            |||
              up{%(configserverSelector)s} == 0
            ||| % c,
            c.configserverDownFor,
            'A configserver is down.',
            'Prometheus cannot scrape configserver {{ $labels.instance }}: leaves keep their last config but get no change, and service discovery of the leaves may fail.',
          ),
          alert(
            'OxcrossConfigserverReloadFailed',
            'warning',
            |||
              oxcross_configserver_config_last_reload_successful{%(configserverSelector)s} == 0
            ||| % c,
            c.configserverReloadFailedFor,
            'A configserver failed to reload its config.',
            'The last reload of the config on configserver {{ $labels.instance }} failed: it keeps serving the previous config until the file is fixed.',
          ),
          alert(
            'OxcrossConfigserverRegistryStoreDown',
            'warning',
            |||
              oxcross_configserver_registry_store_up{%(configserverSelector)s} == 0
            ||| % c,
            c.configserverRegistryStoreDownFor,
            "A configserver cannot reach its registry's etcd.",
            'Configserver {{ $labels.instance }} has not reached the etcd of its leaf registry (--registry.etcd.endpoints): it keeps serving /config and the last registry on /sd/leaves, but refuses registrations (heartbeats get 503), its /-/ready is 503, and leaves that register in the meantime are not listed.',
          ),
        ],
      },
    ],
  },
}
