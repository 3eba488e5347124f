import { mkdir } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { Job, SourceConfig } from '../config/schema.js';
import type { DbTarget } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { sourcePlugin } from '../sources/index.js';
import type { DatabaseHooks } from '../sources/types.js';
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

/**
 * The database hooks of a target's source and its connection: the source's, with a drill's server override. Secrets
 * stay references.
 */
function connectionOf(job: Job, t: DbTarget, drill: boolean): { hooks: DatabaseHooks<SourceConfig>; cfg: SourceConfig } {
  const src = job.sources.find((s) => s.name === t.source);
  const hooks = src?.type === t.type ? sourcePlugin(src.type).database : undefined;
  if (!src || !hooks) throw new BackupError('CONFIG_INVALID', `the config has no ${t.type} source "${t.source}" any more; its dump cannot be loaded`);
  const o = drill ? job.drill.servers[t.source] : undefined;
  return { hooks, cfg: o ? hooks.connection(src, o) : src };
}

/** A database loaded into its target: the server's product (for reports) and how long the load took. */
export type LoadedDatabase = DbTarget & { server: string; ms: number };

/** Loads each dumped database into its target (a new database, created here) with mariadb or pg_restore. */
export function loadDatabases(deps: ActivityDeps) {
  return (input: LoadDatabasesInput): Promise<{ loaded: LoadedDatabase[] }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    const ctx = Context.current();
    const scratch = stagingDir(config, input.workflowId);
    await mkdir(scratch, { recursive: true, mode: 0o700 });
    const timer = setInterval(() => ctx.heartbeat({ step: 'load databases' }), 5000);
    const loaded: LoadedDatabase[] = [];
    try {
      for (const t of input.targets) {
        const started = Date.now();
        ctx.heartbeat({ step: 'load databases', database: `${t.source}.${t.database}` });
        const { hooks, cfg } = connectionOf(job, t, input.drill ?? false);
        await hooks.load(cfg, { dir: input.dir, database: t.database, target: t.target, scratch, signal: ctx.cancellationSignal, drill: input.drill ?? false });
        loaded.push({ ...t, server: hooks.server, ms: Date.now() - started });
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
      const { hooks, cfg } = connectionOf(job, t, true);
      await hooks.drop(cfg, t.target, scratch);
      dropped.push(t.target);
    }
    return { dropped };
  });
}
