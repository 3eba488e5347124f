import { lstat, mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupError } from '../errors.js';
import { spawn } from 'node:child_process';
import type { ManifestEncryption } from '../contracts/manifest.js';
import { insideRoot } from '../lib/paths.js';
import { ageFailure } from '../lib/age.js';
import { childEnv, describeExit, lastLines, type Exit, type Proc } from '../lib/process.js';
import { TailBuffer } from '../lib/tail-buffer.js';
import { isMemberOf } from '../repository/manifest.js';
import { isName } from '../repository/names.js';
import { SOURCE_TYPES, sourcePlugin } from '../sources/index.js';
import { ageExitError } from './decrypt.js';

/** One component of an artifact, as its manifest describes it. */
export interface ComponentSpec {
  name: string;
  type: string;
  member: string;
  /** Its stored bytes (the ciphertext, when encrypted). */
  size: number;
  /** For messages: the artifact's path on the destination. */
  artifactPath: string;
  /**
   * An encrypted component (its member is an age file): `age -d -i identity` decrypts it first, and it must decrypt to
   * `plaintextSize` bytes. The identity is a path on the worker, never the key.
   */
  encrypted?: { identity: string; plaintextSize: number; encryption: ManifestEncryption };
}

/**
 * The unpack of one component, open for its bytes: `write` them in order, then `end`; `done` settles once every
 * program of the pipe has exited, and rejects (RESTORE_FAILED; ENCRYPTION_IDENTITY or ENCRYPTION_CORRUPT for age) unless
 * the component was unpacked completely. A write never rejects: once a program has failed, later bytes are dropped
 * (the caller keeps reading, so that the artifact's SHA-256 can still tell a damaged download from a failed unpack).
 */
export interface ComponentWriter {
  /** Where the component goes, relative to the restore directory. */
  readonly rel: string;
  /** Resolves once the bytes were handed to the OS (the buffer may then be reused). */
  write(chunk: Buffer): Promise<void>;
  end(): void;
  readonly done: Promise<void>;
  /** Kills its programs (a stream that was cut off, a cancelled restore). */
  kill(): void;
}

/**
 * Opens the unpack of one component into `root` (the restore's temporary directory). How, and where to, the component's
 * source plugin says (`SourcePlugin.restore`): an incremental tree is `zstd -d | tar --listed-incremental=/dev/null -x`
 * (a diff's deletions apply; a full extracts as usual), a whole tree replaces an earlier one, a file is one file
 * (decompressed when its member is `.zst`). An encrypted component passes `age -d` first; age authenticates each
 * 64 KiB chunk as it goes, but a flipped or truncated byte is detected only when its stream ends, so what it wrote is
 * trusted only when `done` resolved (the restore renames nothing into place before that). Bytes pass from program to
 * program through OS pipes, except age's plaintext, which is counted on its way to zstd.
 * Names and members come from a manifest (checked against the job's sources by the plan step): refused here too,
 * before anything is removed, created or written, unless they are a source's own and stay inside `root`.
 */
