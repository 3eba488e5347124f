import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBase } from '../../src/activities/diff-base.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Manifest } from '../../src/contracts/manifest.js';
import { closeDestinations } from '../../src/destinations/index.js';
import { layout } from '../../src/repository/layout.js';
import { signatureFor, signatureName } from '../../src/repository/signatures.js';
import { ensureSigningKey, loadSigningKey } from '../../src/state/keys.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';

// A diff's base must be stored on every destination the diff goes to (src/activities/diff-base.ts): the full's
// artifact with its size, not only its signed manifest. Two real local destinations (folders), filled by hand.

let tmp: TempDir;
let config: Config;
const slot = '2026-11-29T03:00:00Z';
const workflowId = `backup-app-full-${slot}`;
const l = layout('app', 'full', 'daily', new Date(slot), workflowId);
const dir = (name: string) => path.join(tmp.path, name);

beforeAll(async () => {
  tmp = await makeTempDir('backupctl-diff-base-');
  for (const d of ['a', 'b']) mkdirSync(dir(d));
  const file = path.join(tmp.path, 'backup.yml');
  writeFileSync(file, `stateDir: ${JSON.stringify(dir('state'))}
destinations:
  a: { type: local, path: ${JSON.stringify(dir('a'))} }
  b: { type: local, path: ${JSON.stringify(dir('b'))} }
jobs:
  app:
    sources:
      - { name: dump, type: command, command: [echo, hi] }
    destinations: [a, b]
`);
  config = loadConfig(file).config;
  ensureSigningKey(config);
  const key = loadSigningKey(config);
  const manifest: Manifest = {
    format: 'backupctl-manifest/1', job: 'app', type: 'full', tier: 'daily', slot, workflowId, runId: 'r', createdAt: slot,
    artifact: { name: l.artifactName, size: 10, sha256: 'a'.repeat(64), format: 'tar' }, components: [], warnings: [], tools: {},
  };
  for (const d of ['a', 'b']) {
    const put = (rel: string, data: Buffer) => { mkdirSync(path.dirname(path.join(dir(d), rel)), { recursive: true }); writeFileSync(path.join(dir(d), rel), data); };
    const bytes = Buffer.from(JSON.stringify(manifest));
    put(l.finalPath, Buffer.alloc(10));
    put(l.manifestPath, bytes);
    put(signatureName(l.manifestPath), signatureFor('manifest', bytes, key));
  }
});
afterAll(async () => {
  await closeDestinations();
  await tmp?.cleanup();
});

describe('the base of a diff', () => {
  it('the newest full stored on every destination is the base', async () => {
    const r = await chooseBase(config, 'app', config.jobs.app!, ['a', 'b']);
    expect(r.reason).toBeUndefined();
    expect(r.base).toMatchObject({ workflowId, path: l.finalPath, size: 10 });
  });

  it('a full whose artifact is gone from the second destination (its signed manifest still there) is no base: the run is a full', async () => {
    rmSync(path.join(dir('b'), l.finalPath));
    const r = await chooseBase(config, 'app', config.jobs.app!, ['a', 'b']);
    expect(r.base).toBeUndefined();
    expect(r.reason).toBe(`the newest full (${l.finalPath}) is not finalized on destination "b"`);
  });

  it('gone from the first destination too: no finalized full at all', async () => {
    rmSync(path.join(dir('a'), l.finalPath));
    const r = await chooseBase(config, 'app', config.jobs.app!, ['a', 'b']);
    expect(r.reason).toBe('no finalized full backup of job "app" on destination "a"');
  });
});
