import { describe, expect, it } from 'vitest';
import { drillReportDir, drillReportName, drillReportPath, isDrillReportName } from '../../src/repository/drill-reports.js';

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
