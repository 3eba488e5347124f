import { createHash, randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path/posix';
import { Client, type ClientChannel, type SFTPWrapper, type Stats } from 'ssh2';
import type { SftpDestinationConfig as SftpDestination } from './schema.js';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import { ThreadHasher } from '../../lib/hasher.js';
import {
  DEFAULT_HOST_KEY_ALGORITHMS, checkKnownHosts, fingerprint, hostKeyAlgorithms, keyType, knownHostKeyTypes, type KnownHostsResult,
} from '../../lib/known-hosts.js';
import { isInside } from '../../lib/paths.js';
import { collectYoung } from '../../lib/young-gc.js';
import { DIR_MODE, FILE_MODE, LIST_MAX, SMALL_FILE_MAX_BYTES, checkRange, tooLarge, tooManyEntries } from '../limits.js';
import { commitFile, discardFile, inspectFile, stageFile, stageFollowingFile, type FileStore, type OffsetWriter } from '../file-staging.js';
import type { Capabilities, Connection, DirEntry, DownloadOptions, PieceSource, StageResult, StagedExpectation, StagedWrite, UploadOptions } from '../types.js';
import { probeWritable } from '../probe.js';

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const FX = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4 } as const;

type SftpError = Error & { code?: number | string; level?: string };

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Per pinned destination: the host key algorithms of the key type that matched the pin (learned once per worker). */
const pinnedHostKeyAlgorithms = new Map<string, string[]>();

/**
 * One SSH connection with one SFTP channel, reused for all steps of a run on this worker
 * (each new connection costs about 0.3 s of key exchange and authentication).
 */
export class SftpSession implements Connection, FileStore {
  readonly type = 'sftp' as const;
  readonly location: string;
  private client = new Client();
  private sftp!: SFTPWrapper;
  private extensions: Record<string, string> = {};
  private hashCommand: string | null | undefined;
  /** Set when the connection is gone: the pool must not hand it out again. */
  closed = false;
  /** How to fail each request still waiting for its answer (see `call`). */
  private readonly waiting = new Set<(err: Error) => void>();

