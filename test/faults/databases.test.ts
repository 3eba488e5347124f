import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MariadbHandle } from '../helpers/mariadb.js';
import type { PostgresHandle } from '../helpers/postgres.js';
import { waitFor } from '../helpers/util.js';
import { databaseSources, startDatabaseEnv, withWorker, writeJob, type Env, type JobSetup } from '../e2e/fixture.js';
import { assertInvariant, failureMessage, localRemote, outcomeOf, snapshot, startRun, title, type ScenarioId } from './support.js';

const DB_PASSWORD = 'db-secret-Fa9x';
let env: Env;
let maria: MariadbHandle;
let pg: PostgresHandle;

beforeAll(async () => {
  ({ env, maria, pg } = await startDatabaseEnv('TEST_DB_PASSWORD', DB_PASSWORD));
  await Promise.all([
    maria.sql(`CREATE DATABASE shop; USE shop;
      CREATE TABLE big (id INT PRIMARY KEY, a CHAR(32), b CHAR(32)) ENGINE=InnoDB;
      INSERT INTO big SELECT seq, MD5(seq), MD5(-seq) FROM seq_1_to_400000;`),
    pg.sql(`CREATE TABLE entries (id serial PRIMARY KEY, memo text, other text);
      INSERT INTO entries (memo, other) SELECT md5(g::text), md5((-g)::text) FROM generate_series(1, 400000) g;`, 'ledger'),
  ]);
});
afterAll(async () => { await Promise.all([env?.close(), maria?.stop(), pg?.stop()]); });

/** Files under a run's staging folder with their sizes (the dump's output or a spool file). */
function stagedBytes(job: JobSetup, workflowId: string): number {
  const dir = path.join(job.stateDir, 'staging', workflowId);
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const f of readdirSync(dir)) {
    try { total += statSync(path.join(dir, f)).size; } catch { /* gone meanwhile */ }
  }
  return total;
}

async function stoppedMidDump(id: ScenarioId, job: JobSetup, stop: () => Promise<void>) {
  const remote = localRemote(env.sshd.root);
  const before = await snapshot(remote);
  const { handle, outcome } = await withWorker(env, job, async () => {
    const h = await startRun(env, job);
    await waitFor(() => stagedBytes(job, h.workflowId) > 2 * 1024 * 1024, { timeoutMs: 90_000, intervalMs: 20, description: 'the dump to be under way' });
    await stop();
    return { handle: h, outcome: await outcomeOf(h) };
  });
  await assertInvariant({ id, handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
  return outcome;
}

describe('fault injection: database servers that go away mid-dump', () => {
  it(title('mariadb-down'), async () => {
    const job = await writeJob(env, (c) => {
      c.jobs.app.sources = [databaseSources(maria, pg).mysql];
      c.settings.retries = 2;
      c.settings.heartbeatTimeout = '30s';
    });
    const outcome = await stoppedMidDump('mariadb-down', job, () => maria.kill('SIGKILL'));
    expect(failureMessage(outcome)).toMatch(/failed in the dump step.*: source "shop-db"/s);
  });

  it(title('postgres-down'), async () => {
    const job = await writeJob(env, (c) => {
      c.jobs.app.sources = [databaseSources(maria, pg).postgres];
      c.settings.retries = 2;
      c.settings.heartbeatTimeout = '30s';
    });
    const outcome = await stoppedMidDump('postgres-down', job, () => pg.stop());
    expect(failureMessage(outcome)).toMatch(/failed in the dump step.*: source "ledger-db"/s);
  });
});
