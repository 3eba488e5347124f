import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand,
  HeadBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand, S3Client,
  UploadPartCommand, type StorageClass,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { S3DestinationConfig } from './schema.js';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import { ThreadHasher } from '../../lib/hasher.js';
import { LIST_MAX, SMALL_FILE_MAX_BYTES, checkRange, tooLarge, tooManyEntries } from '../limits.js';
import type {
  Capabilities, Connection, DirEntry, DownloadOptions, StageResult, StagedExpectation, StagedFacts, StagedWrite, UploadOptions,
} from '../types.js';
import { probeWritable } from '../probe.js';

/** A part's SHA-256 as S3 carries it: base64 of the 32 raw bytes. */
const B64_SHA256 = /^[A-Za-z0-9+/]{43}=$/;
/** The composite checksum of a multipart object: base64 SHA-256 of the parts' raw SHA-256s, `-<parts>`. */
const COMPOSITE = /^[A-Za-z0-9+/]{43}=-\d{1,5}$/;
const UPLOAD_ID = /^[\x21-\x7e]{1,1024}$/;
const DOWNLOAD_CHUNK = 8 * 1024 * 1024;

type S3Err = Error & { $metadata?: { httpStatusCode?: number }; Code?: string; code?: string };

/** The record of a pending write, at its `pending` name: which multipart upload it is, and the parts sent. */
interface PendingRecord {
  v: 1;
  final: string;
  uploadId: string | null;
  /** Written once every part is sent: each part's SHA-256 (base64), in order. */
  parts?: string[];
}

export function compositeOf(partSha256: string[]): string {
  const h = createHash('sha256');
  for (const p of partSha256) h.update(Buffer.from(p, 'base64'));
  return `${h.digest('base64')}-${partSha256.length}`;
}

/** A bucket (and prefix) on S3 or an S3-compatible store. One client per connection: its sockets are reused. */
export class S3Session implements Connection {
  readonly type = 's3' as const;
  readonly location: string;
  /** No rename in S3: the multipart upload is committed by CompleteMultipartUpload (conditional), never by a copy. */
  readonly capabilities: Capabilities = { atomicRename: false, serverSideHash: true, durableSync: true, conditionalCreate: true };
  closed = false;
  private client!: S3Client;
  private readonly root: string;

  constructor(readonly name: string, private readonly cfg: S3DestinationConfig) {
    this.root = cfg.prefix.replace(/\/+$/, '');
    this.location = `s3://${cfg.bucket}/${this.root}${cfg.endpoint ? ` at ${cfg.endpoint}` : ''}`;
  }

  private where(): string {
    return `destination "${this.name}" (${this.location})`;
  }

  /** The key of `p`: relative, no `.`/`..`/empty segments (refused, like a path leaving a filesystem root). */
  private key(p: string): string {
    const segs = p.split('/');
    if (p === '' ) return this.root;
    if (p.startsWith('/') || segs.some((s) => s === '' || s === '.' || s === '..')) {
      throw new BackupError('DESTINATION_IO', `${this.where()}: path ${JSON.stringify(p)} is not a relative path under the prefix; refused`, { permanent: true });
    }
    return this.root ? `${this.root}/${p}` : p;
  }

  /** The relative path of a key read back; undefined for one outside the prefix. */
  private rel(key: string): string | undefined {
    if (!this.root) return key;
    return key.startsWith(`${this.root}/`) ? key.slice(this.root.length + 1) : undefined;
  }