  /**
   * One ssh2 callback-style request as a promise that fails when the connection goes. ssh2 answers the requests in
   * flight when a connection drops, but not one it issues afterwards: readdir by path closes its directory handle
   * after the failure, on the dead channel, and that close (with the readdir's callback) is never answered. A size
   * check listing manifests while the upload beside it lost the connection would wait forever.
   */
  private call<T>(fn: (cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => { this.waiting.delete(fail); reject(err); };
      this.waiting.add(fail);
      try {
        fn((err, v) => {
          this.waiting.delete(fail);
          if (err) reject(err);
          else resolve(v);
        });
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  private failWaiting(): void {
    for (const fail of [...this.waiting]) fail(new Error('connection closed'));
  }

  /** The hash is computed on the server unless the account can run no hash command (then the file is read back). */
  get capabilities(): Capabilities {
    return { atomicRename: true, serverSideHash: this.hashCommand !== null, durableSync: this.has('fsync@openssh.com'), conditionalCreate: true };
  }

  constructor(readonly name: string, private readonly cfg: SftpDestination) {
    this.location = `sftp://${cfg.user}@${cfg.host}:${cfg.port}${cfg.path}`;
  }

  /** `p` under the destination's root; refused unless it stays inside (by path.relative, never a string prefix). */
  private abs(p: string): string {
    if (!isInside(this.cfg.path, p, path)) {
      throw new BackupError('DESTINATION_IO', `${this.where()}: path ${JSON.stringify(p)} leaves ${this.cfg.path}; refused`, { permanent: true });
    }
    return path.join(this.cfg.path, p);
  }

  private where(): string {
    return `destination "${this.name}" (${this.cfg.user}@${this.cfg.host}:${this.cfg.port})`;
  }

  private pinKey(): string {
    return `${this.cfg.host}:${this.cfg.port} ${this.cfg.hostKey}`;
  }

  /**
   * One SSH handshake and login on a fresh client, offering the host key algorithms `serverHostKey` (default: ssh2's).
   * Resolves `{ ok: false }` with the error (and the host key the server presented, if it was refused) on failure.
   */
  private handshake(privateKey: Buffer, passphrase: string | undefined, serverHostKey: string[] | undefined):
    Promise<{ ok: true; keyType?: string } | { ok: false; error: BackupError; presentedKey?: Buffer }> {
    const cfg = this.cfg;
    let hostKeyProblem: BackupError | undefined;
    let presentedKey: Buffer | undefined;
    let acceptedType: string | undefined;
    const verify = (key: Buffer): boolean => {
      const fp = fingerprint(key);
      if (cfg.hostKey) {
        if (fp === cfg.hostKey) {
          acceptedType = keyType(key);
          return true;
        }
        presentedKey = key;
        hostKeyProblem = new BackupError('HOST_KEY_MISMATCH', `${this.where()}: host key mismatch: the server presented ${fp}, the config pins ${cfg.hostKey}`, {
          hint: 'someone may be intercepting the connection, or the server was reinstalled; check the server\'s key with ssh-keygen -lf and update hostKey only if you trust it',
        });
        return false;
      }
      let result: KnownHostsResult;
      try {
        result = checkKnownHosts(cfg.knownHosts!, cfg.host, cfg.port, key);
      } catch (err) {
        hostKeyProblem = new BackupError('HOST_KEY_MISMATCH', `${this.where()}: cannot read known_hosts ${cfg.knownHosts}: ${(err as Error).message}`);
        return false;
      }
      const { status, line } = result;
      if (status === 'match') return true;
      const why = {
        unknown: `the host is not listed in ${cfg.knownHosts}`,
        revoked: `the server presented ${fp}, which is marked @revoked in ${cfg.knownHosts} (line ${line})`,
        'cert-authority': `${cfg.knownHosts} names only a @cert-authority for this host (line ${line}); host certificates are not supported`,
        mismatch: `the server presented ${fp}, which does not match the key in ${cfg.knownHosts}`,
      }[status];
      hostKeyProblem = new BackupError('HOST_KEY_MISMATCH', `${this.where()}: host key refused: ${why}`, {
        hint: status === 'unknown' ? `add it after checking its fingerprint: ssh-keyscan -p ${cfg.port} ${cfg.host} >> ${cfg.knownHosts}`
          : status === 'cert-authority' ? `list the host's own key instead: ssh-keyscan -p ${cfg.port} ${cfg.host}, after checking its fingerprint`
            : 'someone may be intercepting the connection, or the server was reinstalled',
      });
      return false;
    };
    return new Promise((resolve) => {
      const fail = (error: BackupError) => resolve({ ok: false, error, presentedKey });
      const onError = (err: SftpError) => {
        this.closed = true;
        if (hostKeyProblem) return fail(hostKeyProblem);
        if (err.level === 'client-authentication') {
          return fail(new BackupError('DESTINATION_AUTH', `${this.where()}: authentication failed for user ${cfg.user} with key ${cfg.privateKey}`, {
            cause: err, hint: 'check that the public key is in the account\'s authorized_keys',
          }));
        }
        if (/passphrase|Encrypted private key|Cannot parse privateKey/i.test(err.message)) {
          return fail(new BackupError('SECRET_UNAVAILABLE', `${this.where()}: cannot use private key ${cfg.privateKey}: ${err.message}`, { cause: err }));
        }
        fail(new BackupError('DESTINATION_UNREACHABLE', `${this.where()}: cannot connect: ${err.message}`, { cause: err, hint: 'check that the host is up and the port is right' }));
      };
      const client = this.client;
      client.on('error', () => undefined); // a refused client may report its reset after the first error: not unhandled
      client.once('error', onError);
      client.once('ready', () => {
        client.off('error', onError);
        client.on('error', () => { this.closed = true; });
        resolve({ ok: true, keyType: acceptedType });
      });
      client.on('close', () => {
        if (this.client !== client) return;
        this.closed = true;
        this.failWaiting();
      });
      try {
        client.connect({
          host: cfg.host, port: cfg.port, username: cfg.user, privateKey, passphrase,
          hostVerifier: verify, keepaliveInterval: 15_000, keepaliveCountMax: 3, readyTimeout: 20_000,
          ...(serverHostKey ? { algorithms: { serverHostKey: serverHostKey as never } } : {}),
        });
      } catch (err) {
        onError(err as SftpError);
      }
    });
  }

  async connect(): Promise<this> {
    const cfg = this.cfg;
    let privateKey: Buffer;
    try {
      privateKey = await readFile(cfg.privateKey);
    } catch (err) {
      throw new BackupError('SECRET_UNAVAILABLE', `${this.where()}: cannot read private key ${cfg.privateKey}: ${(err as Error).message}`, { cause: err });
    }
    const passphrase = cfg.passphrase ? await readSecret(cfg.passphrase, `${this.where()} key passphrase`) : undefined;
    // The host key algorithms offered are those of the key we know: the known_hosts entries' types, or for a pinned
    // fingerprint (which names no type) the type that matched before, else learned below. Otherwise ssh2 would
    // negotiate its favourite (ed25519) and refuse a server known only by its ECDSA or RSA key.
    let offer: string[] | undefined;
    let learned = false;
    if (cfg.hostKey) {
      offer = pinnedHostKeyAlgorithms.get(this.pinKey());
      learned = offer !== undefined;
    } else {
      let types: string[] = [];
      try {
        types = knownHostKeyTypes(cfg.knownHosts!, cfg.host, cfg.port);
      } catch {
        // unreadable: the verifier reports it
      }
      const algorithms = hostKeyAlgorithms(types);
      if (algorithms.length > 0) offer = algorithms;
    }
    const presented: { fp: string; type: string }[] = [];
    for (;;) {
      const attempt = await this.handshake(privateKey, passphrase, offer);
      if (attempt.ok) {
        if (cfg.hostKey && attempt.keyType) pinnedHostKeyAlgorithms.set(this.pinKey(), hostKeyAlgorithms([attempt.keyType]));
        break;
      }
      const { error, presentedKey } = attempt;
      const again = () => { this.client = new Client(); this.closed = false; };
      // The server no longer has a key of the type learned before: learn again from ssh2's full list.
      if (learned && (error.cause as SftpError | undefined)?.level === 'handshake' && !presentedKey) {
        pinnedHostKeyAlgorithms.delete(this.pinKey());
        learned = false;
        offer = undefined;
        again();
        continue;
      }
      // A pinned fingerprint that the presented key does not match: ask again without that key's type (the server may
      // hold several host keys), until the server has no other type to offer.
      if (cfg.hostKey && presentedKey) {
        presented.push({ fp: fingerprint(presentedKey), type: keyType(presentedKey) || 'unknown type' });
        const remaining = (offer ?? DEFAULT_HOST_KEY_ALGORITHMS).filter((a) => !hostKeyAlgorithms([keyType(presentedKey)]).includes(a));
        if (remaining.length > 0 && remaining.length < (offer ?? DEFAULT_HOST_KEY_ALGORITHMS).length) {
          offer = remaining;
          again();
          continue;
        }
      }
      if (cfg.hostKey && presented.length > 0) {
        throw new BackupError('HOST_KEY_MISMATCH', `${this.where()}: host key mismatch: the server presented ${presented.map((p) => p.fp).join(' and ')}, the config pins ${cfg.hostKey} (key types tried: ${presented.map((p) => p.type).join(', ')})`, {
          cause: error,
          hint: 'someone may be intercepting the connection, or the server was reinstalled; check the server\'s key with ssh-keygen -lf and update hostKey only if you trust it',
        });
      }
      throw error;
    }
    // ssh2 leaves Nagle on: every pipelined WRITE would then wait for a delayed ACK (1.8 MB/s measured).
    this.client.setNoDelay(true);
    this.sftp = await this.call<SFTPWrapper>((cb) => this.client.sftp(cb));
    this.extensions = (this.sftp as unknown as { _extensions: Record<string, string> })._extensions ?? {};
    return this;
  }

  private has(ext: string): boolean {
    return ext in this.extensions;
  }

  private mapError(err: unknown, what: string): BackupError {
    if (err instanceof BackupError) return err;
    const e = err as SftpError;
    const msg = `${this.where()}: ${what}: ${e.message}`;
    if (this.closed || e.message === 'No response from server' || e.level === 'client-timeout' || e.code === 'ECONNRESET') {
      return new BackupError('DESTINATION_UNREACHABLE', `${msg} (connection lost)`, { cause: err });
    }
    if (e.code === FX.PERMISSION_DENIED) return new BackupError('DESTINATION_IO', msg, { cause: err, permanent: true, hint: `check that ${this.cfg.user} may write to ${this.cfg.path}` });
    return new BackupError('DESTINATION_IO', msg, { cause: err });
  }

  async freeBytes(): Promise<number | undefined> {
    if (!this.has('statvfs@openssh.com')) return undefined;
    const st = await this.call<{ f_bavail: number | bigint; f_frsize: number | bigint }>((cb) => this.sftp.ext_openssh_statvfs(this.cfg.path, cb as never))
      .catch((err: unknown) => { throw this.mapError(err, 'statvfs'); });
    const free = Number(st.f_bavail) * Number(st.f_frsize);
    if (!Number.isFinite(free)) throw new BackupError('DESTINATION_IO', `${this.where()}: statvfs returned no usable free space`);
    return free;
  }

  checkWritable(): Promise<void> {
    return probeWritable(this, this.where(), 'file');
  }

  private async mkdirp(dir: string): Promise<void> {
    const parts = dir.split('/').filter(Boolean);
    let cur = dir.startsWith('/') ? '/' : '';
    for (const part of parts) {
      cur = path.join(cur, part);
      try {
        // Created 0700: backups are private to the backup account (an existing folder is left as it is).
        await this.call<void>((cb) => this.sftp.mkdir(cur, { mode: DIR_MODE }, cb as never));
      } catch (err) {
        const st = await this.call<Stats>((cb) => this.sftp.stat(cur, cb)).catch(() => undefined);
        if (!st?.isDirectory()) throw this.mapError(err, `cannot create directory ${cur}`);
      }
    }
  }

  /** When a write fails with the generic "Failure" (OpenSSH maps ENOSPC there), ask statvfs whether the disk is full. */
  private async explainWriteFailure(err: unknown, target: string, needed: number): Promise<BackupError> {
    const e = err as SftpError;
    if (e.code === FX.FAILURE && !this.closed) {
      const free = await this.freeBytes().catch(() => undefined);
      if (free !== undefined && free < needed) {
        return new BackupError('DESTINATION_SPACE', `${this.where()}: the remote disk is full while writing ${target} (${free} bytes free)`, {
          cause: err, hint: 'free space on the destination or remove old backups',
        });
      }
    }
    return this.mapError(err, `writing ${target}`);
  }

  async upload(localFile: string, p: string, opts: UploadOptions = {}): Promise<{ bytes: number; sha256: string }> {
    const target = this.abs(p);
    await this.mkdirp(path.dirname(target));
    const maxWrite = (this.sftp as unknown as { _maxWriteLen: number })._maxWriteLen || 32 * 1024;
    const inFlightMax = this.cfg.parallelWrites;
    let handle: Buffer;
    try {
      // Created 0600 (the final rename keeps the mode).
      handle = await this.call<Buffer>((cb) => this.sftp.open(target, 'w', { mode: FILE_MODE }, cb));
    } catch (err) {
      throw this.mapError(err, `cannot create ${target}`);
    }
    const src = await open(localFile, 'r');
    const hasher = new ThreadHasher();
    const sock = this.corkable();
    let readPos = 0;
    let acked = 0;
    let inFlight = 0;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const signalWake = () => { const w = wake; wake = undefined; w?.(); };
    const onAbort = () => { failure ??= opts.signal?.reason ?? new Error('aborted'); signalWake(); };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // The connection closing wakes the waits below at once (ssh2 answers the writes in flight with an error when the
    // channel ends, but a connection dropped by close() may take its socket's second to get there).
    const onClose = () => { failure ??= new Error('connection closed'); signalWake(); };
    this.client.on('close', onClose);
    if (this.closed) onClose();
    try {
      for (;;) {
        while (inFlight >= inFlightMax && !failure) await new Promise<void>((r) => (wake = r));
        if (failure) break;
        const buf = hasher.take(maxWrite);
        const { bytesRead } = await src.read(buf, 0, maxWrite, readPos);
        if (bytesRead === 0) break;
        await opts.throttle?.(bytesRead, opts.signal);
        const pos = readPos;
        readPos += bytesRead;
        inFlight++;
        // One WRITE becomes about eight SSH packets; corked, they leave in one writev() instead of eight write()s
        // (on loopback and fast links the per-call cost is most of the upload's CPU).
        sock?.cork();
        this.sftp.write(handle, buf, 0, bytesRead, pos, (err) => {
          inFlight--;
          if (err) failure ??= err;
          else {
            acked += bytesRead;
            opts.onProgress?.(acked);
          }
          signalWake();
        });
        sock?.uncork();
        // ssh2 copied the bytes into its packet synchronously, so the buffer can move to the hashing thread.
        await hasher.update(buf, bytesRead);
        collectYoung(bytesRead);
      }
      // The last writes' answers, unless the attempt fails (or is cancelled) while it waits for them.
      while (inFlight > 0 && !failure && !this.closed) await new Promise<void>((r) => (wake = r));
      if (failure && inFlight > 0 && !this.closed) {
        // Cancelled or failed with requests in flight: give them a moment, then drop the connection (it may be the
        // stalled one that made this attempt time out) so that nothing waits for answers that never come.
        const t = setTimeout(() => { this.close(); signalWake(); }, 5_000);
        while (inFlight > 0 && !this.closed) await new Promise<void>((r) => (wake = r));
        clearTimeout(t);
      }
      if (failure) throw failure;
      if (this.closed) throw new Error('connection closed');
      if (!opts.deferSync && this.has('fsync@openssh.com')) await this.call<void>((cb) => this.sftp.ext_openssh_fsync(handle, cb as never));
      await this.call<void>((cb) => this.sftp.close(handle, cb as never));
      return { bytes: readPos, sha256: await hasher.digest() };
    } catch (err) {
      hasher.destroy();
      if (!this.closed) this.sftp.close(handle, () => undefined);
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw await this.explainWriteFailure(err, target, maxWrite);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.client.off('close', onClose);
      await src.close();
    }
  }

  async openPending(p: string): Promise<OffsetWriter> {
    const target = this.abs(p);
    await this.mkdirp(path.dirname(target));
    let handle: Buffer;
    try {
      // Created 0600 (the final rename keeps the mode).
      handle = await this.call<Buffer>((cb) => this.sftp.open(target, 'w', { mode: FILE_MODE }, cb));
    } catch (err) {
      throw this.mapError(err, `cannot create ${target}`);
    }
    const sock = this.corkable();
    // The requests in flight, which an abort waits for (each fails when the connection goes, see `call`).
    const pending = new Set<Promise<unknown>>();
    const request = <T>(fn: (cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> => {
      const done = this.call<T>(fn);
      pending.add(done);
      done.then(() => pending.delete(done), () => pending.delete(done));
      return done;
    };
    let end = 0;
    return {
      chunk: (this.sftp as unknown as { _maxWriteLen: number })._maxWriteLen || 32 * 1024,
      parallel: this.cfg.parallelWrites,
      write: (buf, len, pos) => {
        end = Math.max(end, pos + len);
        return request<void>((cb) => {
          // One WRITE becomes about eight SSH packets; corked, they leave in one writev() (see upload).
          sock?.cork();
          this.sftp.write(handle, buf, 0, len, pos, cb as never);
          sock?.uncork();
          collectYoung(len);
        });
      },
      finish: async (size) => {
        try {
          if (end > size) await request<void>((cb) => this.sftp.fsetstat(handle, { size }, cb as never));
          await request<void>((cb) => this.sftp.close(handle, cb as never));
        } catch (err) {
          throw this.mapError(err, `closing ${target}`);
        }
      },
      abort: async () => {
        // Give the requests in flight a moment, then drop the connection (it may be the stalled one), which fails them.
        if (pending.size > 0 && !this.closed) {
          const t = setTimeout(() => this.close(), 5_000);
          await Promise.allSettled(pending);
          clearTimeout(t);
        }
        if (!this.closed) this.sftp.close(handle, () => undefined);
      },
    };
  }

  /** Writes the pending file at offsets from an artifact that is still being written (see stageFollowingFile). */
  async stageFollowing(source: PieceSource, w: StagedWrite, opts: UploadOptions = {}): Promise<StageResult> {
    try {
      return await stageFollowingFile(this, source, w, opts);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (err instanceof BackupError) throw err;
      throw await this.explainWriteFailure(err, this.abs(w.pending), 256 * 1024);
    }
  }

  /** The whole file, through pipelined reads (`readWhole`), to the sink; a file that is not there is RESTORE_NOT_FOUND. */
  async download(p: string, opts: DownloadOptions): Promise<{ bytes: number }> {
    const file = this.abs(p);
    const st = await this.stat(p);
    if (!st) throw new BackupError('RESTORE_NOT_FOUND', `${this.where()}: ${file} does not exist`);
    return this.readWhole(file, st.size, opts.sink, opts, {
      missing: () => new BackupError('RESTORE_NOT_FOUND', `${this.where()}: ${file} does not exist`),
      short: (done) => new BackupError('RESTORE_FAILED', `${this.where()}: ${file} ended at ${done} bytes, ${st.size} expected`, { permanent: false }),
    });
  }

  /**
   * Reads `size` bytes of `file` into `sink`, in file order: up to `parallelWrites` (at least 32) READ requests of the
   * server's maximum length in flight, a short read asked again for the rest of its range. Every request goes through
   * `call`, so one issued after the connection dropped fails instead of waiting for good, and each is handled when it is
   * made: when the loop ends early (a failed read, a lost connection, cancellation) the others still settle, and an
   * unhandled rejection would end the worker process. `fail` names the errors of the caller's step: the file missing,
   * and the file ending before `size`.
   */
  private async readWhole(file: string, size: number, sink: DownloadOptions['sink'], opts: UploadOptions, fail: { missing: () => BackupError; short: (done: number) => BackupError }): Promise<{ bytes: number }> {
    const chunk = (this.sftp as unknown as { _maxReadLen: number })._maxReadLen || 32 * 1024;
    const inFlightMax = Math.max(32, this.cfg.parallelWrites);
    const handle = await this.call<Buffer>((cb) => this.sftp.open(file, 'r', cb)).catch((err: unknown) => {
      if ((err as SftpError).code === FX.NO_SUCH_FILE) throw fail.missing();
      throw this.mapError(err, `opening ${file}`);
    });
    const pending = new Map<number, Promise<{ buf: Buffer; n: number }>>();
    const read = (pos: number, len: number) => {
      const buf = sink.take(chunk);
      const pr = this.call<{ buf: Buffer; n: number }>((cb) => this.sftp.read(handle, buf, 0, len, pos, (err, n) => cb(err, { buf, n: n ?? 0 })));
      pr.catch(() => undefined);
      pending.set(pos, pr);
    };
    let next = 0;
    let done = 0;
    try {
      while (done < size) {
        opts.signal?.throwIfAborted();
        while (pending.size < inFlightMax && next < size) {
          const len = Math.min(chunk, size - next);
          read(next, len);
          next += len;
        }
        const { buf, n } = await pending.get(done)!;
        pending.delete(done);
        if (n === 0) throw fail.short(done);
        const wanted = Math.min(chunk, size - done);
        // A short read: ask again for the rest of that range (before the requests already in flight are used).
        if (n < wanted) read(done + n, wanted - n);
        done += n;
        await sink.update(buf, n);
        collectYoung(n);
        opts.onProgress?.(done);
      }
      return { bytes: done };
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw this.mapError(err, `reading ${file}`);
    } finally {
      if (!this.closed) this.sftp.close(handle, () => undefined);
    }
  }

  async stat(p: string): Promise<{ size: number } | undefined> {
    try {
      const st = await this.call<Stats>((cb) => this.sftp.stat(this.abs(p), cb));
      return { size: st.size };
    } catch (err) {
      if ((err as SftpError).code === FX.NO_SUCH_FILE) return undefined;
      throw this.mapError(err, `stat ${p}`);
    }
  }

  /** Runs a command over SSH; resolves with its exit code and stdout (bounded). */
  private exec(command: string): Promise<{ code: number | null; stdout: string }> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, ch: ClientChannel) => {
        if (err) return reject(err);
        let stdout = '';
        let code: number | null = null;
        ch.on('data', (d: Buffer) => { if (stdout.length < 4096) stdout += d.toString(); });
        ch.stderr.resume();
        ch.on('exit', (c: number | null) => { code = c; });
        ch.on('close', () => resolve({ code, stdout }));
        ch.end();
      });
    });
  }

