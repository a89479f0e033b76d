// Origin detail: the latency distribution, quantiles per leaf, the phases
// of a probe, successes and failures, the last probe, clock drift, and the
// packet loss and round-trip spread of trains.
local g = import '../lib/grafana.libsonnet';
local common = import 'common.libsonnet';

local phases = ['resolve', 'connect', 'tls', 'processing', 'transfer'];

{
  grafanaDashboards+:: {
    local c = $._config,
    local cl = c.clusterLabel,
    local sel = common.sel(c),
    local rs = common.ruleSel(c),

    // A table of the selected pairs, one row per leaf → origin, one column
    // per query (merged on the pair's labels).
    local by = cl + ', job, instance, origin_id, source_id',
    local pairTable(title, description, columns, overrides, h=8, w=24) =
      g.table(
        title,
        description,
        [g.instantTarget('max by (%s) (%s)' % [by, col[1]]) for col in columns],
        h=h,
        w=w,
        overrides=overrides,
        sortBy=[{ displayName: 'origin', desc: false }],
        transformations=[
          { id: 'merge', options: {} },
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true, job: true, instance: true, [cl]: true },
              indexByName: { origin_id: 0, source_id: 1 } + {
                ['Value #' + std.char(65 + i)]: i + 2
                for i in std.range(0, std.length(columns) - 1)
              },
              renameByName: { origin_id: 'origin', source_id: 'leaf' } + {
                ['Value #' + std.char(65 + i)]: columns[i][0]
                for i in std.range(0, std.length(columns) - 1)
              },
            },
          },
        ],
      ),
    local quantilePanel(q, name) = g.timeseries(
      '%s latency per leaf (5m)' % name,
      'The %s of the round trips of successful probes over 5 minutes, per leaf → origin pair.' % name,
      [g.target('origin_source_quantile:oxcross_leaf_probe_timings:histogram_quantile5m{%s, quantile="%s"}' % [rs, q], common.pair)],
      's',
      w=8,
      min=0,
      calcs=['mean', 'max'],
    ),

    'oxcross-origin.json': g.dashboard(
      c,
      'origin',
      'Origin',
      'One or more origins in detail: latency distribution and quantiles per leaf, probe phases, failures by reason, the last probe, clock drift.',
      common.variables(c),
      [
        g.row('At a glance'),
        g.stat(
          'Success ratio',
          'Probes of the selected pairs that succeeded over $__rate_interval.',
          [g.target(|||
            sum by (%(cl)s) (rate(oxcross_leaf_probe_results{%(sel)s, result="true"}[$__rate_interval]))
            /
            sum by (%(cl)s) (rate(oxcross_leaf_probe_results{%(sel)s}[$__rate_interval]))
          ||| % { sel: sel, cl: cl })],
          'percentunit',
          steps=common.ratioSteps,
          decimals=2,
          graph=true,
        ),
        g.stat(
          'Median latency',
          'Median round trip of the successful probes of the selected pairs over $__rate_interval.',
          [g.target('histogram_quantile(0.5, sum by (%s, le) (rate(oxcross_leaf_probe_timings_bucket{%s}[$__rate_interval])))' % [cl, sel])],
          's',
          steps=common.latencySteps(c),
          graph=true,
        ),
        g.stat(
          '99th percentile latency',
          '99th percentile round trip of the successful probes of the selected pairs over $__rate_interval.',
          [g.target('histogram_quantile(0.99, sum by (%s, le) (rate(oxcross_leaf_probe_timings_bucket{%s}[$__rate_interval])))' % [cl, sel])],
          's',
          steps=common.latencySteps(c),
          graph=true,
        ),
        g.stat(
          'Pairs down',
          'Leaf → origin pairs whose last probe failed.',
          [g.target('count by (%s) (oxcross_leaf_origin_status{%s} == 0) or on () vector(0)' % [cl, sel])],
          'none',
          steps=[[null, 'green'], [1, 'red']],
        ),
        g.stat(
          'Largest clock drift',
          'The largest absolute clock drift (origin minus leaf) that a selected leaf measures.',
          [g.target('max by (%s) (abs(oxcross_leaf_origin_time_drift{%s}))' % [cl, sel])],
          's',
          steps=[[null, 'green'], [c.driftThresholdSeconds, 'red']],
        ),
        g.stat(
          'TLS certificate expires in',
          'Time until the earliest expiry of the TLS certificates the selected origins present (https only).',
          [g.target('min by (%s) (oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds{%s}) - time()' % [cl, sel])],
          's',
          steps=[[null, 'red'], [c.tlsExpiryCriticalDays * 86400, 'orange'], [c.tlsExpiryWarningDays * 86400, 'green']],
        ),

        g.row('Latency'),
        g.heatmap(
          'Round-trip distribution',
          'Successful probes of the selected pairs by round trip (the histogram oxcross_leaf_probe_timings), per time interval.',
          [g.heatmapTarget('sum by (%s, le) (increase(oxcross_leaf_probe_timings_bucket{%s}[$__rate_interval]))' % [cl, sel])],
          's',
        ),
        quantilePanel('0.5', 'Median'),
        quantilePanel('0.9', '90th percentile'),
        quantilePanel('0.99', '99th percentile'),

        g.row('Phases of a probe'),
        g.timeseries(
          'Phases of the last probe (mean over the selected pairs)',
          'Where the time of a probe goes: DNS resolution, TCP connect, TLS handshake, processing (request written to first response byte) and transfer, stacked; the mean over the selected leaves and origins.',
          [g.target('avg by (%s, phase) (oxcross_leaf_probe_phase_seconds{%s})' % [cl, sel], '{{phase}}')],
          's',
          stack=true,
          min=0,
          calcs=['mean', 'max'],
        ),
        pairTable(
          'Phases of the last probe per pair',
          'The phases of the last probe of each selected leaf → origin pair, and its total duration (failed or not).',
          [
            [p, 'oxcross_leaf_probe_phase_seconds{%s, phase="%s"}' % [sel, p]]
            for p in phases
          ] + [['total', 'oxcross_leaf_probe_duration_seconds{%s}' % sel]],
          [g.override('byType', 'number', [['unit', 's']])],
          w=12,
        ),

        g.row('Successes and failures'),
        g.timeseries(
          'Success ratio per pair (5m)',
          'Share of the probes of the last 5 minutes that succeeded, per leaf → origin pair.',
          [g.target('origin_source:oxcross_leaf_probe_success:ratio_rate5m{%s}' % rs, common.pair)],
          'percentunit',
          min=0,
          max=1,
          calcs=['mean', 'min', 'lastNotNull'],
        ),
        g.timeseries(
          'Failed probes by reason',
          'Failed probes per minute by reason: timeout, dns, connect, tls, http_status, body_mismatch, invalid_response, dns_rcode (a DNS rcode outside valid_rcodes), cached (a repeated token or foreign nonce), body_too_large, icmp, error (docs/metrics.md lists them).',
          [g.target(
            'sum by (%s, source_id, origin_id, reason) (rate(oxcross_leaf_probe_results{%s, result="false"}[$__rate_interval])) * 60 > 0' % [cl, sel],
            common.pair + ': {{reason}}',
          )],
          'short',
          min=0,
          axisLabel='probes / min',
          calcs=['mean', 'max'],
        ),

        g.row('The last probe'),
        pairTable(
          'Last probe per pair',
          'The state of each selected leaf → origin pair after its last probe.',
          [
            ['status', 'oxcross_leaf_origin_status{%s}' % sel],
            ['duration', 'oxcross_leaf_probe_duration_seconds{%s}' % sel],
            ['HTTP status', 'oxcross_leaf_probe_http_status_code{%s}' % sel],
            ['clock drift', 'oxcross_leaf_origin_time_drift{%s}' % sel],
            ['drift uncertainty', 'oxcross_leaf_origin_time_drift_uncertainty_seconds{%s}' % sel],
            ['certificate expires in', 'oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds{%s} - time()' % sel],
          ],
          [
            g.override('byName', 'status', [
              ['mappings', g.valueMappings({ '1': ['up', 'green'], '0': ['down', 'red'] })],
              ['custom.cellOptions', { type: 'color-text' }],
            ]),
            g.override('byName', 'duration', [['unit', 's']]),
            g.override('byName', 'HTTP status', [['unit', 'none']]),
            g.override('byName', 'clock drift', [['unit', 's']]),
            g.override('byName', 'drift uncertainty', [['unit', 's']]),
            g.override('byName', 'certificate expires in', [['unit', 's']]),
          ],
        ),
        g.timeseries(
          'Duration of the last probe',
          'Duration of the last probe of each pair, failed or not (a timeout shows as the timeout).',
          [g.target('oxcross_leaf_probe_duration_seconds{%s}' % sel, common.pair)],
          's',
          min=0,
        ),
        g.timeseries(
          'HTTP status code of the last probe',
          'The status code of the last answer per pair (only 200 counts as success).',
          [g.target('oxcross_leaf_probe_http_status_code{%s}' % sel, common.pair)],
          'none',
          calcs=['lastNotNull'],
        ),

        g.row('Clock drift'),
        g.timeseries(
          'Clock drift with its uncertainty',
          'Origin clock minus leaf clock, as each leaf estimates it (advanced mode only); the dashed lines bound it by its uncertainty.',
          [
            g.target('oxcross_leaf_origin_time_drift{%s}' % sel, common.pair),
            g.target(
              'oxcross_leaf_origin_time_drift{%(sel)s} + oxcross_leaf_origin_time_drift_uncertainty_seconds{%(sel)s}' % { sel: sel },
              common.pair + ' upper bound',
            ),
            g.target(
              'oxcross_leaf_origin_time_drift{%(sel)s} - oxcross_leaf_origin_time_drift_uncertainty_seconds{%(sel)s}' % { sel: sel },
              common.pair + ' lower bound',
            ),
          ],
          's',
          overrides=[g.override('byRegexp', '/bound$/', [
            ['custom.lineStyle', { fill: 'dash', dash: [10, 10] }],
            ['custom.fillOpacity', 0],
          ])],
        ),
        g.timeseries(
          'Drift uncertainty',
          'Bound on the error of the drift estimate: half the round trip the origin did not spend. A long or asymmetric path widens it.',
          [g.target('oxcross_leaf_origin_time_drift_uncertainty_seconds{%s}' % sel, common.pair)],
          's',
          min=0,
        ),

        g.row('Packet loss and jitter (icmp and tcp trains)'),
        g.timeseries(
          'Packet loss and round-trip spread per pair',
          'For origins probed with trains of packets (the icmp and tcp kinds, packets > 1): the share of packets lost over $__rate_interval (left axis), and the spread of the last train, slowest minus fastest round trip (right axis, dashed). OxcrossOriginPacketLoss fires when more than %(ratio)g%% are lost from %(leaves)d leaves or more.' % { ratio: c.packetLossRatio * 100, leaves: c.packetLossMinLeaves },
          [
            g.target(|||
              1 - sum by (%(cl)s, job, origin_id, source_id) (rate(oxcross_leaf_probe_packets_received_total{%(sel)s}[$__rate_interval]))
              / sum by (%(cl)s, job, origin_id, source_id) (rate(oxcross_leaf_probe_packets_sent_total{%(sel)s}[$__rate_interval]))
            ||| % { cl: cl, sel: sel }, common.pair + ' loss'),
            g.target('max by (%s, job, origin_id, source_id) (oxcross_leaf_probe_packet_rtt_spread_seconds{%s})' % [cl, sel], common.pair + ' spread'),
          ],
          'percentunit',
          w=24,
          min=0,
          calcs=['mean', 'max', 'lastNotNull'],
          overrides=[g.override('byRegexp', '/spread$/', [
            ['unit', 's'],
            ['custom.axisPlacement', 'right'],
            ['custom.lineStyle', { fill: 'dash', dash: [10, 10] }],
            ['custom.fillOpacity', 0],
          ])],
        ),
      ],
    ),
  },
}
