// Settings of the Oxcross mixin. Override any of them in your own jsonnet:
//
//   (import 'oxcross/mixin/mixin.libsonnet') + {
//     _config+:: { leafSelector: 'job="leaves"', latencyThresholdSeconds: 0.5 },
//   }
{
  _config+:: {
    // Label selectors of the Prometheus jobs that scrape the leaves and the
    // configserver. Every query of the mixin is restricted to them.
    leafSelector: 'job="oxcross-leaf"',
    configserverSelector: 'job="oxcross-configserver"',

    // The label that tells clusters (or Prometheus servers) apart when
    // several send to one Thanos, Mimir or VictoriaMetrics, as
    // kubernetes-mixin's clusterLabel: every aggregation of the rules, alerts
    // and dashboards keeps it, so that an alert names its cluster and no
    // panel mixes two. Series without it (one Prometheus) work unchanged.
    clusterLabel: 'cluster',
    // Show the dashboards' cluster variable (one cluster at a time). Hidden,
    // it still selects the only cluster, or none when there is no such label.
    showMultiCluster: false,

    // An origin counts as down from a leaf when at most this fraction of the
    // leaf's probes succeeded over the last 5 minutes (0: every probe failed).
    originDownRatio: 0,
    originDownFor: '5m',

    // Latency: the quantile of successful probes' round trips (from the
    // recording rules: 0.5, 0.9 or 0.99) that must stay below the threshold.
    latencyQuantile: '0.9',
    latencyThresholdSeconds: 1,
    latencyFor: '15m',

    // Clock drift: alert when |drift| minus its uncertainty exceeds this, so
    // that a slow or asymmetric path alone cannot fire it.
    driftThresholdSeconds: 0.1,
    driftFor: '15m',
    // A leaf's clock is off (OxcrossLeafClockDrift, and its pairs leave
    // OxcrossOriginClockDrift) when more than half of its origins, at least
    // this many, drift beyond the threshold in the same direction.
    leafClockMinOrigins: 2,

    // The fleet's clock loop (recording rules of the group
    // oxcross-leaf-clock-loop): alert when an origin's clock is further than
    // this from the fleet's consensus, beyond the uncertainty bound, while
    // most leaves agree about it. The consensus needs at least this many
    // leaves and origins to tell which origin is the odd one.
    clockConsensusThresholdSeconds: 0.01,
    clockConsensusMinLeaves: 3,
    clockConsensusMinOrigins: 3,
    clockConsensusFor: '15m',

    // Answers served from a cache (reason="cached"): alert when they keep
    // coming for this long.
    cachedFor: '10m',

    // Packet loss of the icmp and tcp kinds' trains (packets > 1): alert
    // when more than this ratio of an origin's packets is lost over 5
    // minutes, from at least packetLossMinLeaves leaves at once (one leaf's
    // bad uplink must not page), for packetLossFor.
    packetLossRatio: 0.05,
    packetLossMinLeaves: 2,
    packetLossFor: '10m',

    // Leaves and the configserver.
    leafDownFor: '5m',
    leafNotProbingFor: '15m',
    // Skipped probe slots (the scheduler cannot keep up): alert when they
    // keep coming for this long.
    probesSkippedFor: '15m',
    // A leaf that follows a configserver refreshes every
    // --config.refresh-interval (60s by default); its config is stale when
    // no refresh succeeded for this long and refreshes keep failing.
    configStaleSeconds: 900,
    configStaleFor: '5m',
    configserverDownFor: '5m',
    configserverReloadFailedFor: '5m',
    // The configserver's registry in etcd (--registry.etcd.endpoints) is
    // unreachable: replicas serve but refuse registrations.
    configserverRegistryStoreDownFor: '5m',

    // TLS certificates of origins.
    tlsExpiryWarningDays: 14,
    tlsExpiryCriticalDays: 3,
    tlsExpiryFor: '15m',

    // Where each alert's runbook_url points: <base>#<alert name in lower case>.
    runbookURLBase: 'https://github.com/oxcross/oxcross/blob/main/docs/runbooks.md',

    // Dashboards.
    dashboardTags: ['oxcross'],
    dashboardTitlePrefix: 'Oxcross / ',
    dashboardUIDPrefix: 'oxcross-',
    dashboardRefresh: '1m',
    dashboardTimeFrom: 'now-6h',
    dashboardTimezone: '',
    // The data source the dashboards' datasource variable starts with.
    datasourceRegex: '',
  },
}
