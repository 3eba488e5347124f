import { mkdir, open, rm, statfs } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { RestoreArtifact } from '../contracts/restore.js';
import { withDestination } from '../destinations/index.js';
import type { ChunkSink } from '../destinations/types.js';
import { BackupError } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { RangeHasher } from '../lib/range-hasher.js';
import { BLOCK } from '../lib/tar.js';
import { memberRanges } from '../restore/chain.js';
import { fetchedFile } from '../restore/paths.js';
import { stagingDir } from '../state/staging.js';
import { jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';

export interface FetchInput {
  job: string;
  workflowId: string;
  destination: string;
  /** Position in the chain (0: the base full). */
  index: number;
  artifact: RestoreArtifact;
  /**
   * Also hash each component and compare it with the manifest (drills: every checksum the backup recorded). A restore
   * checks the artifact's SHA-256, which covers every byte of every component already.
   */
  components?: boolean;
}

export interface FetchResult {
  bytes: number;
  sha256: string;
  durationMs: number;
}

/** Name and size of the tar header at `buf` (ustar, GNU base-256 sizes). */
function parseHeader(buf: Buffer): { name: string; size: number } {
  const nul = buf.indexOf(0);
  const name = buf.subarray(0, nul >= 0 && nul < 100 ? nul : 100).toString('utf8');
  let size: number;
  if (buf[124]! & 0x80) {
    let v = 0n;
    for (let i = 125; i < 136; i++) v = (v << 8n) | BigInt(buf[i]!);
    size = Number(v);
  } else {
    size = parseInt(buf.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || 'NaN', 8);
  }
  return { name, size };
}

/**
 * Downloads one artifact of a restore chain into staging: a thread writes each chunk to the file and hashes it as it
 * arrives (with `components`, each component too, in the same pass), off the event loop that decrypts the transfer.
 * Refuses it unless its size and SHA-256, (those components' SHA-256) and every member header (name, size) equal its
 * manifest's.
 * Nothing is unpacked here: a refused artifact is deleted and the restore fails (permanently) naming it.
 */
export function fetchArtifact(deps: ActivityDeps) {
  return (input: FetchInput): Promise<FetchResult> => runActivity(async () => {
    const { config } = jobContext(deps, input.job);
    const a = input.artifact;
    const dir = stagingDir(config, input.workflowId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = fetchedFile(config, input.workflowId, input.index);
    const fs = await statfs(dir);
    if (fs.bavail * fs.bsize < a.size) {
      throw new BackupError('STAGING_SPACE', `not enough space on the worker to download ${a.path}: ${formatBytes(fs.bavail * fs.bsize)} free in ${dir}, ${formatBytes(a.size)} needed`, { hint: `free space under ${config.stateDir}` });
    }
    const where = `artifact ${a.path} on destination "${input.destination}"`;
    const refuse = async (what: string) => {
      await rm(file, { force: true });
      return new BackupError('RESTORE_CHECKSUM_MISMATCH', `restore refused: ${where} ${what}; nothing was unpacked`, {
        hint: 'the stored backup was altered or damaged: restore another backup (--backup, --at) or from another destination (--destination)',
      });
    };
    const started = Date.now();
    const report = progressReporter({ step: 'fetch', artifact: a.path, total: a.size });
    const ranges = memberRanges(a.components);
    const out = await open(file, 'w', 0o600);
    const hasher = new RangeHasher(input.components ? ranges.map((r) => ({ start: r.start, end: r.start + r.size })) : [], 64, true, out.fd);
    // A failed write on the worker is this machine's problem, not the destination's: it keeps its own code and names the file.
    const writeFailure = (err: NodeJS.ErrnoException): never => {
      if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
        throw new BackupError('STAGING_SPACE', `the worker's disk filled up while downloading ${a.path} into ${file}`, { cause: err, hint: `free space under ${config.stateDir}` });
      }
      throw new BackupError('RESTORE_FAILED', `writing the download of ${a.path} to ${file}: ${err.message}`, { cause: err, permanent: false });
    };
    const sink: ChunkSink = { take: (n) => hasher.take(n), update: (buf, len) => hasher.update(buf, len).catch(writeFailure) };
    let result;
    let digests;
    try {
      result = await withDestination(config, input.destination, async (d) => {
        const st = await d.stat(a.path);
        if (!st) throw new BackupError('RESTORE_NOT_FOUND', `${where} is missing, although its manifest is there`, { hint: 'restore another backup (--backup, --at) or from another destination' });
        if (st.size !== a.size) throw await refuse(`has ${st.size} bytes, its manifest says ${a.size}`);
        return d.download(a.path, { signal: Context.current().cancellationSignal, onProgress: report, sink });
      });
      digests = await hasher.digest().catch(writeFailure);
    } catch (err) {
      // The thread must be gone before its file descriptor is closed (a reused descriptor would take its writes).
      await hasher.destroy();
      await out.close();
      await rm(file, { force: true });
      throw err;
    }
    await out.close();
    const { digest: sha256, parts } = digests;
    if (result.bytes !== a.size) throw await refuse(`gave ${result.bytes} bytes, its manifest says ${a.size}`);
    if (sha256 !== a.sha256) throw await refuse(`has SHA-256 ${sha256}, its manifest says ${a.sha256}`);
    // Hashed in the same pass: each component's bytes, where the manifest puts them.
    if (input.components) {
      for (const [i, c] of a.components.entries()) {
        if (parts[i] !== c.sha256) throw await refuse(`holds component ${c.member} with SHA-256 ${parts[i]}, its manifest says ${c.sha256}`);
      }
    }
    // The member headers must name the manifest's components, with their sizes.
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(BLOCK);
      for (const r of ranges) {
        await fh.read(buf, 0, BLOCK, r.header);
        const h = parseHeader(buf);
        if (h.name !== r.member || h.size !== r.size) throw await refuse(`holds "${h.name}" (${h.size} bytes) where its manifest lists component ${r.member} (${r.size} bytes)`);
      }
    } finally {
      await fh.close();
    }
    return { bytes: result.bytes, sha256, durationMs: Date.now() - started };
  });
}
