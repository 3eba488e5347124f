import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupError } from '../errors.js';
import { spawn } from 'node:child_process';
import { insideRoot } from '../lib/paths.js';
import { childEnv, describeExit, lastLines, type Exit, type Proc } from '../lib/process.js';
import { TailBuffer } from '../lib/tail-buffer.js';
import { isMemberOf } from '../repository/manifest.js';
import { isName } from '../repository/names.js';
import { SOURCE_TYPES, sourcePlugin } from '../sources/index.js';

export interface ComponentSource {
  /** The downloaded artifact (already checked against the manifest by the fetch step), and where the component's data sits in it. */
  file: string;
  start: number;
  size: number;
  name: string;
  type: string;
  member: string;
  /** For messages: the artifact's path on the destination. */
  artifactPath: string;
}

/**
 * Unpacks one component into `root` (the restore's temporary directory). Its bytes were checked (SHA-256 per component)
 * when the artifact was fetched; here only their count is checked again. How, and where to, the component's source
 * plugin says (`SourcePlugin.restore`): an incremental tree is `zstd -d | tar --listed-incremental=/dev/null -x` (a
 * diff's deletions apply; a full extracts as usual), a whole tree replaces an earlier one, a file is one file.
 * Returns the path it wrote, relative to `root`.
 */
