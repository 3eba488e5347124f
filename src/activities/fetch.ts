import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { RestoreArtifact } from '../contracts/restore.js';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { checkIdentity } from '../restore/decrypt.js';
import { streamMarker, unpackTempDir } from '../restore/paths.js';
import { checkRoom, unpackedBytes } from '../restore/space.js';
import { ArtifactStream } from '../restore/stream.js';
import { stagingDir } from '../state/staging.js';
import { failedIn, jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';
import { checkTarget } from './unpack.js';

export interface FetchInput {
  job: string;
  workflowId: string;
  destination: string;
  /** Position in the chain of the artifact to fetch (0: the base full). */
  index: number;
  /**
   * The whole chain, base first: the room the target needs is checked against all of it, and an attempt that cannot
   * continue where the previous one stopped streams the artifacts before `index` again into a clean temporary directory.
   */
  chain: RestoreArtifact[];
  /** The absolute restore target: the artifact is unpacked into the temporary directory beside it (never into it). */
  to: string;
  /**
   * Also hash each component and compare it with the manifest (drills: every checksum the backup recorded). A restore
   * checks the artifact's SHA-256, which covers every byte of every component already.
   */
  components?: boolean;
  /** Encrypted artifacts: the path of the age identity file on the worker (never the key itself). */
  identity?: string;
}

export interface FetchResult {
  bytes: number;
  sha256: string;
  durationMs: number;
}

/**
 * Fetches one artifact of a restore chain and unpacks it while it downloads (src/restore/stream.ts): the destination's
 * ranged reads feed each component's unpack (`age -d` when encrypted, `zstd -d`, `tar -x`) in the temporary directory
 * beside the target, and a thread hashes every byte. The artifact is accepted only when its size and SHA-256, (with
 * `components`, each component's SHA-256), every member header (name, size) equal its manifest's, and every component
 * unpacked completely, which for an encrypted one means age authenticated its whole stream (exit 0). Anything else
 * removes the whole temporary directory and fails the restore (permanently) naming the artifact; the target is only
 * ever made by the unpack step's rename, after every artifact of the chain was accepted.
 *
 * A diff is applied on top of its base's tree. The run's staging folder records which artifacts are in the temporary
 * directory (src/restore/paths.ts, `streamMarker`): an attempt that finds its artifact done returns its result; one
 * that finds the artifacts before it done and its own never started continues; any other starts from a clean temporary
 * directory and streams the chain up to its artifact again. Nothing of an artifact is ever stored on the worker.
 */
export function fetchArtifact(deps: ActivityDeps) {
  return (input: FetchInput): Promise<FetchResult> => runActivity(async () => {
    const { config } = jobContext(deps, input.job);
    const a = input.chain[input.index];
    if (!a) throw new BackupError('RESTORE_FAILED', `the restore chain has no artifact ${input.index}`, { permanent: true });
    const tmp = unpackTempDir(input.to, input.workflowId);
    const marker = (i: number, state: 'started' | 'done') => streamMarker(config, input.workflowId, i, state);
    const doneOf = (i: number) => readFile(marker(i, 'done'), 'utf8').then((t) => JSON.parse(t) as { sha256: string; result: FetchResult }, () => undefined);
    const present = (p: string) => stat(p).then(() => true, () => false);
    const hasTmp = await present(tmp);
    // A retry after the worker died between finishing and reporting: the artifact is in the temporary directory.
    const done = hasTmp ? await doneOf(input.index) : undefined;
    if (done?.sha256 === a.sha256) return done.result;
    let from = input.index;
    if (from > 0) {
      let clean = hasTmp && !(await present(marker(from, 'started')));
      for (let i = 0; clean && i < from; i++) clean = (await doneOf(i))?.sha256 === input.chain[i]!.sha256;
      if (!clean) from = 0;
    }
    const reset = async () => {
      await rm(tmp, { recursive: true, force: true });
      await Promise.all(input.chain.map((_, i) => Promise.all([rm(marker(i, 'started'), { force: true }), rm(marker(i, 'done'), { force: true })])));
    };
    if (from === 0) {
      await reset();
      // Before anything is written: an empty target, a readable identity for an encrypted chain, and room for the tree.
      await checkTarget(input.to);
      await checkIdentity(input.chain, input.identity);
      for (const x of input.chain) {
        for (const c of x.encryption ? x.components : []) {
          if (c.plaintextSize === undefined) throw new BackupError('RESTORE_FAILED', `the manifest of ${x.path} gives encrypted component ${c.member} no plaintext size; nothing was unpacked`, { permanent: true });
        }
      }
      await checkRoom(input.to, unpackedBytes(input.chain), input.components ? 'the drill\'s scratch space' : 'the restore target');
      await mkdir(path.dirname(tmp), { recursive: true });
      await mkdir(tmp, { mode: 0o700 });
    }
    await mkdir(stagingDir(config, input.workflowId), { recursive: true, mode: 0o700 });
    try {
      let result!: FetchResult;
      for (let i = from; i <= input.index; i++) {
        await writeFile(marker(i, 'started'), '', { mode: 0o600 });
        result = await streamArtifact(deps, input, input.chain[i]!, tmp);
        await writeFile(marker(i, 'done'), JSON.stringify({ sha256: input.chain[i]!.sha256, result }), { mode: 0o600 });
      }
      return result;
    } catch (err) {
      // Nothing half-unpacked stays: the next attempt (if any) starts from a clean temporary directory.
      await reset();
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new BackupError('RESTORE_FAILED', `the disk of ${input.to} filled up while unpacking; the partial restore was removed`, { permanent: false, cause: err });
      throw err;
    }
  });
}

/** Downloads one artifact into its unpack, and accepts it only when everything matches its manifest (see above). */
async function streamArtifact(deps: ActivityDeps, input: FetchInput, a: RestoreArtifact, tmp: string): Promise<FetchResult> {
  const { config } = jobContext(deps, input.job);
  const where = `artifact ${a.path} on destination "${input.destination}"`;
  const refuse = (what: string) => new BackupError('RESTORE_CHECKSUM_MISMATCH', `restore refused: ${where} ${what}; nothing was unpacked`, {
    hint: 'the stored backup was altered or damaged: restore another backup (--backup, --at) or from another destination (--destination)',
  });
  const started = Date.now();
  const signal = Context.current().cancellationSignal;
  const report = progressReporter({ step: 'fetch', artifact: a.path, total: a.size });
  const sink = new ArtifactStream({ artifact: a, root: tmp, components: input.components ?? false, signal, ...(input.identity !== undefined ? { identity: input.identity } : {}) });
  let result;
  let outcome;
  try {
    result = await withDestination(config, input.destination, async (d) => {
      const st = await d.stat(a.path);
      if (!st) throw new BackupError('RESTORE_NOT_FOUND', `${where} is missing, although its manifest is there`, { hint: 'restore another backup (--backup, --at) or from another destination' });
      if (st.size !== a.size) throw refuse(`has ${st.size} bytes, its manifest says ${a.size}`);
      return d.download(a.path, { signal, onProgress: report, sink });
    });
    outcome = await sink.finish();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  // The stored bytes first: a damaged artifact is reported as such, whatever its unpack made of it.
  if (result.bytes !== a.size) throw refuse(`gave ${result.bytes} bytes, its manifest says ${a.size}`);
  if (outcome.sha256 !== a.sha256) throw refuse(`has SHA-256 ${outcome.sha256}, its manifest says ${a.sha256}`);
  if (input.components) {
    for (const [i, c] of a.components.entries()) {
      if (outcome.parts[i] !== c.sha256) throw refuse(`holds component ${c.member} with SHA-256 ${outcome.parts[i]}, its manifest says ${c.sha256}`);
    }
  }
  // The member headers must name the manifest's components, with their sizes.
  for (const [i, c] of a.components.entries()) {
    const h = outcome.headers[i]!;
    if (h.name !== c.member || h.size !== c.size) throw refuse(`holds "${h.name}" (${h.size} bytes) where its manifest lists component ${c.member} (${c.size} bytes)`);
  }
  // The bytes are the manifest's: a failure now is the unpack's (age's verdict on the ciphertext, tar, a full disk).
  if (outcome.failure !== undefined) throw failedIn('unpack', outcome.failure);
  return { bytes: result.bytes, sha256: outcome.sha256, durationMs: Date.now() - started };
}
