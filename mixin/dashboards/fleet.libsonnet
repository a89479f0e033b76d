// Fleet: the leaves themselves (up, config age and state, skipped probes)
// and the configserver (reloads, registered leaves, requests, its registry in etcd).
local g = import '../lib/grafana.libsonnet';
local common = import 'common.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local cl = c.clusterLabel,
    // Leaf-wide metrics have no source_id: leaves are told apart by their
    // scrape target (instance) here.
    local ls = '%s, %s, job=~"$job", instance=~"$instance"' % [c.leafSelector, common.clusterSel(c)],
    local cs = '%s, %s' % [c.configserverSelector, common.clusterSel(c)],
    // Age of each leaf's config: since its last successful refresh, or since
    // it started when it has had none (it runs on its cache file).
    local configAge = |||
      time() - (
        oxcross_leaf_config_last_refresh_success_timestamp_seconds{%(ls)s} > 0
        or process_start_time_seconds{%(ls)s}
      )
    ||| % { ls: ls },
    local variables = common.variables(c),
    local upMapping = g.valueMappings({ '1': ['up', 'green'], '0': ['down', 'red'] }),
    local yesNo = g.valueMappings({ '1': ['yes', 'orange'], '0': ['no', 'green'] }),
    local ageSteps = [[null, 'green'], [c.configStaleSeconds / 2, 'orange'], [c.configStaleSeconds, 'red']],
    local columns = [
      ['up', 'up{%s}' % ls],
      ['config age', configAge],
      ['on cached config', 'oxcross_leaf_config_from_cache{%s}' % ls],
      ['origins', 'oxcross_leaf_config_origins{%s}' % ls],
      ['refresh failures', 'increase(oxcross_leaf_config_refresh_failures_total{%s}[$__range])' % ls],
      ['skipped probes', 'sum by (%s, job, instance) (increase(oxcross_leaf_probe_skipped_total{%s, origin_id=~"$origin", source_id=~"$leaf"}[$__range]))' % [cl, ls]],
    ],

    'oxcross-fleet.json': g.dashboard(
      c,
      'fleet',
      'Fleet',
      'The leaves (up, config age and state, skipped probes) and the configserver (reloads, registered leaves, requests, its registry in etcd).',
      variables,
      [
        g.row('Leaves'),
        g.stat(
          'Leaves up',
          'Leaf targets that Prometheus scrapes successfully.',
          [g.target('count by (%s) (up{%s} == 1) or on () vector(0)' % [cl, ls])],
          'none',
        ),
        g.stat(
          'Leaves down',
          'Leaf targets that Prometheus cannot scrape.',
          [g.target('count by (%s) (up{%s} == 0) or on () vector(0)' % [cl, ls])],
          'none',
          steps=[[null, 'green'], [1, 'red']],
        ),
        g.stat(
          'Registered leaves',
          'Leaves the configserver lists for service discovery: static ones from its config and dynamic ones that registered by heartbeat.',
          [g.target('sum by (%s) (oxcross_configserver_leaves{%s})' % [cl, cs])],
          'none',
        ),
        g.stat(
          'Leaves on cached config',
          'Leaves that probe with the config from their cache file because the configserver has not answered them since they started.',
          [g.target('sum by (%s) (oxcross_leaf_config_from_cache{%s})' % [cl, ls])],
          'none',
          steps=[[null, 'green'], [1, 'orange']],
        ),
        g.stat(
          'Oldest config',
          'Time since the last successful config refresh of the leaf that refreshed longest ago (a standalone leaf only refreshes when its file changes).',
          [g.target('max by (%s) (%s)' % [cl, configAge])],
          's',
          steps=ageSteps,
        ),
        g.stat(
          'Skipped probes',
          'Probes skipped in the time range because the previous probe of the same origin was still running.',
          [g.target('sum by (%s) (increase(oxcross_leaf_probe_skipped_total{%s, origin_id=~"$origin", source_id=~"$leaf"}[$__range])) or on () vector(0)' % [cl, ls])],
          'none',
          steps=[[null, 'green'], [1, 'orange']],
        ),
        g.table(
          'Leaves',
          'Every selected leaf: up, age of its config, whether it runs on its cached config, origins in its config, and refresh failures and skipped probes in the time range.',
          [g.instantTarget('max by (%s, job, instance) (%s)' % [cl, col[1]]) for col in columns],
          w=16,
          h=9,
          sortBy=[{ displayName: 'leaf', desc: false }],
          overrides=[
            g.override('byName', 'up', [['mappings', upMapping], ['custom.cellOptions', { type: 'color-text' }]]),
            g.override('byName', 'config age', [
              ['unit', 's'],
              ['thresholds', g.thresholds(ageSteps)],
              ['custom.cellOptions', { type: 'color-text' }],
            ]),
            g.override('byName', 'on cached config', [['mappings', yesNo], ['custom.cellOptions', { type: 'color-text' }]]),
          ],
          transformations=[
            { id: 'merge', options: {} },
            {
              id: 'organize',
              options: {
                excludeByName: { Time: true, job: true, [cl]: true },
                indexByName: { instance: 0 } + {
                  ['Value #' + std.char(65 + i)]: i + 1
                  for i in std.range(0, std.length(columns) - 1)
                },
                renameByName: { instance: 'leaf' } + {
                  ['Value #' + std.char(65 + i)]: columns[i][0]
                  for i in std.range(0, std.length(columns) - 1)
                },
              },
            },
          ],
        ),
        g.table(
          'Versions',
          'Leaves per Oxcross version.',
          [g.instantTarget('count by (%s, version) (oxcross_leaf_build_info{%s})' % [cl, ls])],
          w=8,
          h=9,
          transformations=[{
            id: 'organize',
            options: { excludeByName: { Time: true, [cl]: true }, renameByName: { Value: 'leaves' } },
          }],
        ),
        g.timeseries(
          'Config age per leaf',
          'Time since each leaf last loaded its config or had it confirmed by the configserver (a 304 counts), or since it started when it runs on its cache file.',
          [g.target(configAge, '{{instance}}')],
          's',
          min=0,
        ),
        g.timeseries(
          'Config refresh failures',
          'Failed config loads or refreshes per leaf and interval; the leaf keeps its last good config.',
          [g.target('increase(oxcross_leaf_config_refresh_failures_total{%s}[$__rate_interval])' % ls, '{{instance}}')],
          'short',
          min=0,
          calcs=['sum', 'max'],
        ),
        g.timeseries(
          'Probes per second',
          'Probes run per second by each leaf, whatever their result. A leaf at 0 probes nothing.',
          [g.target('sum by (%s, instance) (rate(oxcross_leaf_probe_results{%s, origin_id=~"$origin", source_id=~"$leaf"}[$__rate_interval]))' % [cl, ls], '{{instance}}')],
          'reqps',
          w=8,
          min=0,
        ),
        g.timeseries(
          'Skipped probes',
          'Probes skipped per interval because the previous probe of the same origin was still running: the origin is slower than its interval allows, or the leaf is overloaded.',
          [g.target(
            'sum by (%s, source_id, origin_id) (increase(oxcross_leaf_probe_skipped_total{%s, origin_id=~"$origin", source_id=~"$leaf"}[$__rate_interval])) > 0' % [cl, ls],
            common.pair,
          )],
          'short',
          w=8,
          min=0,
          calcs=['sum', 'max'],
        ),
        g.timeseries(
          'Origins in the config',
          'Origins in the config each leaf probes.',
          [g.target('oxcross_leaf_config_origins{%s}' % ls, '{{instance}}')],
          'none',
          w=8,
          min=0,
          calcs=['lastNotNull'],
        ),

        g.row('Configserver'),
        g.stat(
          'Configserver up',
          'Whether Prometheus can scrape the configserver.',
          [g.target('min by (%s) (up{%s})' % [cl, cs])],
          'none',
          mappings=upMapping,
          steps=[[null, 'red'], [1, 'green']],
        ),
        g.stat(
          'Last reload',
          'Whether the last reload of the config succeeded; after a failed one the configserver serves the previous config.',
          [g.target('min by (%s) (oxcross_configserver_config_last_reload_successful{%s})' % [cl, cs])],
          'none',
          mappings=g.valueMappings({ '1': ['ok', 'green'], '0': ['failed', 'red'] }),
          steps=[[null, 'red'], [1, 'green']],
        ),
        g.stat(
          'Served config loaded',
          'Time since the config that the configserver serves was loaded.',
          [g.target('time() - max by (%s) (oxcross_configserver_config_last_reload_success_timestamp_seconds{%s})' % [cl, cs])],
          's',
        ),
        g.stat(
          'Origins served',
          'Origins in the config the configserver serves.',
          [g.target('max by (%s) (oxcross_configserver_config_origins{%s})' % [cl, cs])],
          'none',
        ),
        g.stat(
          'Static leaves',
          'Leaves listed in the configserver config.',
          [g.target('sum by (%s) (oxcross_configserver_leaves{%s, kind="static"})' % [cl, cs])],
          'none',
        ),
        g.stat(
          'Dynamic leaves',
          'Leaves registered by heartbeat and not yet expired.',
          [g.target('sum by (%s) (oxcross_configserver_leaves{%s, kind="dynamic"})' % [cl, cs])],
          'none',
        ),
        g.timeseries(
          'Config reloads',
          'Reloads of the config per interval, by result.',
          [g.target('sum by (%s, result) (increase(oxcross_configserver_config_reloads_total{%s}[$__rate_interval]))' % [cl, cs], '{{result}}')],
          'short',
          w=8,
          min=0,
          calcs=['sum'],
        ),
        g.timeseries(
          'Registered leaves',
          'Leaves the configserver lists for service discovery, by kind.',
          [g.target('sum by (%s, kind) (oxcross_configserver_leaves{%s})' % [cl, cs], '{{kind}}')],
          'none',
          w=8,
          min=0,
          calcs=['lastNotNull', 'min'],
        ),
        g.timeseries(
          'Config requests',
          'Requests to /config per second, by status code (304: the leaf already had it).',
          [g.target('sum by (%s, code) (rate(oxcross_configserver_config_requests_total{%s}[$__rate_interval]))' % [cl, cs], '{{code}}')],
          'reqps',
          w=8,
          min=0,
        ),
        g.timeseries(
          'Registry store up',
          'With --registry.etcd.endpoints: whether each configserver reaches the etcd of its leaf registry (1) or not (0: it refuses registrations with 503 and serves the last registry). No series with the in-memory registry.',
          [g.target('max by (%s, instance) (oxcross_configserver_registry_store_up{%s})' % [cl, cs], '{{instance}}')],
          'none',
          min=0,
          max=1,
          calcs=['min', 'lastNotNull'],
        ),
        g.timeseries(
          'Registry store errors and relists',
          "With --registry.etcd.endpoints: failed requests to the registry's etcd per interval by operation, and the times the registry was listed from etcd anew (at start, after a compaction, a lost watch or an outage).",
          [
            g.target('sum by (%s, op) (increase(oxcross_configserver_registry_store_errors_total{%s}[$__rate_interval])) > 0' % [cl, cs], 'errors {{op}}'),
            g.target('sum by (%s) (increase(oxcross_configserver_registry_store_relists_total{%s}[$__rate_interval]))' % [cl, cs], 'relists'),
          ],
          'short',
          min=0,
          calcs=['sum'],
        ),
      ],
    ),
  },
}
