import { describe, expect, it } from 'vitest';
import { postgresSourceSchema } from '../../src/sources/postgres/schema.js';
import {
  classifyPgFailure, conninfoDbname, dumpFileName, hasGlobalsTrailer, majorVersion, parsePgToolVersion, parseTocListing,
  pgDumpArgs, pgDumpallArgs, pgEnv, pgRestoreCheckArgs, psqlArgs,
} from '../../src/sources/postgres/args.js';

function cfg(patch: Record<string, unknown> = {}) {
  return postgresSourceSchema.parse({ type: 'postgres', name: 'pg', host: 'db.example', user: 'backup', password: { env: 'X' }, ...patch });
}

describe('postgres environment', () => {
  it('puts the connection and the password into the child environment only, dropping inherited connection variables', () => {
    const base = { PATH: '/usr/bin', PGPASSWORD: 'inherited', PGDATABASE: 'other', PGHOSTADDR: '10.0.0.1', PGSSLROOTCERT: '/ca.pem' };
    const env = pgEnv(cfg({ port: 5433, sslMode: 'verify-full' }), 's3cret', base);
    expect(env).toEqual({
      PATH: '/usr/bin', PGSSLROOTCERT: '/ca.pem', PGHOST: 'db.example', PGPORT: '5433', PGUSER: 'backup', PGPASSWORD: 's3cret',
      PGSSLMODE: 'verify-full', PGAPPNAME: 'backupctl', PGCONNECT_TIMEOUT: '15',
    });
    expect(base.PGPASSWORD).toBe('inherited');
    expect(pgEnv(cfg(), undefined, base).PGPASSWORD).toBeUndefined();
  });

  it('the arguments of every tool carry no secret', () => {
    const all = [
      ...pgDumpArgs(cfg(), 'app', '/s/app.spool'), ...pgDumpallArgs(cfg(), '/s/g.spool'), ...pgRestoreCheckArgs('list', '/s/app.spool'),
      ...psqlArgs('postgres', 'SELECT 1'),
    ].join(' ');
    expect(all).not.toMatch(/password|secret|PGPASSWORD/i);
  });
});

describe('postgres arguments', () => {
  it('pg_dump: custom format, uncompressed, to the spool file, database as a quoted conninfo', () => {
    expect(pgDumpArgs(cfg({ extraArgs: ['--exclude-table-data=audit'] }), "it's=odd", '/s/x.spool')).toEqual([
      '--format=custom', '--compress=0', '--file=/s/x.spool', '--exclude-table-data=audit', "--dbname=dbname='it\\'s=odd'",
    ]);
  });

  it('pg_dumpall: globals only, optionally without role passwords', () => {
    expect(pgDumpallArgs(cfg(), '/s/g')).toEqual(['--globals-only', '--file=/s/g', "--dbname=dbname='postgres'"]);
    expect(pgDumpallArgs(cfg({ rolePasswords: false, connectDatabase: 'maint' }), '/s/g')).toEqual(['--globals-only', '--file=/s/g', "--dbname=dbname='maint'", '--no-role-passwords']);
  });

  it('pg_restore check: --list, or a full read to /dev/null', () => {
    expect(pgRestoreCheckArgs('list', '/f')).toEqual(['--list', '/f']);
    expect(pgRestoreCheckArgs('full', '/f')).toEqual(['--file=/dev/null', '/f']);
  });

  it('quotes database names for libpq', () => {
    expect(conninfoDbname('app')).toBe("dbname='app'");
    expect(conninfoDbname("a b'c\\d")).toBe("dbname='a b\\'c\\\\d'");
  });

  it('refuses pg_dump arguments that backupctl sets', () => {
    for (const bad of ['-Fp', '--format=plain', '-Z9', '--compress=9', '-f', '--file=/x', '-dother', '--dbname=x', '-W', '--password']) {
      expect(() => cfg({ extraArgs: [bad] }), bad).toThrow(/sets the output file/);
    }
    expect(() => cfg({ extraArgs: ['--data-only', '--exclude-schema=tmp', '--filter=f', '--no-owner'] })).not.toThrow();
  });

  it('config defaults', () => {
    expect(cfg()).toMatchObject({ port: 5432, connectDatabase: 'postgres', globals: true, rolePasswords: true, restoreCheck: 'list', minSize: 1, extraArgs: [] });
  });
});

