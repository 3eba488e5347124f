import { describe, expect, it } from 'vitest';
import { BackupError } from '../../src/errors.js';
import { memberRanges, pickBackup, resolveChain, type Stored } from '../../src/restore/chain.js';
import { dumpedDatabases, type BackupType, type Manifest } from '../../src/contracts/index.js';
import { DATABASE_LISTS } from '../../src/sources/databases.js';
import { parseIntoDatabases, resolveTargets } from '../../src/restore/targets.js';
import { layout } from '../../src/repository/layout.js';

// Crafted manifests, as the backup workflow writes them (a diff names its base full: Manifest.base).
function stored(type: BackupType, slot: string, base?: Stored, tier = 'daily'): Stored {
  const workflowId = `backup-app-${type}-${slot}`;
  const l = layout('app', type, tier, new Date(slot), workflowId);
  const sha = (s: string) => Buffer.from(s).toString('hex').padEnd(64, '0').slice(0, 64);
  const manifest: Manifest = {
    format: 'backupctl-manifest/1', job: 'app', type, tier, slot, workflowId, runId: 'r', createdAt: slot,
    artifact: { name: l.artifactName, size: 1000 + slot.length, sha256: sha(slot), format: 'tar' },
    components: [{ name: 'files', type: 'files', member: 'files.tar.zst', size: 700, sha256: sha(`c${slot}`), stats: { files: 3, bytes: 10 } }],
    warnings: [], tools: {},
    ...(base ? { base: { workflowId: base.manifest.workflowId, slot: base.manifest.slot, path: base.path, size: base.manifest.artifact.size, sha256: base.manifest.artifact.sha256 } } : {}),
  };
  return { path: l.finalPath, manifest };
}

const full1 = stored('full', '2025-11-01T03:00:00Z');
const diff1 = stored('diff', '2025-11-01T09:00:00Z', full1);
const full2 = stored('full', '2025-11-02T03:00:00Z', undefined, 'weekly');
const diff2 = stored('diff', '2025-11-02T09:00:00Z', full2);
const all = [diff2, full1, full2, diff1];

describe('restore: which backup, in what order', () => {
  it('defaults to the newest backup; a diff comes after its base full', () => {
    const p = pickBackup(all, {}, 'app');
    expect(p).toBe(diff2);
    expect(resolveChain(p, all).map((a) => a.path)).toEqual([full2.path, diff2.path]);
  });

  it('--at picks the newest slot at or before the time, and resolves that backup\'s own base', () => {
    expect(pickBackup(all, { at: '2025-11-01T09:00:00Z' }, 'app')).toBe(diff1);
    expect(resolveChain(diff1, all).map((a) => a.workflowId)).toEqual([full1.manifest.workflowId, diff1.manifest.workflowId]);
    expect(pickBackup(all, { at: '2025-11-02T08:59:59Z' }, 'app')).toBe(full2);
    expect(resolveChain(full2, all).map((a) => a.path)).toEqual([full2.path]);
    expect(() => pickBackup(all, { at: '2025-10-31T00:00:00Z' }, 'app')).toThrow(/no finalized backup of job app at or before 2025-10-31/);
    expect(() => pickBackup(all, { at: 'yesterday' }, 'app')).toThrow(/not an ISO time/);
  });

  it('--backup picks by workflow ID', () => {
    expect(pickBackup(all, { backup: full1.manifest.workflowId }, 'app')).toBe(full1);
    expect(() => pickBackup(all, { backup: 'backup-app-full-nope' }, 'app')).toThrow(/no finalized backup of job app was made by run backup-app-full-nope/);
  });

  it('refuses a diff whose base is gone, or is not the full it was taken against', () => {
    let err: unknown;
    try { resolveChain(diff1, [diff1, full2]); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).code).toBe('RESTORE_NOT_FOUND');
    expect((err as BackupError).message).toContain(full1.path);
    const changed: Stored = { path: full1.path, manifest: { ...full1.manifest, artifact: { ...full1.manifest.artifact, sha256: 'f'.repeat(64) } } };
    expect(() => resolveChain(diff1, [changed, diff1])).toThrow(/is not the full the diff was taken against/);
    const orphan: Stored = { path: diff1.path, manifest: { ...diff1.manifest, base: undefined } };
    expect(() => resolveChain(orphan, all)).toThrow(/has no base/);
  });

  it('locates each member in the artifact from the manifest alone (512-byte headers, padded data)', () => {
    const r = memberRanges([
      { name: 'a', type: 'files', member: 'a.tar.zst', size: 1000, sha256: '', stats: {} },
      { name: 'b', type: 'mysql', member: 'b.sql.zst', size: 512, sha256: '', stats: {} },
    ]);
    expect(r).toEqual([
      { member: 'a.tar.zst', header: 0, start: 512, size: 1000 },
      { member: 'b.sql.zst', header: 1536, start: 2048, size: 512 },
    ]);
  });

  it('skips the GNU tar snapshot member that follows a files component, and refuses a manifest that misplaces it', () => {
    const withSnapshot = (offset: number) => memberRanges([
      { name: 'a', type: 'files', member: 'a.tar.zst', size: 1000, sha256: '', stats: {}, snapshot: { member: 'a.snar', offset, size: 100, sha256: '' } },
      { name: 'b', type: 'mysql', member: 'b.sql.zst', size: 512, sha256: '', stats: {} },
    ]);
    // a: header 0, data 512..1512, padded to 2048; a.snar: header 1536, data 2048..2148, padded to 2560.
    expect(withSnapshot(1536)).toEqual([
      { member: 'a.tar.zst', header: 0, start: 512, size: 1000 },
      { member: 'b.sql.zst', header: 2560, start: 3072, size: 512 },
    ]);
    expect(() => withSnapshot(2048)).toThrow(/snapshot member a\.snar at byte 2048, but the members before it end at byte 1536/);
  });
});

describe('restore: --into-databases', () => {
  const chain = resolveChain(full1, all);
  chain[0]!.components.push(
    { name: 'shop-db', type: 'mysql', member: 'shop-db.sql.zst', size: 1, sha256: '', stats: { databases: 'shop' } },
    { name: 'pg', type: 'postgres', member: 'pg.tar.zst', size: 1, sha256: '', stats: { 'globals.bytes': 1, 'database.ledger.bytes': 5, 'database.crm.bytes': 7 } },
  );

  it('maps source=target and source.database=target to the dumped databases', () => {
    expect(dumpedDatabases(chain, DATABASE_LISTS)).toEqual([{ source: 'shop-db', type: 'mysql', databases: ['shop'] }, { source: 'pg', type: 'postgres', databases: ['crm', 'ledger'] }]);
    expect(resolveTargets(parseIntoDatabases(['shop-db=shop2', 'pg.ledger=ledger2']), chain)).toEqual([
      { source: 'shop-db', type: 'mysql', database: 'shop', target: 'shop2' },
      { source: 'pg', type: 'postgres', database: 'ledger', target: 'ledger2' },
    ]);
  });

  it('says what is wrong with a mapping', () => {
    expect(() => resolveTargets({ pg: 'x' }, chain)).toThrow(/holds 2 databases \(crm, ledger\); name one as pg.<database>=x/);
    expect(() => resolveTargets({ 'pg.nope': 'x' }, chain)).toThrow(/holds no database "nope"/);
    expect(() => resolveTargets({ files: 'x' }, chain)).toThrow(/no MariaDB\/MySQL or PostgreSQL source "files"/);
    expect(() => parseIntoDatabases(['shop-db'])).toThrow(/expected source=target/);
  });
});
