/**
 * S3 upload of one random file to s3proxy on loopback (filesystem-nio2, HTTP): backupctl's S3Session (connect + stage:
 * multipart with a SHA-256 per part, the artifact's SHA-256 on a thread + commit: CompleteMultipartUpload
 * If-None-Match: * and HeadObject) against `aws s3 cp` (the awscli from PyPI) of the same file to the same server, once
 * with its defaults (botocore's default checksum, CRC32, which s3proxy checks cheaply) and once with
 * `--checksum-algorithm SHA256` (a SHA-256 per part that s3proxy recomputes and checks, as it does ours). s3proxy's CPU
 * is recorded per run (serverCpuS): on a small machine the server's hashing shares the cores with the client.
 * s3proxy runs with the JVM's full JIT, as a server would (the tests' quick-start flags leave its SHA-256 and MD5 to
 * unoptimised code: BENCH_S3_JIT=c1 measures that). BENCH_S3_PART_SIZE and BENCH_S3_PARALLEL override backupctl's
 * defaults (16MiB, 4) for exploring; the target is measured with the defaults.
 */
import { randomBytes } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { s3DestinationSchema } from '../src/destinations/s3/schema.js';
import { S3Session } from '../src/destinations/s3/index.js';
import { startS3Proxy, type S3ProxyHandle } from '../test/helpers/s3proxy.js';
import { runCommand } from '../test/helpers/util.js';
import { summarize } from './stats.js';
import { log, measure, mustRun, sha256File, sync } from './sys.js';
import type { ContenderResult, RunRecord } from './transport.js';

export interface S3Report {
  fileBytes: number;
  fileSha256: string;
  reps: number;
  awsVersion: string;
  contenders: ContenderResult[];
  ratios: Record<string, number>;
  target: string;
}

interface Contender {
  name: string;
  description: string;
  /** The object's file in s3proxy's folder (filesystem-nio2 keeps an object as a file). */
  stored: string;
  run(): Promise<Awaited<ReturnType<typeof measure<unknown>>>>;
}

const record = (rep: number, m: Awaited<ReturnType<typeof measure<unknown>>>, bytes: number): RunRecord => ({
  rep, seconds: m.seconds, mbps: bytes / 1e6 / m.seconds, busyCores: m.busyCores, nodeCpuS: m.nodeCpuS, childCpuS: m.childCpuS,
  nodePeakRssMiB: m.nodePeakRssMiB, serverCpuS: m.serverCpuS, foreignCores: m.foreignCores,
});

