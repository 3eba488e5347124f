import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupType } from '../../src/contracts/backup.js';
import type { Manifest } from '../../src/contracts/manifest.js';
import { LocalSession } from '../../src/destinations/local/index.js';
import { catalogDestination, finalizedAt, manifestsNewestFirst, newestOnDestination } from '../../src/repository/catalog.js';
import { layout } from '../../src/repository/layout.js';
import { slotDirsNewestFirst, tiersOf } from '../../src/repository/walk.js';
import { signatureName } from '../../src/repository/signatures.js';
import { deploymentKey } from './support.js';

/** A real local destination over a temporary directory, filled by hand: no servers. */
let root: string;
let d: LocalSession;

// This deployment's signing key: every manifest written here is signed with it, as a worker signs (signatures.test.ts
// covers manifests that are not).
const { trust, sign } = deploymentKey();

function put(rel: string, data: string | Buffer): void {
  mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  writeFileSync(path.join(root, rel), data);
  if (rel.endsWith('.manifest.json')) writeFileSync(path.join(root, signatureName(rel)), sign(data));
}

function manifestFor(job: string, type: BackupType, tier: string, slot: string, size: number, extra: Partial<Manifest> = {}): Manifest {
  const workflowId = `backup-${job}-${type}-${slot}`;
  return {
    format: 'backupctl-manifest/1', job, type, tier, slot, workflowId, runId: 'r', createdAt: slot,
    artifact: { name: layout(job, type, tier, new Date(slot), workflowId).artifactName, size, sha256: 'a'.repeat(64), format: 'tar' },
    components: [], warnings: [], tools: {}, ...extra,
  };
}

/** A finalized backup: the artifact (`size` bytes) and its manifest, where layout() puts them. */
function backup(job: string, type: BackupType, tier: string, slot: string, opts: { size?: number; manifest?: Partial<Manifest> | string | false } = {}) {
  const size = opts.size ?? 10;
  const m = manifestFor(job, type, tier, slot, size, typeof opts.manifest === 'object' ? opts.manifest : {});
  const l = layout(job, type, tier, new Date(slot), m.workflowId);
  put(l.finalPath, Buffer.alloc(size));
  if (opts.manifest !== false) put(l.manifestPath, typeof opts.manifest === 'string' ? opts.manifest : JSON.stringify(m));
  return { ...l, manifest: m };
}

let full: ReturnType<typeof backup>, diff: ReturnType<typeof backup>, manual: ReturnType<typeof backup>;
let noManifest: ReturnType<typeof backup>, unreadable: ReturnType<typeof backup>, otherArtifact: ReturnType<typeof backup>, wrongSize: ReturnType<typeof backup>;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'backupctl-catalog-'));
  full = backup('app', 'full', 'daily', '2025-11-03T03:00:00Z');
  diff = backup('app', 'diff', 'daily', '2025-11-04T03:00:00Z', {
    manifest: { base: { workflowId: full.manifest.workflowId, slot: full.manifest.slot, path: full.finalPath, size: 10, sha256: 'a'.repeat(64) } },
  });
  manual = backup('app', 'full', 'manual', '2025-11-01T12:00:00Z', { size: 20 });
  noManifest = backup('app', 'full', 'daily', '2025-11-05T03:00:00Z', { manifest: false });
  unreadable = backup('app', 'full', 'daily', '2025-11-06T03:00:00Z', { manifest: '{ not json' });
  otherArtifact = backup('app', 'full', 'daily', '2025-11-07T03:00:00Z', { manifest: { job: 'other' } });
  wrongSize = backup('app', 'full', 'daily', '2025-11-08T03:00:00Z', { size: 5, manifest: { artifact: { name: 'app-full-20251108T030000Z.tar', size: 6, sha256: 'a'.repeat(64), format: 'tar' } } });
  // A manifest whose artifact is gone, a temporary upload file, another job's backup, stray files and folders.
  const gone = layout('app', 'diff', 'daily', new Date('2025-11-09T03:00:00Z'), 'w-gone');
  put(gone.manifestPath, JSON.stringify(manifestFor('app', 'diff', 'daily', '2025-11-09T03:00:00Z', 10)));
  const temp = layout('app', 'full', 'daily', new Date('2025-11-10T03:00:00Z'), 'backup-app-full-2025-11-10T03:00:00Z');
  put(temp.tempPath, 'partial');
  backup('app-db', 'full', 'daily', '2025-11-04T03:00:00Z');
  put('daily/2025/11/04/0300/notes.txt', 'hello');
  put('daily/2025/11/04/not-a-slot/app-full-20251104T030000Z.tar', 'x');
  put('.hidden/2025/11/04/0300/app-full-20251104T030000Z.tar', 'x');
  put('drills/app/20251104T030000Z.json', '{}');
  d = await new LocalSession('nas', { type: 'local', path: root } as never).connect();
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('walk', () => {
  it('lists the tiers (top-level folders but hidden ones) and their slot folders, newest first', async () => {
    expect(await tiersOf(d)).toEqual(['daily', 'drills', 'manual']);
    const dirs: string[] = [];
    for await (const dir of slotDirsNewestFirst(d, 'daily')) dirs.push(dir);
    expect(dirs).toEqual([
      'daily/2025/11/10/0300', 'daily/2025/11/09/0300', 'daily/2025/11/08/0300', 'daily/2025/11/07/0300',
      'daily/2025/11/06/0300', 'daily/2025/11/05/0300', 'daily/2025/11/04/0300', 'daily/2025/11/03/0300',
    ]);
  });
});