  /** ssh2's TCP socket, to cork a batch of packets into one writev() (not public API: without it, nothing is corked). */
  private corkable(): { cork(): void; uncork(): void } | undefined {
    const raw = (this.client as unknown as { _sock?: { cork?: unknown; uncork?: unknown } })._sock;
    return typeof raw?.cork === 'function' && typeof raw.uncork === 'function' ? raw as { cork(): void; uncork(): void } : undefined;
  }

  /** fsync@openssh.com on a handle of its own: the kernel flushes the file's dirty pages whichever handle wrote them. */
  async sync(p: string): Promise<boolean> {
    if (!this.has('fsync@openssh.com')) return false;
    const file = this.abs(p);
    const handle = await this.call<Buffer>((cb) => this.sftp.open(file, 'r', cb)).catch((err: unknown) => {
      if ((err as SftpError).code === FX.NO_SUCH_FILE) throw new BackupError('VERIFY_MISSING', `${this.where()}: ${file} does not exist`);
      throw this.mapError(err, `opening ${file}`);
    });
    try {
      await this.call<void>((cb) => this.sftp.ext_openssh_fsync(handle, cb as never));
    } catch (err) {
      throw this.mapError(err, `flushing ${file} (fsync@openssh.com)`);
    } finally {
      this.sftp.close(handle, () => undefined);
    }
    return true;
  }

