/**
 * GNU tar snapshot files (`--listed-incremental`) of finalized fulls, kept on the worker that runs the job:
 * `<stateDir>/snapshots/<job>/<full's workflow ID>/<source>.snar`. A full writes its snapshot in staging; it is
 * committed here only by the cleanup after every destination was finalized and verified. A diff dumps against a copy
 * (in its staging), so no diff run, failed or not, ever moves a full's baseline. The same file is also stored in the
 * full's artifact as the member `<source>.snar` (`components[].snapshot` in the manifest), for when this state is lost.
 */
import { createHash } from 'node:crypto';
import { access, copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Manifest } from '../contracts/manifest.js';
import { RANGE_MAX_BYTES } from '../destinations/limits.js';
import type { DestinationSession } from '../destinations/types.js';
import { ageDecryptBuffer } from '../lib/age.js';
import { describeExit, lastLines } from '../lib/process.js';
import { safeWorkflowId as safe } from '../repository/names.js';

const BLOCK = 512;

/** How many fulls' snapshots are kept per job (diffs are taken against the newest full). */
const KEEP = 3;

export function snapshotDir(config: Config, job: string, fullWorkflowId: string): string {
  return path.join(config.stateDir, 'snapshots', safe(job), safe(fullWorkflowId));
}

export function snapshotFile(dir: string, source: string): string {
  return path.join(dir, `${source}.snar`);
}

/** Whether the worker holds the snapshot of every listed source of a full. */
export async function hasSnapshots(config: Config, job: string, fullWorkflowId: string, sources: string[]): Promise<boolean> {
  const dir = snapshotDir(config, job, fullWorkflowId);
  for (const s of sources) {
    try {
      await access(snapshotFile(dir, s));
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Takes a full's snapshots back from its stored artifact (the `<source>.snar` members the manifest records), when this
 * worker's copy is lost: each member is read at its offset and must match its recorded SHA-256. Returns why not when
 * it cannot (a full made before snapshots were stored, or a member that does not match).
 */
export async function recoverSnapshots(config: Config, job: string, d: DestinationSession, artifactPath: string, manifest: Manifest, sources: string[], identity?: string): Promise<string | undefined> {
  // An encrypted full's snapshot members are age files: only a worker that holds an identity can read them.
  if (manifest.encryption && identity === undefined) {
    return `the full is encrypted (age, to ${manifest.encryption.recipients.join(', ')}) and this worker holds no identity to read its snapshot members (drill.identity); a worker that only backs up keeps its own plaintext copy`;
  }
  const dir = snapshotDir(config, job, manifest.workflowId);
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  for (const s of sources) {
    const snap = manifest.components.find((c) => c.name === s)?.snapshot;
    if (!snap) return `the full's artifact holds no snapshot of source "${s}"`;
    // Sizes from the (untrusted) manifest: bounded before anything is allocated.
    if (snap.member !== `${s}.snar` || !Number.isSafeInteger(snap.offset) || !Number.isSafeInteger(snap.size) || snap.offset < 0 || snap.size < 0 || snap.size > RANGE_MAX_BYTES) {
      return `the manifest gives the snapshot member of source "${s}" another name, no whole-number place, or more than ${RANGE_MAX_BYTES} bytes`;
    }
    const data = await d.readRange(artifactPath, snap.offset + BLOCK, snap.size);
    if (createHash('sha256').update(data).digest('hex') !== snap.sha256) return `the snapshot member ${snap.member} in ${artifactPath} does not match its manifest`;
    let plain = data;
    if (manifest.encryption) {
      const r = await ageDecryptBuffer(identity!, data, AbortSignal.timeout(120_000));
      if (!r.ok) return `the snapshot member ${snap.member} in ${artifactPath} could not be decrypted with ${identity} (age ${describeExit(r.exit)}: ${lastLines(r.stderr, 2)})`;
      if (snap.plaintextSize !== undefined && r.plaintext.length !== snap.plaintextSize) return `the snapshot member ${snap.member} in ${artifactPath} decrypted to ${r.plaintext.length} bytes, its manifest says ${snap.plaintextSize}`;
      plain = r.plaintext;
    }
    await writeFile(snapshotFile(tmp, s), plain, { mode: 0o600 });
  }
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return undefined;
}

/**
 * Makes a verified full's snapshots (in its staging folder) the base of the job's next diffs: copied to a temporary
 * folder, then renamed into place, so a crash leaves either none or all. Older fulls' snapshots beyond the newest few
 * are removed. Repeating it is harmless.
 */
export async function commitSnapshots(config: Config, job: string, fullWorkflowId: string, staging: string, sources: string[]): Promise<void> {
  if (sources.length === 0) return;
  const dir = snapshotDir(config, job, fullWorkflowId);
  if (await hasSnapshots(config, job, fullWorkflowId, sources)) return;
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  for (const s of sources) await copyFile(snapshotFile(staging, s), snapshotFile(tmp, s));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  const parent = path.dirname(dir);
  const all = await Promise.all((await readdir(parent)).filter((n) => !n.endsWith('.tmp')).map(async (n) => ({ n, t: (await stat(path.join(parent, n))).mtimeMs })));
  all.sort((a, b) => b.t - a.t);
  for (const old of all.slice(KEEP)) await rm(path.join(parent, old.n), { recursive: true, force: true });
}