export async function openComponent(c: ComponentSpec, root: string, signal: AbortSignal): Promise<ComponentWriter> {
  if (!SOURCE_TYPES.includes(c.type)) {
    throw new BackupError('RESTORE_FAILED', `component ${c.member} of ${c.artifactPath} is of type "${c.type}", which this backupctl does not know (types: ${SOURCE_TYPES.join(', ')})`, {
      permanent: true, hint: 'restore it with the backupctl version that made the backup',
    });
  }
  if (!isName(c.name) || !isMemberOf(c.name, c.member)) {
    throw new BackupError('RESTORE_FAILED', `component ${JSON.stringify(c.name)} (member ${JSON.stringify(c.member)}) of ${c.artifactPath} is not one a source writes; refused before anything was written`, {
      permanent: true, hint: 'the manifest on the destination was altered: restore another backup (--backup, --at)',
    });
  }
  const layout = sourcePlugin(c.type).restore;
  const rel = layout.path(c.name, c.member);
  const dest = insideRoot(root, rel, `the restore path of component ${c.name} (member ${c.member})`);
  let outFile: FileHandle | undefined;
  if (layout.unpack !== 'file') {
    // A whole tree in every backup (a database component): a later one in the chain replaces the earlier one.
    if (layout.unpack === 'whole-tree') await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
  } else {
    await mkdir(path.dirname(dest), { recursive: true });
    outFile = await open(dest, 'w', 0o600);
  }
  const local = new AbortController();
  const abort = () => local.abort();
  signal.addEventListener('abort', abort, { once: true });
  const procs: Child[] = [];
  let age: Child | undefined;
  let plain = 0;
  let tap: Promise<void> | undefined;
  let fileSink: Writable | undefined;
  const compressed = layout.unpack !== 'file' || c.member.endsWith('.zst');
  try {
    if (c.encrypted) {
      // age writes the plaintext straight into the file when nothing follows it; else into zstd, counted on the way.
      age = start('age', ['-d', '-i', c.encrypted.identity], 'pipe', compressed ? 'pipe' : outFile!.fd, local.signal);
      procs.push(age);
    }
    if (compressed) {
      const z = start('zstd', ['-d', '-q', '-c'], 'pipe', layout.unpack === 'file' ? outFile!.fd : 'pipe', local.signal);
      procs.push(z);
      if (age) {
        const counter = new Transform({ transform(chunk: Buffer, _enc, cb) { plain += chunk.length; cb(null, chunk); } });
        tap = pipeline(age.child.stdout as Readable, counter, z.child.stdin as Writable).catch(() => undefined);
      }
      if (layout.unpack !== 'file') {
        // An incremental tree: a diff's deletions apply (a full extracts as usual).
        const args = layout.unpack === 'incremental-tree' ? ['--listed-incremental=/dev/null', '-x', '-f', '-', '-C', dest] : ['-x', '-f', '-', '-C', dest];
        const t = start('tar', args, z.child.stdout as Readable, 'pipe', local.signal);
        t.child.stdout?.resume();
        // tar holds its own copy of the pipe: this process's end must close, or 'close' never comes.
        (z.child.stdout as Readable).destroy();
        procs.push(t);
      }
    } else if (!age) {
      fileSink = outFile!.createWriteStream({ autoClose: false, highWaterMark: 1 << 20 });
      fileSink.on('error', () => undefined);
    }
  } catch (err) {
    signal.removeEventListener('abort', abort);
    for (const p of procs) p.kill();
    await outFile?.close();
    throw err;
  }
  const first: Writable = fileSink ?? (procs[0]!.child.stdin as Writable);
  let seen = 0;
  let broken = false;
  let ended = false;
  // The file's own stream keeps its descriptor open (closed below): it ends with 'finish', or 'error' or 'close'.
  const fileDone = fileSink ? new Promise<void>((resolve) => { for (const e of ['finish', 'error', 'close']) fileSink.once(e, () => resolve()); }) : Promise.resolve();
  const done = (async () => {
    try {
      const exits = await Promise.all(procs.map((p) => p.done));
      await tap;
      await fileDone;
      signal.throwIfAborted();
      // Every process that failed, the last of the pipe first (a full disk stops tar, which then breaks zstd's pipe).
      const failed = procs.map((p, i) => ({ p, e: exits[i]! })).filter(({ e }) => e.code !== 0).reverse();
      // age's own verdict (a wrong identity, a ciphertext that is not authentic) comes first; age stopped by a broken
      // pipe (tar or zstd failed first) is theirs.
      if (age && exits[0]!.code !== 0 && (failed.length === 1 || ageFailure(age.stderr()) !== 'other')) {
        throw ageExitError(exits[0]!, age.stderr(), c.member, { path: c.artifactPath, encryption: c.encrypted!.encryption }, c.encrypted!.identity);
      }
      if (failed.length > 0 || (fileSink && broken)) {
        throw new BackupError('RESTORE_FAILED', `unpacking component ${c.member} of ${c.artifactPath}: ${failed.length > 0 ? failed.map(({ p, e }) => `${p.cmd} ${describeExit(e)}: ${lastLines(p.stderr(), 5)}`).join('; ') : 'writing the file failed'}`, {
          hint: 'check free space and permissions in the target directory\'s file system',
        });
      }
      if (seen !== c.size) {
        throw new BackupError('RESTORE_FAILED', `unpacking component ${c.member} of ${c.artifactPath}: received ${seen} bytes of its ${c.size}`, { permanent: false });
      }
      if (c.encrypted) {
        const got = compressed ? plain : (await outFile!.stat()).size;
        if (got !== c.encrypted.plaintextSize) {
          throw new BackupError('ENCRYPTION_CORRUPT', `restore refused: component ${c.member} of ${c.artifactPath} decrypted to ${got} bytes, its manifest says ${c.encrypted.plaintextSize}; nothing was unpacked`);
        }
      }
    } finally {
      signal.removeEventListener('abort', abort);
      for (const p of procs) p.kill();
      // The stream holds the file handle until it is destroyed (it never closes the descriptor itself).
      fileSink?.destroy();
      await outFile?.close();
    }
  })();
  done.catch(() => undefined);
  return {
    rel,
    write(chunk) {
      if (broken || ended || chunk.length === 0) return Promise.resolve();
      seen += chunk.length;
      return new Promise<void>((resolve) => {
        first.write(chunk, (err) => {
          // A program that exited early (its exit code tells why) or a failed file write: drop what follows.
          if (err) broken = true;
          resolve();
        });
      });
    },
    end() {
      if (ended) return;
      ended = true;
      first.end();
    },
    done,
    kill() {
      local.abort();
      fileSink?.destroy();
    },
  };
}

interface Child extends Proc {
  cmd: string;
}

/** Starts a program with the given stdin (a stream, a pipe, or none) and stdout (a file descriptor, or a pipe); stderr kept as a tail. */
function start(cmd: string, args: string[], stdin: Readable | 'pipe' | 'ignore', stdout: number | 'pipe', signal: AbortSignal): Child {
  // C locale: the programs' messages in one language.
  const child = spawn(cmd, args, { stdio: [stdin, stdout, 'pipe'], env: childEnv({ LC_ALL: 'C' }) });
  const err = new TailBuffer(16 * 1024);
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  signal.addEventListener('abort', kill, { once: true });
  if (signal.aborted) kill();
  const done = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, sig) => { signal.removeEventListener('abort', kill); resolve({ code, signal: sig }); });
  });
  done.catch(() => undefined);
  child.stdin?.on('error', () => undefined);
  return { cmd, child, done, stderr: () => err.toString(), kill };
}

/** Regular files and their bytes under `dir` (hard links counted once for bytes, like tar's listing). */
export async function treeStats(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0, bytes = 0;
  const seen = new Set<string>();
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        files++;
        const st = await lstat(p);
        const key = `${st.dev}:${st.ino}`;
        if (st.nlink > 1 && seen.has(key)) continue;
        seen.add(key);
        bytes += st.size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}
