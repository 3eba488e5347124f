import { describe, expect, it } from 'vitest';
import type { JobOverview } from '../../src/monitor/overview.js';
import { chartData, renderReport } from '../../src/monitor/report.js';

/** The report page without a browser: its data, and that nothing a run or a destination says can break out of it. */

const hostile = 'x</script><img src=https://evil.example/a.png>';
const o: JobOverview = {
  job: 'app', health: 'warning', problems: [hostile], types: ['full'], freshness: { full: 90_000_000, diff: 25_200_000 }, destinations: ['nas', 'offsite'],
  backups: [
    { destination: 'nas', type: 'full', tier: 'daily', slot: '2026-11-01T03:00:00.000Z', createdAt: '2026-11-01T03:01:00.000Z', size: 100, workflowId: 'w1', path: 'daily/a.tar' },
    { destination: 'offsite', type: 'full', tier: 'daily', slot: '2026-11-01T03:00:00.000Z', createdAt: '2026-11-01T03:01:00.000Z', size: 100, workflowId: 'w1', path: 'daily/a.tar' },
    { destination: 'nas', type: 'diff', tier: 'daily', slot: '2026-11-01T09:00:00.000Z', createdAt: '2026-11-01T09:01:00.000Z', size: 10, workflowId: 'w2', path: 'daily/b.tar' },
  ],
  runs: [
    { workflowId: 'w3', runId: 'r3', type: 'full', status: 'FAILED', outcome: 'failed', startTime: '2026-11-02T03:00:00.000Z', closeTime: '2026-11-02T03:00:09.000Z', steps: { dump: 1500 }, failedStep: 'dump', error: hostile },
    { workflowId: 'w4', runId: 'r4', type: 'full', status: 'RUNNING', startTime: '2026-11-02T04:00:00.000Z', steps: {} },
  ],
  drills: [], unreadable: [{ destination: 'offsite', error: hostile }], generatedAt: '2026-11-02T05:00:00.000Z',
};

describe('HTML report', () => {
  it('one point per backup (a backup on two destinations is one), failed runs apart, running runs left out', () => {
    expect(chartData(o)).toEqual({
      job: 'app', full: [[1793502000, 100, 'w1']], diff: [[1793523600, 10, 'w2']], failed: [[1793588400, 'w3', 'dump']],
      runs: [[1793588400, 'w3', { dump: 1.5 }]], drills: [],
    });
  });

  it('is one file: uPlot and its CSS inlined, nothing loaded from elsewhere, hostile text escaped', () => {
    const html = renderReport([o], Date.parse('2026-11-02T05:00:00.000Z'));
    expect(html).toContain('https://github.com/leeoniya/uPlot (v1.6.32)');
    expect(html).toContain('.uplot');
    expect(html).not.toMatch(/<(img|link|iframe)\b/i);
    expect(html).not.toMatch(/<[a-z]+\b[^>]*\b(src|href)\s*=/i);
    // three scripts (data, uPlot, the page's), each closed once; the hostile text never closes one
    expect(html.match(/<\/script>/gi)).toHaveLength(3);
    expect(html).toContain('x&lt;/script&gt;&lt;img src=https://evil.example/a.png&gt;');
    expect(html).toContain('cannot be read: x&lt;/script&gt;');
    expect(html).toMatch(/<tr class="run failed" data-workflow="w3">/);
    expect(html).toMatch(/<div class="fresh stale" data-type="full" data-age-s="93600" data-threshold-s="90000">/);
  });
});
