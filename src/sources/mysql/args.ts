import type { MysqlSourceConfig as Config } from './schema.js';
import type { ErrorCode } from '../../errors.js';

/** Flags of every dump: a consistent InnoDB snapshot, streamed row by row, with routines, triggers, events and blobs as hex. */
export const DUMP_FLAGS = ['--single-transaction', '--quick', '--routines', '--triggers', '--events', '--hex-blob', '--no-tablespaces'] as const;

/** Schemas that mariadb-dump/mysqldump --all-databases leaves out; listed for the stats the same way. */
export const SYSTEM_SCHEMAS = new Set(['information_schema', 'performance_schema', 'sys', 'ndbinfo']);

/**
 * A value for a MySQL/MariaDB option file, double-quoted with the escapes the client library understands
 * (mysys `my_default.c`: `\\`, `\"`, `\n`, `\r`, `\t`; `#` inside quotes is not a comment).
 */
export function quoteOptionValue(value: string): string {
  const escaped = value.replace(/[\\"\n\r\t]/g, (c) => ({ '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c]!);
  return `"${escaped}"`;
}

/** Where the server is, for messages: `127.0.0.1:3306` or `socket /run/mysqld/mysqld.sock`. */
export function serverLabel(cfg: Pick<Config, 'host' | 'port' | 'socket'>): string {
  return cfg.socket !== undefined ? `socket ${cfg.socket}` : `${cfg.host}:${cfg.port}`;
}

/**
 * The `[client]` option file that carries the connection and the password, so that neither is on a command line.
 * It is passed with `--defaults-file`, so no other option file (/etc/mysql/my.cnf, ~/.my.cnf) can change the user, the
 * password or the dump flags.
 */
export function optionFileText(cfg: Pick<Config, 'host' | 'port' | 'socket' | 'user' | 'clientOptions'>, password: string | undefined): string {
  const lines = ['[client]', `user=${quoteOptionValue(cfg.user)}`];
  if (password !== undefined) lines.push(`password=${quoteOptionValue(password)}`);
  if (cfg.socket !== undefined) {
    lines.push(`socket=${quoteOptionValue(cfg.socket)}`, 'protocol=SOCKET');
  } else {
    // TCP even for "localhost", which the client would otherwise take as "the default socket".
    lines.push(`host=${quoteOptionValue(cfg.host ?? 'localhost')}`, `port=${cfg.port}`, 'protocol=TCP');
  }
  for (const [k, v] of Object.entries(cfg.clientOptions)) {
    if (v === false) continue;
    lines.push(v === true ? k : `${k}=${quoteOptionValue(String(v))}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Arguments of mariadb-dump/mysqldump. The option file must come first. No secret is ever among them. */
export function dumpArgs(cfg: Pick<Config, 'databases' | 'extraArgs'>, optionFile: string): string[] {
  const args = [`--defaults-file=${optionFile}`, ...DUMP_FLAGS, ...cfg.extraArgs];
  if (cfg.databases) args.push('--databases', '--', ...cfg.databases);
  else args.push('--all-databases');
  return args;
}

/** Arguments of the mariadb/mysql client for one query, tab-separated output without headers. */
export function clientArgs(optionFile: string, sql: string): string[] {
  return [`--defaults-file=${optionFile}`, '--batch', '--skip-column-names', '--raw', '--execute', sql];
}

export const TRAILER = '-- Dump completed';

/**
 * Whether the end of a dump is the trailer mariadb-dump/mysqldump writes after everything else
 * (`-- Dump completed on 2025-11-04 03:00:25`, or `-- Dump completed` with --skip-dump-date): the last non-empty line
 * must start with it. Data lines never start with `--` (strings are escaped), so it cannot be faked by table contents.
 */
export function hasDumpTrailer(tail: Buffer | string): boolean {
  const text = typeof tail === 'string' ? tail : tail.toString('latin1');
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    return line.startsWith(TRAILER) && (line.length === TRAILER.length || line[TRAILER.length] === ' ');
  }
  return false;
}

/** `mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for …` → `10.11.19-MariaDB`; `mysqldump  Ver 8.0.36 for Linux …` → `8.0.36`. */
export function parseToolVersion(text: string): string {
  const first = text.split('\n')[0] ?? '';
  const distrib = /Distrib\s+([^\s,]+)/.exec(first);
  if (distrib) return distrib[1]!;
  const ver = /Ver\s+([^\s,]+)/.exec(first);
  return ver ? ver[1]! : first.trim() || 'unknown';
}

export type MysqlFailure = { code: ErrorCode; kind: 'auth' | 'unknown-database' | 'privileges' | 'unreachable' | 'other' };

/** Sorts a client or dump tool failure by its stderr (MySQL/MariaDB error numbers and their texts). */
export function classifyMysqlFailure(stderr: string): MysqlFailure {
  if (/\b1045\b|Access denied for user .*\(using password|\b(1251|2059|2061)\b|Authentication plugin/.test(stderr)) return { code: 'DATABASE_AUTH', kind: 'auth' };
  if (/\b1049\b|Unknown database/.test(stderr)) return { code: 'SOURCE_UNREADABLE', kind: 'unknown-database' };
  if (/\b(1044|1142|1143|1227|1370)\b|Access denied|command denied/.test(stderr)) return { code: 'SOURCE_UNREADABLE', kind: 'privileges' };
  if (/\b(2002|2003|2005|2006|2013)\b|Can't connect|Lost connection|server has gone away|Unknown (MySQL|MariaDB) server host/.test(stderr)) return { code: 'DUMP_FAILED', kind: 'unreachable' };
  return { code: 'DUMP_FAILED', kind: 'other' };
}
