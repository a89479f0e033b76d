// Small helpers for Grafana dashboards of the current schema: no grafonnet,
// just the fields the panels need. Panels get their size here and their
// position and id from layout().
local refIds = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

{
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // A Prometheus query over time. legend names the series.
  target(expr, legend=''):: {
    expr: expr,
    legendFormat: legend,
    range: true,
    instant: false,
    format: 'time_series',
  },

  // A query at the dashboard's end time, as table rows (labels as columns).
  instantTarget(expr):: {
    expr: expr,
    legendFormat: '',
    range: false,
    instant: true,
    format: 'table',
  },

  // Bucket counts for a heatmap panel.
  heatmapTarget(expr):: {
    expr: expr,
    legendFormat: '{{le}}',
    range: true,
    instant: false,
    format: 'heatmap',
  },

  local withTargets(targets) = [
    targets[i] { datasource: $.datasource, refId: refIds[i] }
    for i in std.range(0, std.length(targets) - 1)
  ],

  local panel(type, title, description, targets, w, h) = {
    type: type,
    title: title,
    description: description,
    datasource: $.datasource,
    targets: withTargets(targets),
    gridPos: { w: w, h: h },
  },

  // Thresholds: a list of [value, color] from the lowest; the first value
  // is ignored (it is the base).
  thresholds(steps):: {
    mode: 'absolute',
    steps: [
      { color: s[1], value: if i == 0 then null else s[0] }
      for i in std.range(0, std.length(steps) - 1)
      for s in [steps[i]]
    ],
  },

  timeseries(title, description, targets, unit, w=12, h=8, min=null, max=null, stack=false, axisLabel='', calcs=['mean', 'max', 'lastNotNull'], overrides=[])::
    panel('timeseries', title, description, targets, w, h) {
      fieldConfig: {
        defaults: {
          unit: unit,
          [if min != null then 'min']: min,
          [if max != null then 'max']: max,
          color: { mode: 'palette-classic' },
          custom: {
            drawStyle: 'line',
            lineInterpolation: 'linear',
            lineWidth: 1,
            fillOpacity: if stack then 60 else 10,
            gradientMode: 'none',
            showPoints: 'never',
            pointSize: 4,
            spanNulls: false,
            axisPlacement: 'auto',
            axisLabel: axisLabel,
            scaleDistribution: { type: 'linear' },
            stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
            thresholdsStyle: { mode: 'off' },
          },
        },
        overrides: overrides,
      },
      options: {
        legend: { showLegend: true, displayMode: 'table', placement: 'bottom', calcs: calcs },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  heatmap(title, description, targets, unit, w=24, h=9)::
    panel('heatmap', title, description, targets, w, h) {
      fieldConfig: {
        defaults: {
          custom: {
            scaleDistribution: { type: 'linear' },
            hideFrom: { legend: false, tooltip: false, viz: false },
          },
        },
        overrides: [],
      },
      options: {
        calculate: false,
        cellGap: 1,
        color: {
          mode: 'scheme',
          scheme: 'Spectral',
          steps: 64,
          scale: 'exponential',
          exponent: 0.5,
          fill: 'dark-orange',
          reverse: false,
        },
        exemplars: { color: 'rgba(255,0,255,0.7)' },
        filterValues: { le: 1e-9 },
        legend: { show: true },
        rowsFrame: { layout: 'auto' },
        tooltip: { mode: 'single', yHistogram: true, showColorScale: false },
        yAxis: { axisPlacement: 'left', unit: unit, reverse: false },
        cellValues: { unit: 'short' },
      },
    },

  stat(title, description, targets, unit, steps=[[null, 'green']], w=4, h=4, decimals=null, graph=false, mappings=[])::
    panel('stat', title, description, targets, w, h) {
      fieldConfig: {
        defaults: {
          unit: unit,
          [if decimals != null then 'decimals']: decimals,
          color: { mode: 'thresholds' },
          thresholds: $.thresholds(steps),
          mappings: mappings,
        },
        overrides: [],
      },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'value',
        graphMode: if graph then 'area' else 'none',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },

  // A table; cell colors follow the thresholds when colored is set.
  table(title, description, targets, unit='short', steps=[[null, 'text']], transformations=[], overrides=[], sortBy=[], colored=false, w=12, h=8, decimals=null)::
    panel('table', title, description, targets, w, h) {
      fieldConfig: {
        defaults: {
          unit: unit,
          [if decimals != null then 'decimals']: decimals,
          color: { mode: 'thresholds' },
          thresholds: $.thresholds(steps),
          custom: {
            align: 'auto',
            cellOptions: { type: if colored then 'color-background' else 'auto' },
            inspect: false,
            filterable: true,
          },
          mappings: [],
        },
        overrides: overrides,
      },
      options: {
        showHeader: true,
        cellHeight: 'sm',
        footer: { show: false, reducer: ['sum'], fields: '', countRows: false },
        sortBy: sortBy,
      },
      transformations: transformations,
    },

  // Value mappings: {value: [text, color]}.
  valueMappings(m):: [{
    type: 'value',
    options: {
      [k]: { text: m[k][0], color: m[k][1], index: i }
      for i in std.range(0, std.length(std.objectFields(m)) - 1)
      for k in [std.objectFields(m)[i]]
    },
  }],

  row(title):: { type: 'row', title: title, collapsed: false, panels: [], gridPos: { w: 24, h: 1 } },

  // Field override helpers for tables and time series.
  override(matcher, options, properties):: {
    matcher: { id: matcher, options: options },
    properties: [{ id: p[0], value: p[1] } for p in properties],
  },

  // Places panels left to right, wrapping at the grid's 24 columns; a row
  // starts a new line. Gives every panel its id.
  layout(panels)::
    local step(acc, p) =
      local newLine = p.type == 'row' || acc.x + p.gridPos.w > 24;
      local x = if newLine then 0 else acc.x;
      local y = if newLine then acc.y + acc.h else acc.y;
      acc {
        x: x + p.gridPos.w,
        y: y,
        h: if newLine then p.gridPos.h else std.max(acc.h, p.gridPos.h),
        panels+: [p { id: std.length(acc.panels) + 1, gridPos+: { x: x, y: y } }],
      };
    std.foldl(step, panels, { x: 0, y: 0, h: 0, panels: [] }).panels,

  // Template variables.
  datasourceVariable(regex=''):: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    regex: regex,
    current: {},
    hide: 0,
    refresh: 1,
    options: [],
    skipUrlSync: false,
  },

  // A multi-select variable of a label's values; "All" matches any value.
  queryVariable(name, label, metric, labelName, multi=true):: {
    local q = 'label_values(%s, %s)' % [metric, labelName],
    name: name,
    label: label,
    type: 'query',
    datasource: $.datasource,
    query: { query: q, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    definition: q,
    regex: '',
    sort: 1,
    refresh: 2,
    multi: multi,
    includeAll: multi,
    allValue: if multi then '.+' else null,
    current: {},
    options: [],
    hide: 0,
    skipUrlSync: false,
  },

  dashboard(config, uid, title, description, variables, panels):: {
    uid: config.dashboardUIDPrefix + uid,
    title: config.dashboardTitlePrefix + title,
    description: description,
    tags: config.dashboardTags,
    editable: false,
    graphTooltip: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    refresh: config.dashboardRefresh,
    schemaVersion: 39,
    version: 1,
    time: { from: config.dashboardTimeFrom, to: 'now' },
    timepicker: {},
    timezone: config.dashboardTimezone,
    weekStart: '',
    annotations: {
      list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      }],
    },
    links: [{
      title: 'Oxcross dashboards',
      type: 'dashboards',
      tags: config.dashboardTags,
      asDropdown: true,
      includeVars: true,
      keepTime: true,
      icon: 'external link',
      targetBlank: false,
      tooltip: '',
      url: '',
    }],
    templating: { list: variables },
    panels: $.layout(panels),
  },
}
