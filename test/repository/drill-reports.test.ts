import { describe, expect, it } from 'vitest';
import type { DrillReport } from '../../src/contracts/drill.js';
import { drillReportDir, drillReportName, drillReportOf, drillReportPath, isDrillReportName } from '../../src/repository/drill-reports.js';

describe('drill report names', () => {
  it('names a report by its finish time, so that names sort by time', () => {
    expect(drillReportName('2025-11-04T03:00:00.123Z')).toBe('20251104T030000Z.json');
    expect(drillReportPath({ job: 'app', finishedAt: '2025-11-04T03:00:00.123Z' })).toBe('drills/app/20251104T030000Z.json');
    expect(drillReportDir('app')).toBe('drills/app');
    const names = ['2025-11-04T03:00:00.000Z', '2025-10-31T23:59:59.999Z', '2026-01-01T00:00:00.000Z'].map(drillReportName);
    expect([...names].sort()).toEqual(['20251031T235959Z.json', '20251104T030000Z.json', '20260101T000000Z.json']);
  });

  it('reads back only what it writes', () => {
    expect(isDrillReportName(drillReportName('2025-11-04T03:00:00.123Z'))).toBe(true);
    for (const n of ['20251104T030000Z.json.tmp', '.20251104T030000Z.json', '2025-11-04T03:00:00Z.json', 'x20251104T030000Z.json', '../20251104T030000Z.json']) {
      expect(isDrillReportName(n)).toBe(false);
    }
  });
});

// A drill report read back from a destination: its signature binds its bytes, not its place, so a signed report is
// this file's report only if it names the job and the time its file name says, and its fields have their types.
// Anything else is skipped (as an unsigned one is), never trusted or crashed on.
describe('drill reports read back', () => {
  const report: DrillReport = {
    format: 'backupctl-drill/1', job: 'app', workflowId: 'drill-app-2026-11-29T05:00:00Z', ok: true,
    startedAt: '2026-11-29T05:00:00.000Z', finishedAt: '2026-11-29T05:00:07.250Z', restoreMs: 6100, checks: ['restored'], problems: [],
  };
  const file = drillReportName(report.finishedAt);
  const bytes = (r: unknown) => Buffer.from(JSON.stringify(r));

  it('a report of the job under its own name is read', () => {
    expect(file).toBe('20261129T050007Z.json');
    expect(drillReportOf(bytes(report), 'app', file)).toEqual(report);
  });

  it('another job\'s report, or one copied under another (newer) name, is not this file\'s report', () => {
    expect(drillReportOf(bytes(report), 'other', file)).toBeUndefined();
    expect(drillReportOf(bytes(report), 'app', '20991231T000000Z.json')).toBeUndefined();
  });

  it('fields of the wrong type, missing ones, or bytes that are no JSON object are skipped', () => {
    const noProblems: Partial<DrillReport> = { ...report };
    delete noProblems.problems;
    for (const bad of [noProblems, { ...report, problems: [1] }, { ...report, ok: 'yes' }, { ...report, finishedAt: 'soon' }, { ...report, restoreMs: '6 s' }, { ...report, workflowId: 7 }]) {
      expect(drillReportOf(bytes(bad), 'app', file), JSON.stringify(bad)).toBeUndefined();
    }
    expect(drillReportOf(Buffer.from('{not json'), 'app', file)).toBeUndefined();
    expect(drillReportOf(Buffer.from('null'), 'app', file)).toBeUndefined();
  });
});
