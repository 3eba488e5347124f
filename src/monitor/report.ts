/**
 * `backupctl report`: one self-contained HTML file of job overviews (src/monitor/overview.ts). Per job: the size of
 * each backup over time (full and diff apart, failed runs marked), each run's step durations, the newest backup's age
 * against its freshness threshold, drill results and RTO over time, and the destinations with their newest verified
 * backup. The charts are uPlot (MIT), inlined with its CSS from node_modules/uplot/dist, so the file loads nothing
 * from elsewhere and opens offline. After drawing, the page writes each chart's data points into the DOM (`.point`
 * elements with data attributes) and marks the chart `data-rendered`: what a browser test reads back.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { formatBytes } from '../lib/format.js';
import { isFailedRun } from './runs.js';
import type { JobOverview } from './overview.js';

const require = createRequire(import.meta.url);
let uplot: { js: string; css: string } | undefined;
function uplotAssets() {
  uplot ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplot;
}

const escapeHtml = (v: string) => v.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** JSON inside a <script>: nothing in it can close the element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
const sec = (iso: string) => Math.round(Date.parse(iso) / 1000);
const hours = (ms: number) => `${(ms / 3_600_000).toFixed(1)} h`;

/** What the page's script draws for one job. */
export interface ChartData {
  job: string;
  /** One point per backup (a backup stored on two destinations is one point): [slot (s), bytes, workflow ID]. */
  full: [number, number, string][];
  diff: [number, number, string][];
  /** Failed runs: [start (s), workflow ID, step]. */
  failed: [number, string, string][];
  /** Closed runs with their steps: [start (s), workflow ID, { step: seconds }]. */
  runs: [number, string, Record<string, number>][];
  /** Drills: [finish (s), passed, RTO (s) or null, workflow ID]. */
  drills: [number, boolean, number | null, string][];
}

export function chartData(o: JobOverview): ChartData {
  const seen = new Set<string>();
  const full: ChartData['full'] = [];
  const diff: ChartData['diff'] = [];
  for (const b of o.backups) {
    if (seen.has(b.workflowId)) continue;
    seen.add(b.workflowId);
    (b.type === 'full' ? full : diff).push([sec(b.slot), b.size, b.workflowId]);
  }
  const closed = o.runs.filter((r) => r.closeTime);
  return {
    job: o.job, full, diff,
    failed: closed.filter(isFailedRun).map((r) => [sec(r.startTime), r.workflowId, r.failedStep ?? 'unknown']),
    runs: closed.filter((r) => Object.keys(r.steps).length > 0).map((r) => [sec(r.startTime), r.workflowId, Object.fromEntries(Object.entries(r.steps).map(([k, ms]) => [k, ms / 1000]))]),
    drills: o.drills.map((d) => [sec(d.finishedAt), d.ok, typeof d.restoreMs === 'number' ? d.restoreMs / 1000 : null, d.workflowId]),
  };
}

function freshnessHtml(o: JobOverview, now: number): string {
  return o.types.map((type) => {
    const newest = o.backups.filter((b) => b.type === type).at(-1);
    const limit = o.freshness[type];
    if (!newest) return `<div class="fresh stale" data-type="${type}" data-threshold-s="${limit / 1000}"><b>${type}</b>: no backup (threshold ${hours(limit)})</div>`;
    const age = now - Date.parse(newest.slot);
    const pct = Math.min(100, Math.round((age / limit) * 100));
    return `<div class="fresh ${age > limit ? 'stale' : 'ok'}" data-type="${type}" data-age-s="${Math.round(age / 1000)}" data-threshold-s="${limit / 1000}">`
      + `<b>${type}</b>: newest ${escapeHtml(newest.slot)}, ${hours(age)} old of ${hours(limit)} allowed`
      + `<div class="bar"><div style="width:${pct}%"></div></div></div>`;
  }).join('\n');
}

