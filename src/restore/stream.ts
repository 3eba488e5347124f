/**
 * Restore streams (README, "Restore"): an artifact's bytes go from the destination's download straight into the unpack
 * of each of its components, into the restore's temporary directory beside the target; no copy of the artifact is
 * written anywhere on the worker. Each chunk is handed, in order, to the component whose member it belongs to (a pipe
 * into `age -d`, `zstd -d`, `tar -x`, or a file), and then to a hashing thread (the artifact's SHA-256, and each
 * component's when asked). Member headers are read as they pass.
 *
 * Nothing here decides whether the unpacked tree may be used: `finish` reports the digests, the headers and how each
 * component's unpack ended, and the fetch step (src/activities/fetch.ts) refuses the artifact, and removes the tree,
 * unless all of them match the manifest. A component whose unpack fails early does not stop the download: the rest is
 * still read and hashed, so that a damaged artifact is reported as damaged (RESTORE_CHECKSUM_MISMATCH), not as the
 * zstd or tar error it caused.
 */
import type { RestoreArtifact } from '../contracts/restore.js';
import type { ChunkSink } from '../destinations/types.js';
import { RangeHasher } from '../lib/range-hasher.js';
import { BLOCK, parseHeader } from '../lib/tar.js';
import { memberRanges } from './chain.js';
import { openComponent, type ComponentWriter } from './unpack.js';

export interface ArtifactStreamOptions {
  artifact: RestoreArtifact;
  /** The restore's temporary directory. */
  root: string;
  /** Also hash each component (drills: every checksum the backup recorded). */
  components: boolean;
  /** The age identity file, for an encrypted artifact. */
  identity?: string;
  signal: AbortSignal;
}

export interface ArtifactOutcome {
  /** SHA-256 of every byte received. */
  sha256: string;
  /** SHA-256 of each component's bytes (with `components`; else empty). */
  parts: string[];
  /** Each member header as received: name and size. */
  headers: { name: string; size: number }[];
  /** The first component (in manifest order) whose unpack failed, and why. */
  failure?: unknown;
}

/** A download sink that unpacks an artifact while it arrives (see the file's comment). */
export class ArtifactStream implements ChunkSink {
  private readonly ranges: ReturnType<typeof memberRanges>;
  private readonly hasher: RangeHasher;
  private readonly headers: Buffer[];
  private readonly writers: (ComponentWriter | undefined)[] = [];
  private readonly failures: unknown[] = [];
  private pos = 0;
  /** The component whose bytes come next. */
  private cur = 0;

  constructor(private readonly o: ArtifactStreamOptions) {
    const a = o.artifact;
    this.ranges = memberRanges(a.components);
    this.hasher = new RangeHasher(o.components ? this.ranges.map((r) => ({ start: r.start, end: r.start + r.size })) : [], 64, true);
    this.headers = this.ranges.map(() => Buffer.alloc(BLOCK));
  }

  /** Bytes received so far. */
  get received(): number {
    return this.pos;
  }

  take(size: number): Buffer {
    return this.hasher.take(size);
  }

  async update(buf: Buffer, len: number): Promise<void> {
    const from = this.pos;
    const end = from + len;
    for (const [j, r] of this.ranges.entries()) {
      const s = Math.max(r.header, from);
      const e = Math.min(r.header + BLOCK, end);
      if (s < e) buf.copy(this.headers[j]!, s - r.header, s - from, e - from);
    }
    while (this.cur < this.ranges.length) {
      const r = this.ranges[this.cur]!;
      if (end < r.start) break;
      const w = this.writers[this.cur] ?? await this.open(this.cur);
      const s = Math.max(r.start, from);
      const e = Math.min(r.start + r.size, end);
      // Resolves once the OS has the bytes: only then may the buffer move to the hashing thread.
      if (s < e) await w.write(buf.subarray(s - from, e - from));
      if (end < r.start + r.size) break;
      w.end();
      this.cur++;
    }
    this.pos = end;
    await this.hasher.update(buf, len);
  }

  /** The unpack of component `j`; one that cannot even start drops its bytes and reports why at the end. */
  private async open(j: number): Promise<ComponentWriter> {
    const a = this.o.artifact;
    const c = a.components[j]!;
    let w: ComponentWriter;
    try {
      w = await openComponent({
        name: c.name, type: c.type, member: c.member, size: c.size, artifactPath: a.path,
        ...(a.encryption ? { encrypted: { identity: this.o.identity ?? '', plaintextSize: c.plaintextSize ?? -1, encryption: a.encryption } } : {}),
      }, this.o.root, this.o.signal);
    } catch (err) {
      this.failures[j] = err;
      const done = Promise.resolve();
      w = { rel: '', write: () => done, end: () => undefined, done, kill: () => undefined };
    }
    this.writers[j] = w;
    return w;
  }

  /**
   * After the download: the digests, the headers, and every component's unpack, awaited to its end. Components the
   * stream never finished (a download cut short) are killed, not ended.
   */
  async finish(): Promise<ArtifactOutcome> {
    for (let j = this.cur; j < this.ranges.length; j++) this.writers[j]?.kill();
    let digests;
    try {
      digests = await this.hasher.digest();
    } catch (err) {
      await this.abort();
      throw err;
    }
    const settled = await Promise.allSettled(this.writers.map((w) => w?.done));
    let failure: unknown;
    for (let j = 0; j < this.ranges.length && failure === undefined; j++) {
      const s = settled[j];
      failure = this.failures[j] ?? (s?.status === 'rejected' ? (s.reason as unknown) : undefined);
      if (failure === undefined && j >= this.cur) failure = new Error(`component ${this.ranges[j]!.member} of ${this.o.artifact.path} was not received completely`);
    }
    return { sha256: digests.digest, parts: digests.parts, headers: this.headers.map(parseHeader), ...(failure !== undefined ? { failure } : {}) };
  }

  /** Stops everything (a failed download, a cancelled restore): the programs are killed and the thread ends. */
  async abort(): Promise<void> {
    for (const w of this.writers) w?.kill();
    await Promise.allSettled(this.writers.map((w) => w?.done));
    await this.hasher.destroy();
  }
}
