import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { ComponentResult, RunRef } from '../contracts/backup.js';
import type { SnapshotMember } from '../contracts/manifest.js';
import { jobEncryption, resolveRecipients } from '../config/encryption.js';
import { BackupError, errorMessage } from '../errors.js';
import { agePlaintextSizeAt, spawnAgeEncrypt } from '../lib/age.js';
import { describeExit, endWritable, lastLines, pipeFd, runCapture, type Proc } from '../lib/process.js';
import { BLOCK, padding, tarHeader } from '../lib/tar.js';
import { dumpCompressed } from '../sources/compress.js';
import { sourcePlugin, type DumpContext } from '../sources/index.js';
import { journalComponent } from '../state/follow.js';
import { snapshotDir, snapshotFile } from '../state/snapshots.js';
import { ARTIFACT_FILE, bootId, stagingDir } from '../state/staging.js';
import { jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';

export interface DumpInput extends RunRef {
  workflowId: string;
  source: string;
  /** Where this component starts in the artifact: the end of the previous one. */
  offset: number;
  slot: string;
  /** A diff run: the workflow ID of its base full, whose GNU tar snapshot files sources dump against. */
  base?: string;
}

/**
 * Dumps one source straight into the run's artifact in staging, through its stages (source → compress → encrypt): a
 * tar member whose header is reserved first and filled in once the size is known, so the stored bytes are written once.
 * A retry truncates back to `offset` and starts the member again.
 */
export function dump(deps: ActivityDeps) {
  return (input: DumpInput): Promise<ComponentResult> => runActivity(async () => {
    const { config, job } = jobContext(deps, input);
    const cfg = job.sources.find((s) => s.name === input.source);
    if (!cfg) throw new BackupError('CONFIG_INVALID', `job "${input.job}" has no source "${input.source}" any more`);
    const plugin = sourcePlugin(cfg.type);
    const source = plugin.open(cfg);
    // Encryption at rest: the job's recipients (public keys), resolved before anything is dumped; a recipients file
    // that cannot be read fails the run, never turns it into a plaintext backup.
    const enc = jobEncryption(config, job);
    const recipients = enc ? resolveRecipients(enc) : undefined;
    const dir = stagingDir(config, input.workflowId);
    // Staging holds database dumps: only the worker's user may read it.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, ARTIFACT_FILE);
    // Incremental sources (files): a full writes a level-0 snapshot; a diff works on a copy of its base full's (never on
    // the original).
    let snapshot: DumpContext['snapshot'];
    if (plugin.incremental) {
      const staged = snapshotFile(dir, input.source);
      await rm(staged, { force: true });
      if (input.base) {
        const from = snapshotFile(snapshotDir(config, input.job, input.base), input.source);
        await copyFile(from, staged).catch((err: unknown) => {
          throw new BackupError('SNAPSHOT_MISSING', `source "${input.source}": the snapshot of base full ${input.base} is gone from this worker (${from}): ${(err as Error).message}`, {
            cause: err, hint: 'run the diff again (it then takes the snapshot from the full\'s artifact, or becomes a full)',
          });
        });
      }
      snapshot = { file: staged, differential: input.base !== undefined };
    }
    // The journal tells the upload that follows the artifact (src/state/follow.ts) what it may send: this attempt
    // announces itself before it truncates, and streams only after its header is reserved.
    const attempt = `${Context.current().info.attempt}-${randomUUID().slice(0, 8)}`;
    journalComponent(dir, input.offset, attempt, { begin: true });
    const fh = await open(file, 'a+', 0o600).then(async (h) => { await h.close(); return open(file, 'r+'); });
    try {
      await fh.truncate(input.offset);
      await fh.write(Buffer.alloc(BLOCK), 0, BLOCK, input.offset);
    } finally {
      await fh.close();
    }
    journalComponent(dir, input.offset, attempt, { stream: true });
    // The component is appended after its reserved header: by the last process of its stages (zstd, or age) writing
    // the file itself, or through `out`. Its SHA-256 is taken later from the staged artifact (the checksum step, while the
    // destination re-reads its copy), so that hashing does not compete with compression for the CPU here.
    const start = input.offset + BLOCK;
    const app = await open(file, 'a');
    const signal = Context.current().cancellationSignal;
    // The component's stages: source → compress (zstd, src/sources/compress.ts, unless the source's output is not to
    // be compressed) → encrypt (age, when the job has recipients) → the staged file. Each stage writes the next one's
    // input (or the file) itself through an OS pipe, so the bytes do not pass through the event loop.
    const age: Proc | undefined = recipients ? spawnAgeEncrypt(recipients, signal, app.fd) : undefined;
    const out = age ? (age.child.stdin as Writable) : app.createWriteStream({ autoClose: false });
    const outputFd = age ? pipeFd(age.child.stdin as Writable) : app.fd;
    const report = progressReporter({ step: 'dump', source: input.source });
    // Progress only: a tick's stat may complete after the final one below, so it never sets the component's size.
    let written = 0;
    const ticker = setInterval(() => {
      app.stat().then((st) => { written = Math.max(written, st.size - start); report(written); }, () => undefined);
    }, 1000);
    let outcome;
    let size: number;
    try {
      outcome = await dumpCompressed(source, { out, ...(outputFd !== undefined ? { fd: outputFd } : {}) }, {
        signal, stagingDir: dir, compressionLevel: config.settings.compressionLevel,
        // Sources that spool before they write (pg_dump + pg_restore --list) still report that they are alive.
        heartbeat: () => report(written),
        snapshot,
      });
      await endWritable(out);
      if (age) {
        const exit = await age.done;
        if (exit.code !== 0) throw new BackupError('DUMP_FAILED', `source "${input.source}": age (encryption) ${describeExit(exit)}: ${lastLines(age.stderr(), 5)}`);
      }
      size = (await app.stat()).size - start;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // Encrypting, age writes the file: when it fails on its own (a full disk), the source sees only a broken pipe, so
      // age's own error is the cause. (The source failing first ends age's input: age then exits 0, or is killed.)
      let ageSaid = '';
      if (age) {
        out.destroy();
        const exit = await Promise.race([age.done, new Promise<undefined>((resolve) => { setTimeout(() => resolve(undefined), 5000).unref(); })]);
        if (exit && exit.code !== null && exit.code !== 0) ageSaid = lastLines(age.stderr(), 5);
      }
      if (e.code === 'ENOSPC' || /no space left on device/i.test(`${errorMessage(err)}\n${ageSaid}`)) {
        throw new BackupError('STAGING_SPACE', `the staging disk filled up while dumping source "${input.source}" into ${dir}`, { cause: err, hint: `free space under ${config.stateDir}` });
      }
      if (ageSaid && !(err instanceof BackupError && err.code === 'DUMP_FAILED' && err.message.includes('age (encryption)'))) {
        throw new BackupError('DUMP_FAILED', `source "${input.source}": age (encryption) failed: ${ageSaid} (the source then reported: ${errorMessage(err).split('\n')[0]})`, { cause: err });
      }
      throw err;
    } finally {
      clearInterval(ticker);
      age?.kill();
      // The stream holds a reference on the handle (autoClose off): release it, or close() waits forever.
      out.destroy();
      await app.close();
    }
    // Encrypted: the size the source wrote, from the ciphertext's size (age's format fixes it), without decrypting.
    let plaintextSize: number | undefined;
    if (age) {
      plaintextSize = await agePlaintextSizeAt(file, start, size);
      if (plaintextSize === undefined) throw new BackupError('DUMP_FAILED', `source "${input.source}": age wrote ${size} bytes that are not an age file`);
      if (plaintextSize === 0) throw new BackupError('SOURCE_EMPTY', `source "${input.source}" produced no data`);
    }
    if (size === 0) throw new BackupError('SOURCE_EMPTY', `source "${input.source}" produced no data`);
    const dataEnd = start + size;
    journalComponent(dir, input.offset, attempt, { dataEnd });
    const member = `${input.source}.${source.extension}`;
    let end = input.offset + BLOCK + size + padding(size);
    const fh2 = await open(file, 'r+');
    try {
      await fh2.write(tarHeader(member, size, new Date(input.slot)), 0, BLOCK, input.offset);
      const pad = padding(size);
      if (pad) await fh2.write(Buffer.alloc(pad), 0, pad, input.offset + BLOCK + size);
      await fh2.truncate(end);
    } finally {
      await fh2.close();
    }
    let snapshotMember: SnapshotMember | undefined;
    if (snapshot && !snapshot.differential) {
      if (recipients) {
        // The snapshot member is encrypted too (it lists every path of the source); the worker keeps its plaintext copy.
        const sealed = `${snapshot.file}.age`;
        try {
          const args = ['-e', ...recipients.flatMap((r) => ['-r', r]), '-o', sealed, snapshot.file];
          const r = await runCapture('age', args, { signal });
          if (r.code !== 0) throw new BackupError('DUMP_FAILED', `source "${input.source}": age (encrypting the GNU tar snapshot) ${describeExit(r)}: ${lastLines(r.stderr, 5)}`);
          snapshotMember = { ...(await appendMember(file, sealed, `${input.source}.snar`, end, new Date(input.slot))), plaintextSize: (await stat(snapshot.file)).size };
        } finally {
          await rm(sealed, { force: true });
        }
      } else {
        snapshotMember = await appendMember(file, snapshot.file, `${input.source}.snar`, end, new Date(input.slot));
      }
      end = snapshotMember.offset + BLOCK + snapshotMember.size + padding(snapshotMember.size);
    }
    journalComponent(dir, input.offset, attempt, { dataEnd, end });
    return {
      name: input.source, type: source.type, member, offset: input.offset, end, size,
      ...(recipients ? { plaintextSize, recipients } : {}),
      warnings: outcome.warnings, stats: outcome.stats, ...(snapshotMember ? { snapshot: snapshotMember } : {}), bootId: bootId(),
    };
  });
}

/** Appends a small local file (a GNU tar snapshot) to the artifact as a member at `offset`, streamed and hashed. */
async function appendMember(artifact: string, from: string, member: string, offset: number, mtime: Date): Promise<SnapshotMember> {
  const { size } = await stat(from);
  const hash = createHash('sha256');
  const fh = await open(artifact, 'r+');
  try {
    await fh.write(tarHeader(member, size, mtime), 0, BLOCK, offset);
    const pad = padding(size);
    if (pad) await fh.write(Buffer.alloc(pad), 0, pad, offset + BLOCK + size);
    await fh.truncate(offset + BLOCK + size + pad);
  } finally {
    await fh.close();
  }
  const hasher = new Transform({ transform(chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk); } });
  await pipeline(createReadStream(from), hasher, createWriteStream(artifact, { flags: 'r+', start: offset + BLOCK }));
  return { member, offset, size, sha256: hash.digest('hex') };
}
