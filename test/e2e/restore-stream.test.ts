import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESTORE_WORKFLOW, restoreWorkflowId, type BackupResult, type Manifest, type RestoreResult } from '../../src/contracts/index.js';
import { safeWorkflowId } from '../../src/repository/names.js';
import { memberRanges } from '../../src/restore/chain.js';
import type { MariadbHandle } from '../helpers/mariadb.js';
import type { PostgresHandle } from '../helpers/postgres.js';
import { backupResult } from '../helpers/run-backup.js';
import { databaseSources, listFiles, signAsDeployment, startDatabaseEnv, tree, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Issue 19, restore streams: a restore unpacks each artifact while it downloads, into the temporary directory beside
// --to, and renames it into place only once every byte was checked. Real servers on loopback: Temporal, OpenSSH,
// MariaDB (PostgreSQL is started by the shared database environment, unused here).

const DB_PASSWORD = 'stream-secret-T4k';
let env: Env;
let maria: MariadbHandle;
let pg: PostgresHandle;
let job: JobSetup;
let full: BackupResult;

/** Bytes zstd cannot shrink much: the files component is about as large as the tree (several MiB). */
const noise = (n: number, seed: number) => {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
};

beforeAll(async () => {
  ({ env, maria, pg } = await startDatabaseEnv('TEST_STREAM_DB_PASSWORD', DB_PASSWORD, 'ALL PRIVILEGES'));
  await maria.sql('CREATE DATABASE shop; USE shop; CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO t SELECT seq FROM seq_1_to_100;');
  job = await writeJob(env, (c) => {
    c.jobs.app.sources.push(databaseSources(maria, pg, 'TEST_STREAM_DB_PASSWORD').mysql);
    c.settings.heartbeatTimeout = '30s';
  });
  for (let i = 0; i < 24; i++) writeFileSync(path.join(job.dataDir, `blob-${i}.bin`), noise(256 * 1024, i + 1));
  full = await withWorker(env, job, () => backupResult(env.client, { taskQueue: job.taskQueue, slot: new Date(Date.UTC(2026, 0, 5, 3, 0, 0)) }));
  expect(full.status).toBe('succeeded');
});
afterAll(async () => { await Promise.all([env?.close(), maria?.stop(), pg?.stop()]); });

/** Every name created in `dir` while it is watched (inotify: no event is missed, however short-lived the file). */
function watchNames(dir: string): { names: Set<string>; close: () => void } {
  mkdirSync(dir, { recursive: true });
  const names = new Set<string>();
  // The directory's own removal is reported under its own name: not something created in it.
  const w: FSWatcher = watch(dir, (_event, name) => { if (name && name !== path.basename(dir)) names.add(name); });
  w.on('error', () => undefined);
  return { names, close: () => w.close() };
}

async function restore(to: string, workflowId: string, intoDatabases?: Record<string, string>, on: JobSetup = job, activities?: Parameters<typeof withWorker>[3]): Promise<RestoreResult | WorkflowFailedError> {
  return withWorker(env, on, () => env.client.workflow.execute(RESTORE_WORKFLOW, {
    taskQueue: on.taskQueue, workflowId, args: [{ job: 'app', to, ...(intoDatabases ? { intoDatabases } : {}) }],
  }) as Promise<RestoreResult>, activities).catch((e: unknown) => {
    if (e instanceof WorkflowFailedError) return e;
    throw e;
  });
}

const shopTargets = async () => (await maria.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'shop\\_%'")).split('\n').filter(Boolean);

describe('restore streams', () => {
  it('no copy of the artifact is ever written on the worker: staging holds only the run\'s markers, the tree goes through the temporary directory beside --to', async () => {
    const parent = path.join(env.tmp.path, 'stream-ok');
    const to = path.join(parent, 'target');
    const workflowId = restoreWorkflowId(job.deployment, 'app', new Date());
    const staging = watchNames(path.join(job.stateDir, 'staging', safeWorkflowId(workflowId)));
    const beside = watchNames(parent);
    let result;
    try {
      result = await restore(to, workflowId, { 'shop-db': 'shop_streamed' });
    } finally {
      staging.close();
      beside.close();
    }
    expect(result).toMatchObject({ status: 'restored', databases: [{ source: 'shop-db', database: 'shop', target: 'shop_streamed' }] });
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));
    // The old flow downloaded `artifact-0.tar` (and decrypted `*.plain` files) here first. Now: the fetch step's
    // markers, and the database load's records and its MariaDB option file.
    const other = [...staging.names].filter((n) => !/^artifact-0\.(started|done)$|^load-shop_streamed\.(created|done)$|^\.restore-shop-db-\d+-\d+\.my\.cnf$/.test(n));
    expect(staging.names).toContain('artifact-0.done');
    expect(other).toEqual([]);
    expect([...beside.names].sort()).toEqual([`.target.${safeWorkflowId(workflowId)}.restore-tmp`, 'target']);
    expect(readdirSync(parent)).toEqual(['target']);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
    expect(await shopTargets()).toEqual(['shop_streamed']);
  });

  it('a flipped byte late in the files component: refused after the whole download (RESTORE_CHECKSUM_MISMATCH), the temporary tree removed, nothing at --to, no database loaded; with the manifest re-signed to match, the unpack fails the same way', async () => {
    const artifact = path.join(env.sshd.root, full.locations[0]!.path);
    const manifestFile = `${artifact}.manifest.json`;
    const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
    const r = memberRanges(m.components)[0]!;
    expect(r.size).toBeGreaterThan(4 * 2 ** 20);
    const bytes = readFileSync(artifact);
    const at = r.start + r.size - 3000;
    bytes[at] = bytes[at]! ^ 0x20;
    writeFileSync(artifact, bytes);

    const parent = path.join(env.tmp.path, 'stream-flipped');
    const to = path.join(parent, 'target');
    const workflowId = restoreWorkflowId(job.deployment, 'app', new Date());
    const beside = watchNames(parent);
    const failed = await restore(to, workflowId, { 'shop-db': 'shop_never' });
    beside.close();
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    const cause = (failed as WorkflowFailedError).cause as { type?: string; message: string };
    expect(cause.type).toBe('RESTORE_CHECKSUM_MISMATCH');
    expect(cause.message).toMatch(/failed in the fetch step: restore refused: artifact \S+ on destination "nas" has SHA-256 [0-9a-f]{64}, its manifest says [0-9a-f]{64}; nothing was unpacked/);
    // The unpack ran into the temporary directory while the bytes came; it is gone, and nothing took the target's name.
    expect([...beside.names]).toEqual([`.target.${safeWorkflowId(workflowId)}.restore-tmp`]);
    expect(readdirSync(parent)).toEqual([]);
    expect(existsSync(to)).toBe(false);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
    expect(await shopTargets()).toEqual(['shop_streamed']);

    // The same damage with the hashes adjusted and the manifest signed again: the bytes now "match", zstd's own
    // checksum refuses the component at its end, and still nothing appears.
    m.artifact.sha256 = createHash('sha256').update(bytes).digest('hex');
    m.components[0]!.sha256 = createHash('sha256').update(bytes.subarray(r.start, r.start + r.size)).digest('hex');
    writeFileSync(manifestFile, JSON.stringify(m));
    signAsDeployment(env, manifestFile);
    const again = await restore(to, restoreWorkflowId(job.deployment, 'app', new Date(Date.now() + 1000)), { 'shop-db': 'shop_never' });
    expect(again).toBeInstanceOf(WorkflowFailedError);
    const cause2 = (again as WorkflowFailedError).cause as { type?: string; message: string };
    expect(cause2.type).toBe('RESTORE_FAILED');
    expect(cause2.message).toMatch(/failed in the unpack step: unpacking component app-files.tar.zst of \S+: (zstd|tar) exited/);
    expect(readdirSync(parent)).toEqual([]);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
    expect(await shopTargets()).toEqual(['shop_streamed']);
  });

  it('a diff whose fetch stopped half way (worker lost while applying it): the retry starts from a clean temporary directory, streams the base again, and the restore is exactly the later tree', async () => {
    const j = await writeJob(env, (c) => { c.settings.heartbeatTimeout = '30s'; });
    writeFileSync(path.join(j.dataDir, 'big.bin'), noise(3 * 2 ** 20, 99));
    const run = (type: 'full' | 'diff', minute: number) => withWorker(env, j, () => backupResult(env.client, { taskQueue: j.taskQueue, type, slot: new Date(Date.UTC(2026, 0, 6, 3, minute, 0)) }));
    await run('full', 0);
    writeFileSync(path.join(j.dataDir, 'hello.txt'), 'changed after the full\n');
    rmSync(path.join(j.dataDir, 'sub', 'numbers.csv'));
    writeFileSync(path.join(j.dataDir, 'added.txt'), 'new in the diff\n');
    const diff = await run('diff', 1);
    expect(diff.type).toBe('diff');

    const parent = path.join(env.tmp.path, 'stream-retry');
    const to = path.join(parent, 'target');
    const workflowId = restoreWorkflowId(job.deployment, 'app', new Date(Date.now() + 2000));
    const tmpDir = path.join(parent, `.target.${safeWorkflowId(workflowId)}.restore-tmp`);
    const calls: string[] = [];
    const result = await restore(to, workflowId, undefined, j, (a) => ({
      ...a,
      fetchArtifact: async (input: Parameters<typeof a.fetchArtifact>[0]) => {
        const attempt = Context.current().info.attempt;
        calls.push(`${input.index}/${attempt}`);
        if (input.index === 1 && attempt === 1) {
          // What a worker lost half way through the diff leaves: its start recorded, part of its changes applied.
          writeFileSync(path.join(j.stateDir, 'staging', safeWorkflowId(workflowId), 'artifact-1.started'), '');
          writeFileSync(path.join(tmpDir, 'files', 'half-applied.txt'), 'from the lost attempt');
          rmSync(path.join(tmpDir, 'files', 'app-files', path.relative('/', j.dataDir), 'big.bin'));
          throw ApplicationFailure.retryable('worker lost while applying the diff', 'WorkerLost');
        }
        return a.fetchArtifact(input);
      },
    }));
    expect(result).toMatchObject({ status: 'restored', chain: [{ type: 'full' }, { type: 'diff' }] });
    expect(calls).toEqual(['0/1', '1/1', '1/2']);
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', j.dataDir)))).toEqual(tree(j.dataDir));
    expect(existsSync(path.join(to, 'files', 'half-applied.txt'))).toBe(false);
    expect(readdirSync(parent)).toEqual(['target']);
    expect(existsSync(path.join(j.stateDir, 'staging', safeWorkflowId(workflowId)))).toBe(false);
  });
});