function destinationsHtml(o: JobOverview): string {
  const rows = o.destinations.map((d) => {
    const bad = o.unreadable.find((u) => u.destination === d);
    const newest = o.backups.filter((b) => b.destination === d).at(-1);
    const cell = bad ? `<td colspan="4" class="bad">cannot be read: ${escapeHtml(bad.error)}</td>`
      : newest ? `<td>${newest.type}</td><td>${escapeHtml(newest.slot)}</td><td>${formatBytes(newest.size)}</td><td><code>${escapeHtml(newest.path)}</code></td>`
        : '<td colspan="4" class="bad">no verified backup</td>';
    return `<tr class="destination" data-destination="${escapeHtml(d)}"${newest ? ` data-newest="${escapeHtml(newest.workflowId)}"` : ''}><td>${escapeHtml(d)}</td>${cell}</tr>`;
  });
  return `<table><thead><tr><th>destination</th><th>type</th><th>newest verified backup (slot)</th><th>size</th><th>path</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function runsHtml(o: JobOverview): string {
  const rows = o.runs.slice(-30).reverse().map((r) => {
    const failed = r.closeTime !== undefined && isFailedRun(r);
    const took = r.closeTime ? `${((Date.parse(r.closeTime) - Date.parse(r.startTime)) / 1000).toFixed(1)} s` : 'running';
    return `<tr class="run${failed ? ' failed' : ''}" data-workflow="${escapeHtml(r.workflowId)}"><td>${escapeHtml(r.startTime)}</td><td>${r.type ?? ''}</td>`
      + `<td>${escapeHtml(r.outcome ?? r.status.toLowerCase())}</td><td>${took}</td><td>${failed ? escapeHtml(`${r.failedStep ?? '?'}: ${(r.error ?? '').slice(0, 200)}`) : ''}</td></tr>`;
  });
  return `<table><thead><tr><th>started</th><th>type</th><th>outcome</th><th>took</th><th>failure</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function drillsHtml(o: JobOverview): string {
  if (o.drills.length === 0) return '<p>No restore drill yet.</p>';
  const rows = o.drills.slice(-20).reverse().map((d) => `<tr class="drill ${d.ok ? 'passed' : 'failed'}"><td>${escapeHtml(d.finishedAt)}</td><td>${d.ok ? 'passed' : 'FAILED'}</td>`
    + `<td>${typeof d.restoreMs === 'number' ? `${(d.restoreMs / 1000).toFixed(1)} s` : ''}</td><td>${escapeHtml(d.problems[0] ?? '')}</td></tr>`);
  return `<table><thead><tr><th>finished</th><th>result</th><th>RTO</th><th>problem</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** The page's script: draws each job's charts with uPlot, then writes the drawn points into the DOM. */
const PAGE_SCRIPT = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var W = 860, H = 240;
  var dot = function (color, size) { return { label: '', stroke: color, fill: color, width: 0, paths: function () { return null; }, points: { show: true, size: size, stroke: color, fill: color } }; };
  var line = function (label, color) { return { label: label, stroke: color, width: 2, spanGaps: true, points: { show: true, size: 7, fill: color } }; };
  var palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#d62728'];
  function align(sets) {
    var xs = [];
    sets.forEach(function (s) { s.forEach(function (p) { if (xs.indexOf(p[0]) < 0) xs.push(p[0]); }); });
    xs.sort(function (a, b) { return a - b; });
    return [xs].concat(sets.map(function (s) { return xs.map(function (x) { var p = s.find(function (q) { return q[0] === x; }); return p ? p[1] : null; }); }));
  }
  var pending = 0;
  function draw(figure, series, sets, ids, yLabel, yFmt) {
    var el = figure.querySelector('.chart');
    var aligned = align(sets);
    // one x value: a day around it (uPlot would span years)
    var xRange = function (u, min, max) { var xs = u.data[0]; return xs.length === 1 ? [xs[0] - 43200, xs[0] + 43200] : [min, max]; };
    // once drawn, the chart's points go into the DOM, for tests and for copying
    var written = false;
    var onDraw = function (u) {
      if (written) return;
      written = true;
      var points = figure.querySelector('.points');
      sets.forEach(function (s, i) {
        s.forEach(function (p, j) {
          var span = document.createElement('span');
          span.className = 'point';
          span.dataset.series = series[i].key;
          span.dataset.x = String(p[0]);
          span.dataset.y = p[1] === null ? '' : String(p[1]);
          span.dataset.id = ids[i][j] || '';
          points.appendChild(span);
        });
      });
      figure.dataset.rendered = u.root.querySelector('canvas') ? 'true' : 'false';
      if (--pending === 0) document.body.dataset.rendered = 'true';
    };
    pending++;
    new uPlot({
      width: W, height: H, series: [{}].concat(series), hooks: { draw: [onDraw] },
      axes: [{}, { label: yLabel, size: 70, values: function (_u, vals) { return vals.map(yFmt); } }], scales: { x: { time: true, range: xRange } },
    }, aligned, el);
  }
  var bytes = function (v) { var u = ['B', 'KB', 'MB', 'GB', 'TB'], i = 0; while (Math.abs(v) >= 1000 && i < 4) { v /= 1000; i++; } return (Math.round(v * 10) / 10) + ' ' + u[i]; };
  var secs = function (v) { return v + ' s'; };
  data.forEach(function (job) {
    var root = document.querySelector('section.job[data-job="' + CSS.escape(job.job) + '"]');
    var sizes = root.querySelector('figure.sizes');
    var full = Object.assign(line('full', '#1f77b4'), { key: 'full', spanGaps: true });
    var diff = Object.assign(line('diff', '#2ca02c'), { key: 'diff' });
    var failed = Object.assign(dot('#d62728', 12), { label: 'failed run', key: 'failed' });
    draw(sizes, [full, diff, failed], [
      job.full.map(function (p) { return [p[0], p[1]]; }),
      job.diff.map(function (p) { return [p[0], p[1]]; }),
      job.failed.map(function (p) { return [p[0], 0]; }),
    ], [job.full.map(function (p) { return p[2]; }), job.diff.map(function (p) { return p[2]; }), job.failed.map(function (p) { return p[1]; })], 'size', bytes);
    var steps = [];
    job.runs.forEach(function (r) { Object.keys(r[2]).forEach(function (s) { if (steps.indexOf(s) < 0) steps.push(s); }); });
    draw(root.querySelector('figure.steps'), steps.map(function (s, i) { return Object.assign(line(s, palette[i % palette.length]), { key: s }); }),
      steps.map(function (s) { return job.runs.filter(function (r) { return s in r[2]; }).map(function (r) { return [r[0], r[2][s]]; }); }),
      steps.map(function (s) { return job.runs.filter(function (r) { return s in r[2]; }).map(function (r) { return r[1]; }); }), 'seconds', secs);
    var passed = job.drills.filter(function (d) { return d[1] && d[2] !== null; });
    var bad = job.drills.filter(function (d) { return !d[1]; });
    draw(root.querySelector('figure.drills'), [Object.assign(line('RTO of a passed drill', '#1f77b4'), { key: 'passed' }), Object.assign(dot('#d62728', 12), { label: 'failed drill', key: 'failed' })],
      [passed.map(function (d) { return [d[0], d[2]]; }), bad.map(function (d) { return [d[0], d[2] === null ? 0 : d[2]]; })],
      [passed.map(function (d) { return d[3]; }), bad.map(function (d) { return d[3]; })], 'seconds', secs);
  });
})();
`;

const PAGE_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
section.job { border-top: 2px solid #ccc; padding-top: 8px; margin-top: 24px; }
.health { display: inline-block; padding: 2px 8px; border-radius: 4px; font-weight: bold; color: #fff; }
.health.ok { background: #2ca02c; } .health.warning { background: #e0a000; } .health.failing, .health.stale { background: #d62728; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
tr.failed td, .bad { color: #b00; }
.fresh { margin: 4px 0; } .fresh .bar { width: 400px; height: 8px; background: #eee; } .fresh .bar div { height: 8px; background: #2ca02c; }
.fresh.stale .bar div { background: #d62728; }
figure { margin: 8px 0; } figcaption { font-weight: bold; } .points { display: none; }
`;

/** The whole report page. */
export function renderReport(jobs: JobOverview[], now = Date.now()): string {
  const { js, css } = uplotAssets();
  const sections = jobs.map((o) => `
<section class="job" data-job="${escapeHtml(o.job)}" data-health="${o.health}">
<h2>${escapeHtml(o.job)} <span class="health ${o.health}">${o.health.toUpperCase()}</span></h2>
${o.problems.length ? `<ul class="problems">${o.problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul>` : ''}
<h3>Freshness</h3>
${freshnessHtml(o, now)}
<figure class="sizes"><figcaption>Backup sizes (failed runs marked in red)</figcaption><div class="chart"></div><div class="points"></div></figure>
<figure class="steps"><figcaption>Step durations per run</figcaption><div class="chart"></div><div class="points"></div></figure>
<figure class="drills"><figcaption>Restore drills: RTO (failed drills in red)</figcaption><div class="chart"></div><div class="points"></div></figure>
${drillsHtml(o)}
<h3>Destinations</h3>
${destinationsHtml(o)}
<h3>Runs</h3>
${runsHtml(o)}
</section>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>backupctl report</title>
<style>${css}</style><style>${PAGE_CSS}</style></head>
<body>
<h1>backupctl report</h1>
<p class="generated">Generated ${escapeHtml(new Date(now).toISOString())} from the manifests and drill reports on the destinations and Temporal's run history.</p>
${sections}
<script id="report-data" type="application/json">${scriptJson(jobs.map(chartData))}</script>
<script>${js.replace(/<\/script/gi, '<\\/script')}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
