import { describe, expect, it } from 'vitest';
import { mysqlSourceSchema } from '../../src/sources/mysql/schema.js';
import {
  DUMP_FLAGS, classifyMysqlFailure, clientArgs, dumpArgs, hasDumpTrailer, optionFileText, parseToolVersion, quoteOptionValue,
} from '../../src/sources/mysql/args.js';

const PASSWORD = 'p#ss "w0rd" \\ x';

function cfg(patch: Record<string, unknown> = {}) {
  return mysqlSourceSchema.parse({ type: 'mysql', name: 'db', host: 'db.example', user: 'backup', password: { env: 'X' }, ...patch });
}

describe('mysql option file', () => {
  it('quotes values with the escapes the client library reads', () => {
    expect(quoteOptionValue('plain')).toBe('"plain"');
    expect(quoteOptionValue('a#b')).toBe('"a#b"');
    expect(quoteOptionValue('say "hi"')).toBe('"say \\"hi\\""');
    expect(quoteOptionValue('back\\slash')).toBe('"back\\\\slash"');
    expect(quoteOptionValue('line\nbreak\ttab\r')).toBe('"line\\nbreak\\ttab\\r"');
    expect(quoteOptionValue("it's")).toBe('"it\'s"');
  });

  it('carries user, password and a TCP connection (also for localhost)', () => {
    expect(optionFileText(cfg({ host: 'localhost', port: 3307 }), PASSWORD)).toBe([
      '[client]', 'user="backup"', 'password="p#ss \\"w0rd\\" \\\\ x"', 'host="localhost"', 'port=3307', 'protocol=TCP', '',
    ].join('\n'));
  });

  it('uses the socket when configured, leaves the password out when there is none, and adds clientOptions', () => {
    const text = optionFileText(cfg({ host: undefined, socket: '/run/mysqld/mysqld.sock', clientOptions: { 'ssl-ca': '/etc/ca.pem', 'ssl-verify-server-cert': true, compress: false } }), undefined);
    expect(text).toBe([
      '[client]', 'user="backup"', 'socket="/run/mysqld/mysqld.sock"', 'protocol=SOCKET', 'ssl-ca="/etc/ca.pem"', 'ssl-verify-server-cert', '',
    ].join('\n'));
  });
});

describe('mysql dump arguments', () => {
  it('start with the option file and never contain a secret', () => {
    const args = dumpArgs(cfg({ databases: ['shop', '-odd'] }), '/staging/.db.my.cnf');
    expect(args[0]).toBe('--defaults-file=/staging/.db.my.cnf');
    expect(args).toEqual(['--defaults-file=/staging/.db.my.cnf', ...DUMP_FLAGS, '--databases', '--', 'shop', '-odd']);
    expect(args.join(' ')).not.toMatch(/password|w0rd|-p/);
    expect(DUMP_FLAGS).toEqual(expect.arrayContaining(['--single-transaction', '--routines', '--triggers', '--events', '--hex-blob', '--quick']));
  });

  it('dump all databases when none are listed, with extra arguments before the selection', () => {
    expect(dumpArgs(cfg({ extraArgs: ['--ignore-table=shop.cache'] }), '/f')).toEqual(['--defaults-file=/f', ...DUMP_FLAGS, '--ignore-table=shop.cache', '--all-databases']);
  });

  it('client arguments carry the query, not the credentials', () => {
    expect(clientArgs('/f', 'SELECT 1')).toEqual(['--defaults-file=/f', '--batch', '--skip-column-names', '--raw', '--execute', 'SELECT 1']);
  });
});

