import { describe, expect, it } from 'vitest';
import { layout, slotDir } from '../../src/repository/layout.js';

describe('layout', () => {
  const slot = new Date('2025-11-04T03:00:00.123Z');
  it('lays out backups by tier and slot, with the temporary file beside the final one', () => {
    const l = layout('app', 'full', 'daily', slot, 'backup-app-full-2025-11-04T03:00:00Z');
    expect(l.finalPath).toBe('daily/2025/11/04/0300/app-full-20251104T030000Z.tar');
    expect(l.manifestPath).toBe('daily/2025/11/04/0300/app-full-20251104T030000Z.tar.manifest.json');
    expect(l.tempPath).toBe('daily/2025/11/04/0300/.app-full-20251104T030000Z.tar.backup-app-full-2025-11-04T03:00:00Z.tmp');
  });

  it('keeps odd workflow IDs out of the path', () => {
    expect(layout('app', 'full', 'daily', slot, 'a/../b c').tempPath).toMatch(/\.a_\.\._b_c\.tmp$/);
  });

  it('refuses a tier or job that is no name of the grammar: nothing outside the destination\'s tree', () => {
    for (const tier of ['../../../etc/cron.d', '..', '.', '/abs', 'a/b', '', 'x..y']) {
      expect(() => layout('app', 'full', tier, slot, 'w'), tier).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', permanent: true, message: expect.stringMatching(/^tier .* is not a valid name/) }));
    }
    expect(() => layout('../app', 'full', 'daily', slot, 'w')).toThrow(/^job "\.\.\/app" is not a valid name/);
    expect(() => layout('app', 'full', 'daily', slot, '..')).toThrow(/cannot name a folder/);
    expect(() => layout('app', 'full', 'daily', new Date('x'), 'w')).toThrow(/not a valid time/);
  });

  it('names every part of the layout in UTC, whatever the time of day', () => {
    const late = new Date('2025-12-31T23:59:58Z');
    expect(slotDir('weekly', late)).toBe('weekly/2025/12/31/2359');
    expect(layout('db.main', 'diff', 'weekly', late, 'w')).toEqual({
      dir: 'weekly/2025/12/31/2359',
      artifactName: 'db.main-diff-20251231T235958Z.tar',
      finalPath: 'weekly/2025/12/31/2359/db.main-diff-20251231T235958Z.tar',
      tempPath: 'weekly/2025/12/31/2359/.db.main-diff-20251231T235958Z.tar.w.tmp',
      manifestPath: 'weekly/2025/12/31/2359/db.main-diff-20251231T235958Z.tar.manifest.json',
    });
  });

  it('puts the temporary file and the manifest in the artifact\'s own slot folder', () => {
    const l = layout('app', 'full', 'daily', slot, 'backup-app-full-2025-11-04T03:00:00Z');
    for (const p of [l.finalPath, l.tempPath, l.manifestPath]) expect(p.slice(0, p.lastIndexOf('/'))).toBe(l.dir);
  });
});
