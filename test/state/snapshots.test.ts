import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import type { Manifest } from '../../src/contracts/manifest.js';
import { LocalSession } from '../../src/destinations/local/index.js';
import { commitSnapshots, hasSnapshots, recoverSnapshots, snapshotDir, snapshotFile } from '../../src/state/snapshots.js';

let root: string;
let config: Config;

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'backupctl-snapshots-'));
  config = { stateDir: path.join(root, 'state') } as Config;
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A full's staging folder holding a GNU tar snapshot per source. */
function staging(name: string, sources: Record<string, string>): string {
  const dir = path.join(root, 'staging', name);
  mkdirSync(dir, { recursive: true });
  for (const [s, data] of Object.entries(sources)) writeFileSync(snapshotFile(dir, s), data);
  return dir;
}

describe('snapshots on the worker', () => {
  it('keeps them per job and full, with odd IDs kept inside the state folder', () => {
    expect(snapshotDir(config, 'app', 'backup-app-full-2025-11-04T03:00:00Z')).toBe(path.join(config.stateDir, 'snapshots', 'app', 'backup-app-full-2025-11-04T03:00:00Z'));
    expect(path.relative(config.stateDir, snapshotDir(config, 'app', '../x'))).toBe(path.join('snapshots', 'app', '.._x'));
    expect(() => snapshotDir(config, '..', 'w')).toThrow(/cannot name a folder/);
  });

  it('commits a verified full\'s snapshots from staging; a diff finds them; committing again is harmless', async () => {
    const dir = staging('w1', { files: 'snap-files', etc: 'snap-etc' });
    expect(await hasSnapshots(config, 'app', 'w1', ['files', 'etc'])).toBe(false);
    await commitSnapshots(config, 'app', 'w1', dir, ['files', 'etc']);
    expect(await hasSnapshots(config, 'app', 'w1', ['files', 'etc'])).toBe(true);
    expect(await hasSnapshots(config, 'app', 'w1', ['files', 'other'])).toBe(false);
    expect(readFileSync(snapshotFile(snapshotDir(config, 'app', 'w1'), 'files'), 'utf8')).toBe('snap-files');
    rmSync(dir, { recursive: true });
    await commitSnapshots(config, 'app', 'w1', dir, ['files', 'etc']);
    expect(await hasSnapshots(config, 'app', 'w1', ['files', 'etc'])).toBe(true);
  });

  it('keeps the snapshots of the newest three fulls of a job only', async () => {
    const parent = path.join(config.stateDir, 'snapshots', 'app');
    for (const [i, w] of ['w1', 'w2', 'w3', 'w4'].entries()) {
      await commitSnapshots(config, 'app', w, staging(w, { files: w }), ['files']);
      const t = new Date(Date.UTC(2025, 0, 1 + i));
      utimesSync(snapshotDir(config, 'app', w), t, t);
    }
    await commitSnapshots(config, 'app', 'w5', staging('w5', { files: 'w5' }), ['files']);
    expect(readdirSync(parent).sort()).toEqual(['w3', 'w4', 'w5']);
  });

  it('does nothing for a full without files sources', async () => {
    await commitSnapshots(config, 'app', 'w1', path.join(root, 'nowhere'), []);
    expect(existsSync(path.join(config.stateDir, 'snapshots'))).toBe(false);
  });
});

describe('recovering snapshots from a stored full', () => {
  const data = Buffer.from('the GNU tar snapshot of source files');
  const sha = createHash('sha256').update(data).digest('hex');
  /** An artifact whose member at offset 1024 is the snapshot: a 512-byte header, then its data. */
  function store(): { d: LocalSession; manifest: Manifest } {
    const dest = path.join(root, 'dest');
    mkdirSync(path.join(dest, 'daily'), { recursive: true });
    writeFileSync(path.join(dest, 'daily', 'a.tar'), Buffer.concat([Buffer.alloc(1024 + 512, 1), data, Buffer.alloc(100)]));
    const manifest = {
      workflowId: 'backup-app-full-1', components: [{ name: 'files', type: 'files', member: 'files.tar', size: 1, sha256: 'x', stats: {}, snapshot: { member: 'files.snar', offset: 1024, size: data.length, sha256: sha } }],
    } as unknown as Manifest;
    return { d: new LocalSession('nas', { type: 'local', path: dest } as never), manifest };
  }

  it('reads each snapshot member at its offset and checks it against the manifest', async () => {
    const { d, manifest } = store();
    expect(await recoverSnapshots(config, 'app', d, 'daily/a.tar', manifest, ['files'])).toBeUndefined();
    expect(readFileSync(snapshotFile(snapshotDir(config, 'app', 'backup-app-full-1'), 'files'))).toEqual(data);
    expect(await hasSnapshots(config, 'app', 'backup-app-full-1', ['files'])).toBe(true);
  });

  it('says why not when a member does not match, or the full has none, and installs nothing', async () => {
    const { d, manifest } = store();
    const bad = structuredClone(manifest);
    bad.components[0]!.snapshot!.sha256 = '0'.repeat(64);
    expect(await recoverSnapshots(config, 'app', d, 'daily/a.tar', bad, ['files'])).toMatch(/files\.snar in daily\/a\.tar does not match its manifest/);
    expect(await recoverSnapshots(config, 'app', d, 'daily/a.tar', manifest, ['files', 'etc'])).toMatch(/holds no snapshot of source "etc"/);
    expect(await hasSnapshots(config, 'app', 'backup-app-full-1', ['files'])).toBe(false);
  });

  it('an encrypted full: without an identity it says why (a worker that only backs up); with one, the member is decrypted and its plaintext size checked', async () => {
    const key = path.join(root, 'age.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
    const sealed = execFileSync('age', ['-e', '-r', recipient], { input: data });
    const dest = path.join(root, 'dest');
    mkdirSync(path.join(dest, 'daily'), { recursive: true });
    writeFileSync(path.join(dest, 'daily', 'e.tar'), Buffer.concat([Buffer.alloc(1024 + 512, 1), sealed, Buffer.alloc(100)]));
    const manifest = {
      workflowId: 'backup-app-full-2', encryption: { type: 'age', recipients: [recipient] },
      components: [{ name: 'files', type: 'files', member: 'files.tar', size: 1, sha256: 'x', stats: {}, snapshot: { member: 'files.snar', offset: 1024, size: sealed.length, sha256: createHash('sha256').update(sealed).digest('hex'), plaintextSize: data.length } }],
    } as unknown as Manifest;
    const d = new LocalSession('nas', { type: 'local', path: dest } as never);
    expect(await recoverSnapshots(config, 'app', d, 'daily/e.tar', manifest, ['files'])).toMatch(new RegExp(`the full is encrypted \\(age, to ${recipient}\\) and this worker holds no identity`));
    expect(await hasSnapshots(config, 'app', 'backup-app-full-2', ['files'])).toBe(false);
    const wrong = path.join(root, 'wrong.txt');
    execFileSync('age-keygen', ['-o', wrong], { stdio: 'ignore' });
    expect(await recoverSnapshots(config, 'app', d, 'daily/e.tar', manifest, ['files'], wrong)).toMatch(/could not be decrypted with .*wrong\.txt \(age exited 1: .*no identity matched/s);
    expect(await recoverSnapshots(config, 'app', d, 'daily/e.tar', manifest, ['files'], key)).toBeUndefined();
    expect(readFileSync(snapshotFile(snapshotDir(config, 'app', 'backup-app-full-2'), 'files'))).toEqual(data);
  });
});
