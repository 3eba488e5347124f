import { describe, expect, it } from 'vitest';
import { backupWorkflowId, type BackupType } from '../../src/contracts/backup.js';
import { layout } from '../../src/repository/layout.js';
import { artifactName, manifestName, parseName, safeWorkflowId, temporaryName } from '../../src/repository/names.js';

const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);

describe('names: what layout() writes, parseName reads back', () => {
  const cases: { job: string; type: BackupType; slot: string }[] = [
    { job: 'app', type: 'full', slot: '2025-11-04T03:00:00Z' },
    { job: 'db.main', type: 'diff', slot: '2026-01-31T23:59:59Z' },
    { job: 'a-full-20250101T000000Z', type: 'diff', slot: '2025-02-28T12:30:05Z' },
    { job: 'x_y-z', type: 'full', slot: '2024-02-29T00:00:00Z' },
  ];
  for (const c of cases) {
    it(`round-trips job "${c.job}", ${c.type}, ${c.slot}`, () => {
      const slot = new Date(c.slot);
      const workflowId = backupWorkflowId('backup-1a2b3c4d', c.job, c.type, slot);
      const l = layout(c.job, c.type, 'daily', slot, workflowId);
      const expected = { artifact: l.artifactName, job: c.job, type: c.type, slot: c.slot };
      expect(parseName(base(l.finalPath), c.job)).toEqual({ kind: 'artifact', ...expected });
      expect(parseName(base(l.manifestPath), c.job)).toEqual({ kind: 'manifest', ...expected });
      expect(parseName(base(l.tempPath), c.job)).toEqual({ kind: 'temporary', ...expected, workflowId });
    });
  }

  it('gives back the sanitised workflow ID of a temporary file, the one the orphan sweep asks Temporal about', () => {
    const l = layout('app', 'full', 'manual', new Date('2025-11-04T03:00:00Z'), 'my run/with spaces&slashes');
    expect(parseName(base(l.tempPath), 'app')?.workflowId).toBe(safeWorkflowId('my run/with spaces&slashes'));
    expect(safeWorkflowId('my run/with spaces&slashes')).toBe('my_run_with_spaces_slashes');
  });

  it('builds the same names as layout()', () => {
    const slot = new Date('2025-11-04T03:00:00Z');
    const l = layout('app', 'full', 'daily', slot, 'w');
    expect(artifactName('app', 'full', slot)).toBe(l.artifactName);
    expect(manifestName(l.artifactName)).toBe(base(l.manifestPath));
    expect(temporaryName(l.artifactName, 'w')).toBe(base(l.tempPath));
  });
});

describe('names: what parseName refuses', () => {
  const art = 'app-full-20251104T030000Z.tar';
  it.each([
    ['another job whose name starts like this one', 'app-db-full-20251104T030000Z.tar'],
    ['another job\'s manifest', 'other-full-20251104T030000Z.tar.manifest.json'],
    ['an unknown backup type', 'app-incr-20251104T030000Z.tar'],
    ['a short time stamp', 'app-full-20251104T0300Z.tar'],
    ['a stamp without its Z', 'app-full-20251104T030000.tar'],
    ['another extension', 'app-full-20251104T030000Z.tar.gz'],
    ['a suffix after the manifest', `${art}.manifest.json.bak`],
    ['a prefix before the artifact', `x${art}`],
    ['a visible temporary file', `${art}.w.tmp`],
    ['a temporary file without a workflow ID', `.${art}..tmp`],
    ['a hidden artifact', `.${art}`],
    ['a path, not a name', `../${art}`],
    ['a nested path', `daily/${art}`],
    ['a drill report', '20251104T030000Z.json'],
    ['the empty name', ''],
  ])('%s: %s', (_why, name) => {
    expect(parseName(name, 'app')).toBeUndefined();
  });

  it('takes the job literally, never as a pattern', () => {
    expect(parseName('aXb-full-20251104T030000Z.tar', 'a.b')).toBeUndefined();
    expect(parseName('a.b-full-20251104T030000Z.tar', 'a.b')?.kind).toBe('artifact');
    expect(parseName('a.b-full-20251104T030000Z.tar', '(a.b|x)')).toBeUndefined();
  });
});

describe('safeWorkflowId', () => {
  it('keeps letters, digits and ._:- and replaces everything else', () => {
    expect(safeWorkflowId('backup-app-full-2025-11-04T03:00:00Z')).toBe('backup-app-full-2025-11-04T03:00:00Z');
    expect(safeWorkflowId('a/../b c')).toBe('a_.._b_c');
    expect(safeWorkflowId('ü\n\0/\\')).toBe('_____');
  });
  it('never yields a path separator, and refuses an ID that would be no folder of its own', () => {
    for (const id of ['/', '../../etc/passwd', 'C:\\x', 'a/b/c']) expect(safeWorkflowId(id)).not.toMatch(/[/\\]/);
    expect(safeWorkflowId('...')).toBe('...');
    for (const id of ['', '.', '..']) expect(() => safeWorkflowId(id)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', permanent: true, message: expect.stringMatching(/cannot name a folder/) }));
  });
});
