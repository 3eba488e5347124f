import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import { describeExit, lastLines, redact, runCapture } from '../../lib/process.js';
import { checkTargetName } from '../target-name.js';
import { conninfoDbname, dumpFileName, pgEnv, psqlArgs } from './args.js';
import type { PostgresSourceConfig as PostgresSource } from './schema.js';

/** Loading a restored dump into a new database, and dropping a drill's scratch database (the plugin's database hooks). */

const pgWhere = (cfg: PostgresSource) => `PostgreSQL at ${cfg.host}:${cfg.port}`;
const pgTool = (cfg: PostgresSource, t: string) => (cfg.binDir ? path.join(cfg.binDir, t) : t);

async function pgEnvOf(cfg: PostgresSource): Promise<{ env: NodeJS.ProcessEnv; password: string | undefined }> {
  const password = cfg.password ? await readSecret(cfg.password, `source "${cfg.name}" password`) : undefined;
  return { env: pgEnv(cfg, password), password };
}

/** The custom-format dumps in a restored PostgreSQL component directory, by database (file name without `.dump`). */
export async function pgDumpFiles(dir: string): Promise<string[]> {
  return ((await readdir(dir).catch(() => [])) as string[]).filter((f) => f.endsWith('.dump')).sort();
}

export function pgDumpFileFor(database: string): string {
  return dumpFileName(database);
}

/** Creates `target` (refusing one that exists) and restores the dump into it with pg_restore. */
export async function loadPostgres(cfg: PostgresSource, dumpFile: string, target: string, opts: { signal: AbortSignal; withoutOwners: boolean; created?: () => Promise<void> }): Promise<void> {
  checkTargetName(target);
  const { env, password } = await pgEnvOf(cfg);
  const psql = async (sql: string) => {
    const r = await runCapture(pgTool(cfg, 'psql'), psqlArgs(cfg.connectDatabase, sql), { env, signal: opts.signal });
    if (r.code !== 0) throw new BackupError('RESTORE_FAILED', `${pgWhere(cfg)}: ${sql.split(' ').slice(0, 3).join(' ')} failed: ${redact(lastLines(r.stderr, 5), [password])}`, { hint: 'the source\'s user needs CREATEDB' });
    return r.stdout;
  };
  if ((await psql(`SELECT count(*) FROM pg_database WHERE datname = '${target}'`)).trim() !== '0') {
    throw new BackupError('RESTORE_TARGET_EXISTS', `${pgWhere(cfg)}: database ${target} exists; a restore loads only into a new database`, { hint: 'choose another target name, or drop that database first' });
  }
  await psql(`CREATE DATABASE "${target}"`);
  await opts.created?.();
  const args = ['--exit-on-error', ...(opts.withoutOwners ? ['--no-owner', '--no-acl'] : []), `--dbname=${conninfoDbname(target)}`, dumpFile];
  const r = await runCapture(pgTool(cfg, 'pg_restore'), args, { env, signal: opts.signal });
  if (r.code !== 0) {
    throw new BackupError('RESTORE_FAILED', `pg_restore of ${path.basename(dumpFile)} (source "${cfg.name}") into ${target} on ${pgWhere(cfg)} ${describeExit(r)}: ${redact(lastLines(r.stderr, 5), [password])}`);
  }
}

export async function dropPostgres(cfg: PostgresSource, target: string): Promise<void> {
  checkTargetName(target);
  const { env, password } = await pgEnvOf(cfg);
  const r = await runCapture(pgTool(cfg, 'psql'), psqlArgs(cfg.connectDatabase, `DROP DATABASE IF EXISTS "${target}"`), { env });
  if (r.code !== 0) throw new BackupError('RESTORE_FAILED', `${pgWhere(cfg)}: dropping ${target}: ${redact(lastLines(r.stderr, 5), [password])}`, { permanent: false });
}