describe('catalog', () => {
  it('lists the finalized backups of the job in every tier, newest slot first, with their manifests', async () => {
    const cat = await catalogDestination(d, 'app', trust);
    expect(cat.destination).toBe('nas');
    expect(cat.backups.map((b) => [b.tier, b.type, b.slot, b.path])).toEqual([
      ['daily', 'diff', diff.manifest.slot, diff.finalPath],
      ['daily', 'full', full.manifest.slot, full.finalPath],
      ['manual', 'full', manual.manifest.slot, manual.finalPath],
    ]);
    const b = cat.backups[0]!;
    expect(b).toMatchObject({ destination: 'nas', workflowId: diff.manifest.workflowId, manifestPath: diff.manifestPath, size: 10, sha256: 'a'.repeat(64), createdAt: diff.manifest.slot });
    expect(b.base).toEqual(diff.manifest.base);
    expect(b.manifest).toEqual(diff.manifest);
    expect(cat.backups[1]!.base).toBeUndefined();
  });

  it('reports what looks like a backup but is none, and never lists it as one', async () => {
    const cat = await catalogDestination(d, 'app', trust);
    expect(cat.anomalies.map((a) => [a.problem, a.path]).sort()).toEqual([
      ['artifact missing', 'daily/2025/11/09/0300/app-diff-20251109T030000Z.tar.manifest.json'],
      ['no manifest', noManifest.finalPath],
      ['size differs from manifest', wrongSize.finalPath],
      ['unreadable manifest', otherArtifact.finalPath],
      ['unreadable manifest', unreadable.finalPath],
    ].sort());
    expect(cat.anomalies.find((a) => a.path === otherArtifact.finalPath)!.detail).toMatch(/does not describe this artifact/);
    expect(cat.anomalies.find((a) => a.path === wrongSize.finalPath)!.detail).toBe('5 bytes stored, 6 in the manifest');
  });

  it('lists temporary upload files with the workflow ID from their name', async () => {
    const cat = await catalogDestination(d, 'app', trust);
    expect(cat.temporary.map((t) => [t.path, t.workflowId, t.size])).toEqual([
      ['daily/2025/11/10/0300/.app-full-20251110T030000Z.tar.backup-app-full-2025-11-10T03:00:00Z.tmp', 'backup-app-full-2025-11-10T03:00:00Z', 7],
    ]);
  });

  it('keeps jobs apart, even when one name starts with the other', async () => {
    const cat = await catalogDestination(d, 'app-db', trust);
    expect(cat.backups.map((b) => b.path)).toEqual(['daily/2025/11/04/0300/app-db-full-20251104T030000Z.tar']);
    expect(cat.anomalies).toEqual([]);
    expect(cat.temporary).toEqual([]);
    expect((await catalogDestination(d, 'nobody', trust)).backups).toEqual([]);
  });
});

