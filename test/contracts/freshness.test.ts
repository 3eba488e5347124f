import { describe, expect, it } from 'vitest';
import { alertStateOf, planAlerts, problemKey, type AlertState } from '../../src/contracts/freshness.js';

// When the freshness check alerts: a new problem at once, a lasting one after 1 h, 4 h, then daily; IDs stable per
// job, problems and day.

const at = (iso: string) => new Date(iso);
const stale = (h: number) => `the newest full backup is ${h} h old (threshold 25 h): nas:daily/2026/11/27/0300/app-full-20261127T030000Z.tar`;

describe('freshness alerts', () => {
  it('a problem is one problem whatever its numbers', () => {
    expect(problemKey(stale(27.3))).toBe(problemKey(stale(31)));
    expect(problemKey(stale(27.3))).not.toBe(problemKey('no finalized diff backup found on nas'));
  });

  it('alerts a new problem at once, then after 1 h, 4 h and daily while it lasts; forgets it once it is gone', () => {
    let state: AlertState | undefined;
    const run = (iso: string, problems: string[]) => {
      const r = planAlerts([{ job: 'app', problems }], state, at(iso));
      state = r.state;
      return r.due;
    };
    expect(run('2026-11-29T10:00:00Z', [stale(27)])).toEqual([{ job: 'app', problems: [stale(27)], alertId: `alert:app:2026-11-29:${problemKey(stale(27))}` }]);
    expect(run('2026-11-29T10:10:00Z', [stale(27.2)])).toEqual([]);
    expect(run('2026-11-29T10:59:00Z', [stale(28)])).toEqual([]);
    expect(run('2026-11-29T11:00:00Z', [stale(28)])).toHaveLength(1); // 1 h after the first
    expect(run('2026-11-29T14:59:00Z', [stale(32)])).toEqual([]);
    expect(run('2026-11-29T15:00:00Z', [stale(32)])).toHaveLength(1); // 4 h after the second
    expect(run('2026-11-30T14:59:00Z', [stale(56)])).toEqual([]);
    const daily = run('2026-11-30T15:00:00Z', [stale(56)]); // then daily, under the new day's ID
    expect(daily).toEqual([{ job: 'app', problems: [stale(56)], alertId: `alert:app:2026-11-30:${problemKey(stale(56))}` }]);
    expect(run('2026-12-01T14:00:00Z', [stale(79)])).toEqual([]);
    expect(run('2026-12-01T15:00:00Z', [stale(80)])).toHaveLength(1);
    expect(state![`app\n${problemKey(stale(1))}`]).toMatchObject({ firstSeen: '2026-11-29T10:00:00.000Z', sent: 5 });
    // Resolved, then back: new again, alerted at once.
    expect(run('2026-12-01T16:00:00Z', [])).toEqual([]);
    expect(state).toEqual({});
    expect(run('2026-12-01T16:10:00Z', [stale(1)])).toHaveLength(1);
  });

  it('a new problem beside a lasting one is alerted alone; the same ID for the same problems on the same day', () => {
    const first = planAlerts([{ job: 'app', problems: [stale(27)] }], undefined, at('2026-11-29T10:00:00Z'));
    const second = planAlerts([{ job: 'app', problems: [stale(27.5), 'schedule backupctl-app-diff is missing'] }], first.state, at('2026-11-29T10:30:00Z'));
    expect(second.due).toEqual([{ job: 'app', problems: ['schedule backupctl-app-diff is missing'], alertId: 'alert:app:2026-11-29:schedule backupctl-app-diff is missing' }]);
    const retried = planAlerts([{ job: 'app', problems: [stale(27)] }], undefined, at('2026-11-29T23:59:00Z'));
    expect(retried.due[0]!.alertId).toBe(first.due[0]!.alertId);
  });

  it('a job that could not be checked keeps its state; other jobs are judged as usual', () => {
    const first = planAlerts([{ job: 'a', problems: [stale(27)] }, { job: 'b', problems: ['x'] }], undefined, at('2026-11-29T10:00:00Z'));
    const next = planAlerts([{ job: 'b', problems: [] }, { job: 'a', problems: ['the freshness check could not check this job: boom'] }], first.state, at('2026-11-29T10:10:00Z'), ['a']);
    expect(next.due).toEqual([{ job: 'a', problems: ['the freshness check could not check this job: boom'], alertId: expect.stringMatching(/^alert:a:2026-11-29:/) }]);
    expect(Object.keys(next.state).sort()).toEqual([`a\n${problemKey(stale(27))}`, 'a\nthe freshness check could not check this job: boom'].sort());
  });

  it('reads the previous state only when it has the right shape (a result is data from the server)', () => {
    const good = planAlerts([{ job: 'a', problems: ['x'] }], undefined, at('2026-11-29T10:00:00Z')).state;
    expect(alertStateOf({ alerts: good })).toEqual(good);
    expect(alertStateOf(undefined)).toBeUndefined();
    expect(alertStateOf({ alerts: 'no' })).toBeUndefined();
    expect(alertStateOf({ alerts: { k: { job: 'a', key: 'x', firstSeen: 'z', lastSent: 'not a date', sent: 1 }, j: { job: 'a', sent: -1 } } })).toEqual({});
  });
});