  async sha256(p: string, opts: UploadOptions = {}): Promise<{ sha256: string; method: string }> {
    const st = await this.stat(p);
    if (!st) throw new BackupError('VERIFY_MISSING', `${this.where()}: ${this.abs(p)} does not exist`);
    if (this.hashCommand === undefined) this.hashCommand = await this.detectHashCommand();
    if (this.hashCommand) {
      const { code, stdout } = await this.exec(`${this.hashCommand} ${shellQuote(this.abs(p))}`).catch((err: Error) => {
        throw this.mapError(err, 'running the remote hash command');
      });
      const m = /^([0-9a-f]{64})\b/.exec(stdout.trim());
      if (code === 0 && m) return { sha256: m[1]!, method: `remote ${this.hashCommand.split(' ')[0]}` };
      // A hash command that fails or prints no hash is never a pass: check whether the file is still there.
      if (!(await this.stat(p))) throw new BackupError('VERIFY_MISSING', `${this.where()}: ${this.abs(p)} does not exist`);
      throw new BackupError('VERIFY_MISMATCH', `${this.where()}: the remote hash command exited ${code} without a hash for ${this.abs(p)}`);
    }
    return { sha256: await this.readBackHash(p, st.size, opts), method: 'sftp read-back' };
  }

  /** `openssl dgst` (SHA-NI, 4× faster than coreutils) if the account can run it, else `sha256sum`, else none (SFTP-only accounts). */
  private async detectHashCommand(): Promise<string | null> {
    for (const [probe, command] of [['openssl dgst -sha256 -r /dev/null', 'openssl dgst -sha256 -r'], ['sha256sum /dev/null', 'sha256sum']] as const) {
      const r = await this.exec(probe).catch(() => undefined);
      if (r?.code === 0 && /^e3b0c44298fc1c149afbf4c8996fb924/.test(r.stdout.trim())) return command;
    }
    return null;
  }