export async function runS3Upload(opts: { tmp: string; reps: number; warmup: number; sizeMiB: number; onCleanup(fn: () => Promise<void>): void }): Promise<S3Report> {
  const aws = await runCommand('aws', ['--version']).catch(() => undefined);
  if (!aws || aws.code !== 0) throw new Error('the aws CLI is not installed (pip install awscli)');
  const s3: S3ProxyHandle = await startS3Proxy({ serverJit: process.env.BENCH_S3_JIT !== 'c1' });
  opts.onCleanup(() => s3.stop());
  const file = path.join(opts.tmp, 's3-upload.bin');
  log(`s3: writing ${opts.sizeMiB} MiB from /dev/urandom to ${file}; s3proxy at ${s3.endpoint}`);
  await mustRun('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${opts.sizeMiB}`, 'iflag=fullblock', 'status=none']);
  const bytes = (await stat(file)).size;
  const fileSha256 = await sha256File(file);
  const bucketDir = path.join(s3.baseDir, s3.bucket);
  process.env.BENCH_S3_KEY = s3.accessKeyId;
  process.env.BENCH_S3_SECRET = s3.secretAccessKey;
  const cfg = s3DestinationSchema.parse({
    type: 's3', bucket: s3.bucket, prefix: 'bench', endpoint: s3.endpoint, forcePathStyle: true,
    accessKeyId: { env: 'BENCH_S3_KEY' }, secretAccessKey: { env: 'BENCH_S3_SECRET' },
    // The destination's defaults unless overridden.
    ...(process.env.BENCH_S3_PART_SIZE ? { partSize: process.env.BENCH_S3_PART_SIZE } : {}),
    ...(process.env.BENCH_S3_PARALLEL ? { parallelParts: Number(process.env.BENCH_S3_PARALLEL) } : {}),
  });
  const awsEnv = { ...process.env, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1' };
  const awsCp = (name: string, key: string, extra: string[], description: string): Contender => ({
    name, description, stored: path.join(bucketDir, 'bench', 'aws', key),
    run: async () => {
      const m = await measure(() => runCommand('aws', ['s3', 'cp', '--only-show-errors', ...extra, '--endpoint-url', s3.endpoint, file, `s3://${s3.bucket}/bench/aws/${key}`], { env: awsEnv, timeoutMs: 10 * 60_000 }), { servers: [s3.pid] });
      if (m.value.code !== 0) throw new Error(`${name} failed (exit ${m.value.code}): ${m.value.stderr}`);
      return m;
    },
  });
  const contenders: Contender[] = [
    {
      name: 'backupctl',
      description: `S3Session.connect() + stage() (multipart, ${cfg.partSize / 1048576} MiB parts, ${cfg.parallelParts} in flight, SHA-256 per part and of the artifact on one thread) + commit() (CompleteMultipartUpload If-None-Match: *, HeadObject) + close()`,
      stored: path.join(bucketDir, 'bench', 'daily', 'app-full-20250101T000000Z.tar'),
      run: async () => {
        const w = { pending: `daily/.app-full-20250101T000000Z.tar.bench-${randomBytes(4).toString('hex')}.tmp`, final: 'daily/app-full-20250101T000000Z.tar' };
        const m = await measure(async () => {
          const session = await new S3Session('bench', cfg).connect();
          try {
            const sent = await session.stage(file, w);
            await session.commit(w, { size: sent.bytes, sha256: sent.sha256, ...(sent.receipt ? { receipt: sent.receipt } : {}) });
            return sent;
          } finally {
            session.close();
          }
        }, { servers: [s3.pid] });
        if (m.value.sha256 !== fileSha256 || m.value.bytes !== bytes) throw new Error(`backupctl: sent ${m.value.bytes} bytes / ${m.value.sha256}, expected ${bytes} / ${fileSha256}`);
        return m;
      },
    },
    awsCp('aws s3 cp', 'cp.bin', [], 'aws s3 cp <file> s3://bucket/... --endpoint-url (awscli defaults: 8 MiB parts, 10 in flight, botocore\'s default checksum per part (CRC32), payload signed over HTTP)'),
    awsCp('aws s3 cp (SHA256)', 'cp-sha256.bin', ['--checksum-algorithm', 'SHA256'], 'the same with --checksum-algorithm SHA256: a SHA-256 per part, checked by s3proxy, as backupctl sends'),
  ];
  const results = contenders.map((c) => ({ name: c.name, description: c.description, runs: [] as RunRecord[], warmup: [] as RunRecord[] }));
  for (let rep = 1 - opts.warmup; rep <= opts.reps; rep++) {
    for (const [i, c] of contenders.entries()) {
      await rm(c.stored, { force: true });
      await sync();
      const m = await c.run();
      const st = await stat(c.stored).catch(() => undefined);
      if (st?.size !== bytes) throw new Error(`${c.name}: the stored object ${c.stored} has ${st?.size ?? 'no'} bytes, expected ${bytes}`);
      if (rep === 1 && (await sha256File(c.stored)) !== fileSha256) throw new Error(`${c.name}: the stored object's SHA-256 differs from the file's`);
      const r = record(rep, m, bytes);
      (rep <= 0 ? results[i]!.warmup : results[i]!.runs).push(r);
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}/${opts.reps}`} ${c.name}: ${r.seconds.toFixed(2)} s, ${r.mbps.toFixed(0)} MB/s, node CPU ${r.nodeCpuS.toFixed(2)} s, child CPU ${r.childCpuS.toFixed(2)} s, s3proxy CPU ${r.serverCpuS?.toFixed(2)} s`);
      await rm(c.stored, { force: true });
    }
  }
  await rm(file, { force: true });
  const done = results.map((r) => ({ ...r, summary: summarize(r.runs.map((x) => x.seconds), bytes) }));
  return {
    fileBytes: bytes, fileSha256, reps: opts.reps, awsVersion: (aws.stdout || aws.stderr).trim(), contenders: done,
    ratios: {
      'backupctl / aws s3 cp': done[0]!.summary.mbps.median / done[1]!.summary.mbps.median,
      'backupctl / aws s3 cp (SHA256)': done[0]!.summary.mbps.median / done[2]!.summary.mbps.median,
    },
    target: 'backupctl >= 0.9 x aws s3 cp throughput to the same s3proxy, hashing included',
  };
}