describe('mysql config', () => {
  it('needs exactly one of host or socket', () => {
    expect(() => mysqlSourceSchema.parse({ type: 'mysql', name: 'x', user: 'u' })).toThrow(/exactly one of host/);
    expect(() => mysqlSourceSchema.parse({ type: 'mysql', name: 'x', user: 'u', host: 'h', socket: '/s' })).toThrow(/exactly one of host/);
    const c = mysqlSourceSchema.parse({ type: 'mysql', name: 'x', user: 'u', socket: '/s' });
    expect(c).toMatchObject({ port: 3306, minSize: 1, extraArgs: [], clientOptions: {} });
    expect(c.databases).toBeUndefined();
  });

  it('refuses extra arguments that would put a password on the command line or drop the trailer', () => {
    for (const bad of ['-psecret', '--password=secret', '--password', '--defaults-extra-file=/x', '--no-defaults', '--skip-comments', '--compact', '--result-file=/tmp/x', '--tab=/tmp', '--xml']) {
      expect(() => cfg({ extraArgs: [bad] }), bad).toThrow(/password on the command line/);
    }
    for (const ok of ['--ignore-table=a.b', '--tables', '--max-allowed-packet=1G', '-P3307', '--skip-lock-tables']) {
      expect(() => cfg({ extraArgs: [ok] }), ok).not.toThrow();
    }
  });

  it('reads minSize as a size', () => {
    expect(cfg({ minSize: '5MB' }).minSize).toBe(5_000_000);
  });
});

describe('mysql dump trailer', () => {
  const complete = 'INSERT INTO t VALUES (1);\n/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;\n\n-- Dump completed on 2025-11-04  3:00:25\n';

  it('is found when it is the last non-empty line', () => {
    expect(hasDumpTrailer(Buffer.from(complete))).toBe(true);
    expect(hasDumpTrailer(`${complete}\n\n`)).toBe(true);
    expect(hasDumpTrailer(complete.replace(/\n/g, '\r\n'))).toBe(true);
    expect(hasDumpTrailer('-- Dump completed\n')).toBe(true);
  });

  it('is missing in a truncated dump, even if the text occurs earlier', () => {
    expect(hasDumpTrailer('')).toBe(false);
    expect(hasDumpTrailer('INSERT INTO t VALUES (1),(2')).toBe(false);
    expect(hasDumpTrailer(`${complete}INSERT INTO t VALUES (3`)).toBe(false);
    expect(hasDumpTrailer("INSERT INTO t VALUES ('\\n-- Dump completed on 2025')")).toBe(false);
    expect(hasDumpTrailer('-- Dump completedX\n')).toBe(false);
    expect(hasDumpTrailer('  -- Dump completed\n')).toBe(false);
  });
});

describe('mysql tool version and failures', () => {
  it('reads versions of mariadb-dump and mysqldump', () => {
    expect(parseToolVersion('mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)\n')).toBe('10.11.19-MariaDB');
    expect(parseToolVersion('mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)')).toBe('8.0.36');
    expect(parseToolVersion('')).toBe('unknown');
  });

  it('sorts failures: login refused, unknown database, privileges, unreachable, other', () => {
    expect(classifyMysqlFailure('mariadb-dump: Got error: 1045: "Access denied for user \'b\'@\'localhost\' (using password: YES)" when trying to connect'))
      .toEqual({ code: 'DATABASE_AUTH', kind: 'auth' });
    expect(classifyMysqlFailure('ERROR 1049 (42000): Unknown database \'nope\'')).toEqual({ code: 'SOURCE_UNREADABLE', kind: 'unknown-database' });
    expect(classifyMysqlFailure('mysqldump: Got error: 1044: "Access denied for user \'b\'@\'%\' to database \'x\'" when selecting the database'))
      .toEqual({ code: 'SOURCE_UNREADABLE', kind: 'privileges' });
    expect(classifyMysqlFailure("ERROR 2002 (HY000): Can't connect to local server through socket '/x' (2)")).toEqual({ code: 'DUMP_FAILED', kind: 'unreachable' });
    expect(classifyMysqlFailure('mariadb-dump: Error 2013: Lost connection to server during query when dumping table `t` at row: 23603'))
      .toEqual({ code: 'DUMP_FAILED', kind: 'unreachable' });
    expect(classifyMysqlFailure('something else')).toEqual({ code: 'DUMP_FAILED', kind: 'other' });
  });
});
