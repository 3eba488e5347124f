import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupWorkflowId, type BackupResult } from '../../src/contracts/index.js';
import type { MariadbHandle } from '../helpers/mariadb.js';
import type { PostgresHandle } from '../helpers/postgres.js';
import { awaitBackup, runBackup, startBackup, type BackupOutcome } from '../helpers/run-backup.js';
import { waitFor } from '../helpers/util.js';
import { databaseSources, historyText, listFiles, sha256File, startDatabaseEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Issue 3 end to end: database sources inside real runs (Temporal, sshd, SMTP, MariaDB, PostgreSQL all on loopback).

const DB_PASSWORD = 'db-secret-Hq4w';
let env: Env;
let maria: MariadbHandle;
let pg: PostgresHandle;

beforeAll(async () => {
  ({ env, maria, pg } = await startDatabaseEnv('TEST_DB_PASSWORD', DB_PASSWORD));
  await maria.sql(`
    CREATE DATABASE shop;
    USE shop;
    CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100), token CHAR(32)) ENGINE=InnoDB;
    INSERT INTO customers SELECT seq, CONCAT('Kunde ', seq), MD5(RAND()) FROM seq_1_to_40000;`);
  await pg.sql(`CREATE TABLE entries (id serial PRIMARY KEY, amount numeric(12,2), memo text);
    INSERT INTO entries (amount, memo) SELECT g * 1.5, md5(g::text) FROM generate_series(1, 30000) g;`, 'ledger');
});
afterAll(async () => { await Promise.all([env?.close(), maria?.stop(), pg?.stop()]); });

let minute = 0;
const slot = () => new Date(Date.UTC(2025, 5, 1, 3, minute++, 0));

function dbJob(patch: (c: Record<string, any>) => void = () => undefined) { // eslint-disable-line @typescript-eslint/no-explicit-any
  return writeJob(env, (c) => {
    c.jobs.app.sources.push(...Object.values(databaseSources(maria, pg)));
    c.settings.heartbeatTimeout = '30s';
    patch(c);
  });
}

/** The run's handle and its result, or the WorkflowFailedError it failed with. */
const ended = (o: BackupOutcome) => ({ handle: o.handle, result: o.status === 'completed' ? o.result : o.error });

async function runOnce(job: JobSetup, s = slot()) {
  return ended(await withWorker(env, job, () => runBackup(env.client, { taskQueue: job.taskQueue, slot: s })));
}

const mariaState = async () => [
  await maria.sql('SELECT COUNT(*) FROM shop.customers'),
  await maria.sql("SET SESSION group_concat_max_len = 1 << 30; SELECT SHA2(GROUP_CONCAT(CONCAT_WS('|', id, name, token) ORDER BY id SEPARATOR '\\n'), 256) FROM shop.customers"),
].join('|');
const pgState = async (db: string) => pg.sql("SELECT count(*) || '|' || md5(string_agg(id || ':' || amount || ':' || memo, ',' ORDER BY id)) FROM entries", db);

describe('database sources in real runs', () => {
  it('files + MariaDB + PostgreSQL land on the SFTP server; the dumps restore to the same rows and checksums', async () => {
    const job = await dbJob();
    const [mBefore, pBefore] = [await mariaState(), await pgState('ledger')];
    const { result } = await runOnce(job);
    expect((result as BackupResult).status, String((result as Error).message)).toBe('succeeded');
    const r = result as BackupResult;
    const artifact = path.join(env.sshd.root, r.locations[0]!.path);
    expect(sha256File(artifact)).toBe(r.sha256);

    const out = mkdtempSync(path.join(tmpdir(), 'db-restore-'));
    execFileSync('tar', ['-xf', artifact, '-C', out]);
    // The files source's GNU tar snapshot rides along (the base of later diffs).
    expect(readdirSync(out).sort()).toEqual(['app-files.snar', 'app-files.tar.zst', 'ledger-db.tar.zst', 'shop-db.sql.zst']);
    // MariaDB: the dump recreates the database (mariadb < dump.sql), into a server where it was dropped.
    await maria.sql('DROP DATABASE shop');
    execFileSync('sh', ['-c', `zstd -dc '${out}/shop-db.sql.zst' > '${out}/shop.sql'`]);
    const restored = await maria.sqlFile(path.join(out, 'shop.sql'));
    expect(restored.code, restored.stderr).toBe(0);
    expect(await mariaState()).toBe(mBefore);
    // PostgreSQL: pg_restore into a fresh database.
    execFileSync('sh', ['-c', `mkdir -p '${out}/pg' && zstd -dc '${out}/ledger-db.tar.zst' | tar -x -C '${out}/pg'`]);
    expect(readdirSync(path.join(out, 'pg')).sort()).toEqual(['globals.sql', 'ledger.dump']);
    await pg.createDatabase('ledger_restored');
    const pr = await pg.tool('pg_restore', ['-d', 'ledger_restored', path.join(out, 'pg', 'ledger.dump')]);
    expect(pr.code, pr.stderr).toBe(0);
    expect(await pgState('ledger_restored')).toBe(pBefore);
  });

  it('a wrong database password: failure mail naming the source, nothing uploaded, the password nowhere in the history', async () => {
    process.env.TEST_WRONG_PASSWORD = 'not-the-password-Zk2';
    const job = await dbJob((c) => { c.jobs.app.sources[1].password = { env: 'TEST_WRONG_PASSWORD' }; });
    const before = listFiles(env.sshd.root);
    const { handle, result } = await runOnce(job);
    expect(result).toBeInstanceOf(WorkflowFailedError);
    expect((result as WorkflowFailedError).cause?.message).toMatch(/shop-db/);
    const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.subject).toMatch(/FAILED/);
    expect(mail.text).toContain('shop-db');
    expect(mail.text).toContain('Attempts: 1');
    expect(listFiles(env.sshd.root)).toEqual(before);
    const history = await historyText(handle);
    expect(history).not.toContain('not-the-password-Zk2');
    expect(history).not.toContain(DB_PASSWORD);
    expect(mail.text).not.toContain('not-the-password-Zk2');
  });

  it('a command source killed halfway (partial output, exit 1) and one with empty output fail; nothing is uploaded', async () => {
    for (const [script, expected] of [
      ['head -c 200000 /dev/urandom; exit 1', /exited with code 1|exit code 1|exited 1/],
      ['exit 0', /exited 0 but wrote nothing/],
    ] as const) {
      const job = await writeJob(env, (c) => { c.jobs.app.sources = [{ name: 'custom-dump', type: 'command', command: ['sh', '-c', script] }]; });
      const before = listFiles(env.sshd.root);
      const { handle, result } = await runOnce(job);
      expect(result).toBeInstanceOf(WorkflowFailedError);
      expect((result as WorkflowFailedError).cause?.message).toMatch(expected);
      expect(listFiles(env.sshd.root)).toEqual(before);
      await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true && m.subject?.includes('(dump)') === true);
    }
  });

  it('size anomaly: after normal runs, a database that shrank by 80% is headlined in the notification, or fails the run when so configured', async () => {
    const job = await dbJob((c) => { c.jobs.app.sources = c.jobs.app.sources.filter((s: { type: string }) => s.type === 'mysql'); });
    for (let i = 0; i < 3; i++) expect(((await runOnce(job)).result as BackupResult).status).toBe('succeeded');
    await maria.sql('DELETE FROM shop.customers WHERE id % 5 <> 0');
    const { handle, result } = await runOnce(job);
    expect((result as BackupResult).status).toBe('succeeded_with_warnings');
    expect((result as BackupResult).warnings[0]).toMatch(/^size anomaly: component "shop-db" is [7-8]\d% smaller than the median of the last \d full backups/);
    const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.subject).toMatch(/WARNING: app full backup .* size anomaly: component "shop-db"/);

    writeFileSync(job.configFile, (await import('node:fs')).readFileSync(job.configFile, 'utf8').replace('notify:', 'sizeAnomaly:\n      action: fail\n    notify:'));
    await maria.sql('DELETE FROM shop.customers WHERE id % 25 <> 0');
    const failed = await runOnce(job);
    expect(failed.result).toBeInstanceOf(WorkflowFailedError);
    expect((failed.result as WorkflowFailedError).cause?.message).toMatch(/size anomaly: component "shop-db"/);
    expect(listFiles(env.sshd.root).filter((f) => f.includes(failed.handle.workflowId))).toEqual([]);
  });

  // Last: it kills the MariaDB server.
  it('a MariaDB server stopped mid-dump: the run fails, the failure is mailed, nothing is uploaded', async () => {
    await maria.sql('CREATE TABLE shop.big (id INT PRIMARY KEY, a CHAR(32), b CHAR(32)) ENGINE=InnoDB; INSERT INTO shop.big SELECT seq, MD5(seq), MD5(-seq) FROM seq_1_to_1500000;', 'shop');
    const job = await dbJob((c) => { c.jobs.app.sources = c.jobs.app.sources.filter((s: { type: string }) => s.type === 'mysql'); c.settings.retries = 1; });
    const before = listFiles(env.sshd.root);
    const s = slot();
    const workflowId = backupWorkflowId(job.deployment, 'app', 'full', s);
    const artifact = path.join(job.stateDir, 'staging', workflowId, 'artifact.tar');
    const { handle, result } = await withWorker(env, job, async () => {
      const h = await startBackup(env.client, { taskQueue: job.taskQueue, slot: s, deployment: job.deployment });
      await waitFor(() => existsSync(artifact) && statSync(artifact).size > 1024 * 1024, { timeoutMs: 60_000, intervalMs: 20, description: 'the dump to be under way' });
      await maria.kill('SIGKILL');
      return ended(await awaitBackup(h));
    });
    expect(result).toBeInstanceOf(WorkflowFailedError);
    expect((result as WorkflowFailedError).cause?.message).toMatch(/failed in the dump step: .*shop-db/s);
    const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.subject).toMatch(/FAILED: .*\(dump\)/);
    expect(listFiles(env.sshd.root)).toEqual(before);
    expect(existsSync(path.join(job.stateDir, 'staging', workflowId))).toBe(false);
  });
});