  async connect(): Promise<this> {
    const cfg = this.cfg;
    let credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
    if (cfg.accessKeyId && cfg.secretAccessKey) {
      credentials = {
        accessKeyId: await readSecret(cfg.accessKeyId, `${this.where()} access key ID`),
        secretAccessKey: await readSecret(cfg.secretAccessKey, `${this.where()} secret access key`),
        ...(cfg.sessionToken ? { sessionToken: await readSecret(cfg.sessionToken, `${this.where()} session token`) } : {}),
      };
    }
    let ca: Buffer | undefined;
    if (cfg.caFile) {
      try {
        ca = await readFile(cfg.caFile);
      } catch (err) {
        throw new BackupError('CONFIG_INVALID', `${this.where()}: cannot read caFile ${cfg.caFile}: ${(err as Error).message}`, { cause: err });
      }
    }
    const maxSockets = cfg.parallelParts + 4;
    this.client = new S3Client({
      region: cfg.region,
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      forcePathStyle: cfg.forcePathStyle,
      ...(credentials ? { credentials } : {}),
      requestChecksumCalculation: cfg.requestChecksumCalculation,
      responseChecksumValidation: cfg.responseChecksumValidation,
      maxAttempts: 3,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: 10_000,
        // A socket that moves nothing for this long is given up (a stalled server); the activity retries.
        requestTimeout: 60_000,
        httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets, ...(ca ? { ca } : {}) }),
      }),
    });
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: cfg.bucket }));
    } catch (err) {
      this.close();
      throw this.mapError(err, `cannot reach bucket ${cfg.bucket}`);
    }
    return this;
  }

  private status(err: unknown): number | undefined {
    return (err as S3Err).$metadata?.httpStatusCode;
  }

  private errName(err: unknown): string {
    const e = err as S3Err;
    return e.Code ?? e.name ?? '';
  }

  /** The stable codes: auth, not found, no space or quota, network (README, "S3 destination"). */
  private mapError(err: unknown, what: string): BackupError {
    if (err instanceof BackupError) return err;
    const e = err as S3Err;
    const status = this.status(err);
    const name = this.errName(err);
    // A HEAD has no body: S3 says only its status then (the SDK names it Unknown).
    const said = name && !['Error', 'Unknown'].includes(name) ? `${name}: ${e.message}` : (e.message && e.message !== 'UnknownError' ? e.message : 'no details');
    const msg = `${this.where()}: ${what}: ${status ? `HTTP ${status}${status === 403 ? ' Forbidden' : ''}, ` : ''}${said}`;
    // Before the 403s: Ceph RGW answers an exceeded bucket or user quota with 403 QuotaExceeded.
    if (['QuotaExceeded', 'XMinioStorageFull', 'InsufficientStorage', 'EntityTooLarge', 'StorageFull'].includes(name) || status === 507) {
      return new BackupError('DESTINATION_SPACE', msg, { cause: err, hint: 'raise the quota, free space on the store or remove old backups' });
    }
    if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken', 'CredentialsProviderError'].includes(name) || status === 403 || status === 401) {
      return new BackupError('DESTINATION_AUTH', msg, { cause: err, hint: 'check the access key, the secret key and the bucket policy' });
    }
    if (name === 'NoSuchBucket') return new BackupError('DESTINATION_IO', msg, { cause: err, permanent: true, hint: `create the bucket ${this.cfg.bucket}, or fix the name` });
    if (name === 'PreconditionFailed' || status === 412) return new BackupError('DESTINATION_EXISTS', msg, { cause: err });
    if (name === 'BadDigest' || name === 'InvalidDigest' || name === 'XAmzContentSHA256Mismatch') {
      return new BackupError('DESTINATION_IO', `${msg} (the bytes the server received differ from what was sent: damaged on the way; sent again)`, { cause: err });
    }
    if (status !== undefined && status >= 500 && !['Unknown', 'Error', ''].includes(name) && name !== 'TimeoutError' && name !== 'RequestTimeout') {
      // The server answered, with an error of its own (s3proxy answers a full disk so, too): retried.
      return new BackupError('DESTINATION_UNREACHABLE', msg, { cause: err, hint: 'the store failed on its side; if it keeps failing, check its logs (and its free space)' });
    }
    if (status === undefined || status >= 500 || name === 'TimeoutError' || name === 'RequestTimeout' || /ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|socket hang up/i.test(`${e.code ?? ''} ${e.message}`)) {
      return new BackupError('DESTINATION_UNREACHABLE', msg, { cause: err, hint: 'check that the endpoint is up and reachable' });
    }
    return new BackupError('DESTINATION_IO', msg, { cause: err });
  }

  private isNotFound(err: unknown): boolean {
    return this.status(err) === 404 && this.errName(err) !== 'NoSuchBucket';
  }

  /** One command; errors mapped to the stable codes (a cancelled step rethrows its reason). */
  private async send<T>(cmd: object, what: string, signal?: AbortSignal): Promise<T> {
    const send = this.client.send.bind(this.client) as unknown as (c: object, o: object) => Promise<T>;
    try {
      return await send(cmd, signal ? { abortSignal: signal } : {});
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw this.mapError(err, what);
    }
  }

  async freeBytes(): Promise<number | undefined> {
    return undefined;
  }

  checkWritable(): Promise<void> {
    return probeWritable(this, this.where(), 'object');
  }

  // --- staged writes: a multipart upload to the final key, recorded in a small object at the pending name ---

  private async readRecord(w: StagedWrite): Promise<PendingRecord | undefined> {
    const raw = await this.readSmallFile(w.pending, 64 * 1024);
    if (!raw) return undefined;
    let r: PendingRecord;
    try {
      r = JSON.parse(raw.toString('utf8')) as PendingRecord;
    } catch {
      throw new BackupError('DESTINATION_IO', `${this.where()}: the pending write record ${w.pending} is not JSON`, { permanent: true });
    }
    // Read back from untrusted storage: every field checked before use.
    const ok = typeof r === 'object' && r !== null && r.v === 1 && r.final === w.final && (r.uploadId === null || (typeof r.uploadId === 'string' && UPLOAD_ID.test(r.uploadId)))
      && (r.parts === undefined || (Array.isArray(r.parts) && r.parts.length <= 10_000 && r.parts.every((p) => typeof p === 'string' && B64_SHA256.test(p))));
    if (!ok) throw new BackupError('DESTINATION_IO', `${this.where()}: the pending write record ${w.pending} is not one backupctl wrote for ${w.final}`, { permanent: true });
    return r;
  }

  private writeRecord(w: StagedWrite, r: PendingRecord): Promise<void> {
    return this.writeSmallFile(w.pending, Buffer.from(JSON.stringify(r)));
  }

  /** The parts of an upload, validated: numbers 1..n in order, whole sizes, checksums (when the store lists them). */
  private async listParts(w: StagedWrite, uploadId: string): Promise<{ PartNumber: number; Size: number; ETag: string; ChecksumSHA256?: string }[] | undefined> {
    const out: { PartNumber: number; Size: number; ETag: string; ChecksumSHA256?: string }[] = [];
    let marker: string | undefined;
    for (;;) {
      let r;
      try {
        r = await this.client.send(new ListPartsCommand({ Bucket: this.cfg.bucket, Key: this.key(w.final), UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }));
      } catch (err) {
        if (this.errName(err) === 'NoSuchUpload' || this.isNotFound(err)) return undefined;
        throw this.mapError(err, `listing the parts of ${w.final}`);
      }
      for (const p of r.Parts ?? []) {
        const n = out.length + 1;
        if (p.PartNumber !== n || !Number.isSafeInteger(p.Size) || p.Size! < 0 || typeof p.ETag !== 'string' || p.ETag.length > 200
          || (p.ChecksumSHA256 !== undefined && !B64_SHA256.test(p.ChecksumSHA256))) {
          throw new BackupError('VERIFY_MISMATCH', `${this.where()}: the parts listed for ${w.final} are not the parts uploaded (part ${n}: ${JSON.stringify(p).slice(0, 200)})`);
        }
        out.push({ PartNumber: n, Size: p.Size!, ETag: p.ETag, ...(p.ChecksumSHA256 ? { ChecksumSHA256: p.ChecksumSHA256 } : {}) });
        if (out.length > 10_000) throw new BackupError('VERIFY_MISMATCH', `${this.where()}: more than 10,000 parts listed for ${w.final}`);
      }
      if (!r.IsTruncated) return out;
      marker = r.NextPartNumberMarker;
      if (!marker) throw new BackupError('DESTINATION_IO', `${this.where()}: ListParts of ${w.final} was truncated without a marker`);
    }
  }

  private async abort(final: string, uploadId: string): Promise<boolean> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.cfg.bucket, Key: this.key(final), UploadId: uploadId }));
      return true;
    } catch (err) {
      if (this.errName(err) === 'NoSuchUpload' || this.isNotFound(err)) return false;
      throw this.mapError(err, `aborting the upload of ${final}`);
    }
  }

  /** Incomplete multipart uploads of keys under `keyPrefix` (validated), at most LIST_MAX. */
  private async uploadsUnder(keyPrefix: string): Promise<{ key: string; uploadId: string; initiated: number }[]> {
    const out: { key: string; uploadId: string; initiated: number }[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const r = await this.send<{ Uploads?: { Key?: string; UploadId?: string; Initiated?: Date }[]; IsTruncated?: boolean; NextKeyMarker?: string; NextUploadIdMarker?: string }>(
        new ListMultipartUploadsCommand({ Bucket: this.cfg.bucket, Prefix: keyPrefix, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(idMarker ? { UploadIdMarker: idMarker } : {}) }),
        'listing incomplete multipart uploads');
      for (const u of r.Uploads ?? []) {
        if (typeof u.Key !== 'string' || !u.Key.startsWith(keyPrefix) || typeof u.UploadId !== 'string' || !UPLOAD_ID.test(u.UploadId)) continue;
        const initiated = u.Initiated instanceof Date ? u.Initiated.getTime() : NaN;
        out.push({ key: u.Key, uploadId: u.UploadId, initiated: Number.isFinite(initiated) ? initiated : 0 });
        if (out.length >= LIST_MAX) return out;
      }
      if (!r.IsTruncated || !r.NextKeyMarker) return out;
      keyMarker = r.NextKeyMarker;
      idMarker = r.NextUploadIdMarker;
    }
  }

  /** The upload IDs the pending records of `final` name (null: a record written before its upload was created). */
  private async claims(final: string, except?: string): Promise<(string | null)[]> {
    const slash = final.lastIndexOf('/');
    const dir = final.slice(0, slash + 1);
    const base = final.slice(slash + 1);
    const entries = (await this.list(dir.replace(/\/$/, ''))) ?? [];
    const out: (string | null)[] = [];
    for (const e of entries) {
      if (e.type !== 'file' || !e.name.startsWith(`.${base}.`) || !e.name.endsWith('.tmp')) continue;
      const pending = `${dir}${e.name}`;
      if (pending === except) continue;
      const r = await this.readRecord({ pending, final }).catch(() => undefined);
      if (r) out.push(r.uploadId);
    }
    return out;
  }

  async stage(localFile: string, w: StagedWrite, opts: UploadOptions = {}): Promise<StageResult> {
    await this.discard(w);
    const key = this.key(w.final);
    // The record first: a worker that dies after the upload is created leaves a name that the run (or the sweep) finds.
    await this.writeRecord(w, { v: 1, final: w.final, uploadId: null });
    const created = await this.send<{ UploadId?: string }>(new CreateMultipartUploadCommand({
      Bucket: this.cfg.bucket, Key: key, ChecksumAlgorithm: 'SHA256', ...(this.cfg.storageClass ? { StorageClass: this.cfg.storageClass as StorageClass } : {}),
    }), `starting the upload of ${w.final}`, opts.signal);
    const uploadId = created.UploadId;
    if (typeof uploadId !== 'string' || !UPLOAD_ID.test(uploadId)) throw new BackupError('DESTINATION_IO', `${this.where()}: CreateMultipartUpload gave no usable upload ID`);
    await this.writeRecord(w, { v: 1, final: w.final, uploadId });

    const src = await open(localFile, 'r');
    // One thread hashes each part (its ChecksumSHA256) and the artifact (the manifest's SHA-256) in one pass over the
    // part's buffer, which it hands back to be sent; a sent part's buffer is read into again, so memory stays at about
    // `parallelParts + 1` parts and the event loop neither hashes nor copies.
    const hasher = new ThreadHasher(Math.max(2, this.cfg.parallelParts));
    const spare: Buffer[] = [];
    const partSize = this.cfg.partSize;
    const size = (await src.stat()).size;
    const count = Math.max(1, Math.ceil(size / partSize));
    if (count > 10_000) throw new BackupError('CONFIG_INVALID', `${this.where()}: ${size} bytes need ${count} parts of ${partSize} bytes, more than S3's 10,000: raise partSize`);
    const digests: string[] = new Array<string>(count);
    let sent = 0;
    let next = 0;
    let failure: unknown;
    const uploadOne = async (n: number, buf: Buffer): Promise<void> => {
      const digest = digests[n - 1]!;
      const cmd = new UploadPartCommand({
        Bucket: this.cfg.bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: buf, ContentLength: buf.length, ChecksumSHA256: digest,
      });
      // The part's SHA-256 travels in x-amz-checksum-sha256, a signed header the server checks against the body. A
      // signed payload (x-amz-content-sha256: the body's hex SHA-256) would make the SDK hash every part a second time
      // here and the server a second time there, for no more assurance: the signature already covers the checksum.
      cmd.middlewareStack.add((next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      }, { step: 'build', name: 'backupctlUnsignedPayload' });
      await this.send(cmd, `uploading part ${n} of ${w.final}`, opts.signal);
      sent += buf.length;
      opts.onProgress?.(sent);
      if (buf.length === partSize) spare.push(buf);
    };
    try {
      // Parts are read in order (the artifact's SHA-256 on a thread, each part's SHA-256 here) and sent `parallelParts` at once.
      const inFlight = new Set<Promise<void>>();
      for (let n = 1; n <= count; n++) {
        while (inFlight.size >= this.cfg.parallelParts && !failure) await Promise.race(inFlight);
        if (failure) break;
        opts.signal?.throwIfAborted();
        const len = Math.min(partSize, size - next);
        const read = (len === partSize ? spare.pop() : undefined) ?? Buffer.allocUnsafeSlow(len);
        let got = 0;
        while (got < len) {
          const { bytesRead } = await src.read(read, got, len - got, next + got);
          if (bytesRead === 0) throw new BackupError('UPLOAD_CORRUPTED', `the staged artifact ${localFile} shrank while it was uploaded`);
          got += bytesRead;
        }
        next += len;
        await opts.throttle?.(len, opts.signal);
        const { buf, sha256 } = await hasher.hashPart(read, len);
        digests[n - 1] = sha256;
        const p = uploadOne(n, buf).catch((err: unknown) => { failure ??= err; });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      const sha256 = await hasher.digest();
      await this.writeRecord(w, { v: 1, final: w.final, uploadId, parts: digests });
      return { bytes: next, sha256, receipt: compositeOf(digests) };
    } catch (err) {
      hasher.destroy();
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw this.mapError(err, `uploading ${w.final}`);
    } finally {
      await src.close();
    }
  }

  /**
   * The multipart upload's parts (ListParts): their sizes, and their SHA-256s where the store lists them (AWS does,
   * s3proxy does not) against the record's; the receipt is the composite of the recorded SHA-256s, which the server
   * checked on receipt of each part. Stored durably by S3 once acknowledged.
   */
  async inspectStaged(w: StagedWrite): Promise<StagedFacts | undefined> {
    const r = await this.readRecord(w);
    if (!r?.uploadId || !r.parts) return undefined;
    const parts = await this.listParts(w, r.uploadId);
    if (!parts) return undefined;
    if (parts.length !== r.parts.length) {
      return { size: parts.reduce((a, p) => a + p.Size, 0), method: `S3 ListParts: ${parts.length} parts, ${r.parts.length} sent`, synced: true };
    }
    for (const [i, p] of parts.entries()) {
      const last = i === parts.length - 1;
      if ((!last && p.Size !== this.cfg.partSize) || p.Size > this.cfg.partSize) {
        throw new BackupError('VERIFY_MISMATCH', `${this.where()}: part ${i + 1} of ${w.final} has ${p.Size} bytes, parts of ${this.cfg.partSize} were sent`);
      }
      if (p.ChecksumSHA256 !== undefined && p.ChecksumSHA256 !== r.parts[i]) {
        throw new BackupError('VERIFY_MISMATCH', `${this.where()}: part ${i + 1} of ${w.final} holds SHA-256 ${p.ChecksumSHA256}, ${r.parts[i]} was sent`);
      }
    }
    const listed = parts.every((p) => p.ChecksumSHA256 !== undefined);
    return {
      size: parts.reduce((a, p) => a + p.Size, 0), receipt: compositeOf(r.parts), synced: true,
      method: `S3 multipart: ${parts.length} parts, SHA-256 of each checked by the server on receipt${listed ? ' and listed back' : ''}`,
    };
  }

  /** HeadObject of `final`: size and composite checksum; undefined when absent. */
  private async head(final: string): Promise<{ size: number; checksum?: string } | undefined> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(final), ChecksumMode: 'ENABLED' }));
      if (!Number.isSafeInteger(h.ContentLength) || h.ContentLength! < 0) throw new BackupError('DESTINATION_IO', `${this.where()}: HeadObject of ${final} gave no usable size`);
      return { size: h.ContentLength!, ...(typeof h.ChecksumSHA256 === 'string' ? { checksum: h.ChecksumSHA256 } : {}) };
    } catch (err) {
      if (this.isNotFound(err)) return undefined;
      throw this.mapError(err, `HeadObject ${final}`);
    }
  }

  private async finalIs(w: StagedWrite, expected: StagedExpectation): Promise<boolean | undefined> {
    const h = await this.head(w.final);
    if (!h) return undefined;
    return h.size === expected.size && h.checksum !== undefined && h.checksum === expected.receipt;
  }

  async commit(w: StagedWrite, expected: StagedExpectation, opts: UploadOptions = {}): Promise<void> {
    const where = this.where();
    if (expected.receipt === undefined || !COMPOSITE.test(expected.receipt)) {
      throw new BackupError('FINALIZE_FAILED', `finalize: no composite checksum from the upload to ${where} for ${w.final}`, { permanent: true });
    }
    const r = await this.readRecord(w);
    const parts = r?.uploadId && r.parts ? await this.listParts(w, r.uploadId) : undefined;
    if (!r?.uploadId || !r.parts || !parts) {
      // An earlier attempt completed the upload (and then died): accepted only if the object is exactly this write.
      if (await this.finalIs(w, expected)) {
        await this.remove(w.pending);
        return;
      }
      throw new BackupError('FINALIZE_FAILED', `finalize: the verified upload of ${w.final} vanished from ${where} before it could be completed`, { permanent: true });
    }
    if (compositeOf(r.parts) !== expected.receipt || parts.length !== r.parts.length) {
      throw new BackupError('FINALIZE_FAILED', `finalize: the upload of ${w.final} on ${where} is not the one verified`, { permanent: true });
    }
    let completed = false;
    try {
      // Appears atomically under its final key, and only if that key is free: no copy, no rename.
      await this.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.cfg.bucket, Key: this.key(w.final), UploadId: r.uploadId, IfNoneMatch: '*',
        MultipartUpload: { Parts: parts.map((p, i) => ({ PartNumber: p.PartNumber, ETag: p.ETag, ChecksumSHA256: r.parts![i]! })) },
      }));
      completed = true;
    } catch (err) {
      const ours = await this.finalIs(w, expected);
      if (ours === undefined) throw this.mapError(err, `completing the upload of ${w.final}`);
      if (!ours) throw new BackupError('DESTINATION_EXISTS', `finalize: ${where} has an object at ${w.final} that is not this backup; it was not touched`, { hint: 'remove it by hand after checking what it is' });
      await this.abort(w.final, r.uploadId);
    }
    const h = await this.head(w.final);
    // An object this commit created that is not what was sent is removed again: never a final name with bad bytes.
    const refuse = async (e: BackupError): Promise<never> => {
      if (completed && h) await this.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(w.final) }), `removing ${w.final}`).catch(() => undefined);
      throw e;
    };
    if (!h || h.size !== expected.size) {
      await refuse(new BackupError('FINALIZE_FAILED', `finalize: ${w.final} on ${where} has ${h ? `${h.size} bytes` : 'vanished'} after the commit, expected ${expected.size} bytes`, { permanent: true }));
    }
    if (h!.checksum !== expected.receipt) {
      await refuse(new BackupError('FINALIZE_FAILED', `finalize: ${w.final} on ${where} has checksum ${h!.checksum ?? '(none)'} after the commit, the parts sent make ${expected.receipt}`, { permanent: true }));
    }
    if (this.cfg.verify === 'read') {
      const sha256 = await this.readBackHash(w.final, opts);
      if (sha256 !== expected.sha256) {
        await refuse(new BackupError('FINALIZE_FAILED', `finalize: ${w.final} on ${where} reads back with SHA-256 ${sha256}, ${expected.sha256} was uploaded (verify: read)`, { permanent: true }));
      }
    }
    await this.remove(w.pending);
  }

  private async readBackHash(p: string, opts: UploadOptions): Promise<string> {
    const h = createHash('sha256');
    await this.download(p, { ...opts, sink: { take: (n) => Buffer.allocUnsafe(n), update: async (buf, len) => { h.update(buf.subarray(0, len)); } } });
    return h.digest('hex');
  }

  async discard(w: StagedWrite): Promise<boolean> {
    if (!w.pending.endsWith('.tmp')) throw new Error(`refusing to remove ${w.pending}: not a temporary file`);
    let r: PendingRecord | undefined;
    try {
      r = await this.readRecord(w);
    } catch (err) {
      // A record that is not ours is removed all the same (it names nothing we would abort).
      if (!(err instanceof BackupError && err.permanent)) throw err;
      return this.remove(w.pending);
    }
    if (!r) return false;
    if (r.uploadId) {
      await this.abort(w.final, r.uploadId);
    } else {
      // Written before its upload was created: the uploads of that key no other record names are its own.
      const claimed = await this.claims(w.final, w.pending);
      if (!claimed.includes(null)) {
        const key = this.key(w.final);
        for (const u of await this.uploadsUnder(key)) if (u.key === key && !claimed.includes(u.uploadId)) await this.abort(w.final, u.uploadId);
      }
    }
    await this.remove(w.pending);
    return true;
  }

  async sweepStray(before: number, dryRun: boolean): Promise<{ path: string; detail: string }[]> {
    const out: { path: string; detail: string }[] = [];
    for (const u of await this.uploadsUnder(this.root ? `${this.root}/` : '')) {
      if (u.initiated >= before) continue;
      const final = this.rel(u.key);
      if (final === undefined) continue;
      try {
        this.key(final);
      } catch {
        continue;
      }
      const claimed = await this.claims(final);
      if (claimed.includes(null) || claimed.includes(u.uploadId)) continue;
      if (!dryRun) await this.abort(final, u.uploadId);
      out.push({ path: final, detail: `an incomplete multipart upload (${u.uploadId.slice(0, 16)}…) started ${new Date(u.initiated).toISOString()} that no run records` });
    }
    return out;
  }

  // --- objects ---

  async download(p: string, opts: DownloadOptions): Promise<{ bytes: number }> {
    const st = await this.stat(p);
    if (!st) throw new BackupError('RESTORE_NOT_FOUND', `${this.where()}: ${p} does not exist`);
    const size = st.size;
    // Ranged GETs in parallel, handed to the sink in order.
    const pending = new Map<number, Promise<{ buf: Buffer; n: number }>>();
    let next = 0;
    let done = 0;
    const fetchRange = (pos: number, len: number) => {
      const buf = opts.sink.take(len);
      const pr = this.getInto(p, pos, len, buf, opts.signal).then(() => ({ buf, n: len }));
      pr.catch(() => undefined);
      pending.set(pos, pr);
    };
    try {
      while (done < size) {
        opts.signal?.throwIfAborted();
        while (pending.size < this.cfg.parallelParts && next < size) {
          const len = Math.min(DOWNLOAD_CHUNK, size - next);
          fetchRange(next, len);
          next += len;
        }
        const { buf, n } = await pending.get(done)!;
        pending.delete(done);
        done += n;
        await opts.sink.update(buf, n);
        opts.onProgress?.(done);
      }
      return { bytes: done };
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw this.mapError(err, `reading ${p}`);
    }
  }

  /** GET of `len` bytes at `pos` into `buf`; exactly that many, or an error. */
  private async getInto(p: string, pos: number, len: number, buf: Buffer, signal?: AbortSignal): Promise<void> {
    if (len === 0) return;
    const r = await this.send<{ Body?: Readable; ContentLength?: number }>(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(p), Range: `bytes=${pos}-${pos + len - 1}` }), `reading ${p}`, signal);
    let got = 0;
    const body = r.Body;
    if (!body) throw new BackupError('DESTINATION_IO', `${this.where()}: GetObject of ${p} returned no body`);
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (got + chunk.length > len) throw new BackupError('DESTINATION_IO', `${this.where()}: ${p} returned more than the ${len} bytes asked at ${pos}`);
        chunk.copy(buf, got);
        got += chunk.length;
      }
    } finally {
      body.destroy();
    }
    if (got !== len) throw new BackupError('DESTINATION_IO', `${this.where()}: ${p} returned ${got} of the ${len} bytes asked at ${pos}`);
  }

  async stat(p: string): Promise<{ size: number } | undefined> {
    const h = await this.head(p);
    return h ? { size: h.size } : undefined;
  }

  async writeSmallFile(p: string, data: Buffer, opts: { exclusive?: boolean } = {}): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({
        Bucket: this.cfg.bucket, Key: this.key(p), Body: data, ContentLength: data.length,
        ChecksumSHA256: createHash('sha256').update(data).digest('base64'), ...(opts.exclusive ? { IfNoneMatch: '*' } : {}),
      }));
    } catch (err) {
      const e = this.mapError(err, `writing ${p}`);
      if (e.code === 'DESTINATION_EXISTS') throw new BackupError('DESTINATION_EXISTS', `${this.where()}: ${p} exists; it was not replaced`, { cause: err });
      throw e;
    }
  }

  async readSmallFile(p: string, maxBytes = SMALL_FILE_MAX_BYTES): Promise<Buffer | undefined> {
    let r: { Body?: Readable; ContentLength?: number };
    try {
      r = await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(p) })) as typeof r;
    } catch (err) {
      if (this.isNotFound(err)) return undefined;
      throw this.mapError(err, `reading ${p}`);
    }
    const body = r.Body;
    try {
      if (r.ContentLength !== undefined && r.ContentLength > maxBytes) throw tooLarge(this.name, p, r.ContentLength, maxBytes);
      const chunks: Buffer[] = [];
      let done = 0;
      for await (const chunk of (body ?? []) as AsyncIterable<Buffer>) {
        done += chunk.length;
        // Never more than the cap, whatever the length header said.
        if (done > maxBytes) throw tooLarge(this.name, p, done, maxBytes);
        chunks.push(chunk);
      }
      return Buffer.concat(chunks);
    } catch (err) {
      throw this.mapError(err, `reading ${p}`);
    } finally {
      body?.destroy();
    }
  }

  async readRange(p: string, offset: number, length: number): Promise<Buffer> {
    checkRange(this.name, p, offset, length);
    const buf = Buffer.alloc(length);
    try {
      await this.getInto(p, offset, length, buf);
    } catch (err) {
      throw this.mapError(err, `reading ${p}`);
    }
    return buf;
  }

  /** One folder level (Delimiter `/`): objects as files, common prefixes as folders; undefined when nothing is under it. */
  async list(dir: string): Promise<DirEntry[] | undefined> {
    const base = this.key(dir);
    const prefix = base ? `${base}/` : '';
    const out: DirEntry[] = [];
    let token: string | undefined;
    for (;;) {
      const r = await this.send<{ Contents?: { Key?: string; Size?: number; LastModified?: Date }[]; CommonPrefixes?: { Prefix?: string }[]; IsTruncated?: boolean; NextContinuationToken?: string }>(
        new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: prefix, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) }), `listing ${dir || '/'}`);
      // Names read back are checked: one level under the prefix, no separators, whole sizes.
      for (const o of r.Contents ?? []) {
        if (typeof o.Key !== 'string' || !o.Key.startsWith(prefix)) continue;
        const name = o.Key.slice(prefix.length);
        if (!name || name.includes('/') || name === '.' || name === '..') continue;
        const size = Number.isSafeInteger(o.Size) && o.Size! >= 0 ? o.Size! : 0;
        out.push({ name, type: 'file', size, mtimeMs: o.LastModified instanceof Date ? o.LastModified.getTime() : 0 });
      }
      for (const c of r.CommonPrefixes ?? []) {
        if (typeof c.Prefix !== 'string' || !c.Prefix.startsWith(prefix) || !c.Prefix.endsWith('/')) continue;
        const name = c.Prefix.slice(prefix.length, -1);
        if (!name || name.includes('/') || name === '.' || name === '..') continue;
        out.push({ name, type: 'dir', size: 0, mtimeMs: 0 });
      }
      if (out.length > LIST_MAX) throw tooManyEntries(this.name, dir);
      if (!r.IsTruncated) break;
      token = r.NextContinuationToken;
      if (!token) throw new BackupError('DESTINATION_IO', `${this.where()}: a truncated listing of ${dir || '/'} without a continuation token`);
    }
    return out.length > 0 ? out : undefined;
  }

  async remove(p: string): Promise<boolean> {
    // DeleteObject says nothing about existence: ask first.
    if (!(await this.stat(p))) return false;
    await this.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(p) }), `removing ${p}`);
    return true;
  }

  /** The pool closes the connection (src/destinations/pool.ts). */
  release(): void {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client?.destroy();
  }
}
