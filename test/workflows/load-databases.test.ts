import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { createActivities } from '../../src/activities/index.js';
import { RESTORE_WORKFLOW, type RestorePlan, type RestoreResult } from '../../src/contracts/restore.js';
import { workflowBundle } from '../../src/runtime/bundle.js';
import { sourcePlugin } from '../../src/sources/index.js';
import type { DatabaseLoad } from '../../src/sources/types.js';
import { startPostgres, type PostgresHandle } from '../helpers/postgres.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';

// Workflow tier: the real restore workflow and the real loadDatabases activity against a real PostgreSQL server; the
// steps before the load are scripted. A retried load must not trip over the database its own first attempt created.

let client: Client;
let native: NativeConnection;
let pg: PostgresHandle;
let tmp: TempDir;
let configFile: string;
const PASSWORD = 'load-test-Pw9';

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const address = inject('temporalAddress');
  client = new Client({ connection: await Connection.connect({ address }) });
  native = await NativeConnection.connect({ address });
  [pg, tmp] = await Promise.all([startPostgres(), makeTempDir()]);
  await pg.createRole('backup', PASSWORD, 'SUPERUSER');
  await pg.createDatabase('ledger');
  await pg.sql('CREATE TABLE entries (id int PRIMARY KEY, amount numeric); INSERT INTO entries VALUES (1, 10.5), (2, 20);', 'ledger');
  process.env.TEST_LOAD_DB_PASSWORD = PASSWORD;
  // The restored tree as the unpack step leaves it: databases/<source>/<database>.dump.
  const dumpDir = path.join(tmp.path, 'restored', 'databases', 'ledger-db');
  await mkdir(dumpDir, { recursive: true });
  const r = await pg.tool('pg_dump', ['-Fc', '-f', path.join(dumpDir, 'ledger.dump'), 'ledger']);
  expect(r.code, r.stderr).toBe(0);
  // What an interrupted first attempt sees: a dump it cannot finish loading.
  const badDir = path.join(tmp.path, 'interrupted', 'databases', 'ledger-db');
  await mkdir(badDir, { recursive: true });
  await writeFile(path.join(badDir, 'ledger.dump'), 'PGDMP but not really');
  configFile = path.join(tmp.path, 'backup.yml');
  await writeFile(configFile, stringify({
    stateDir: path.join(tmp.path, 'state'),
    destinations: { disk: { type: 'local', path: path.join(tmp.path, 'dest') } },
    jobs: { app: { sources: [{ name: 'ledger-db', type: 'postgres', host: '127.0.0.1', port: pg.port, user: 'backup', password: { env: 'TEST_LOAD_DB_PASSWORD' }, databases: ['ledger'] }], destinations: ['disk'] } },
  }));
});
afterAll(async () => {
  await client?.connection.close();
  await native?.close();
  await pg?.stop();
  await tmp?.cleanup();
});

const exists = async (db: string) => (await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = '${db}'`)).trim() === '1';

/** Runs the restore workflow with `--into-databases ledger-db.ledger=<target>`; only the load is real. */
async function restoreInto(target: string): Promise<{ result?: RestoreResult; error?: WorkflowFailedError; attempts: number[] }> {
  const attempts: number[] = [];
  const real = createActivities({ configFile });
  const plan: RestorePlan = {
    job: 'app', destination: 'disk', retries: 3, heartbeatTimeoutMs: 30_000,
    chain: [{ workflowId: 'backup-app-full-x', type: 'full', slot: '2025-11-04T03:00:00Z', path: 'app/a.tar', size: 1, sha256: '0'.repeat(64) } as RestorePlan['chain'][number]],
    targets: [{ source: 'ledger-db', type: 'postgres', database: 'ledger', target }],
  };
  const activities = {
    ...real,
    planRestore: async () => plan,
    fetchArtifact: async () => ({ bytes: 1 }),
    unpackArtifacts: async () => ({ components: [] }),
    cleanupRestore: async () => ({ removed: [] }),
    loadDatabases: async (input: Parameters<typeof real.loadDatabases>[0]) => {
      attempts.push(Context.current().info.attempt);
      return real.loadDatabases(input);
    },
  };
  const taskQueue = `load-${randomUUID()}`;
  const worker = await Worker.create({ connection: native, taskQueue, activities, workflowBundle: await workflowBundle() });
  return worker.runUntil(async () => {
    try {
      const result = await client.workflow.execute(RESTORE_WORKFLOW, { taskQueue, workflowId: `restore-app-${randomUUID()}`, args: [{ job: 'app', to: path.join(tmp.path, 'restored') }] }) as RestoreResult;
      return { result, attempts };
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      return { error: err, attempts };
    }
  });
}

describe('database loads under retry', () => {
  it('attempt 1 fails after CREATE DATABASE: attempt 2 drops what attempt 1 created and loads the dump completely', async () => {
    const hooks = sourcePlugin('postgres').database!;
    const original = hooks.load;
    let createdByAttempt1 = false;
    hooks.load = async (cfg, l: DatabaseLoad) => {
      if (Context.current().info.attempt > 1) return original(cfg, l);
      // The first attempt's worker is lost while pg_restore runs: the target exists, half loaded.
      await original(cfg, { ...l, dir: path.join(tmp.path, 'interrupted') }).catch(() => undefined);
      createdByAttempt1 = await exists(l.target);
      throw ApplicationFailure.retryable('worker lost during the load', 'WorkerLost');
    };
    try {
      const { result, error, attempts } = await restoreInto('ledger_restored');
      expect(error?.cause?.message).toBeUndefined();
      expect(createdByAttempt1).toBe(true);
      expect(attempts).toEqual([1, 2]);
      expect(result?.databases).toEqual([{ source: 'ledger-db', database: 'ledger', target: 'ledger_restored' }]);
      expect((await pg.sql('SELECT id, amount FROM entries ORDER BY id', 'ledger_restored')).trim()).toBe('1|10.5\n2|20');
    } finally {
      hooks.load = original;
    }
  });

  it('a database the run did not create is never dropped: a target that exists is refused, its data untouched', async () => {
    await pg.createDatabase('ledger_taken');
    await pg.sql('CREATE TABLE mine (v text); INSERT INTO mine VALUES (\'keep me\');', 'ledger_taken');
    const { error, attempts } = await restoreInto('ledger_taken');
    expect(error?.cause?.message).toMatch(/database ledger_taken exists/);
    expect(attempts).toEqual([1]);
    expect((await pg.sql('SELECT v FROM mine', 'ledger_taken')).trim()).toBe('keep me');
  });
});
