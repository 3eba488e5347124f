import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupType, Manifest, RestoreResult } from '../../src/contracts/index.js';
import type { MariadbHandle } from '../helpers/mariadb.js';
import type { PostgresHandle } from '../helpers/postgres.js';
import { backupResult } from '../helpers/run-backup.js';
import { runCommand } from '../helpers/util.js';
import { databaseSources, startDatabaseEnv, tree, withWorker, writeJob, type Env } from './fixture.js';

// Issue 6 #1: the round trip through a differential backup. A full, then files added, modified and deleted and
// database rows changed, then a diff; `backupctl restore --at` the diff's slot gives exactly the later tree (the
// deleted file gone) and the later database contents; `--at` the full's slot gives the earlier state.
// Real servers on loopback: Temporal, OpenSSH, MariaDB, PostgreSQL.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
const DB_PASSWORD = 'chain-secret-Q2x';
let env: Env;
let maria: MariadbHandle;
let pg: PostgresHandle;

beforeAll(async () => {
  ({ env, maria, pg } = await startDatabaseEnv('TEST_CHAIN_DB_PASSWORD', DB_PASSWORD, 'ALL PRIVILEGES'));
  await maria.sql(`
    CREATE DATABASE shop;
    USE shop;
    CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(100)) ENGINE=InnoDB;
    INSERT INTO orders SELECT seq, CONCAT('item ', seq) FROM seq_1_to_5000;`);
  await pg.sql(`CREATE TABLE entries (id serial PRIMARY KEY, memo text);
    INSERT INTO entries (memo) SELECT md5(g::text) FROM generate_series(1, 5000) g;`, 'ledger');
});
afterAll(async () => { await Promise.all([env?.close(), maria?.stop(), pg?.stop()]); });

const mariaState = (db: string) => maria.sql(`SELECT COUNT(*), SHA2(GROUP_CONCAT(CONCAT_WS('|', id, item) ORDER BY id SEPARATOR ','), 256) FROM ${db}.orders`);
const pgState = (db: string) => pg.sql("SELECT count(*) || '|' || md5(string_agg(id || ':' || memo, ',' ORDER BY id)) FROM entries", db);

describe('restore through a differential backup', () => {
  it('full, changes, diff: restore --at the diff gives the later tree and rows, --at the full the earlier ones', async () => {
    const job = await writeJob(env, (c) => {
      c.jobs.app.sources.push(...Object.values(databaseSources(maria, pg, 'TEST_CHAIN_DB_PASSWORD')));
      c.settings.heartbeatTimeout = '30s';
    });
    const run = (type: BackupType, slot: Date) => backupResult(env.client, { taskQueue: job.taskQueue, type, slot });
    const fullSlot = new Date('2025-08-01T03:00:00Z');
    const diffSlot = new Date('2025-08-01T09:00:00Z');
    const earlierTree = tree(job.dataDir);
    const earlierShop = await mariaState('shop');
    const earlierLedger = await pgState('ledger');

    const { full, diff } = await withWorker(env, job, async () => {
      const full = await run('full', fullSlot);
      // Add, modify, delete files; change rows in both databases.
      writeFileSync(path.join(job.dataDir, 'added.txt'), 'added after the full\n');
      mkdirSync(path.join(job.dataDir, 'new-dir'));
      writeFileSync(path.join(job.dataDir, 'new-dir', 'inner.bin'), Buffer.alloc(70_000, 3));
      writeFileSync(path.join(job.dataDir, 'hello.txt'), 'hello, modified after the full\n');
      rmSync(path.join(job.dataDir, 'sub', 'numbers.csv'));
      await maria.sql("USE shop; DELETE FROM orders WHERE id <= 100; UPDATE orders SET item = 'changed' WHERE id = 200; INSERT INTO orders VALUES (9001, 'late order');");
      await pg.sql("DELETE FROM entries WHERE id % 10 = 0; INSERT INTO entries (memo) VALUES ('late entry');", 'ledger');
      const diff = await run('diff', diffSlot);
      return { full, diff };
    });
    expect(full.type).toBe('full');
    expect(diff.type).toBe('diff');
    const diffManifest = JSON.parse(readFileSync(path.join(env.sshd.root, `${diff.locations[0]!.path}.manifest.json`), 'utf8')) as Manifest;
    expect(diffManifest.base?.workflowId).toBe(full.workflowId);
    const laterTree = tree(job.dataDir);
    expect(laterTree).not.toEqual(earlierTree);
    const laterShop = await mariaState('shop');
    const laterLedger = await pgState('ledger');
    expect(laterShop).not.toBe(earlierShop);
    expect(laterLedger).not.toBe(earlierLedger);

    const restore = async (at: Date, name: string) => {
      const to = path.join(env.tmp.path, 'chain', name);
      const out = await runCommand(process.execPath, [cli, '--config', job.configFile, 'restore', 'app', '--at', at.toISOString(), '--to', to,
        '--into-databases', `shop-db=shop_${name},ledger-db.ledger=ledger_${name}`, '--json'], { timeoutMs: 180_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });
      expect(out.code, out.stderr).toBe(0);
      return { to, result: JSON.parse(out.stdout) as RestoreResult };
    };

    // At the diff's slot (or any time after it): the chain is the full, then the diff.
    const later = await restore(new Date(diffSlot.getTime() + 60_000), 'later');
    expect(later.result.backup.workflowId).toBe(diff.workflowId);
    expect(later.result.chain.map((c) => [c.type, c.path, c.sha256])).toEqual([
      ['full', full.locations[0]!.path, full.sha256],
      ['diff', diff.locations[0]!.path, diff.sha256],
    ]);
    const laterFiles = path.join(later.to, 'files', 'app-files', path.relative('/', job.dataDir));
    expect(tree(laterFiles)).toEqual(laterTree);
    expect(readdirSync(path.join(laterFiles, 'sub'))).not.toContain('numbers.csv');
    expect(await mariaState('shop_later')).toBe(laterShop);
    expect(await pgState('ledger_later')).toBe(laterLedger);

    // At the full's slot (before the diff): the full alone, the earlier state.
    const earlier = await restore(fullSlot, 'earlier');
    expect(earlier.result.backup.workflowId).toBe(full.workflowId);
    expect(earlier.result.chain.map((c) => c.type)).toEqual(['full']);
    expect(tree(path.join(earlier.to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(earlierTree);
    expect(await mariaState('shop_earlier')).toBe(earlierShop);
    expect(await pgState('ledger_earlier')).toBe(earlierLedger);
  });
});
