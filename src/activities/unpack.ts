import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { RestoreArtifact, UnpackedComponent } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { insideRoot } from '../lib/paths.js';
import { memberRanges } from '../restore/chain.js';
import type { Config } from '../config/schema.js';
import { checkIdentity, decryptComponent } from '../restore/decrypt.js';
import { decryptedFile, fetchedFile, unpackTempDir } from '../restore/paths.js';
import { checkRoom, decryptedBytes, unpackedBytes } from '../restore/space.js';
import { treeStats, unpackComponent } from '../restore/unpack.js';
import { findSourcePlugin } from '../sources/index.js';
import { jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';

export interface UnpackInput {
  job: string;
  workflowId: string;
  /** Absolute target directory: must not exist, or be empty. */
  to: string;
  /** Base first, as fetched (artifact i is the staging file of index i). */
  chain: RestoreArtifact[];
  /** Count the regular files and bytes of each files component's tree (drills compare them with the manifest). */
  count?: boolean;
  /** Encrypted artifacts: the path of the age identity file on the worker (never the key itself). */
  identity?: string;
}

export interface UnpackResult {
  components: UnpackedComponent[];
  bytes: number;
}

/**
 * Written into the restored directory before it takes the target's name: which run restored what. A retried unpack
 * (the worker died between the rename and reporting the step done) finds it and reports the finished restore instead
 * of refusing its own, complete target.
 */
export const RESTORE_RECORD = '.backupctl-restore.json';

interface RestoreRecord {
  workflowId: string;
  job: string;
  chain: { path: string; sha256: string }[];
  result: UnpackResult;
}

/** Refuses a target that holds anything: a restore never mixes with or overwrites existing files. */
export async function checkTarget(to: string): Promise<void> {
  if (!path.isAbsolute(to)) throw new BackupError('CONFIG_INVALID', `the restore target must be an absolute path, not "${to}"`);
  const st = await stat(to).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory() || (await readdir(to)).length > 0) {
    throw new BackupError('RESTORE_TARGET_EXISTS', `the restore target ${to} exists and is not an empty directory; nothing was restored`, { hint: 'choose a new directory with --to, or empty this one' });
  }
}

/**
 * Unpacks the fetched and checked artifacts, base first, into a temporary directory beside the target and renames it
 * to the target only when every component unpacked: the target never holds a half restore.
 */
export function unpackArtifacts(deps: ActivityDeps) {
  return (input: UnpackInput): Promise<UnpackResult> => runActivity(async () => {
    const { config } = jobContext(deps, input.job);
    // A retry after a worker died right after the rename: the target is this run's complete restore.
    const done = await readFile(path.join(input.to, RESTORE_RECORD), 'utf8').then((t) => JSON.parse(t) as RestoreRecord, () => undefined);
    if (done?.workflowId === input.workflowId) return done.result;
    await checkTarget(input.to);
    const signal = Context.current().cancellationSignal;
    // Encrypted artifacts: every component is decrypted (and authenticated by age, to its last byte) into staging
    // before the temporary directory beside the target is even created.
    const decrypted = new Map<string, { file: string; start: number; size: number }>();
    const plainFiles: string[] = [];
    try {
      await checkRoom(input.to, unpackedBytes(input.chain), input.count ? 'the drill\'s scratch space' : 'the restore target');
      if (input.chain.some((a) => a.encryption !== undefined)) {
        await checkIdentity(input.chain, input.identity);
        await checkRoom(path.dirname(fetchedFile(config, input.workflowId, 0)), decryptedBytes(input.chain), 'staging (for the decrypted components)');
        for (const [i, a] of input.chain.entries()) {
          if (!a.encryption) continue;
          const file = fetchedFile(config, input.workflowId, i);
          const ranges = memberRanges(a.components);
          for (const [j, c] of a.components.entries()) {
            if (c.plaintextSize === undefined) throw new BackupError('RESTORE_FAILED', `the manifest of ${a.path} gives encrypted component ${c.member} no plaintext size; nothing was unpacked`, { permanent: true });
            const to = decryptedFile(config, input.workflowId, i, j);
            plainFiles.push(to);
            Context.current().heartbeat({ step: 'decrypt', component: c.member });
            await decryptComponent({ file, start: ranges[j]!.start, size: c.size, member: c.member, plaintextSize: c.plaintextSize }, a, input.identity!, to, signal);
            decrypted.set(`${i}/${j}`, { file: to, start: 0, size: c.plaintextSize });
          }
        }
      }
      return await unpackDecrypted(config, input, decrypted, signal);
    } finally {
      await Promise.all(plainFiles.map((f) => rm(f, { force: true })));
    }
  });
}

/** The unpack proper, from the downloaded artifacts or, for encrypted ones, the decrypted components. */
async function unpackDecrypted(config: Config, input: UnpackInput, decrypted: Map<string, { file: string; start: number; size: number }>, signal: AbortSignal): Promise<UnpackResult> {
  const tmp = unpackTempDir(input.to, input.workflowId);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(path.dirname(tmp), { recursive: true });
  await mkdir(tmp, { mode: 0o700 });
  const total = input.chain.reduce((n, a) => n + a.components.reduce((m, c) => m + (c.plaintextSize ?? c.size), 0), 0);
  const report = progressReporter({ step: 'unpack', total });
  let bytes = 0;
  try {
    const out = new Map<string, UnpackedComponent>();
    for (const [i, a] of input.chain.entries()) {
      const file = fetchedFile(config, input.workflowId, i);
      const ranges = memberRanges(a.components);
      for (const [j, c] of a.components.entries()) {
        const from = decrypted.get(`${i}/${j}`) ?? { file, start: ranges[j]!.start, size: c.size };
        const rel = await unpackComponent({ ...c, ...from, artifactPath: a.path }, tmp, signal, (n) => { bytes += n; report(bytes); });
        out.set(c.name, { name: c.name, type: c.type, path: rel });
      }
    }
    if (input.count) {
      for (const c of out.values()) if (findSourcePlugin(c.type)?.restore.countFiles) Object.assign(c, await treeStats(insideRoot(tmp, c.path, `component ${c.name}`)));
    }
    const result = { components: [...out.values()], bytes };
    const record: RestoreRecord = { workflowId: input.workflowId, job: input.job, chain: input.chain.map((a) => ({ path: a.path, sha256: a.sha256 })), result };
    await writeFile(path.join(tmp, RESTORE_RECORD), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    await checkTarget(input.to);
    await rmdir(input.to).catch(() => undefined);
    await rename(tmp, input.to);
    return result;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new BackupError('RESTORE_FAILED', `the disk of ${input.to} filled up while unpacking; the partial restore was removed`, { permanent: false, cause: err });
    throw err;
  }
}
