import path from 'node:path';
import type { PgbackrestJob } from '../config/schema.js';
import { BackupError, type ErrorCode } from '../errors.js';
import { childEnv, lastLines, runCapture } from '../lib/process.js';
import { asJobUser } from './cli.js';

/**
 * Runs the drill's check query with psql over a Unix socket (no password: the primary's local authentication, or
 * the scratch server's trust) as the job's account, and returns its unaligned output, trimmed.
 */
export async function runCheckSql(job: Pick<PgbackrestJob, 'user'>, conn: { host: string; port: number; user: string; bindir?: string }, sql: string, database: string, code: ErrorCode, signal?: AbortSignal): Promise<string> {
  const psql = conn.bindir ? path.join(conn.bindir, 'psql') : 'psql';
  const env = childEnv({ PGHOST: conn.host, PGPORT: String(conn.port), PGUSER: conn.user, PGDATABASE: database, PGAPPNAME: 'backupctl', PGCONNECT_TIMEOUT: '15' });
  const [cmd, args] = asJobUser(job, psql, ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  const r = await runCapture(cmd, args, { env, signal, maxStdout: 1 << 20 });
  if (r.code !== 0) throw new BackupError(code, `the check query failed on ${conn.host}:${conn.port} (${database}): ${lastLines(r.stderr || r.stdout, 5)}`);
  return r.stdout.trim();
}
