import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Job, MysqlSource, PostgresSource } from '../config/schema.js';
import type { DbTarget } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { dropMysql, dropPostgres, loadMysql, loadPostgres, pgDumpFileFor } from '../restore/databases.js';
import { LAYOUT } from '../restore/paths.js';
import { stagingDir } from '../state/staging.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';

export interface LoadDatabasesInput {
  job: string;
  workflowId: string;
  /** The restored directory holding the dumps. */
  dir: string;
  targets: DbTarget[];
  /** A drill: the job's `drill.servers` connections, and pg_restore without owners and privileges. */
  drill?: boolean;
}

/** The connection for a target: the source's, with a drill's server override. Secrets stay references. */
function connectionOf(job: Job, t: DbTarget, drill: boolean): MysqlSource | PostgresSource {
  const src = job.sources.find((s) => s.name === t.source);
  if (!src || src.type !== t.type) throw new BackupError('CONFIG_INVALID', `the config has no ${t.type} source "${t.source}" any more; its dump cannot be loaded`);
  const o = drill ? job.drill.servers[t.source] : undefined;
  if (!o) return src;
  if (src.type === 'mysql') {
    const merged = { ...src, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as MysqlSource;
    if (o.socket) merged.host = undefined;
    else if (o.host) merged.socket = undefined;
    return merged;
  }
  return { ...src, ...Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'socket')), ...(o.socket ? { host: o.socket } : {}) } as PostgresSource;
}

/** Loads each dumped database into its target (a new database, created here) with mariadb or pg_restore. */
export function loadDatabases(deps: ActivityDeps) {
  return (input: LoadDatabasesInput): Promise<{ loaded: (DbTarget & { ms: number })[] }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    const ctx = Context.current();
    const scratch = stagingDir(config, input.workflowId);
    await mkdir(scratch, { recursive: true, mode: 0o700 });
    const timer = setInterval(() => ctx.heartbeat({ step: 'load databases' }), 5000);
    const loaded: (DbTarget & { ms: number })[] = [];
    try {
      for (const t of input.targets) {
        const started = Date.now();
        ctx.heartbeat({ step: 'load databases', database: `${t.source}.${t.database}` });
        const cfg = connectionOf(job, t, input.drill ?? false);
        if (cfg.type === 'mysql') {
          await loadMysql(cfg, path.join(input.dir, LAYOUT.mysql(t.source)), t.database, t.target, scratch, ctx.cancellationSignal);
        } else {
          await loadPostgres(cfg, path.join(input.dir, LAYOUT.postgres(t.source), pgDumpFileFor(t.database)), t.target, { signal: ctx.cancellationSignal, withoutOwners: input.drill ?? false });
        }
        loaded.push({ ...t, ms: Date.now() - started });
      }
      return { loaded };
    } finally {
      clearInterval(timer);
    }
  });
}

/** Drops a drill's scratch databases (never anything else: only names the drill made). */
export function dropDatabases(deps: ActivityDeps) {
  return (input: { job: string; workflowId: string; targets: DbTarget[] }): Promise<{ dropped: string[] }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    const scratch = stagingDir(config, input.workflowId);
    await mkdir(scratch, { recursive: true, mode: 0o700 });
    const dropped: string[] = [];
    for (const t of input.targets) {
      if (!t.target.startsWith('backupctl_drill_')) throw new Error(`refusing to drop ${t.target}: not a drill's scratch database`);
      const cfg = connectionOf(job, t, true);
      if (cfg.type === 'mysql') await dropMysql(cfg, t.target, scratch);
      else await dropPostgres(cfg, t.target);
      dropped.push(t.target);
    }
    return { dropped };
  });
}
