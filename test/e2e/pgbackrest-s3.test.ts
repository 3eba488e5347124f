import { chmodSync, copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { Agent } from 'node:https';
import path from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { PGBACKREST_WORKFLOW, type PgbackrestResult } from '../../src/contracts/index.js';
import { applySchedules } from '../../src/schedules/index.js';
import { startPgbackrestCluster, type PgbackrestCluster } from '../helpers/pgbackrest.js';
import { startS3Proxy, type S3ProxyHandle } from '../helpers/s3proxy.js';
import { runCommand } from '../helpers/util.js';
import { deleteSchedules as deleteJobSchedules, sid, trigger as triggerSchedule } from './pgbackrest-support.js';
import { historyText, startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// A pgBackRest job whose repository is an S3 bucket on s3proxy 4.1.0 over HTTPS on loopback (pgBackRest requires TLS
// for S3): the certificate is self-signed and pgBackRest verifies it with it as its CA (`repo1-storage-ca-file`; the
// helper's certificate names 127.0.0.1 as a DNS name too, which pgBackRest 2.45 needs).
// The S3 keys live only in pgBackRest's config file (mode 0600). PostgreSQL 15, Debian's pgbackrest 2.45, the
// Temporal dev server and an SMTP sink, as in pgbackrest.test.ts. The test that breaks the WAL archive runs last.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
const BUCKET = 'pgbackrest';
const REPO_PATH = 'repo';
let env: Env;
let s3: S3ProxyHandle;
let client: S3Client;
let cluster: PgbackrestCluster;
beforeAll(async () => {
  [env, s3] = await Promise.all([startEnv(), startS3Proxy({ tls: true, bucket: BUCKET })]);
  client = new S3Client({
    endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestHandler: { httpsAgent: new Agent({ ca: readFileSync(s3.caFile!) }) },
  });
  cluster = await startPgbackrestCluster({
    configMode: 0o600,
    repo: (dir) => {
      // pgbackrest runs as the cluster's account: the CA file goes where that account can read it.
      const ca = path.join(dir, 's3-ca.pem');
      copyFileSync(s3.caFile!, ca);
      chmodSync(ca, 0o644);
      return {
        'repo1-type': 's3', 'repo1-s3-endpoint': s3.host, 'repo1-s3-port': String(s3.port), 'repo1-s3-bucket': BUCKET,
        'repo1-s3-region': 'us-east-1', 'repo1-s3-uri-style': 'path', 'repo1-s3-key': s3.accessKeyId, 'repo1-s3-key-secret': s3.secretAccessKey,
        'repo1-storage-ca-file': ca, 'repo1-path': `/${REPO_PATH}`, 'repo1-retention-full': '4',
      };
    },
  });
  await cluster.pg.createDatabase('shop');
  await cluster.pg.sql('CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 5000) g', 'shop');
}, 180_000);
afterAll(async () => {
  client?.destroy();
  await cluster?.stop();
  await Promise.all([env?.close(), s3?.stop()]);
});

const backupctl = (job: JobSetup, args: string[]) => runCommand(process.execPath, [cli, '--config', job.configFile, ...args], { timeoutMs: 120_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

/** A config with the `pg` job on the cluster (full daily, diff every 6 hours), mailing `ops`. */
function writePgJob(): Promise<JobSetup> {
  return writeJob(env, (c) => {
    c.jobs = {
      pg: {
        ...cluster.job(), notify: ['ops'],
        schedules: [{ name: 'full', type: 'full', cron: '0 11 * * *' }, { name: 'diff', type: 'diff', cron: '0 5,17,23 * * *' }],
        drill: { enabled: false, check: { sql: 'SELECT count(*) FROM orders', database: 'shop' } },
      },
    };
  });
}

/** The shared helpers, bound to this file's env. */
const deleteSchedules = (job: JobSetup) => deleteJobSchedules(env, job);
const trigger = (scheduleId: string) => triggerSchedule(env, scheduleId);

/** Every key in the bucket under `prefix`, from the S3 API itself. */
async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    out.push(...(r.Contents ?? []).map((o) => o.Key!));
    token = r.NextContinuationToken;
  } while (token);
  return out.sort();
}

describe('pgBackRest jobs with an S3 repository (s3proxy over HTTPS, PostgreSQL 15, pgbackrest 2.45, Temporal, SMTP)', () => {
  it('a full and then a diff started by their schedules: both in the bucket, verified (info, verify, WAL continuity over S3) and mailed; status shows both with their ages', async () => {
    expect(statSync(cluster.configFile).mode & 0o777).toBe(0o600);
    const job = await writePgJob();
    await applySchedules(env.client, loadConfig(job.configFile).config);
    try {
      const [[full, diff], handles] = await withWorker(env, job, async () => {
        const fh = await trigger(sid(job, 'full'));
        const f = (await fh.result()) as PgbackrestResult;
        await cluster.pg.sql('INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(5001, 5100) g', 'shop');
        const dh = await trigger(sid(job, 'diff'));
        const d = (await dh.result()) as PgbackrestResult;
        return [[f, d], [fh, dh]] as const;
      });
      const systemId = (await cluster.pg.sql('SELECT system_identifier FROM pg_control_system()')).trim();
      expect(full).toMatchObject({ status: 'succeeded', kind: 'pgbackrest', job: 'pg', type: 'full' });
      expect(full.pgbackrest).toMatchObject({ stanza: 'main', type: 'full', systemId, check: { result: '5000' } });
      expect(full.pgbackrest.label).toMatch(/^\d{8}-\d{6}F$/);
      expect(full.pgbackrest.size).toBeGreaterThan(1_000_000);
      expect(full.pgbackrest.archiveRange.segments).toBeGreaterThan(0);
      expect(diff).toMatchObject({ status: 'succeeded', kind: 'pgbackrest', job: 'pg', type: 'diff' });
      expect(diff.pgbackrest).toMatchObject({ type: 'diff', check: { result: '5100' } });
      expect(diff.pgbackrest.label).toMatch(new RegExp(`^${full.pgbackrest.label}_\\d{8}-\\d{6}D$`));
      expect(diff.pgbackrest.delta).toBeLessThan(full.pgbackrest.delta);

      // The repository is the bucket (seen through the S3 API), not a folder on the worker.
      expect(existsSync(cluster.repoPath)).toBe(false);
      const backups = await keys(`${REPO_PATH}/backup/main/`);
      for (const r of [full, diff]) expect(backups).toContain(`${REPO_PATH}/backup/main/${r.pgbackrest.label}/backup.manifest`);
      // The continuity check walked the archive listed from S3: the range it reports is there, segment by segment.
      const archived = new Set((await keys(`${REPO_PATH}/archive/main/15-1/`)).map((k) => k.split('/').at(-1)!.slice(0, 24)));
      for (const r of [full, diff]) {
        expect(r.pgbackrest.archiveRange.from).toBe(full.pgbackrest.archiveStart);
        for (const seg of [r.pgbackrest.archiveStart, r.pgbackrest.archiveStop, r.pgbackrest.archiveRange.to]) expect(archived).toContain(seg);
      }
      expect(diff.pgbackrest.archiveRange.segments).toBeGreaterThan(full.pgbackrest.archiveRange.segments);
      expect(archived.size).toBeGreaterThanOrEqual(diff.pgbackrest.archiveRange.segments);

      for (const r of [full, diff]) {
        const mail = await env.smtp.waitFor((m) => m.subject === `[backupctl] OK: pg ${r.type} backup ${r.pgbackrest.label} (pgBackRest)`);
        expect(mail.text).toContain(`Label:    ${r.pgbackrest.label} (${r.type})`);
        expect(mail.text).toMatch(/Size: +[\d.]+ [KMG]?i?B database, [\d.]+ [KMG]?i?B copied \(delta\)/);
        expect(mail.text).toContain(`WAL:      ${r.pgbackrest.archiveStart} to ${r.pgbackrest.archiveStop}`);
        expect(mail.text).toContain(`archive unbroken from ${r.pgbackrest.archiveRange.from} to ${r.pgbackrest.archiveRange.to}`);
        expect(mail.text).toMatch(/Duration: \d+ s/);
      }

      // The S3 keys stay in pgBackRest's config file: not in the runs' inputs, results or history, nor in the mails.
      for (const h of handles) {
        const text = await historyText(h);
        expect(text).not.toContain(s3.secretAccessKey);
      }
      for (const m of env.smtp.messages) expect(`${m.subject}\n${m.text}`).not.toContain(s3.secretAccessKey);

      const status = await backupctl(job, ['status', '--json']);
      expect(status.code, `${status.stdout}${status.stderr}`).toBe(0);
      expect(status.stdout).not.toContain(s3.secretAccessKey);
      const s = (JSON.parse(status.stdout) as { jobs: { job: string; health: string; problems: string[]; pgbackrest: { backups: { type: string; label: string; ageMs: number }[]; wal: { segment: string; ageMs: number } } }[] }).jobs[0]!;
      expect(s).toMatchObject({ job: 'pg', health: 'ok', problems: [] });
      expect(s.pgbackrest.backups.map((b) => [b.type, b.label])).toEqual([['full', full.pgbackrest.label], ['diff', diff.pgbackrest.label]]);
      for (const b of s.pgbackrest.backups) expect(b.ageMs).toBeLessThan(5 * 60_000);
      expect(archived).toContain(s.pgbackrest.wal.segment);
      expect(s.pgbackrest.wal.ageMs).toBeLessThan(5 * 60_000);
      const human = await backupctl(job, ['status']);
      expect(human.stdout).toMatch(new RegExp(`^ {2}newest full: ${full.pgbackrest.label} \\(0 h ago\\), .*stanza main$`, 'm'));
      expect(human.stdout).toMatch(new RegExp(`^ {2}newest diff: ${diff.pgbackrest.label} \\(0 h ago\\)`, 'm'));
      expect(human.stdout).toMatch(/^ {2}newest archived WAL: [0-9A-F]{24} \(0 h ago\)$/m);
    } finally {
      await deleteSchedules(job);
    }
  }, 240_000);

  // Runs last: the archive keeps its gap.
  it('a WAL segment deleted from the bucket: pgbackrest verify alone passes, the next run\'s continuity check over S3 fails naming it, and it is mailed', async () => {
    const job = await writePgJob();
    const info = JSON.parse((await cluster.pgbackrest(['info', '--output=json'])).stdout.replace(/("system-id":)(\d+)/, '$1"$2"')) as [{ backup: { archive: { start: string }; type: string }[] }];
    const victim = info[0].backup.filter((b) => b.type === 'full').at(-1)!.archive.start;
    const key = (await keys(`${REPO_PATH}/archive/main/15-1/${victim.slice(0, 16)}/`)).find((k) => k.split('/').at(-1)!.startsWith(`${victim}-`));
    expect(key, `segment ${victim} in the bucket`).toBeDefined();
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key! }));
    const verify = await cluster.pgbackrest(['verify']);
    expect(verify.code, `${verify.stdout}${verify.stderr}`).toBe(0);

    const h = await env.client.workflow.start(PGBACKREST_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `pg-s3-gap-${Date.now()}`, args: [{ job: 'pg', type: 'diff' }] });
    const err = await withWorker(env, job, () => h.result().then(() => undefined, (e: unknown) => e));
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('WAL_GAP');
    expect(cause.message).toContain(`failed in the verify step: WAL archive of stanza "main" has a gap: segment ${victim} is missing`);
    const mail = await env.smtp.waitFor((m) => m.subject?.startsWith('[backupctl] FAILED: pg diff backup') === true && m.subject.endsWith('(verify)'));
    expect(mail.text).toContain(`segment ${victim} is missing`);
    expect(mail.text).toContain('Code:     WAL_GAP');
  }, 180_000);
});
