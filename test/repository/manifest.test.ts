import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/contracts/manifest.js';
import { LocalSession } from '../../src/destinations/local/index.js';
import { catalogDestination } from '../../src/repository/catalog.js';
import { layout } from '../../src/repository/layout.js';
import { MANIFEST_MAX_BYTES, checkManifestShape, isMemberOf, readManifest } from '../../src/repository/manifest.js';
import { signatureName } from '../../src/repository/signatures.js';
import { deploymentKey } from './support.js';

// A destination is untrusted: what a manifest read back may name, and how large it may be.

const root = mkdtempSync(path.join(tmpdir(), 'backupctl-manifest-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function good(): Manifest {
  const slot = '2025-11-04T03:00:00Z';
  return {
    format: 'backupctl-manifest/1', job: 'app', type: 'full', tier: 'daily', slot, workflowId: 'backup-app-full-2025-11-04T03:00:00Z', runId: 'r', createdAt: slot,
    artifact: { name: layout('app', 'full', 'daily', new Date(slot), 'w').artifactName, size: 4096, sha256: 'a'.repeat(64), format: 'tar' },
    components: [
      { name: 'app-files', type: 'files', member: 'app-files.tar.zst', size: 100, sha256: 'b'.repeat(64), stats: { files: 1 }, snapshot: { member: 'app-files.snar', offset: 1024, size: 10, sha256: 'c'.repeat(64) } },
      { name: 'shop-db', type: 'mysql', member: 'shop-db.sql.zst', size: 100, sha256: 'd'.repeat(64), stats: { databases: 'shop' } },
    ],
    warnings: [], tools: {},
  };
}

describe('manifest shape', () => {
  it('accepts what backupctl writes', () => {
    expect(() => checkManifestShape(good())).not.toThrow();
    expect(isMemberOf('mongo', 'mongo.archive.zst')).toBe(true);
    expect(isMemberOf('mongo', 'mongo.bin')).toBe(true);
  });

  const cases: [string, (m: Record<string, any>) => void, RegExp][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
    ['a component name that climbs out', (m) => { m.components[0].name = '../../victim'; m.components[0].member = '../../victim.tar.zst'; }, /component name "\.\.\/\.\.\/victim" is not a name/],
    ['an absolute component name', (m) => { m.components[0].name = '/etc'; }, /component name "\/etc"/],
    ['a component name with a slash', (m) => { m.components[0].name = 'a/b'; }, /component name "a\/b"/],
    ['a component name ".."', (m) => { m.components[0].name = '..'; }, /component name "\.\."/],
    ['an empty component name', (m) => { m.components[0].name = ''; }, /component name ""/],
    ['a component name that is no string', (m) => { m.components[0].name = 7; }, /component name 7/],
    ['a member that climbs out', (m) => { m.components[1].member = 'shop-db.sql/../../../x'; }, /member "shop-db\.sql\/\.\.\/\.\.\/\.\.\/x" is not one a source "shop-db" writes/],
    ['a member of another name', (m) => { m.components[1].member = 'other.sql.zst'; }, /member "other\.sql\.zst"/],
    ['an absolute member', (m) => { m.components[1].member = '/etc/passwd'; }, /member "\/etc\/passwd"/],
    ['a member with ".." in its extension', (m) => { m.components[1].member = 'shop-db...zst'; }, /member "shop-db\.\.\.zst"/],
    ['a type that is a path', (m) => { m.components[1].type = '../mysql'; }, /type "\.\.\/mysql" is not a name/],
    ['a snapshot member of another name', (m) => { m.components[0].snapshot.member = '../x.snar'; }, /malformed snapshot member/],
    ['a negative size', (m) => { m.components[0].size = -1; }, /size -1 is not a whole number/],
    ['a size that is no whole number', (m) => { m.components[0].size = 1e300; }, /size 1e\+300/],
    ['an artifact size that is no number', (m) => { m.artifact.size = '5'; }, /no artifact name, size and SHA-256/],
    ['a component listed twice', (m) => { m.components[1] = { ...m.components[0], snapshot: undefined }; }, /listed twice/],
    ['a tier that is a path', (m) => { m.tier = '../../etc'; }, /tier "\.\.\/\.\.\/etc" is not a name/],
    ['a job that is a path', (m) => { m.job = '../app'; }, /job "\.\.\/app" is not a name/],
    ['a slot that is no time', (m) => { m.slot = 'soon'; }, /slot "soon" is not a time/],
    ['components that are no list', (m) => { m.components = { 0: {} }; }, /components is not a list/],
    ['stats that are no object', (m) => { m.components[0].stats = 'x'; }, /stats is not an object/],
    ['an encryption of another type', (m) => { encrypt(m); m.encryption.type = 'gpg'; }, /encryption is not \{ type: "age"/],
    ['an encryption without recipients', (m) => { encrypt(m); m.encryption.recipients = []; }, /encryption is not/],
    ['a recipient that is no age public key', (m) => { encrypt(m); m.encryption.recipients = ['AGE-SECRET-KEY-1X']; }, /encryption is not/],
    ['an encrypted component without its plaintext size', (m) => { encrypt(m); delete m.components[1].plaintextSize; }, /shop-db: an encrypted backup's component has no plaintextSize/],
    ['a plaintext size that is no whole number', (m) => { encrypt(m); m.components[0].plaintextSize = -3; }, /plaintextSize -3/],
  ];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  function encrypt(m: Record<string, any>): void {
    m.encryption = { type: 'age', recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'] };
    m.components[0].plaintextSize = 60;
    m.components[1].plaintextSize = 60;
    m.components[0].snapshot.plaintextSize = 5;
  }
  it('accepts an encrypted backup\'s manifest', () => {
    const m = structuredClone(good()) as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    encrypt(m);
    expect(() => checkManifestShape(m)).not.toThrow();
  });
  it.each(cases)('refuses %s', (_what, spoil, message) => {
    const m = structuredClone(good()) as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    spoil(m);
    expect(() => checkManifestShape(m)).toThrow(message);
  });
});

describe('reading a manifest back', () => {
  const d = new LocalSession('nas', { type: 'local', path: root } as never);
  const l = layout('app', 'full', 'daily', new Date('2025-11-04T03:00:00Z'), 'w');

  const { trust, sign } = deploymentKey();

  /** Stores an artifact and its manifest, signed by the deployment as a worker would. */
  function store(manifest: string | Buffer, size = 10): void {
    mkdirSync(path.join(root, l.dir), { recursive: true });
    writeFileSync(path.join(root, l.finalPath), Buffer.alloc(size));
    writeFileSync(path.join(root, l.manifestPath), manifest);
    writeFileSync(path.join(root, signatureName(l.manifestPath)), sign(manifest));
  }

  it('reads and checks a manifest of at most 1 MiB', async () => {
    const m = { ...good(), artifact: { ...good().artifact, size: 10 } };
    store(JSON.stringify(m));
    expect(await readManifest(d, l.manifestPath, trust)).toEqual({ manifest: m, keyId: expect.any(String) });
    expect((await catalogDestination(d, 'app', trust)).backups.map((b) => b.path)).toEqual([l.finalPath]);
  });

  it('never parses a larger one: an anomaly that list shows, no backup', async () => {
    // Valid JSON, padded past the cap: refused for its size alone.
    const m = { ...good(), artifact: { ...good().artifact, size: 10 }, warnings: ['x'.repeat(MANIFEST_MAX_BYTES)] };
    store(JSON.stringify(m));
    await expect(readManifest(d, l.manifestPath, trust)).rejects.toThrow(/more than the 1048576 a small file may have; it was not read/);
    const c = await catalogDestination(d, 'app', trust);
    expect(c.backups).toEqual([]);
    expect(c.anomalies).toEqual([expect.objectContaining({ path: l.finalPath, problem: 'unreadable manifest', detail: expect.stringMatching(/it was not read/) })]);
  });

  it('lists a manifest with a planted component name as an anomaly, never as a backup', async () => {
    const m = structuredClone(good()) as Manifest;
    m.artifact.size = 10;
    m.components[0]!.name = '../../victim';
    m.components[0]!.member = '../../victim.tar.zst';
    store(JSON.stringify(m));
    const c = await catalogDestination(d, 'app', trust);
    expect(c.backups).toEqual([]);
    expect(c.anomalies).toEqual([expect.objectContaining({ problem: 'unreadable manifest', detail: expect.stringMatching(/component name "\.\.\/\.\.\/victim" is not a name/) })]);
  });
});
