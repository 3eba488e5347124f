import { readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { RestoreArtifact, UnpackedComponent } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { insideRoot } from '../lib/paths.js';
import { streamMarker, unpackTempDir } from '../restore/paths.js';
import { treeStats } from '../restore/unpack.js';
import { findSourcePlugin } from '../sources/index.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';

export interface UnpackInput {
  job: string;
  workflowId: string;
  /** Absolute target directory: must not exist, or be empty. */
  to: string;
  /** Base first, as fetched (each streamed into the temporary directory by the fetch step). */
  chain: RestoreArtifact[];
  /** Count the regular files and bytes of each files component's tree (drills compare them with the manifest). */
  count?: boolean;
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
 * Finishes a restore whose artifacts the fetch step streamed, each checked, into the temporary directory beside the
 * target: refuses unless the run's staging folder records every artifact of the chain as streamed and checked
 * completely (src/activities/fetch.ts), counts the trees for a drill, writes `.backupctl-restore.json` and renames the
 * directory to the target. The target never holds a half restore, nor one a check has not passed.
 */
export function unpackArtifacts(deps: ActivityDeps) {
  return (input: UnpackInput): Promise<UnpackResult> => runActivity(async () => {
    const { config } = jobContext(deps, input.job);
    // A retry after a worker died right after the rename: the target is this run's complete restore.
    const done = await readFile(path.join(input.to, RESTORE_RECORD), 'utf8').then((t) => JSON.parse(t) as RestoreRecord, () => undefined);
    if (done?.workflowId === input.workflowId) return done.result;
    await checkTarget(input.to);
    const tmp = unpackTempDir(input.to, input.workflowId);
    Context.current().heartbeat({ step: 'unpack' });
    for (const [i, a] of input.chain.entries()) {
      const rec = await readFile(streamMarker(config, input.workflowId, i, 'done'), 'utf8').then((t) => JSON.parse(t) as { sha256: string }, () => undefined);
      if (rec?.sha256 !== a.sha256 || !(await stat(tmp).then((st) => st.isDirectory(), () => false))) {
        await rm(tmp, { recursive: true, force: true });
        throw new BackupError('RESTORE_FAILED', `artifact ${a.path} was not downloaded, checked and unpacked completely on this worker; nothing was restored`, {
          permanent: true, hint: 'run the restore again (every step of a restore must run on the same worker host)',
        });
      }
    }
    try {
      // What the chain unpacked to, as the components' source plugins place them (a later artifact's component wins).
      const out = new Map<string, UnpackedComponent>();
      for (const a of input.chain) {
        for (const c of a.components) out.set(c.name, { name: c.name, type: c.type, path: findSourcePlugin(c.type)!.restore.path(c.name, c.member) });
      }
      if (input.count) {
        for (const c of out.values()) if (findSourcePlugin(c.type)?.restore.countFiles) Object.assign(c, await treeStats(insideRoot(tmp, c.path, `component ${c.name}`)));
      }
      const bytes = input.chain.reduce((n, a) => n + a.components.reduce((m, c) => m + (c.plaintextSize ?? c.size), 0), 0);
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
  });
}
