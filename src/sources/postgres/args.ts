import { createHash } from 'node:crypto';
import type { PostgresSourceConfig as Config } from './schema.js';
import type { ErrorCode } from '../../errors.js';
import { childEnv } from '../../lib/process.js';

/** Connection variables a worker's environment may carry that would change where or as whom the tools connect. */
const INHERITED_CONNECTION_VARS = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGSERVICE', 'PGOPTIONS', 'PGSSLMODE'];

/**
 * The environment of pg_dump, pg_dumpall, pg_restore and psql: the connection in PG* variables and the password in
 * PGPASSWORD, in the child's environment only (never on a command line, never in the worker's own environment), on top
 * of the minimal child environment (`childEnv()`: nothing else of the worker's).
 */
export function pgEnv(cfg: Pick<Config, 'host' | 'port' | 'user' | 'sslMode'>, password: string | undefined, base: NodeJS.ProcessEnv = childEnv()): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of INHERITED_CONNECTION_VARS) delete env[k];
  env.PGHOST = cfg.host;
  env.PGPORT = String(cfg.port);
  env.PGUSER = cfg.user;
  if (password !== undefined) env.PGPASSWORD = password;
  if (cfg.sslMode) env.PGSSLMODE = cfg.sslMode;
  env.PGAPPNAME = 'backupctl';
  env.PGCONNECT_TIMEOUT ??= '15';
  return env;
}

/** A libpq connection string naming only the database, so that any database name (with `=`, spaces, quotes) is taken literally. */
export function conninfoDbname(db: string): string {
  return `dbname='${db.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The file name of a database's dump inside the component: the name itself when it is plain, else percent-encoded;
 * over 90 characters it is shortened and made unique with a hash. The stats map each database to its file.
 */
export function dumpFileName(db: string): string {
  let base = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(db) && db !== '.' && db !== '..'
    ? db
    : Array.from(Buffer.from(db, 'utf8')).map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9_.-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }).join('');
  if (base.length > 90) base = `${base.slice(0, 70)}~${createHash('sha256').update(db).digest('hex').slice(0, 12)}`;
  return `${base}.dump`;
}

export const GLOBALS_FILE = 'globals.sql';

/** pg_dump: custom format, uncompressed (the component is compressed with zstd -T0 as a whole), to a spool file. */
export function pgDumpArgs(cfg: Pick<Config, 'extraArgs'>, db: string, file: string): string[] {
  return ['--format=custom', '--compress=0', `--file=${file}`, ...cfg.extraArgs, `--dbname=${conninfoDbname(db)}`];
}

export function pgDumpallArgs(cfg: Pick<Config, 'connectDatabase' | 'rolePasswords'>, file: string): string[] {
  const args = ['--globals-only', `--file=${file}`, `--dbname=${conninfoDbname(cfg.connectDatabase)}`];
  if (!cfg.rolePasswords) args.push('--no-role-passwords');
  return args;
}

export function pgRestoreCheckArgs(mode: Config['restoreCheck'], file: string): string[] {
  return mode === 'full' ? ['--file=/dev/null', file] : ['--list', file];
}

/** The query run before every dump: server version, current user's superuser flag, and the dumpable databases. */
export const FACTS_SQL = `SELECT json_build_object(
  'version', current_setting('server_version'),
  'versionNum', current_setting('server_version_num')::int,
  'superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
  'databases', (SELECT coalesce(json_agg(datname ORDER BY datname), '[]'::json) FROM pg_database WHERE datallowconn AND NOT datistemplate)
)`;

export const SIZES_SQL = `SELECT coalesce(json_object_agg(datname, pg_database_size(oid)), '{}'::json) FROM pg_database
  WHERE datallowconn AND NOT datistemplate AND has_database_privilege(datname, 'CONNECT')`;

export function psqlArgs(db: string, sql: string): string[] {
  return ['--no-psqlrc', '--no-align', '--tuples-only', '--quiet', '--set=ON_ERROR_STOP=1', `--dbname=${conninfoDbname(db)}`, `--command=${sql}`];
}

/** `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `15.18`. */
export function parsePgToolVersion(text: string): string {
  return /\)\s+(\d+(?:\.\d+)*)/.exec(text)?.[1] ?? /(\d+\.\d+)/.exec(text)?.[1] ?? 'unknown';
}

/** Major version as a number: `15.18 (Debian …)` → 15, `16beta1` → 16, `9.6.24` → 9.6; NaN when unreadable. */
export function majorVersion(version: string): number {
  const m = /^(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m) return NaN;
  const major = Number(m[1]);
  return major >= 10 ? major : Number(`${major}.${m[2] ?? 0}`);
}

/**
 * pg_dumpall writes `-- PostgreSQL database cluster dump complete` at its very end (15.14+ may add `\unrestrict`
 * lines before it). Required within the last lines of globals.sql.
 */
export function hasGlobalsTrailer(tail: string): boolean {
  const lines = tail.split('\n').map((l) => l.trim()).filter((l) => l !== '' && l !== '--' && !l.startsWith('\\unrestrict'));
  return lines.at(-1) === '-- PostgreSQL database cluster dump complete';
}

export interface TocListing {
  /** From the header: the archive's format (`CUSTOM`) and database, and its number of TOC entries. */
  format: string | undefined;
  dbname: string | undefined;
  tocEntries: number | undefined;
  /** Listed entries that are table data. */
  tableData: number;
}

/** Reads the header and entries of a `pg_restore --list` output. */
export function parseTocListing(list: string): TocListing {
  const header = (key: string) => new RegExp(`^;\\s+${key}: (.*)$`, 'm').exec(list)?.[1]?.trim();
  const toc = header('TOC Entries');
  let tableData = 0;
  for (const line of list.split('\n')) if (/^\d+;\s*\d+\s+\d+\s+TABLE DATA\s/.test(line)) tableData++;
  return { format: header('Format'), dbname: header('dbname'), tocEntries: toc === undefined ? undefined : Number(toc), tableData };
}

export type PgFailure = { code: ErrorCode; kind: 'auth' | 'unknown-database' | 'privileges' | 'version' | 'unreachable' | 'other' };

/** Sorts a libpq tool's failure by its stderr. */
export function classifyPgFailure(stderr: string): PgFailure {
  if (/password authentication failed|no password supplied|authentication failed|role ".*" does not exist|no pg_hba\.conf entry/.test(stderr)) {
    return { code: 'DATABASE_AUTH', kind: 'auth' };
  }
  if (/database ".*" does not exist/.test(stderr)) return { code: 'SOURCE_UNREADABLE', kind: 'unknown-database' };
  if (/server version mismatch|aborting because of server version/.test(stderr)) return { code: 'SOURCE_UNREADABLE', kind: 'version' };
  if (/permission denied|must be superuser|insufficient privilege/i.test(stderr)) return { code: 'SOURCE_UNREADABLE', kind: 'privileges' };
  if (/could not connect|Connection refused|connection to server .* failed|server closed the connection|terminating connection|could not translate host name|timeout expired|No such file or directory/.test(stderr)) {
    return { code: 'DUMP_FAILED', kind: 'unreachable' };
  }
  return { code: 'DUMP_FAILED', kind: 'other' };
}