export async function unpackComponent(c: ComponentSource, root: string, signal: AbortSignal, onBytes: (n: number) => void): Promise<string> {
  const local = new AbortController();
  const abort = () => local.abort();
  signal.addEventListener('abort', abort, { once: true });
  const procs: Child[] = [];
  let rel: string;
  try {
    let seen = 0;
    let outFile: Awaited<ReturnType<typeof open>> | undefined;
    // Compressed components: `dd` reads the component's bytes out of the artifact and hands them to zstd through an OS
    // pipe, so they never pass through this process. Others are copied through a stream.
    let feeder: Child | undefined;
    const feed = () => {
      feeder = start('dd', [`if=${c.file}`, 'iflag=skip_bytes,count_bytes', `skip=${c.start}`, `count=${c.size}`, 'bs=1M'], 'ignore', 'pipe', local.signal);
      procs.push(feeder);
      return feeder.child.stdout as Readable;
    };
    let copy: (() => Promise<void>) | undefined;
    if (!SOURCE_TYPES.includes(c.type)) {
      throw new BackupError('RESTORE_FAILED', `component ${c.member} of ${c.artifactPath} is of type "${c.type}", which this backupctl does not know (types: ${SOURCE_TYPES.join(', ')})`, {
        permanent: true, hint: 'restore it with the backupctl version that made the backup',
      });
    }
    // Names and members come from a manifest on the destination (checked against the job's sources by the plan step):
    // here too, nothing but `<name>.<extension>` of a name of the grammar.
    if (!isName(c.name) || !isMemberOf(c.name, c.member)) {
      throw new BackupError('RESTORE_FAILED', `component ${JSON.stringify(c.name)} (member ${JSON.stringify(c.member)}) of ${c.artifactPath} is not one a source writes; refused before anything was written`, {
        permanent: true, hint: 'the manifest on the destination was altered: restore another backup (--backup, --at)',
      });
    }
    // Where the component goes and how, as its source plugin says (README, "Restore").
    const layout = sourcePlugin(c.type).restore;
    rel = layout.path(c.name, c.member);
    // Names and members come from a manifest on the destination: the path must stay inside the restore directory
    // before anything is removed, created or written there.
    const dest = insideRoot(root, rel, `the restore path of component ${c.name} (member ${c.member})`);
    if (layout.unpack !== 'file') {
      // A whole tree in every backup (a database component): a later one in the chain replaces the earlier one.
      if (layout.unpack === 'whole-tree') await rm(dest, { recursive: true, force: true });
      await mkdir(dest, { recursive: true });
      const input = feed();
      const z = start('zstd', ['-d', '-q', '-c'], input, 'pipe', local.signal);
      // An incremental tree: a diff's deletions apply (a full extracts as usual).
      const args = layout.unpack === 'incremental-tree' ? ['--listed-incremental=/dev/null', '-x', '-f', '-', '-C', dest] : ['-x', '-f', '-', '-C', dest];
      const t = start('tar', args, z.child.stdout as Readable, 'pipe', local.signal);
      t.child.stdout?.resume();
      // The children hold their own copies of the pipes: this process's ends must close, or 'close' never comes.
      input.destroy();
      (z.child.stdout as Readable).destroy();
      procs.push(z, t);
    } else {
      await mkdir(path.dirname(dest), { recursive: true });
      outFile = await open(dest, 'w', 0o600);
      if (c.member.endsWith('.zst')) {
        const input = feed();
        procs.push(start('zstd', ['-d', '-q', '-c'], input, outFile.fd, local.signal));
        input.destroy();
      } else {
        const sink = outFile.createWriteStream({ autoClose: false });
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            seen += chunk.length;
            onBytes(chunk.length);
            cb(null, chunk);
          },
        });
        copy = () => pipeline(createReadStream(c.file, { start: c.start, end: c.start + c.size - 1, highWaterMark: 1 << 20 }), tap, sink, { signal: local.signal })
          .finally(() => sink.destroy());
      }
    }
    // dd's progress is its input file's position (bytes read from the artifact), polled once a second.
    const fdinfo = feeder ? `/proc/${feeder.child.pid}/fdinfo/0` : undefined;
    const poll = fdinfo ? setInterval(() => {
      readFile(fdinfo, 'utf8').then((t) => {
        const pos = Number(/^pos:\s*(\d+)/m.exec(t)?.[1] ?? Number.NaN) - c.start;
        if (pos > seen) { onBytes(pos - seen); seen = pos; }
      }, () => undefined);
    }, 1000) : undefined;
    try {
      const copied = copy?.();
      const results = await Promise.all(procs.map((p) => p.done));
      await copied;
      signal.throwIfAborted();
      // Every process that failed, the last of the pipe first (a full disk stops tar, which then breaks zstd's pipe).
      const failed = procs.map((p, i) => ({ p, e: results[i]! })).filter(({ e }) => e.code !== 0).reverse();
      if (failed.length > 0) {
        throw new BackupError('RESTORE_FAILED', `unpacking component ${c.member} of ${c.artifactPath}: ${failed.map(({ p, e }) => `${p.cmd} ${describeExit(e)}: ${lastLines(p.stderr(), 5)}`).join('; ')}`, {
          hint: 'check free space and permissions in the target directory\'s file system',
        });
      }
      if (feeder) {
        // dd says how many bytes it copied: all of the component's, or the unpack does not count.
        const copiedBytes = Number(/^(\d+) bytes/m.exec(feeder.stderr())?.[1] ?? Number.NaN);
        if (copiedBytes > seen) onBytes(copiedBytes - seen);
        seen = copiedBytes;
      }
    } finally {
      if (poll) clearInterval(poll);
      await outFile?.close();
    }
    if (seen !== c.size) {
      throw new BackupError('RESTORE_FAILED', `unpacking component ${c.member} of ${c.artifactPath}: read ${seen} bytes of its ${c.size} from the downloaded artifact ${c.file}`, { permanent: false });
    }
    return rel;
  } finally {
    signal.removeEventListener('abort', abort);
    for (const p of procs) p.kill();
  }
}

interface Child extends Proc {
  cmd: string;
}

/** Starts a program with the given stdin (a stream, or none) and stdout (a file descriptor, or a pipe); stderr kept as a tail. */
function start(cmd: string, args: string[], stdin: Readable | 'ignore', stdout: number | 'pipe', signal: AbortSignal): Child {
  // C locale: tar's and dd's messages (dd's byte count is parsed) in one language.
  const child = spawn(cmd, args, { stdio: [stdin, stdout, 'pipe'], env: childEnv({ LC_ALL: 'C' }) });
  const err = new TailBuffer(16 * 1024);
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  signal.addEventListener('abort', kill, { once: true });
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
