import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { closeDestinations, openDestination } from '../../src/destinations/index.js';
import { startSshd, type SshdHandle } from '../helpers/sshd.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';

// The connection pool (src/destinations/pool.ts) against a real sshd: a retried step's fresh connection (issue 18)
// replaces the pooled one for later steps, but never closes it under the steps that still use it.

let sshd: SshdHandle;
let tmp: TempDir;
beforeAll(async () => {
  sshd = await startSshd();
  tmp = await makeTempDir('backupctl-pool-');
});
afterAll(async () => {
  await closeDestinations();
  await sshd?.stop();
  await tmp?.cleanup();
});

describe('destination pool', () => {
  it('a fresh connection opened while two uploads share the pooled one: both uploads complete', async () => {
    const config = {
      destinations: { nas: { type: 'sftp', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyPath, hostKey: sshd.hostKeyFingerprint, path: sshd.root } },
    } as unknown as Config;
    const file = path.join(tmp.path, 'artifact.bin');
    writeFileSync(file, randomBytes(96 * 1024 * 1024));
    const a = await openDestination(config, 'nas');
    const b = await openDestination(config, 'nas');
    const progress = { a: 0, b: 0 };
    const upA = a.stage(file, { pending: 'pool/.a.tmp', final: 'pool/a' }, { onProgress: (n) => { progress.a = n; } });
    const upB = b.stage(file, { pending: 'pool/.b.tmp', final: 'pool/b' }, { onProgress: (n) => { progress.b = n; } });
    // Both in flight on the pooled connection.
    for (let i = 0; i < 500 && (progress.a === 0 || progress.b === 0); i++) await new Promise((r) => setTimeout(r, 10));
    expect(progress.a).toBeGreaterThan(0);
    expect(progress.b).toBeGreaterThan(0);
    // A retried step asks for a fresh connection meanwhile.
    const fresh = await openDestination(config, 'nas', { fresh: true });
    expect(await fresh.stat('pool')).toBeDefined();
    const [ra, rb] = await Promise.all([upA, upB]);
    expect(ra.bytes).toBe(96 * 1024 * 1024);
    expect(rb.bytes).toBe(96 * 1024 * 1024);
    expect(progress.a).toBe(ra.bytes);
    // The fresh connection serves the steps that come after; the replaced one closes when its last user lets go.
    const later = await openDestination(config, 'nas');
    expect(await later.stat('pool/.a.tmp')).toMatchObject({ size: 96 * 1024 * 1024 });
    for (const s of [a, b, fresh, later]) s.release();
  }, 120_000);
});
