import { describe, expect, it } from 'vitest';
import { BackupError } from '../../src/errors.js';
import { parseInfo } from '../../src/pgbackrest/info.js';
import { requireContinuity, walSegmentSize } from '../../src/pgbackrest/repo.js';

const backup = (label: string, db: number, start: string, lsn: string, t: number) => ({
  label, type: 'full', error: false, archive: { start, stop: start }, info: { size: 1, delta: 1, repository: { size: 1, delta: 1 } },
  lsn: { start: lsn, stop: lsn }, timestamp: { start: t, stop: t + 1 }, database: { id: db },
});
const info = (backups: unknown[]) => parseInfo(JSON.stringify([{
  name: 'main', archive: [{ id: '14-1', min: null, max: null, database: { id: 1 } }, { id: '15-2', min: null, max: null, database: { id: 2 } }],
  backup: backups, db: [{ id: 2, 'system-id': 1, version: '15' }], status: { code: 0, message: 'ok' },
}]), 'main');
const job = { stanza: 'main', walSegmentSize: undefined } as never;
const seq = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `0000000100000000${(from + i).toString(16).toUpperCase().padStart(8, '0')}`);

describe('the WAL continuity check of a stanza', () => {
  it('walks from the oldest retained backup of the current database; an earlier database\'s backups are not walked', () => {
    const i = info([backup('20260101-000000F', 1, '000000010000000000000001', '0/1000028', 100), backup('20260102-000000F', 2, '000000010000000000000010', '0/10000028', 200)]);
    expect(walSegmentSize(job, i)).toBe(16 * 1024 * 1024);
    const c = requireContinuity(job, i, { archiveId: '15-2', segments: seq(0x10, 0x14) });
    expect(c).toMatchObject({ from: '000000010000000000000010', to: '000000010000000000000014', segments: 5 });
  });

  it('names the first missing segment (WAL_GAP, permanent)', () => {
    const i = info([backup('20260102-000000F', 2, '000000010000000000000010', '0/10000028', 200)]);
    const segments = seq(0x10, 0x14).filter((s) => !s.endsWith('12') && !s.endsWith('13'));
    let err: unknown;
    try { requireContinuity(job, i, { archiveId: '15-2', segments }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).code).toBe('WAL_GAP');
    expect((err as BackupError).permanent).toBe(true);
    expect((err as BackupError).message).toMatch(/^WAL archive of stanza "main" has a gap: segment 000000010000000000000012 is missing \(2 segments missing in all\); the archive must be unbroken from 000000010000000000000010 \(start of the oldest retained backup, 20260102-000000F\) to 000000010000000000000014/);
  });
});
