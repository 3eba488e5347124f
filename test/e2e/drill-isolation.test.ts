import { execFileSync } from 'node:child_process';
import { appendFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DRILL_WORKFLOW, type DrillReport } from '../../src/contracts/drill.js';
import type { MariadbHandle } from '../helpers/mariadb.js';
import type { PostgresHandle } from '../helpers/postgres.js';
import { backupResult } from '../helpers/run-backup.js';
import { databaseSources, startDatabaseEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Issue 14: a drill runs the dump's SQL; by default it does so on a throwaway server it starts on the worker, never on
// the source's server. A dump with qualified statements (DROP TABLE `shop`.`orders`, `use shop;`) drilled while the
// source server runs leaves the source byte-for-byte unchanged.

const DB_PASSWORD = 'db-secret-Iso14';
let env: Env;
let maria: MariadbHandle;
let pg: PostgresHandle;

beforeAll(async () => {
  // The backup account may do anything on the source: only where the drill loads protects production.
  ({ env, maria, pg } = await startDatabaseEnv('TEST_DB_PASSWORD', DB_PASSWORD, 'ALL PRIVILEGES'));
  await maria.sql(`
    CREATE DATABASE shop;
    USE shop;
    CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2), note VARCHAR(100)) ENGINE=InnoDB;
    INSERT INTO orders SELECT seq, seq * 1.25, CONCAT('order ', seq) FROM seq_1_to_5000;
    CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100)) ENGINE=InnoDB;
    INSERT INTO customers SELECT seq, CONCAT('Kunde ', seq) FROM seq_1_to_2000;`);
  await pg.sql(`CREATE TABLE entries (id serial PRIMARY KEY, amount numeric(12,2), memo text);
    INSERT INTO entries (amount, memo) SELECT g * 1.5, md5(g::text) FROM generate_series(1, 3000) g;`, 'ledger');
});
afterAll(async () => { await Promise.all([env?.close(), maria?.stop(), pg?.stop()]); });

/** The source servers' state: every database, and a full dump of `shop` and `ledger` (no dump date). */
async function sourceState(): Promise<string> {
  const mdump = execFileSync('mariadb-dump', [
    '--no-defaults', `--socket=${maria.socket}`, '-uroot', '--skip-dump-date', '--routines', '--events', '--triggers', '--databases', 'shop',
  ], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const parts = await Promise.all([
    maria.sql('SHOW DATABASES'),
    maria.sql('CHECKSUM TABLE shop.orders, shop.customers EXTENDED'),
    pg.sql('SELECT datname FROM pg_database ORDER BY datname'),
    // pg_dump's \restrict key is random per run: not part of the data.
    pg.tool('pg_dump', ['--no-comments', '-d', 'ledger']).then((r) => r.stdout.replace(/^\\(un)?restrict .*$/gm, '')),
  ]);
  return [...parts, mdump].join('\n----\n');
}

const scratchDirs = () => readdirSync(os.tmpdir()).filter((f) => f.startsWith('backupctl-drill-'));
const sourceScratchDatabases = async () => [
  ...(await maria.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'backupctl\\_drill%'")).split('\n').filter(Boolean),
  ...(await pg.sql("SELECT datname FROM pg_database WHERE datname LIKE 'backupctl_drill%'")).split('\n').filter(Boolean),
];

async function drill(job: JobSetup, hostileSql?: string): Promise<{ report: DrillReport; duringLoad: string[] }> {
  const duringLoad: string[] = [];
  let n = 0;
  const run = () => env.client.workflow.execute(DRILL_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `drill-iso-${job.taskQueue}-${++n}`, args: [{ job: 'app' }] })
    .then((r) => r as DrillReport, (err: unknown) => {
      if (err instanceof WorkflowFailedError) return (err.cause as { details?: unknown[] }).details?.[0] as DrillReport;
      throw err;
    });
  const report = await withWorker(env, job, run, (a) => ({
    ...a,
    // What a planted artifact would bring: statements aimed at the source's own database, appended to the restored dump.
    unpackArtifacts: async (input) => {
      const r = await a.unpackArtifacts(input);
      const mysql = r.components.find((c) => c.type === 'mysql');
      if (hostileSql && mysql) appendFileSync(path.join(input.to, mysql.path), hostileSql);
      return r;
    },
    loadDatabases: async (input) => {
      try {
        return await a.loadDatabases(input);
      } finally {
        duringLoad.push(...await sourceScratchDatabases());
      }
    },
  }));
  return { report, duringLoad };
}

describe('drills cannot touch production', () => {
  let job: JobSetup;
  beforeAll(async () => {
    job = await writeJob(env, (c) => {
      c.jobs.app.sources.push(...Object.values(databaseSources(maria, pg)));
      c.settings.heartbeatTimeout = '30s';
      c.settings.retries = 1;
    });
    await withWorker(env, job, () => backupResult(env.client, { taskQueue: job.taskQueue, slot: new Date(Date.UTC(2025, 7, 1, 3, 0, 0)) }));
  });

  it('by default both dumps load into throwaway servers on the worker, which are gone afterwards', async () => {
    const before = await sourceState();
    const { report, duringLoad } = await drill(job);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    const checks = report.checks.join('\n');
    expect(checks).toMatch(/MariaDB\/MySQL shop-db\.shop: loaded into a scratch database on a throwaway MariaDB server on the worker/);
    expect(checks).toMatch(/PostgreSQL ledger-db\.ledger: loaded into a scratch database on a throwaway PostgreSQL server on the worker/);
    expect(duringLoad).toEqual([]);
    expect(scratchDirs()).toEqual([]);
    expect(await sourceState()).toBe(before);
  });

  it('a dump with qualified DDL/DML aimed at the source database leaves the source byte-for-byte unchanged', async () => {
    const before = await sourceState();
    const hostile = [
      'DROP TABLE `shop`.`orders`;',
      'use shop;',
      'DELETE FROM customers;',
      "INSERT INTO `shop`.`customers` VALUES (999999, 'planted');",
      '',
    ].join('\n');
    const { report, duringLoad } = await drill(job, hostile);
    // The statements ran on the throwaway server, where `shop` does not exist: the load fails, and says so.
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toMatch(/loading database shop of source "shop-db" into backupctl_drill_\w+ on MariaDB\/MySQL at .*backupctl-drill-mariadb-/);
    expect(duringLoad).toEqual([]);
    expect(scratchDirs()).toEqual([]);
    expect(await sourceState()).toBe(before);
    expect((await maria.sql('SELECT COUNT(*) FROM shop.orders')).trim()).toBe('5000');
  });

  it('drill.allowSourceServer: true is the explicit way to load into the source\'s own server', async () => {
    const own = await writeJob(env, (c) => {
      c.jobs.app.sources.push(...Object.values(databaseSources(maria, pg)));
      c.jobs.app.drill = { allowSourceServer: true };
      c.settings.heartbeatTimeout = '30s';
      c.settings.retries = 1;
    });
    await withWorker(env, own, () => backupResult(env.client, { taskQueue: own.taskQueue, slot: new Date(Date.UTC(2025, 7, 1, 4, 0, 0)) }));
    const { report, duringLoad } = await drill(own);
    expect(report.ok).toBe(true);
    expect(report.checks.join('\n')).toMatch(/shop-db\.shop: loaded into a scratch database on the source's own server \(drill\.allowSourceServer\)/);
    expect(duringLoad).toHaveLength(2);
    expect(await sourceScratchDatabases()).toEqual([]);
  });
});
