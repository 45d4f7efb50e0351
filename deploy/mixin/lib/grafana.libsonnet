// Grafana panels in the one style the ipiv dashboard uses (schemaVersion 38), every query on
// the ${datasource} variable, and a layout that gives panels their ids and grid positions
// in the order they are listed.
local ds = { type: 'prometheus', uid: '${datasource}' };
local refIds = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
local withRefIds(targets) = [targets[i] { refId: refIds[i] } for i in std.range(0, std.length(targets) - 1)];

{
  // A range query; legend is Grafana's legendFormat.
  target(expr, legend=''):: { datasource: ds, expr: expr, legendFormat: legend, range: true, instant: false },
  // An instant query shown as a table (one row per series).
  tableTarget(expr):: { datasource: ds, expr: expr, legendFormat: '', instant: true, range: false, format: 'table' },
  // A histogram's buckets (sum by (le)), one heatmap row per bucket.
  heatmapTarget(expr):: self.target(expr, '{{le}}') { format: 'heatmap' },

  local panel(type, title, description, targets, w, h) = {
    type: type,
    title: title,
    description: description,
    datasource: ds,
    targets: withRefIds(targets),
    gridPos: { w: w, h: h },
  },

  // One number: the last value. steps: threshold colours ([] = blue throughout).
  stat(title, description, unit, targets, decimals=null, steps=[], mappings=null)::
    local defaults = {
      unit: unit,
      color: { mode: 'thresholds' },
      thresholds: { mode: 'absolute', steps: if steps == [] then [{ color: 'blue', value: null }] else steps },
    };
    local optional = (if decimals != null then { decimals: decimals } else {}) +
                     (if mappings != null then { mappings: mappings } else {});
    panel('stat', title, description, targets, 4, 4) {
      fieldConfig: { defaults: defaults + optional, overrides: [] },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'value',
        graphMode: 'area',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
      },
    },

  // Lines (stacked and filled when stacked), a table legend with mean, last and max.
  timeseries(title, description, unit, targets, stacked=false, min=null, max=null, w=12)::
    local defaults = {
      unit: unit,
      custom: {
        drawStyle: 'line',
        lineWidth: 1,
        fillOpacity: if stacked then 20 else 0,
        showPoints: 'never',
        spanNulls: false,
        stacking: { mode: if stacked then 'normal' else 'none', group: 'A' },
      },
    };
    local range = (if min != null then { min: min } else {}) +
                  (if max != null then { max: max } else {});
    panel('timeseries', title, description, targets, w, 8) {
      fieldConfig: { defaults: defaults + range, overrides: [] },
      options: {
        legend: { displayMode: 'table', placement: 'bottom', calcs: ['mean', 'lastNotNull', 'max'], showLegend: true },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  // The series' labels as columns; the value column only where it says more than "1".
  table(title, description, targets, showValue=false, w=12)::
    panel('table', title, description, targets, w, 8) {
      fieldConfig: { defaults: { custom: { align: 'auto' } }, overrides: [] },
      options: { showHeader: true, cellHeight: 'sm' },
      transformations: [{
        id: 'organize',
        options: { excludeByName: { Time: true, __name__: true } + (if showValue then {} else { Value: true }) },
      }],
    },

  // Buckets per second of a latency histogram; empty buckets (le 1e-09) hidden.
  heatmap(title, description, targets)::
    panel('heatmap', title, description, targets, 8, 8) {
      maxDataPoints: 60,
      fieldConfig: {
        defaults: { custom: { scaleDistribution: { type: 'linear' }, hideFrom: { legend: false, tooltip: false, viz: false } } },
        overrides: [],
      },
      options: {
        calculate: false,
        cellGap: 1,
        yAxis: { unit: 's', axisPlacement: 'left' },
        rowsFrame: { layout: 'auto' },
        color: { mode: 'scheme', scheme: 'Oranges', steps: 64, exponent: 0.5, fill: 'dark-orange', scale: 'exponential' },
        cellValues: { unit: 'ops' },
        filterValues: { le: 1e-09 },
        tooltip: { show: true, yHistogram: true },
        legend: { show: true },
        exemplars: { color: 'rgba(255,0,255,0.7)' },
      },
    },

  // A collapsed row holds its panels; an open one is followed by them.
  row(title, collapsed=false, panels=[]):: {
    type: 'row',
    title: title,
    collapsed: collapsed,
    gridPos: { w: 24, h: 1 },
    panels: panels,
  },

  // Ids 1, 2, ... in order (a collapsed row's panels after the row), and grid positions
  // filling each 24-wide line left to right: a row starts a line of its own.
  layout(panels)::
    local flat = std.flattenArrays([[p] + (if p.type == 'row' then p.panels else []) for p in panels]);
    local place(acc, p) =
      local g = p.gridPos;
      local wrap = p.type == 'row' || acc.x + g.w > 24;
      local y = if wrap && acc.x > 0 then acc.y + acc.h else acc.y;
      local x = if wrap then 0 else acc.x;
      {
        x: if p.type == 'row' then 0 else x + g.w,
        y: if p.type == 'row' then y + 1 else y,
        h: if p.type == 'row' then 0 else if wrap then g.h else std.max(acc.h, g.h),
        placed: acc.placed + [p { id: std.length(acc.placed) + 1, gridPos: g { x: x, y: y } }],
      };
    local placed = std.foldl(place, flat, { x: 0, y: 0, h: 0, placed: [] }).placed;
    // Back into rows: a collapsed row's panels go inside it.
    local isChild(i) = std.length([
      j
      for j in std.range(0, i - 1)
      if placed[j].type == 'row' && placed[j].collapsed &&
         std.length([k for k in std.range(j + 1, i) if placed[k].type == 'row']) == 0
    ]) > 0;
    [
      local p = placed[i];
      if p.type == 'row' then p {
        panels: if p.collapsed then [
          placed[k]
          for k in std.range(i + 1, std.length(placed) - 1)
          if std.length([r for r in std.range(i + 1, k) if placed[r].type == 'row']) == 0
        ]
        else [],
      } else p
      for i in std.range(0, std.length(placed) - 1)
      if !isChild(i)
    ],
}
