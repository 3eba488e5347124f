import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESTORE_WORKFLOW, restoreWorkflowId, type BackupResult, type DrillReport, type RestoreResult } from '../../src/contracts/index.js';
import { startMariadb, type MariadbHandle } from '../helpers/mariadb.js';
import { startPostgres, type PostgresHandle } from '../helpers/postgres.js';
import { backupResult } from '../helpers/run-backup.js';
import { runCommand } from '../helpers/util.js';
import { databaseSources, listFiles, signAsDeployment, startEnv, tree, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Issue 6, restore half: restore round trip (files + MariaDB + PostgreSQL, --into-databases), a altered artifact is
// refused before anything is unpacked, restore drills (failure notified; success reported with its restore time and
// shown by status). Real servers on loopback: Temporal, OpenSSH, MariaDB, PostgreSQL, SMTP sink.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
const DB_PASSWORD = 'db-secret-Rr8v';
let env: Env;
let maria: MariadbHandle;
let pg: PostgresHandle;

const backupctl = (args: string[]) => runCommand(process.execPath, [cli, ...args], { timeoutMs: 180_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

beforeAll(async () => {
  [env, maria, pg] = await Promise.all([startEnv(), startMariadb(), startPostgres()]);
  process.env.TEST_DB_PASSWORD = DB_PASSWORD;
  // Restores and drills create (and drills drop) databases with the source's account.
  await maria.createUser('backup', DB_PASSWORD, 'ALL PRIVILEGES');
  await maria.sql(`
    CREATE DATABASE shop;
    USE shop;
    CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100), token CHAR(32)) ENGINE=InnoDB;
    INSERT INTO customers SELECT seq, CONCAT('Kunde ', seq), MD5(RAND()) FROM seq_1_to_20000;
    CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB;
    INSERT INTO notes VALUES (1, 'USE \`shop\`;\\nCREATE DATABASE x; -- not a statement'), (2, 'zweite Zeile: äöü');`);
  await pg.createRole('backup', DB_PASSWORD, 'SUPERUSER');
  await pg.createDatabase('ledger');
  await pg.sql(`CREATE TABLE entries (id serial PRIMARY KEY, amount numeric(12,2), memo text);
    INSERT INTO entries (amount, memo) SELECT g * 1.5, md5(g::text) FROM generate_series(1, 20000) g;`, 'ledger');
});
afterAll(async () => { await Promise.all([env?.close(), maria?.stop(), pg?.stop()]); });

let minute = 0;
const slot = () => new Date(Date.UTC(2025, 6, 1, 3, minute++, 0));

function dbJob(patch: (c: Record<string, any>) => void = () => undefined) { // eslint-disable-line @typescript-eslint/no-explicit-any
  return writeJob(env, (c) => {
    c.jobs.app.sources.push(...Object.values(databaseSources(maria, pg)));
    c.settings.heartbeatTimeout = '30s';
    c.settings.retries = 2;
    patch(c);
  });
}

async function backup(job: JobSetup): Promise<BackupResult> {
  const s = slot();
  return withWorker(env, job, () => backupResult(env.client, { taskQueue: job.taskQueue, slot: s }));
}

const mariaState = async (db: string) => [
  await maria.sql(`SELECT COUNT(*) FROM ${db}.customers`),
  await maria.sql(`SET SESSION group_concat_max_len = 1 << 30; SELECT SHA2(GROUP_CONCAT(CONCAT_WS('|', id, name, token) ORDER BY id SEPARATOR '\\n'), 256) FROM ${db}.customers`),
  await maria.sql(`SELECT SHA2(GROUP_CONCAT(CONCAT_WS('|', id, body) ORDER BY id), 256) FROM ${db}.notes`),
].join('|');
const pgState = async (db: string) => pg.sql("SELECT count(*) || '|' || md5(string_agg(id || ':' || amount || ':' || memo, ',' ORDER BY id)) FROM entries", db);
const scratchDatabases = async () => [
  ...(await maria.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'backupctl\\_drill%'")).split('\n').filter(Boolean),
  ...(await pg.sql("SELECT datname FROM pg_database WHERE datname LIKE 'backupctl_drill%'")).split('\n').filter(Boolean),
];

describe('restore', () => {
  it('round trip: files + MariaDB + PostgreSQL through backupctl restore --to, the tree identical; --into-databases loads new databases with the same rows', async () => {
    const job = await dbJob();
    mkdirSync(path.join(job.dataDir, 'empty-dir'));
    mkdirSync(path.join(job.dataDir, 'deep', 'er', 'still'), { recursive: true });
    writeFileSync(path.join(job.dataDir, 'deep', 'er', 'still', 'x.bin'), Buffer.alloc(300_000, 7), { mode: 0o600 });
    symlinkSync('hello.txt', path.join(job.dataDir, 'link-to-hello'));
    const r = await backup(job);
    expect(r.status).toBe('succeeded');

    const to = path.join(env.tmp.path, 'restore-roundtrip', 'target');
    const started = Date.now();
    const out = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--into-databases', 'shop-db=shop_restored,ledger-db.ledger=ledger_restored', '--json']);
    expect(out.code, out.stderr).toBe(0);
    const result = JSON.parse(out.stdout) as RestoreResult;
    console.log(`restore round trip: ${Date.now() - started} ms (CLI with in-process worker), workflow ${result.durationMs} ms`);
    expect(result).toMatchObject({ status: 'restored', job: 'app', destination: 'nas', to, backup: { workflowId: r.workflowId, type: 'full' } });
    expect(result.chain).toEqual([expect.objectContaining({ path: r.locations[0]!.path, sha256: r.sha256, size: r.size })]);
    // Layout: files/<source>/<original absolute path>, databases/<mysql source>.sql, databases/<postgres source>/.
    expect(readdirSync(to).sort()).toEqual(['.backupctl-restore.json', 'databases', 'files']);
    expect(JSON.parse(readFileSync(path.join(to, '.backupctl-restore.json'), 'utf8'))).toMatchObject({ workflowId: result.workflowId, chain: [{ path: r.locations[0]!.path, sha256: r.sha256 }] });
    const restoredTree = path.join(to, 'files', 'app-files', path.relative('/', job.dataDir));
    expect(tree(restoredTree)).toEqual(tree(job.dataDir));
    expect(result.components.map((c) => c.path).sort()).toEqual(['databases/ledger-db', 'databases/shop-db.sql', 'files/app-files']);
    expect(readFileSync(path.join(to, 'databases', 'shop-db.sql'), 'utf8')).toMatch(/-- Dump completed/);
    expect(readdirSync(path.join(to, 'databases', 'ledger-db')).sort()).toEqual(['globals.sql', 'ledger.dump']);
    // The databases were loaded into new ones; the originals are untouched.
    expect(result.databases).toEqual([
      { source: 'shop-db', database: 'shop', target: 'shop_restored' },
      { source: 'ledger-db', database: 'ledger', target: 'ledger_restored' },
    ]);
    expect(await mariaState('shop_restored')).toBe(await mariaState('shop'));
    expect(await pgState('ledger_restored')).toBe(await pgState('ledger'));
    // Nothing left behind: no staging, no temporary unpack directory.
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
    expect(readdirSync(path.dirname(to))).toEqual(['target']);

    // A second restore into the same, now non-empty directory is refused; so is loading into an existing database.
    const again = await withWorker(env, job, () => env.client.workflow.execute(RESTORE_WORKFLOW, {
      taskQueue: job.taskQueue, workflowId: restoreWorkflowId(job.deployment, 'app', new Date()), args: [{ job: 'app', to }],
    })).catch((e: unknown) => e as WorkflowFailedError);
    expect(again).toBeInstanceOf(WorkflowFailedError);
    expect((again as WorkflowFailedError).cause?.message).toMatch(/failed in the plan step: the restore target .*target exists and is not an empty directory/);
    expect(((again as WorkflowFailedError).cause as { type?: string }).type).toBe('RESTORE_TARGET_EXISTS');
  });

  it('survives a worker restart: a fetch cut off by the first worker\'s shutdown is done again by the next worker', async () => {
    const job = await writeJob(env);
    await backup(job);
    const to = path.join(env.tmp.path, 'restore-restart', 'target');
    const workflowId = restoreWorkflowId(job.deployment, 'app', new Date());
    let fetchStarted!: () => void;
    const started = new Promise<void>((resolve) => { fetchStarted = resolve; });
    // Worker 1: its fetch starts, then the worker goes away mid-step.
    await withWorker(env, job, async () => {
      await env.client.workflow.start(RESTORE_WORKFLOW, { taskQueue: job.taskQueue, workflowId, args: [{ job: 'app', to }] });
      await started;
    }, (a) => ({
      ...a,
      fetchArtifact: () => new Promise((_, reject) => {
        fetchStarted();
        Context.current().cancellationSignal.addEventListener('abort', () => reject(new Error('worker 1 shut down')));
      }),
    }));
    expect(existsSync(to)).toBe(false);
    // Worker 2 finishes the same workflow.
    const result = await withWorker(env, job, () => env.client.workflow.getHandle(workflowId).result()) as RestoreResult;
    expect(result.status).toBe('restored');
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
  });

  it('a worker that dies right after the rename: the retried unpack finds its own complete restore and reports it, instead of refusing the target', async () => {
    const job = await writeJob(env);
    await backup(job);
    const to = path.join(env.tmp.path, 'restore-after-rename', 'target');
    let calls = 0;
    const result = await withWorker(env, job, () => env.client.workflow.execute(RESTORE_WORKFLOW, {
      taskQueue: job.taskQueue, workflowId: restoreWorkflowId(job.deployment, 'app', new Date()), args: [{ job: 'app', to }],
    }), (a) => ({
      ...a,
      unpackArtifacts: async (input: Parameters<typeof a.unpackArtifacts>[0]) => {
        const done = await a.unpackArtifacts(input);
        if (++calls === 1) throw new Error('worker died after the rename, before the step was recorded');
        return done;
      },
    })) as RestoreResult;
    expect(calls).toBe(2);
    expect(result.status).toBe('restored');
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));
  });

  it('an altered remote artifact: restore refuses before unpacking, naming the artifact; the drill fails, is notified and shown by status', async () => {
    const job = await dbJob((c) => { c.jobs.app.sources = c.jobs.app.sources.filter((s: { type: string }) => s.type !== 'postgres'); });
    const r = await backup(job);
    const artifact = path.join(env.sshd.root, r.locations[0]!.path);
    // Same size, one byte changed deep inside the first component: only the SHA-256 can tell.
    const fd = openSync(artifact, 'r+');
    writeSync(fd, Buffer.from([0x42]), 0, 1, 4096);
    closeSync(fd);

    const to = path.join(env.tmp.path, 'restore-altered', 'target');
    const res = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--json']);
    expect(res.code).toBe(1);
    const failed = JSON.parse(res.stdout) as { status: string; code: string; error: string };
    expect(failed.status).toBe('failed');
    expect(failed.code).toBe('RESTORE_CHECKSUM_MISMATCH');
    expect(failed.error).toContain(`artifact ${r.locations[0]!.path} on destination "nas"`);
    expect(failed.error).toMatch(/failed in the fetch step: restore refused: .* has SHA-256 [0-9a-f]{64}, its manifest says [0-9a-f]{64}; nothing was unpacked/);
    // Nothing unpacked, nothing half-downloaded left.
    expect(existsSync(path.dirname(to)) ? readdirSync(path.dirname(to)) : []).toEqual([]);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);

    const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
    expect(drill.code).toBe(1);
    const report = JSON.parse(drill.stdout) as DrillReport;
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatch(new RegExp(`artifact ${r.locations[0]!.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} on destination "nas" has SHA-256`));
    const mail = await env.smtp.waitFor((m) => m.subject?.includes('DRILL FAILED: app') === true && m.text?.includes(report.workflowId) === true);
    expect(mail.text).toContain('RESTORE_CHECKSUM_MISMATCH');
    // One report, and its signature.
    const reports = listFiles(path.join(env.sshd.root, 'drills', 'app'));
    expect(reports).toEqual([reports[0], `${reports[0]}.sig`]);
    const status = await backupctl(['--config', job.configFile, 'status', 'app', '--json']);
    const s = JSON.parse(status.stdout) as { jobs: { drill: { ok: boolean; workflowId: string }; problems: string[] }[] };
    expect(s.jobs[0]!.drill).toMatchObject({ ok: false, workflowId: report.workflowId });
    expect(s.jobs[0]!.problems.join('\n')).toMatch(/the last restore drill .* failed: .*has SHA-256/);
    expect(await scratchDatabases()).toEqual([]);
  });

  it('a manifest whose component SHA-256 does not match the component (artifact intact): a restore goes by the artifact\'s SHA-256 and succeeds; the drill, which checks every recorded checksum, fails naming the component', async () => {
    const job = await writeJob(env);
    const r = await backup(job);
    const manifestFile = path.join(env.sshd.root, `${r.locations[0]!.path}.manifest.json`);
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { components: { sha256: string }[] };
    manifest.components[0]!.sha256 = 'e'.repeat(64);
    writeFileSync(manifestFile, JSON.stringify(manifest));
    // Signed again, as a worker with this bug would have: an altered manifest that is not signed is no backup at all.
    signAsDeployment(env, manifestFile);
    const to = path.join(env.tmp.path, 'restore-component', 'target');
    const restored = await withWorker(env, job, () => env.client.workflow.execute(RESTORE_WORKFLOW, {
      taskQueue: job.taskQueue, workflowId: restoreWorkflowId(job.deployment, 'app', new Date()), args: [{ job: 'app', to }],
    }));
    expect(restored).toMatchObject({ status: 'restored' });
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));

    const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
    expect(drill.code).toBe(1);
    const report = JSON.parse(drill.stdout) as DrillReport;
    expect(report.problems[0]).toMatch(/artifact \S+ on destination "nas" holds component app-files.tar.zst with SHA-256 [0-9a-f]{64}, its manifest says e{64}; nothing was unpacked/);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
  });

  it('a target without room for what the manifest says the backup unpacks to: refused before anything is written (RESTORE_SPACE), the drill too', async () => {
    const job = await writeJob(env);
    const r = await backup(job);
    const manifestFile = path.join(env.sshd.root, `${r.locations[0]!.path}.manifest.json`);
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { components: { stats: Record<string, number> }[] };
    manifest.components[0]!.stats.bytes = 2 ** 52; // 4 PiB of files: more than any disk here
    writeFileSync(manifestFile, JSON.stringify(manifest));
    signAsDeployment(env, manifestFile);
    const to = path.join(env.tmp.path, 'restore-space', 'target');
    const res = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--json']);
    expect(res.code).toBe(1);
    const failed = JSON.parse(res.stdout) as { status: string; code: string; error: string };
    expect(failed.code).toBe('RESTORE_SPACE');
    expect(failed.error).toMatch(/the restore target \S+ has .+ free, and the backup unpacks to about .+; nothing was unpacked/);
    expect(existsSync(to)).toBe(false);
    const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
    expect(drill.code).toBe(1);
    expect((JSON.parse(drill.stdout) as DrillReport).problems.join('\n')).toMatch(/the drill's scratch space \S+ has .+ free, and the backup unpacks to about/);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
  });

  it('drill success: files counted against the manifest, both dumps loaded into scratch databases and dropped, the restore time reported; status shows it', async () => {
    const job = await dbJob((c) => { c.jobs.app.drill = { notifyOnSuccess: true }; });
    await backup(job);
    const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const report = JSON.parse(drill.stdout) as DrillReport;
    expect(report).toMatchObject({ format: 'backupctl-drill/1', ok: true, job: 'app', problems: [] });
    expect(report.restoreMs).toBeGreaterThan(0);
    expect(report.checks.join('\n')).toMatch(/files app-files: 2 files and \d+ bytes, as recorded/);
    expect(report.checks.join('\n')).toMatch(/MariaDB\/MySQL shop-db.shop: loaded into a scratch database/);
    expect(report.checks.join('\n')).toMatch(/PostgreSQL ledger-db.ledger: loaded into a scratch database/);
    expect(await scratchDatabases()).toEqual([]);
    expect(existsSync(path.join(job.stateDir, 'drills')) ? readdirSync(path.join(job.stateDir, 'drills')) : []).toEqual([]);
    const mail = await env.smtp.waitFor((m) => m.subject?.includes('DRILL OK: app') === true && m.text?.includes(report.workflowId) === true);
    expect(mail.text).toMatch(/Restore time \(measured RTO\): \d+ s/);

    const status = await backupctl(['--config', job.configFile, 'status', 'app']);
    expect(status.stdout).toMatch(new RegExp(`last drill: passed ${report.finishedAt.replace(/\./g, '\\.')} \\(0 h ago\\), restore time ${(report.restoreMs! / 1000).toFixed(1)} s`));
  });
});
