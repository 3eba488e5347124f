import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BackupError } from '../errors.js';
import { runCapture } from './process.js';

/**
 * A throwaway database server's home: a fresh 0700 directory under the system's temporary directory (short paths:
 * Unix sockets are limited to about 100 bytes), owned by the account the server runs as. A server started there is
 * reachable only through a Unix socket inside it, so no other account on the worker can connect.
 *
 * As root, database servers refuse to run (PostgreSQL) or should not (MariaDB): they run as their packages' service
 * account (`mysql`, `postgres`), which `account` names; otherwise as the worker's own user.
 */
export interface ScratchHome {
  dir: string;
  /** The service account the server runs as (root only), else undefined: the worker's user. */
  account: string | undefined;
  /** Runs a program as the server's account (through runuser when root). */
  run(cmd: string, args: readonly string[], opts?: { signal?: AbortSignal }): ReturnType<typeof runCapture>;
  /** Removes the directory. */
  remove(): Promise<void>;
}

export async function scratchHome(prefix: string, serviceAccount: string): Promise<ScratchHome> {
  const isRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(path.join(os.tmpdir(), `backupctl-${prefix}-`));
  if (isRoot) {
    const id = async (flag: string) => {
      const r = await runCapture('id', [flag, serviceAccount]);
      if (r.code !== 0) {
        await rm(dir, { recursive: true, force: true });
        throw new BackupError('RESTORE_FAILED', `the drill's scratch database server runs as "${serviceAccount}" (the worker runs as root), which does not exist`, {
          hint: 'install the database server package (it creates the account), or run the worker as another user',
        });
      }
      return Number(r.stdout.trim());
    };
    await chown(dir, await id('-u'), await id('-g'));
  }
  const account = isRoot ? serviceAccount : undefined;
  return {
    dir,
    account,
    run: (cmd, args, opts = {}) => (account ? runCapture('runuser', ['-u', account, '--', cmd, ...args], opts) : runCapture(cmd, args, opts)),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
