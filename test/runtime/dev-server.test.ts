import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer } from '../../src/runtime/dev-server.js';
import { getFreePort } from '../helpers/free-port.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';

// `backupctl up` with a Temporal CLI that cannot be run: a clear TEMPORAL_UNAVAILABLE naming the file, not a crash
// (spawn reports EACCES as an 'error' event, which throws when nothing listens).

let tmp: TempDir;
const saved = process.env.TEMPORAL_CLI_PATH;
beforeAll(async () => { tmp = await makeTempDir('backupctl-devserver-'); });
afterAll(async () => {
  if (saved === undefined) delete process.env.TEMPORAL_CLI_PATH;
  else process.env.TEMPORAL_CLI_PATH = saved;
  await tmp?.cleanup();
});

describe('the dev server', () => {
  it('a Temporal CLI without the execute bit: refused with TEMPORAL_UNAVAILABLE naming it', async () => {
    const bin = path.join(tmp.path, 'temporal');
    writeFileSync(bin, '#!/bin/sh\nexit 0\n');
    chmodSync(bin, 0o644);
    process.env.TEMPORAL_CLI_PATH = bin;
    const err = await startDevServer({ stateDir: path.join(tmp.path, 'state'), port: await getFreePort(), uiPort: await getFreePort() })
      .then(() => undefined, (e: unknown) => e as Error & { code?: string; hint?: string });
    expect(err?.code).toBe('TEMPORAL_UNAVAILABLE');
    expect(err?.message).toContain(`cannot run the Temporal CLI ${bin}`);
    expect(err?.message).toMatch(/EACCES/);
  });
});