  /** The SHA-256 of the file as read back through SFTP (an account that may run no command). */
  private async readBackHash(p: string, size: number, opts: UploadOptions): Promise<string> {
    const file = this.abs(p);
    const h = createHash('sha256');
    const sink = { take: (n: number) => Buffer.allocUnsafe(n), update: async (buf: Buffer, len: number) => { h.update(buf.subarray(0, len)); } };
    await this.readWhole(file, size, sink, opts, {
      missing: () => new BackupError('VERIFY_MISSING', `${this.where()}: ${file} does not exist`),
      short: () => new BackupError('VERIFY_MISMATCH', `${this.where()}: ${file} is shorter than expected`),
    });
    return h.digest('hex');
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      if (this.has('posix-rename@openssh.com')) await this.call<void>((cb) => this.sftp.ext_openssh_rename(this.abs(from), this.abs(to), cb as never));
      else await this.call<void>((cb) => this.sftp.rename(this.abs(from), this.abs(to), cb as never));
    } catch (err) {
      throw this.mapError(err, `renaming ${from} to ${to}`);
    }
  }

  stage(localFile: string, w: StagedWrite, opts?: UploadOptions) { return stageFile(this, localFile, w, opts); }
  inspectStaged(w: StagedWrite, opts?: UploadOptions) { return inspectFile(this, w, opts); }
  commit(w: StagedWrite, expected: StagedExpectation) { return commitFile(this, w, expected); }
  discard(w: StagedWrite) { return discardFile(this, w); }

  /**
   * SSH_FXP_RENAME, which fails when the target exists (draft-ietf-secsh-filexfer-02; OpenSSH links the new name and
   * unlinks the old), unlike posix-rename@openssh.com, which replaces it.
   */
  async renameNoReplace(from: string, to: string): Promise<void> {
    try {
      await this.call<void>((cb) => this.sftp.rename(this.abs(from), this.abs(to), cb as never));
    } catch (err) {
      throw this.mapError(err, `renaming ${from} to ${to}`);
    }
  }

  async writeSmallFile(p: string, data: Buffer, opts: { exclusive?: boolean } = {}): Promise<void> {
    const target = this.abs(p);
    const tmp = `${target}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      await this.mkdirp(path.dirname(target));
      const handle = await this.call<Buffer>((cb) => this.sftp.open(tmp, 'w', { mode: FILE_MODE }, cb));
      await this.call<void>((cb) => this.sftp.write(handle, data, 0, data.length, 0, cb as never));
      if (this.has('fsync@openssh.com')) await this.call<void>((cb) => this.sftp.ext_openssh_fsync(handle, cb as never));
      await this.call<void>((cb) => this.sftp.close(handle, cb as never));
      if (opts.exclusive) {
        await this.renameNoReplace(path.relative(this.cfg.path, tmp), p).catch(async (err: unknown) => {
          if (await this.stat(p)) throw new BackupError('DESTINATION_EXISTS', `${this.where()}: ${p} exists; it was not replaced`);
          throw err;
        });
      } else {
        await this.rename(path.relative(this.cfg.path, tmp), p);
      }
    } catch (err) {
      await this.remove(path.relative(this.cfg.path, tmp)).catch(() => undefined);
      throw await this.explainWriteFailure(err, target, data.length);
    }
  }

  async readSmallFile(p: string, maxBytes = SMALL_FILE_MAX_BYTES): Promise<Buffer | undefined> {
    let handle: Buffer;
    try {
      handle = await this.call<Buffer>((cb) => this.sftp.open(this.abs(p), 'r', cb));
    } catch (err) {
      if ((err as SftpError).code === FX.NO_SUCH_FILE) return undefined;
      throw this.mapError(err, `reading ${p}`);
    }
    try {
      const size = (await this.call<Stats>((cb) => this.sftp.fstat(handle, cb))).size;
      if (size > maxBytes) throw tooLarge(this.name, p, size, maxBytes);
      // Never more than the cap, even when the file grows while it is read.
      const buf = Buffer.alloc(maxBytes + 1);
      let done = 0;
      for (;;) {
        const n = await this.call<number>((cb) => this.sftp.read(handle, buf, done, Math.min(64 * 1024, buf.length - done), done, (err, bytes) => cb(err, bytes)))
          .catch((err: unknown) => { if ((err as SftpError).code === FX.EOF) return 0; throw err; });
        if (!n) break;
        done += n;
        if (done > maxBytes) throw tooLarge(this.name, p, done, maxBytes);
      }
      return Buffer.from(buf.subarray(0, done));
    } catch (err) {
      throw this.mapError(err, `reading ${p}`);
    } finally {
      if (!this.closed) this.sftp.close(handle, () => undefined);
    }
  }

  async readRange(p: string, offset: number, length: number): Promise<Buffer> {
    checkRange(this.name, p, offset, length);
    const buf = Buffer.alloc(length);
    try {
      const handle = await this.call<Buffer>((cb) => this.sftp.open(this.abs(p), 'r', cb));
      try {
        let done = 0;
        while (done < length) {
          const n = await this.call<number>((cb) => this.sftp.read(handle, buf, done, Math.min(64 * 1024, length - done), offset + done, (err, bytes) => cb(err, bytes)));
          if (n === 0) throw new Error(`${p} ends before byte ${offset + length}`);
          done += n;
        }
      } finally {
        await this.call<void>((cb) => this.sftp.close(handle, cb as never)).catch(() => undefined);
      }
    } catch (err) {
      throw this.mapError(err, `reading ${p}`);
    }
    return buf;
  }

  async list(dir: string): Promise<DirEntry[] | undefined> {
    let handle: Buffer;
    try {
      handle = await this.call<Buffer>((cb) => this.sftp.opendir(this.abs(dir), cb));
    } catch (err) {
      if ((err as SftpError).code === FX.NO_SUCH_FILE) return undefined;
      throw this.mapError(err, `listing ${dir}`);
    }
    // Page by page, counted: a server that lists without end is refused at LIST_MAX entries, not held in memory.
    const out: DirEntry[] = [];
    // An honest server sends names until its end-of-file answer; one that sends empty pages (or only `.` and `..`,
    // which ssh2 drops) without end is refused too.
    let emptyPages = 0;
    try {
      for (;;) {
        const page = await this.call<{ filename: string; attrs: Stats }[]>((cb) => this.sftp.readdir(handle, cb as never))
          .catch((err: unknown) => { if ((err as SftpError).code === FX.EOF) return undefined; throw err; });
        if (!page) return out;
        emptyPages = page.length === 0 ? emptyPages + 1 : 0;
        if (emptyPages > 100) throw new BackupError('DESTINATION_IO', `${this.where()}: the listing of ${dir || '/'} does not end (empty pages); refused`, { permanent: true });
        for (const e of page) {
          out.push({ name: e.filename, type: e.attrs.isDirectory() ? 'dir' : e.attrs.isFile() ? 'file' : 'other', size: e.attrs.size, mtimeMs: e.attrs.mtime * 1000 });
        }
        if (out.length > LIST_MAX) throw tooManyEntries(this.name, dir);
      }
    } catch (err) {
      throw this.mapError(err, `listing ${dir}`);
    } finally {
      await this.call<void>((cb) => this.sftp.close(handle, cb as never)).catch(() => undefined);
    }
  }

  async remove(p: string): Promise<boolean> {
    try {
      await this.call<void>((cb) => this.sftp.unlink(this.abs(p), cb as never));
      return true;
    } catch (err) {
      if ((err as SftpError).code === FX.NO_SUCH_FILE) return false;
      throw this.mapError(err, `removing ${p}`);
    }
  }

  /** The pool closes the connection (src/destinations/pool.ts). */
  release(): void {}

  close(): void {
    this.closed = true;
    // Nothing waits for answers on a connection being dropped.
    this.failWaiting();
    const client = this.client;
    client.end();
    // end() waits for the server; a stalled connection never answers: destroy its socket. ssh2's own destroy() does
    // nothing once end() has ended the socket's writable side, so that the connection (and every request waiting on
    // it, see `call`) would hang until SSH keepalives gave up.
    setTimeout(() => { (client as unknown as { _sock?: { destroy(): void } })._sock?.destroy(); }, 1_000).unref();
  }
}
