import { readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlSourceSchema, type MysqlSourceConfig } from '../../src/sources/mysql/schema.js';
import { BackupError } from '../../src/errors.js';
import { MysqlSource } from '../../src/sources/mysql/index.js';
import { startMariadb, type MariadbHandle } from '../helpers/mariadb.js';
import { makeTempDir, waitFor, type TempDir } from '../helpers/util.js';
import { descendants, dumpContext, dumpInto, dumpToFile, expectDumpError, fileSink, ls, watchChildren, zstdDecompress } from './support.js';

// A password with every character an option file could trip over.
const PASSWORD = `p#ss "w0rd" 'x' \\ ; = end`;
const PASSWORD_ENV = 'BACKUPCTL_TEST_MYSQL_PASSWORD';

let db: MariadbHandle;
let tmp: TempDir;
let n = 0;

function config(patch: Record<string, unknown> = {}): MysqlSourceConfig {
  return mysqlSourceSchema.parse({
    type: 'mysql', name: 'shopdb', host: '127.0.0.1', port: db.port, user: 'backup', password: { env: PASSWORD_ENV },
    databases: ['shop'], ...patch,
  });
}

async function freshStaging(): Promise<string> {
  const dir = path.join(tmp.path, `staging${++n}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Row counts and CHECKSUM TABLE of every table of `shop`, plus its routines, triggers, events and views. */
async function fingerprint(): Promise<string> {
  const tables = (await db.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop' AND table_type = 'BASE TABLE' ORDER BY 1")).trim().split('\n');
  const parts: string[] = [];
  for (const t of tables) {
    parts.push(`${t}: ${(await db.sql(`SELECT COUNT(*) FROM shop.\`${t}\``)).trim()} rows, ${(await db.sql(`CHECKSUM TABLE shop.\`${t}\``)).trim()}`);
  }
  parts.push(await db.sql('SET SESSION group_concat_max_len = 1 << 30; SELECT SHA2(GROUP_CONCAT(CONCAT_WS(\'|\', id, name, HEX(photo), note) ORDER BY id SEPARATOR \'\\n\'), 256) FROM shop.customers'));
  parts.push(await db.sql("SELECT routine_type, routine_name FROM information_schema.routines WHERE routine_schema = 'shop' ORDER BY 2"));
  parts.push(await db.sql("SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = 'shop' ORDER BY 1"));
  parts.push(await db.sql("SELECT event_name FROM information_schema.events WHERE event_schema = 'shop' ORDER BY 1"));
  parts.push(await db.sql("SELECT table_name FROM information_schema.views WHERE table_schema = 'shop' ORDER BY 1"));
  return parts.join('\n');
}

beforeAll(async () => {
  process.env[PASSWORD_ENV] = PASSWORD;
  tmp = await makeTempDir('backupctl-mysql-src-');
  db = await startMariadb();
  await db.createUser('backup', PASSWORD);
  await db.sql(`
    CREATE DATABASE shop CHARACTER SET utf8mb4;
    USE shop;
    CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, photo BLOB, note TEXT) ENGINE=InnoDB;
    INSERT INTO customers SELECT seq, CONCAT('Kunde ', seq, ' Ünïcødé ''quoted'' "double" \\\\ -- not a comment'), RANDOM_BYTES(64), IF(seq % 7 = 0, NULL, REPEAT('x', seq % 50)) FROM seq_1_to_20000;
    CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT NOT NULL, total DECIMAL(12,2), FOREIGN KEY (customer) REFERENCES customers(id)) ENGINE=InnoDB;
    INSERT INTO orders (customer, total) SELECT 1 + seq % 20000, seq * 1.25 FROM seq_1_to_50000;
    CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(50)) ENGINE=InnoDB;
    CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (what) VALUES (CONCAT('order ', NEW.id));
    CREATE PROCEDURE order_count(OUT c INT) SELECT COUNT(*) INTO c FROM orders;
    CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
    CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit;
    CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 1000;
    CREATE DATABASE other;
    CREATE TABLE other.t (id INT PRIMARY KEY) ENGINE=InnoDB;
    INSERT INTO other.t SELECT seq FROM seq_1_to_10;
  `);
});

afterAll(async () => {
  await db?.stop();
  await tmp?.cleanup();
  delete process.env[PASSWORD_ENV];
});

describe('mysql source (MariaDB)', () => {
  it('dumps a database that restores to the same rows, checksums, routines, triggers, events and views', async () => {
    const before = await fingerprint();
    const dir = await freshStaging();
    const file = path.join(tmp.path, 'shop.sql.zst');
    const source = new MysqlSource(config());
    expect(source.extension).toBe('sql.zst');

    const { result, argvs } = await watchChildren(dumpToFile(source, file, dumpContext(dir)), /^$/);
    expect(result.status).toBe('fulfilled');
    const { outcome, size } = (result as PromiseFulfilledResult<Awaited<ReturnType<typeof dumpToFile>>>).value;
    // No password on any command line while it ran (ps shows those), and the option file is gone.
    expect(argvs.some((a) => a[0]?.endsWith('mariadb-dump') || a[0]?.endsWith('mysqldump'))).toBe(true);
    for (const argv of argvs) expect(argv.join(' ')).not.toContain('w0rd');
    expect(ls(dir)).toEqual([]);

    const sql = path.join(tmp.path, 'shop.sql');
    await zstdDecompress(file, sql);
    const text = readFileSync(sql, 'utf8');
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^-- Dump completed on \d{4}-\d\d-\d\d/);
    expect(text).toContain('CREATE DEFINER');
    expect(outcome.stats).toMatchObject({
      bytes: statSync(sql).size, databases: 'shop', databaseCount: 1, server: db.version,
      check: 'exit 0 and trailer "-- Dump completed"',
    });
    expect(String(outcome.stats.tool)).toMatch(/^(mariadb-dump|mysqldump) \d+\.\d+\.\d+/);
    expect(outcome.warnings).toEqual([]);
    expect(size).toBe(statSync(file).size);
    expect(size).toBeLessThan(statSync(sql).size);

    // Restore by hand, the way the README says: into a fresh database, then compare.
    await db.sql('DROP DATABASE shop');
    const restored = await db.sqlFile(sql);
    expect(restored.code, restored.stderr).toBe(0);
    expect(await fingerprint()).toBe(before);
  });

  it('dumps all databases when none are listed', async () => {
    const file = path.join(tmp.path, 'all.sql.zst');
    const source = new MysqlSource(config({ databases: undefined, name: 'everything' }));
    const { outcome } = await dumpToFile(source, file, dumpContext(await freshStaging()));
    expect(String(outcome.stats.databases).split(',')).toEqual(expect.arrayContaining(['mysql', 'other', 'shop']));
    expect(String(outcome.stats.databases)).not.toMatch(/information_schema|performance_schema/);
    const sql = path.join(tmp.path, 'all.sql');
    await zstdDecompress(file, sql);
    const text = readFileSync(sql, 'utf8');
    expect(text).toContain('-- Current Database: `other`');
    expect(text).toContain('-- Current Database: `shop`');
  });

  it('connects over the Unix socket too', async () => {
    const source = new MysqlSource(config({ host: undefined, socket: db.socket, databases: ['other'] }));
    const { outcome } = await dumpToFile(source, path.join(tmp.path, 'socket.sql.zst'), dumpContext(await freshStaging()));
    expect(outcome.stats.databases).toBe('other');
    expect(await source.check()).toMatch(/at socket /);
  });

  it('check() logs in and names the dump tool, the server and the databases', async () => {
    const report = await new MysqlSource(config({ databases: ['shop', 'other'] })).check();
    expect(report).toMatch(/^(mariadb-dump|mysqldump) \d+\.\d+\.\d+\S*, server 10\.\d+\.\d+-MariaDB\S* at 127\.0\.0\.1:\d+, 2 databases \(shop, other\)$/);
  });

  it('estimate() is the size of the data', async () => {
    const est = await new MysqlSource(config()).estimate();
    expect(est).toBeGreaterThan(1_000_000);
  });

  it('a wrong password is a permanent error naming the source and the server, never the password', async () => {
    process.env.BACKUPCTL_TEST_WRONG_PW = 'Wr0ng-Secret-Pw';
    try {
      const source = new MysqlSource(config({ password: { env: 'BACKUPCTL_TEST_WRONG_PW' } }));
      const dir = await freshStaging();
      const sink = fileSink(path.join(tmp.path, 'wrong.sql.zst'));
      const err = await expectDumpError(dumpInto(source, sink.out, dumpContext(dir)), 'DATABASE_AUTH');
      expect(err.permanent).toBe(true);
      expect(err.message).toContain('source "shopdb"');
      expect(err.message).toContain(`127.0.0.1:${db.port}`);
      expect(err.message).toContain('"backup"');
      expect(err.detail).not.toContain('Wr0ng-Secret-Pw');
      expect(err.detail).not.toContain('w0rd');
      expect(ls(dir)).toEqual([]);
      const checkErr = await expectDumpError(source.check(), 'DATABASE_AUTH');
      expect(checkErr.detail).not.toContain('Wr0ng-Secret-Pw');
    } finally {
      delete process.env.BACKUPCTL_TEST_WRONG_PW;
    }
  });

  it('a missing password variable is SECRET_UNAVAILABLE', async () => {
    const source = new MysqlSource(config({ password: { env: 'BACKUPCTL_TEST_UNSET_VAR' } }));
    const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'unset.sql.zst')).out, dumpContext(await freshStaging())), 'SECRET_UNAVAILABLE');
    expect(err.message).toContain('source "shopdb"');
  });

  it('a database that does not exist is a permanent error', async () => {
    const source = new MysqlSource(config({ databases: ['shop', 'nope'] }));
    const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'nope.sql.zst')).out, dumpContext(await freshStaging())), 'SOURCE_UNREADABLE');
    expect(err.message).toContain('"nope"');
  });

  it('a dump that exits 0 without the trailer is refused', async () => {
    // The schema refuses --skip-comments; this bypasses it to prove the check itself.
    const source = new MysqlSource({ ...config({ databases: ['other'] }), extraArgs: ['--skip-comments'] });
    const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'notrailer.sql.zst')).out, dumpContext(await freshStaging())), 'DUMP_INCOMPLETE');
    expect(err.message).toContain('-- Dump completed');
    expect(err.permanent).toBe(true);
  });

  it('a dump below minSize is refused', async () => {
    const source = new MysqlSource(config({ databases: ['other'], minSize: '10MB' }));
    const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'small.sql.zst')).out, dumpContext(await freshStaging())), 'DUMP_INCOMPLETE');
    expect(err.message).toMatch(/below the minimum of 10000000 bytes/);
  });

  describe('with a large database', () => {
    beforeAll(async () => {
      // ~200 MB of SQL (random bytes as hex), generated server-side in a few seconds.
      await db.sql(`CREATE DATABASE big;
        CREATE TABLE big.t (id INT PRIMARY KEY, a CHAR(32), b VARBINARY(600)) ENGINE=InnoDB;
        USE big;
        INSERT INTO big.t SELECT seq, MD5(seq), RANDOM_BYTES(500) FROM seq_1_to_200000;`);
    }, 120_000);

    it('an abort kills the dump at once and leaves nothing behind', async () => {
      const ac = new AbortController();
      const dir = await freshStaging();
      const source = new MysqlSource(config({ databases: ['big'] }));
      const modes: number[] = [];
      const sink = fileSink(path.join(tmp.path, 'aborted.sql.zst'), {
        throttleAfter: 256 * 1024, delayMs: 20,
        onBytes: (b) => {
          // While the dump runs, the option file with the password exists, readable by its owner only.
          if (modes.length === 0) modes.push(statSync(path.join(dir, '.shopdb.my.cnf')).mode & 0o777);
          if (b > 512 * 1024 && !ac.signal.aborted) ac.abort(new Error('cancelled by test'));
        },
      });
      const started = Date.now();
      const err = await dumpInto(source, sink.out, dumpContext(dir, { signal: ac.signal })).then(() => undefined, (e: unknown) => e);
      expect((err as Error).message).toBe('cancelled by test');
      expect(modes).toEqual([0o600]);
      expect(Date.now() - started).toBeLessThan(15_000);
      await waitFor(() => !descendants().some((p) => /mariadb-dump|mysqldump|zstd/.test(p.argv[0] ?? '')), { timeoutMs: 5000, description: 'dump processes gone' });
      expect(ls(dir)).toEqual([]);
    });

    it('the server stopping mid-dump fails the dump (retryable) and the trailer is absent', async () => {
      const source = new MysqlSource(config({ databases: ['big'] }));
      const file = path.join(tmp.path, 'stopped.sql.zst');
      let stopping: Promise<void> | undefined;
      // A slow destination keeps the dump going long enough to stop the server halfway.
      const sink = fileSink(file, {
        throttleAfter: 256 * 1024, delayMs: 20,
        onBytes: (b) => { if (b > 1024 * 1024) stopping ??= db.kill('SIGTERM'); },
      });
      const err = await expectDumpError(dumpInto(source, sink.out, dumpContext(await freshStaging())), 'DUMP_FAILED');
      await stopping;
      expect(err.permanent).toBe(false);
      expect(err.message).toContain('source "shopdb"');
      expect(err.message).toMatch(/exited \d+ after \d+ bytes; the dump is incomplete/);
      expect(err.message).toMatch(/Lost connection|server has gone away|2013|2006/);
      expect(err).toBeInstanceOf(BackupError);
      await sink.done().catch(() => undefined);
      const sql = path.join(tmp.path, 'stopped.sql');
      await zstdDecompress(file, sql).catch(() => undefined);
      const size = statSync(sql, { throwIfNoEntry: false })?.size ?? 0;
      expect(size).toBeLessThan(150_000_000);
      if (size > 0) expect(readFileSync(sql, 'latin1').slice(-4096)).not.toContain('-- Dump completed');
    });
  });
});
