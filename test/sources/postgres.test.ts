import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresSourceSchema, type PostgresSourceConfig } from '../../src/sources/postgres/schema.js';
import { PostgresSource, SPOOL_HEARTBEAT } from '../../src/sources/postgres/index.js';
import { startPostgres, type PostgresHandle } from '../helpers/postgres.js';
import { makeTempDir, runCommand, waitFor, type TempDir } from '../helpers/util.js';
import { descendants, dumpContext, dumpInto, dumpToFile, expectDumpError, fileSink, fullDisk, ls, watchChildren, zstdDecompress } from './support.js';

const PASSWORD = `pg 'secret' "pw" \\ #1`;
const PASSWORD_ENV = 'BACKUPCTL_TEST_PG_PASSWORD';
const READER_PASSWORD = 'reader-pw-4711';
const ODD = 'odd name/ü';

let pg: PostgresHandle;
let tmp: TempDir;
let n = 0;

function config(patch: Record<string, unknown> = {}): PostgresSourceConfig {
  return postgresSourceSchema.parse({
    type: 'postgres', name: 'pgmain', host: '127.0.0.1', port: pg.port, user: 'backup', password: { env: PASSWORD_ENV },
    binDir: pg.bindir, ...patch,
  });
}

async function freshStaging(): Promise<string> {
  const dir = path.join(tmp.path, `staging${++n}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Row counts and an MD5 over every row of every table of a database, in key order. */
async function fingerprint(db: string): Promise<string> {
  const tables = (await pg.sql("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1", db)).trim().split('\n').filter(Boolean);
  const parts: string[] = [];
  for (const t of tables) {
    parts.push(`${t} ${(await pg.sql(`SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '-') FROM ${t} x`, db)).trim()}`);
  }
  parts.push(await pg.sql("SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE nspname = 'public'", db));
  parts.push(await pg.sql("SELECT string_agg(viewname, ',' ORDER BY viewname) FROM pg_views WHERE schemaname = 'public'", db));
  parts.push(await pg.sql("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'", db));
  parts.push(await pg.sql("SELECT string_agg(sequencename || '=' || last_value, ',' ORDER BY sequencename) FROM pg_sequences WHERE schemaname = 'public'", db));
  return parts.join('\n');
}

async function extract(file: string, into: string): Promise<string[]> {
  const tarFile = `${file}.tar`;
  await zstdDecompress(file, tarFile);
  await mkdir(into, { recursive: true });
  const r = await runCommand('tar', ['-xf', tarFile, '-C', into]);
  expect(r.code, r.stderr).toBe(0);
  const list = await runCommand('tar', ['-tf', tarFile]);
  return list.stdout.trim().split('\n');
}

beforeAll(async () => {
  process.env[PASSWORD_ENV] = PASSWORD;
  tmp = await makeTempDir('backupctl-pg-src-');
  pg = await startPostgres();
  await pg.createRole('backup', PASSWORD, 'SUPERUSER');
  await pg.createRole('reader', READER_PASSWORD, 'IN ROLE pg_read_all_data');
  await pg.sql('CREATE ROLE app_owner NOLOGIN');
  await pg.createDatabase('app', 'app_owner');
  await pg.sql(`
    SET ROLE app_owner;
    CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, payload bytea, doc jsonb, price numeric(12,2), created timestamptz);
    INSERT INTO items SELECT i, 'Artikel ' || i || ' Ünïcødé ''quoted'' \\ tab' || chr(9) || 'end', decode(md5(i::text) || md5((i * 7)::text), 'hex'),
      jsonb_build_object('i', i, 'tags', jsonb_build_array('a', i % 10)), i * 1.25, timestamptz '2025-01-01' + i * interval '1 minute'
      FROM generate_series(1, 50000) i;
    CREATE SEQUENCE invoice_no START 1000;
    SELECT setval('invoice_no', 4242);
    CREATE INDEX items_name ON items (name);
    CREATE VIEW expensive AS SELECT * FROM items WHERE price > 100000;
    CREATE FUNCTION price_with_tax(p numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT p * 1.19';
  `, 'app');
  await pg.createDatabase('crm');
  await pg.sql('CREATE TABLE contacts (id serial PRIMARY KEY, email text UNIQUE); INSERT INTO contacts (email) SELECT i || \'@example.test\' FROM generate_series(1, 500) i;', 'crm');
  await pg.createDatabase(ODD);
  await pg.sql('CREATE TABLE t (v text); INSERT INTO t VALUES (\'odd\');', ODD);
});

afterAll(async () => {
  await pg?.stop();
  await tmp?.cleanup();
  delete process.env[PASSWORD_ENV];
});

describe('postgres source', () => {
  it('dumps every database and the globals; each dump restores with pg_restore to the same data', async () => {
    const before = await fingerprint('app');
    const beforeOdd = await fingerprint(ODD);
    const dir = await freshStaging();
    const file = path.join(tmp.path, 'all.tar.zst');
    const source = new PostgresSource(config());
    expect(source.extension).toBe('tar.zst');

    const { result, argvs, envs } = await watchChildren(dumpToFile(source, file, dumpContext(dir)), /\b(pg_dump|pg_dumpall|pg_restore|psql)\b/);
    if (result.status === 'rejected') throw result.reason;
    const { outcome } = result.value;
    // The password is only in the children's environment: never on a command line, never in the worker's environment.
    expect(argvs.some((a) => a.some((w) => w.includes('pg_dump')))).toBe(true);
    for (const argv of argvs) expect(argv.join(' ')).not.toContain('secret');
    expect(envs.some((e) => e.includes(`PGPASSWORD=${PASSWORD}`))).toBe(true);
    expect(process.env.PGPASSWORD).toBeUndefined();
    // Nothing else of the worker's environment (issue 14): the minimal base plus the connection the source configures.
    // The tools set some themselves, and a child caught after that shows them: PGSYSCONFDIR and PGLOCALEDIR (Debian's
    // pg_wrapper, when it execs the real tool; the worker has neither, checked first) and PWD (the /bin/sh through
    // which pg_dumpall runs each pg_dump: the current directory, no secret).
    expect(Object.keys(process.env).filter((k) => k === 'PGSYSCONFDIR' || k === 'PGLOCALEDIR')).toEqual([]);
    const allowed = /^(PATH|HOME|LANG|LC_[A-Z_]+|TZ|PGHOST|PGPORT|PGUSER|PGPASSWORD|PGSSLMODE|PGAPPNAME|PGCONNECT_TIMEOUT|PGSYSCONFDIR|PGLOCALEDIR|PWD)$/;
    expect(envs.length).toBeGreaterThan(0);
    for (const e of envs) expect(e.map((kv) => kv.slice(0, kv.indexOf('='))).filter((k) => !allowed.test(k))).toEqual([]);
    expect(ls(dir)).toEqual([]);

    const out = path.join(tmp.path, 'all');
    const members = await extract(file, out);
    const oddFile = 'odd%20name%2F%C3%BC.dump';
    expect(members).toEqual(['globals.sql', 'app.dump', 'crm.dump', oddFile, 'postgres.dump']);
    expect(outcome.stats).toMatchObject({
      databases: `app,crm,${ODD},postgres`, databaseCount: 4, server: pg.version,
      'database.app.bytes': statSync(path.join(out, 'app.dump')).size,
      [`database.${ODD}.file`]: oddFile,
      'database.app.tables': 1,
      'globals.bytes': statSync(path.join(out, 'globals.sql')).size,
    });
    expect(outcome.stats.tool).toMatch(/^pg_dump \d+\.\d+/);
    expect(outcome.stats.bytes).toBe(members.reduce((s, m) => s + statSync(path.join(out, m)).size, 0));
    expect(outcome.warnings).toEqual([]);

    const globals = readFileSync(path.join(out, 'globals.sql'), 'utf8');
    expect(globals).toContain('CREATE ROLE app_owner');
    expect(globals).toContain('CREATE ROLE reader');
    expect(globals).toMatch(/ALTER ROLE backup WITH SUPERUSER .* PASSWORD 'SCRAM-SHA-256/);

    // Restore by hand into fresh databases and compare.
    await pg.createDatabase('app_restored');
    let r = await pg.tool('pg_restore', ['--exit-on-error', '-d', 'app_restored', path.join(out, 'app.dump')]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fingerprint('app_restored')).toBe(before);
    await pg.createDatabase('odd_restored');
    r = await pg.tool('pg_restore', ['--exit-on-error', '-d', 'odd_restored', path.join(out, oddFile)]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fingerprint('odd_restored')).toBe(beforeOdd);
    await pg.sql('DROP DATABASE app_restored; ');
    await pg.sql('DROP DATABASE odd_restored');
  });

  it('dumps only the listed databases; restoreCheck full reads each dump completely', async () => {
    const file = path.join(tmp.path, 'crm.tar.zst');
    const { outcome } = await dumpToFile(new PostgresSource(config({ databases: ['crm'], globals: false, restoreCheck: 'full' })), file, dumpContext(await freshStaging()));
    expect(await extract(file, path.join(tmp.path, 'crm'))).toEqual(['crm.dump']);
    expect(outcome.stats).toMatchObject({ databases: 'crm', globals: 'not dumped', check: 'exit 0 and pg_restore read every dump' });
  });

  it('a non-superuser dumps the roles without passwords when rolePasswords is false, and is told so otherwise', async () => {
    const reader = { user: 'reader', password: { file: path.join(tmp.path, 'reader-pw') } };
    await writeFile(reader.password.file, `${READER_PASSWORD}\n`, { mode: 0o600 });
    const refused = await expectDumpError(new PostgresSource(config({ ...reader, databases: ['crm'] })).check(), 'SOURCE_UNREADABLE');
    expect(refused.detail).toMatch(/not a superuser.*rolePasswords: false/s);

    const file = path.join(tmp.path, 'reader.tar.zst');
    const { outcome } = await dumpToFile(new PostgresSource(config({ ...reader, databases: ['crm'], rolePasswords: false })), file, dumpContext(await freshStaging()));
    const out = path.join(tmp.path, 'reader');
    expect(await extract(file, out)).toEqual(['globals.sql', 'crm.dump']);
    expect(readFileSync(path.join(out, 'globals.sql'), 'utf8')).not.toContain('SCRAM-SHA-256');
    expect(outcome.stats.globals).toBe('roles (without passwords) and tablespaces');
  });

  it('check() logs in and names pg_dump, the server and the databases', async () => {
    const report = await new PostgresSource(config({ databases: ['app', 'crm'] })).check();
    expect(report).toMatch(/^pg_dump \d+\.\d+, server \d+\.\d+.* at 127\.0\.0\.1:\d+, 2 databases \(app, crm\)$/);
    expect(await new PostgresSource(config({ host: pg.socketDir, password: undefined, user: 'postgres' })).check()).toMatch(/at socket .*\.s\.PGSQL\.\d+, 4 databases/);
  });

  it('estimate() adds up the database sizes', async () => {
    const est = await new PostgresSource(config({ databases: ['app'] })).estimate();
    expect(est).toBeGreaterThan(10_000_000);
  });

  it('a wrong password is a permanent error naming the source and the server, never the password', async () => {
    process.env.BACKUPCTL_TEST_PG_WRONG = 'Wr0ng-Pg-Secret';
    try {
      const source = new PostgresSource(config({ password: { env: 'BACKUPCTL_TEST_PG_WRONG' } }));
      const dir = await freshStaging();
      const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'wrong.tar.zst')).out, dumpContext(dir)), 'DATABASE_AUTH');
      expect(err.permanent).toBe(true);
      expect(err.message).toContain('source "pgmain"');
      expect(err.message).toContain(`127.0.0.1:${pg.port}`);
      expect(err.message).toContain('password authentication failed for user "backup"');
      expect(err.detail).not.toContain('Wr0ng-Pg-Secret');
      expect(ls(dir)).toEqual([]);
      const checkErr = await expectDumpError(source.check(), 'DATABASE_AUTH');
      expect(checkErr.detail).not.toContain('Wr0ng-Pg-Secret');
    } finally {
      delete process.env.BACKUPCTL_TEST_PG_WRONG;
    }
  });

  it('a listed database that does not exist is a permanent error', async () => {
    const err = await expectDumpError(dumpInto(new PostgresSource(config({ databases: ['app', 'nope'] })), fileSink(path.join(tmp.path, 'nope.tar.zst')).out, dumpContext(await freshStaging())), 'SOURCE_UNREADABLE');
    expect(err.message).toContain('"nope"');
  });

  it('dumps below minSize are refused', async () => {
    const err = await expectDumpError(dumpInto(new PostgresSource(config({ databases: ['crm'], globals: false, minSize: '1GB' })), fileSink(path.join(tmp.path, 'small.tar.zst')).out, dumpContext(await freshStaging())), 'DUMP_INCOMPLETE');
    expect(err.message).toMatch(/below the minimum of 1000000000 bytes/);
  });

  it('a destination that fails (disk full) fails the dump with that error; spools removed, tools stopped', async () => {
    const dir = await freshStaging();
    const err = await dumpInto(new PostgresSource(config({ databases: ['app', 'crm'] })), fullDisk(64 * 1024), dumpContext(dir)).then(() => undefined, (e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    await waitFor(() => !descendants().some((p) => p.argv.some((a) => /pg_dump|pg_restore|zstd/.test(a))), { timeoutMs: 5000, description: 'tools gone' });
    expect(ls(dir)).toEqual([]);
  });

  describe('with a large database', () => {
    const interval = SPOOL_HEARTBEAT.intervalMs;
    afterAll(() => { SPOOL_HEARTBEAT.intervalMs = interval; });
    beforeAll(async () => {
      SPOOL_HEARTBEAT.intervalMs = 50;
      await pg.createDatabase('big');
      await pg.sql(`CREATE TABLE t (id int, a text, b text);
        INSERT INTO t SELECT i, md5(i::text), repeat(md5((i * 3)::text), 3) FROM generate_series(1, 600000) i;`, 'big');
    }, 120_000);

    const spooling = (dir: string) => waitFor(
      () => descendants().some((p) => p.argv.some((a) => a.endsWith('pg_dump'))) && existsSync(path.join(dir, '.pgmain.big.dump.spool')),
      { timeoutMs: 20_000, intervalMs: 10, description: 'pg_dump spooling' },
    );

    it('keeps the heartbeat going while it spools (ctx.heartbeat)', async () => {
      const ac = new AbortController();
      const dir = await freshStaging();
      let beatsBeforeOutput = 0;
      const sink = fileSink(path.join(tmp.path, 'beats.tar.zst'));
      const heartbeat = () => { if (sink.bytes() === 0) beatsBeforeOutput++; };
      // The source itself (not through the compress stage): what it writes to its `out` while spooling is observed.
      const dumping = new PostgresSource(config({ databases: ['big'], globals: false })).dump(sink.out, dumpContext(dir, { signal: ac.signal, heartbeat }));
      await spooling(dir);
      // The dump is private while it waits in staging.
      expect(statSync(path.join(dir, '.pgmain.big.dump.spool')).mode & 0o777).toBe(0o600);
      await waitFor(() => beatsBeforeOutput >= 2, { timeoutMs: 10_000, description: 'heartbeats while spooling' });
      expect(sink.emptyWrites()).toBe(0);
      ac.abort(new Error('enough'));
      await dumping.catch(() => undefined);
    });

    it('an abort kills pg_dump and removes the spool (heartbeat through zero-length writes without ctx.heartbeat)', async () => {
      const ac = new AbortController();
      const dir = await freshStaging();
      const sink = fileSink(path.join(tmp.path, 'aborted.tar.zst'));
      // The source itself: its zero-length writes to its `out` are what is observed.
      const dumping = new PostgresSource(config({ databases: ['big'], globals: false })).dump(sink.out, dumpContext(dir, { signal: ac.signal }));
      await spooling(dir);
      await waitFor(() => sink.emptyWrites() >= 1, { timeoutMs: 10_000, description: 'a zero-length write while spooling' });
      ac.abort(new Error('cancelled by test'));
      const started = Date.now();
      const err = await dumping.then(() => undefined, (e: unknown) => e);
      expect((err as Error).message).toBe('cancelled by test');
      expect(Date.now() - started).toBeLessThan(5000);
      await waitFor(() => !descendants().some((p) => p.argv.some((a) => /pg_dump|zstd/.test(a))), { timeoutMs: 5000, description: 'dump processes gone' });
      expect(ls(dir)).toEqual([]);
    });

    it('a connection killed mid-dump fails the dump (retryable) and nothing of it enters the component', async () => {
      const dir = await freshStaging();
      const sink = fileSink(path.join(tmp.path, 'killed.tar.zst'));
      const source = new PostgresSource(config({ databases: ['crm', 'big'], globals: false }));
      const dumping = dumpInto(source, sink.out, dumpContext(dir));
      // Terminate the backend that serves pg_dump's COPY of the big table.
      const terminated = await waitFor(async () => Number((await pg.sql(
        `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'big' AND application_name = 'backupctl' AND query LIKE 'COPY %'`,
      )).trim()) > 0, { timeoutMs: 20_000, intervalMs: 5, description: 'the COPY of big to start' });
      expect(terminated).toBe(true);
      const err = await expectDumpError(dumping, 'DUMP_FAILED');
      expect(err.permanent).toBe(false);
      expect(err.message).toMatch(/^source "pgmain": pg_dump exited 1 dumping database "big"; the dump is incomplete/);
      expect(err.message).toMatch(/terminating connection|server closed the connection|connection/);
      await sink.done().catch(() => undefined);
      expect(ls(dir)).toEqual([]);
      // What was written before the failure is crm only; big never entered the component.
      const partial = path.join(tmp.path, 'killed.tar');
      await runCommand('zstd', ['-q', '-d', '-f', '-o', partial, sink.file]);
      const list = await runCommand('tar', ['-tf', partial]);
      expect(list.stdout).not.toContain('big.dump');
    });
  });
});