describe('newest backups', () => {
  it('yields the manifests of stored backups of a tier newest first, skipping the unreadable, the misplaced and those without their artifact', async () => {
    const seen: string[] = [];
    for await (const { dir, manifest } of manifestsNewestFirst(d, 'daily', 'app', trust)) seen.push(`${dir}/${manifest.artifact.name}`);
    // Skipped, newest first: 11/09 (its artifact is gone), 11/08 (the artifact's size differs from the manifest's),
    // 11/07 (the manifest names job "other"), 11/06 (unreadable), 11/05 (no manifest).
    expect(seen).toEqual([diff.finalPath, full.finalPath]);
  });

  it('another job\'s signed manifest copied beside this job\'s artifact is no backup of this job', async () => {
    const slot = '2025-11-11T03:00:00Z';
    const other = manifestFor('app-db', 'full', 'daily', slot, 10);
    const here = layout('app', 'full', 'daily', new Date(slot), other.workflowId);
    put(here.finalPath, Buffer.alloc(10));
    put(here.manifestPath, JSON.stringify(other));
    try {
      const found = await newestOnDestination(d, 'app', ['full'], trust, Date.parse('2025-11-12T00:00:00Z'));
      expect(found.full?.slot).toBe('2025-11-03T03:00:00Z');
    } finally {
      rmSync(path.join(root, 'daily/2025/11/11'), { recursive: true, force: true });
    }
  });

  it('finds the newest of each type over all tiers', async () => {
    const now = Date.parse('2025-11-10T03:00:00Z');
    const found = await newestOnDestination(d, 'app-db', ['full', 'diff'], trust, now);
    expect(found.diff).toBeUndefined();
    expect(found.full).toMatchObject({ type: 'full', slot: '2025-11-04T03:00:00Z', ageMs: 6 * 86_400_000, destination: 'nas', path: 'daily/2025/11/04/0300/app-db-full-20251104T030000Z.tar' });
  });
});

describe('a slot already backed up', () => {
  const at = (job: string, type: BackupType, slot: string) => finalizedAt(d, layout(job, type, 'daily', new Date(slot), `backup-${job}-${type}-${slot}`), job, trust);

  it('stored: a verified manifest of this artifact, and the artifact with its size; absent: no manifest', async () => {
    expect(await at('app', 'full', '2025-11-03T03:00:00Z')).toBe('stored');
    expect(await at('app', 'full', '2025-11-05T03:00:00Z')).toBe('absent');
    expect(await at('app', 'full', '2025-12-24T03:00:00Z')).toBe('absent');
  });

  it('a manifest that is no backup of this slot is a problem, never "stored": unreadable, another job\'s, artifact gone or of another size, unsigned', async () => {
    expect(await at('app', 'full', '2025-11-06T03:00:00Z')).toMatchObject({ problem: expect.stringMatching(/unreadable or describes another backup/) });
    expect(await at('app', 'full', '2025-11-07T03:00:00Z')).toMatchObject({ problem: expect.stringMatching(/describes another backup/) });
    expect(await at('app', 'full', '2025-11-08T03:00:00Z')).toMatchObject({ problem: 'the artifact has 5 bytes, its manifest says 6' });
    expect(await finalizedAt(d, layout('app', 'diff', 'daily', new Date('2025-11-09T03:00:00Z'), 'w-gone'), 'app', trust)).toEqual({ problem: 'its artifact is missing' });
    const slot = '2025-11-13T03:00:00Z';
    const m = manifestFor('app', 'full', 'daily', slot, 10);
    const l = layout('app', 'full', 'daily', new Date(slot), m.workflowId);
    put(l.finalPath, Buffer.alloc(10));
    writeFileSync(path.join(root, l.manifestPath), JSON.stringify(m));
    try {
      expect(await at('app', 'full', slot)).toMatchObject({ problem: expect.stringMatching(/not signed by a trusted key/) });
    } finally {
      rmSync(path.join(root, 'daily/2025/11/13'), { recursive: true, force: true });
    }
  });
});