describe('dump file names in the component', () => {
  it('keeps plain names and percent-encodes the rest', () => {
    expect(dumpFileName('app')).toBe('app.dump');
    expect(dumpFileName('app-2.prod_x')).toBe('app-2.prod_x.dump');
    expect(dumpFileName('odd name/ü')).toBe('odd%20name%2F%C3%BC.dump');
    expect(dumpFileName('..')).toBe('...dump');
    expect(dumpFileName('-x')).toBe('-x.dump');
  });

  it('shortens long names and keeps them unique', () => {
    const a = dumpFileName('ü'.repeat(31));
    const b = dumpFileName(`${'ü'.repeat(30)}x`);
    expect(a.length).toBeLessThanOrEqual(100);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^(%C3%BC)+.*~[0-9a-f]{12}\.dump$/);
  });
});

describe('postgres checks', () => {
  it('the globals trailer is required at the end (\\unrestrict lines allowed)', () => {
    const end = '\n--\n-- PostgreSQL database cluster dump complete\n--\n\n';
    expect(hasGlobalsTrailer(`CREATE ROLE a;\n${end}`)).toBe(true);
    expect(hasGlobalsTrailer(`CREATE ROLE a;\n\\unrestrict abc\n${end}`)).toBe(true);
    expect(hasGlobalsTrailer(`CREATE ROLE a;\n${end}\\unrestrict abc\n`)).toBe(true);
    expect(hasGlobalsTrailer('CREATE ROLE a;\nALTER ROLE a WITH')).toBe(false);
    expect(hasGlobalsTrailer(`${end}CREATE ROLE b;\n`)).toBe(false);
  });

  it('reads pg_restore --list output', () => {
    const list = [
      ';', '; Archive created at 2025-11-04 03:00:00 UTC', ';     dbname: app', ';     TOC Entries: 15', ';     Compression: 0',
      ';     Format: CUSTOM', ';', '; Selected TOC Entries:', ';',
      '216; 1259 16391 TABLE public items app_owner', '3358; 0 16391 TABLE DATA public items app_owner', '3359; 0 16394 TABLE DATA public "odd table" app_owner', '',
    ].join('\n');
    expect(parseTocListing(list)).toEqual({ format: 'CUSTOM', dbname: 'app', tocEntries: 15, tableData: 2 });
    expect(parseTocListing('')).toEqual({ format: undefined, dbname: undefined, tocEntries: undefined, tableData: 0 });
  });

  it('reads versions', () => {
    expect(parsePgToolVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n')).toBe('15.18');
    expect(parsePgToolVersion('pg_dump (PostgreSQL) 17.2')).toBe('17.2');
    expect(majorVersion('15.18 (Debian 15.18-0+deb12u1)')).toBe(15);
    expect(majorVersion('9.6.24')).toBe(9.6);
    expect(majorVersion('16beta1')).toBe(16);
  });

  it('sorts failures', () => {
    expect(classifyPgFailure('pg_dump: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "backup"').code).toBe('DATABASE_AUTH');
    expect(classifyPgFailure('connection to server at "h", port 5432 failed: fe_sendauth: no password supplied').code).toBe('DATABASE_AUTH');
    expect(classifyPgFailure('FATAL:  database "nope" does not exist').kind).toBe('unknown-database');
    expect(classifyPgFailure('pg_dump: error: query failed: ERROR:  permission denied for table secret').kind).toBe('privileges');
    expect(classifyPgFailure('pg_dump: error: aborting because of server version mismatch').kind).toBe('version');
    expect(classifyPgFailure('pg_dump: error: Dumping the contents of table "t" failed: PQgetResult() failed.\nFATAL:  terminating connection due to administrator command'))
      .toEqual({ code: 'DUMP_FAILED', kind: 'unreachable' });
    expect(classifyPgFailure('connection to server at "h" (1.2.3.4), port 5432 failed: Connection refused').kind).toBe('unreachable');
  });
});
