import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import path from 'node:path';
import {
  CreateMultipartUploadCommand, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport, Manifest, PruneReport, RestoreResult } from '../../src/contracts/index.js';
import { backupResult, resultOf, runBackup } from '../helpers/run-backup.js';
import { s3IncompleteUploads, s3Keys, s3Object, startS3Proxy, type S3ProxyHandle } from '../helpers/s3proxy.js';
import { runCommand, sleep } from '../helpers/util.js';
import { startEnv, tree, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Backup, verify, finalize, restore (ranged GETs), drill, list, prune with the orphan sweep of incomplete multipart
// uploads, and config check, all against s3proxy 4.1.0 over HTTPS on loopback (Temporal dev server, SMTP sink).

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
const PREFIX = 'prod/backups';
let env: Env;
let s3: S3ProxyHandle;
let client: S3Client;

beforeAll(async () => {
  [env, s3] = await Promise.all([startEnv(), startS3Proxy({ tls: true })]);
  process.env.TEST_S3_KEY = s3.accessKeyId;
  process.env.TEST_S3_SECRET = s3.secretAccessKey;
  client = new S3Client({
    endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestHandler: { httpsAgent: new Agent({ ca: readFileSync(s3.caFile!) }) },
  });
});
afterAll(async () => {
  client?.destroy();
  await Promise.all([env?.close(), s3?.stop()]);
});

let minute = 0;
const slot = () => new Date(Date.UTC(2025, 8, 1, 3, minute++, 0));

const backupctl = (args: string[]) => runCommand(process.execPath, [cli, ...args], { timeoutMs: 180_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

/** A files job whose destination `nas` is the S3 bucket (parts of 5 MiB, so that a few MiB of data make several). */
function s3Job(patch: (c: Record<string, any>) => void = () => undefined): Promise<JobSetup> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return writeJob(env, (c) => {
    c.destinations.nas = {
      type: 's3', bucket: s3.bucket, prefix: PREFIX, endpoint: s3.endpoint, forcePathStyle: true, caFile: s3.caFile,
      accessKeyId: { env: 'TEST_S3_KEY' }, secretAccessKey: { env: 'TEST_S3_SECRET' }, partSize: '5MiB', parallelParts: 3,
    };
    c.settings.heartbeatTimeout = '30s';
    patch(c);
  });
}

const keys = () => s3Keys(client, s3.bucket, PREFIX);
const incompleteUploads = () => s3IncompleteUploads(client, s3.bucket, PREFIX);
const object = (key: string) => s3Object(client, s3.bucket, PREFIX, key);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('S3 destination end to end (s3proxy over HTTPS)', () => {
  it('backup → verify → finalize: the object appears under its final key with its signed manifest, no incomplete upload or record is left; restore (ranged GETs) and drill from it', async () => {
    const job = await s3Job();
    // ~12 MiB of incompressible data: three parts of 5 MiB.
    writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(12 * 1024 * 1024));
    const outcome = await withWorker(env, job, () => runBackup(env.client, { taskQueue: job.taskQueue, slot: slot() }));
    const r = resultOf(outcome);
    expect(r.status).toBe('succeeded');
    // S3 cannot be written at offsets: with uploadWhileDumping on (the default), its upload still waits for the dump.
    const events = (await outcome.handle.fetchHistory()).events ?? [];
    const scheduled = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name]));
    const uploadScheduled = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'upload');
    const dumpCompleted = events.findIndex((e) => scheduled.get(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)) === 'dump');
    expect(dumpCompleted).toBeGreaterThan(-1);
    expect(uploadScheduled).toBeGreaterThan(dumpCompleted);
    const final = r.locations[0]!.path;
    expect(final).toMatch(/^daily\/2025\/09\/01\/03\d\d\/app-full-20250901T03\d\d00Z\.tar$/);
    expect((await keys()).filter((k) => k.startsWith(path.posix.dirname(final)))).toEqual([final, `${final}.manifest.json`, `${final}.manifest.json.sig`]);
    expect(await incompleteUploads()).toEqual([]);
    const manifest = JSON.parse((await object(`${final}.manifest.json`)).toString()) as Manifest;
    const stored = await object(final);
    expect(stored.length).toBe(manifest.artifact.size);
    expect(sha(stored)).toBe(manifest.artifact.sha256);
    expect(r.sha256).toBe(manifest.artifact.sha256);
    expect(manifest.artifact.size).toBeGreaterThan(10 * 1024 * 1024);

    // list names it; restore fetches it with ranged GETs and unpacks the identical tree.
    const list = await backupctl(['--config', job.configFile, 'list', 'app', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({ destinations: [{ destination: 'nas', backups: [{ path: final, sha256: r.sha256 }], temporary: [] }] });
    const to = path.join(env.tmp.path, 's3-restore');
    const out = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--json']);
    expect(out.code, out.stderr).toBe(0);
    const restored = JSON.parse(out.stdout) as RestoreResult;
    expect(restored).toMatchObject({ status: 'restored', destination: 'nas', chain: [{ path: final, sha256: r.sha256 }] });
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));

    const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const report = JSON.parse(drill.stdout) as DrillReport;
    expect(report).toMatchObject({ ok: true, job: 'app', problems: [] });
    expect(report.checks.join('\n')).toMatch(/files app-files: 3 files and \d+ bytes, as recorded/);
    const status = await backupctl(['--config', job.configFile, 'status', 'app']);
    expect(status.stdout).toMatch(/last drill: passed/);
  });

  it('a full, then a diff against it on S3; restore of the chain (full + diff, ranged GETs) is exactly the new tree', async () => {
    const job = await s3Job();
    const run = (type: 'full' | 'diff') => backupResult(env.client, { taskQueue: job.taskQueue, slot: slot(), type });
    const { full, diff } = await withWorker(env, job, async () => {
      const full = await run('full');
      writeFileSync(path.join(job.dataDir, 'hello.txt'), 'hello again\n');
      writeFileSync(path.join(job.dataDir, 'added.txt'), 'new file\n');
      const diff = await run('diff');
      return { full, diff };
    });
    expect(full.status).toBe('succeeded');
    expect(diff).toMatchObject({ status: 'succeeded', type: 'diff', base: { workflowId: full.workflowId, path: full.locations[0]!.path } });
    const to = path.join(env.tmp.path, 's3-restore-chain');
    const out = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect((JSON.parse(out.stdout) as RestoreResult).chain.map((c) => c.path)).toEqual([full.locations[0]!.path, diff.locations[0]!.path]);
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));
    expect(await incompleteUploads()).toEqual([]);
  });

  it('a second run of the same slot is skipped; verify: read re-reads the object after the commit', async () => {
    const job = await s3Job((c) => { c.destinations.nas.verify = 'read'; });
    const s = slot();
    const first = await withWorker(env, job, () => backupResult(env.client, { taskQueue: job.taskQueue, slot: s }));
    expect(first.status).toBe('succeeded');
    const again = await withWorker(env, job, () => runBackup(env.client, { taskQueue: job.taskQueue, slot: s, workflowId: `again-${job.taskQueue}` }));
    expect(again).toMatchObject({ status: 'completed', result: { status: 'skipped' } });
    expect(await incompleteUploads()).toEqual([]);
  });

  it('prune: the orphan sweep aborts the incomplete multipart upload of an ended run and one no record names; config check writes and removes a probe', async () => {
    const job = await s3Job((c) => { c.settings.orphanGrace = '1s'; });
    const done = await withWorker(env, job, () => backupResult(env.client, { taskQueue: job.taskQueue, slot: slot() }));
    const final = done.locations[0]!.path;
    const dir = path.posix.dirname(final);
    // An ended run's pending write: a multipart upload to the final key and its record at the temporary name.
    const started = async (key: string) => {
      const c = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: `${PREFIX}/${key}`, ChecksumAlgorithm: 'SHA256' }));
      const body = randomBytes(1000);
      await client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: `${PREFIX}/${key}`, UploadId: c.UploadId, PartNumber: 1, Body: body, ChecksumSHA256: createHash('sha256').update(body).digest('base64') }));
      return c.UploadId!;
    };
    const orphanId = await started(final);
    const record = `${dir}/.${path.posix.basename(final)}.${done.workflowId}.tmp`;
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}/${record}`, Body: JSON.stringify({ v: 1, final, uploadId: orphanId }) }));
    // A stray upload: no record names it (its run died before it wrote one, or the record was removed).
    const strayKey = `${dir}/app-full-20250901T030000Z.tar`;
    await started(strayKey);
    expect((await incompleteUploads()).sort()).toEqual([final, strayKey].sort());
    await sleep(1500);

    const r = await withWorker(env, job, () => backupctl(['--config', job.configFile, 'prune', 'app', '--json']));
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as PruneReport;
    expect(report.orphans).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: record, action: 'removed', workflowId: done.workflowId }),
      expect.objectContaining({ path: strayKey, action: 'removed', reason: expect.stringMatching(/incomplete multipart upload .* that no run records/) }),
    ]));
    expect(await incompleteUploads()).toEqual([]);
    expect(await keys()).not.toContain(record);
    // The finalized backup is untouched.
    expect(sha(await object(final))).toBe(done.sha256);

    const before = await keys();
    const check = await backupctl(['--config', job.configFile, 'config', 'check']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(new RegExp(`ok {4}destination nas: s3://${s3.bucket}/${PREFIX} at https://127\\.0\\.0\\.1:${s3.port} reachable, writable, free space unknown`));
    expect(await keys()).toEqual(before);
    // Wrong credentials fail the check, saying so.
    const bad = await runCommand(process.execPath, [cli, '--config', job.configFile, 'config', 'check'], { timeoutMs: 60_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address, TEST_S3_SECRET: 'wrong' } });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAIL {2}destination nas: .*(SignatureDoesNotMatch|403|Forbidden|AccessDenied)/);
  });
});
