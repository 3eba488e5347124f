import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Job, SourceConfig } from '../config/schema.js';
import type { DbTarget } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { sourcePlugin } from '../sources/index.js';
import type { DatabaseHooks, ScratchServer } from '../sources/types.js';
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
 * Where a target is loaded: a restore loads into the source's own server. A drill loads into `drill.servers.<source>`
 * when the job names one, into the source's own server only with `drill.allowSourceServer: true`, and otherwise into a
 * throwaway server it starts on the worker (`scratch`). Secrets stay references.
 */
function connectionOf(job: Job, t: DbTarget, drill: boolean): { hooks: DatabaseHooks<SourceConfig>; src: SourceConfig; cfg: SourceConfig; scratch: boolean; where?: string } {
  const src = job.sources.find((s) => s.name === t.source);
  const hooks = src?.type === t.type ? sourcePlugin(src.type).database : undefined;
  if (!src || !hooks) throw new BackupError('CONFIG_INVALID', `the config has no ${t.type} source "${t.source}" any more; its dump cannot be loaded`);
  if (!drill) return { hooks, src, cfg: src, scratch: false };
  const o = job.drill.servers[t.source];
  if (o) return { hooks, src, cfg: hooks.connection(src, o), scratch: false, where: `drill.servers.${t.source}` };
  if (job.drill.allowSourceServer) return { hooks, src, cfg: src, scratch: false, where: 'the source\'s own server (drill.allowSourceServer)' };
  return { hooks, src, cfg: src, scratch: true };
}

/** A database loaded into its target: the server's product (for reports) and how long the load took. */
export type LoadedDatabase = DbTarget & { server: string; ms: number; where?: string };

/**
 * Loads each dumped database into its target (a new database, created here) with mariadb or pg_restore. A drill's
 * throwaway servers (one per source) live only as long as this activity: they are stopped and removed when it ends,
 * also when a load fails or the activity is cancelled.
 *
 * Idempotent under retry: the run's scratch folder records each target this run created (`load-<target>.created`,
 * written right after CREATE DATABASE) and each target it loaded completely (`load-<target>.done`). A retried attempt
 * skips the targets that are done and drops, then loads again, a target an earlier attempt created but did not finish;
 * a database this run did not create is never dropped (the load refuses an existing target, permanently). Loads into
 * a throwaway server need no record: each attempt has a new server.
 */
export function loadDatabases(deps: ActivityDeps) {
  return (input: LoadDatabasesInput): Promise<{ loaded: LoadedDatabase[] }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    const ctx = Context.current();
    const scratch = stagingDir(config, input.workflowId);
    await mkdir(scratch, { recursive: true, mode: 0o700 });
    const timer = setInterval(() => ctx.heartbeat({ step: 'load databases' }), 5000);
    const loaded: LoadedDatabase[] = [];
    const servers = new Map<string, ScratchServer<SourceConfig>>();
    try {
      for (const t of input.targets) {
        const started = Date.now();
        ctx.heartbeat({ step: 'load databases', database: `${t.source}.${t.database}` });
        const c = connectionOf(job, t, input.drill ?? false);
        let cfg = c.cfg;
        let where = c.where;
        if (c.scratch) {
          let server = servers.get(t.source);
          if (!server) {
            server = await c.hooks.scratchServer(c.src, ctx.cancellationSignal);
            servers.set(t.source, server);
          }
          cfg = server.connection;
          where = server.where;
        }
        const marker = (state: 'created' | 'done') => path.join(scratch, `load-${t.target}.${state}`);
        const recorded = !c.scratch;
        if (recorded && existsSync(marker('done'))) {
          loaded.push(JSON.parse(await readFile(marker('done'), 'utf8')) as LoadedDatabase);
          continue;
        }
        if (recorded && existsSync(marker('created'))) {
          // An earlier attempt of this run created the target and did not finish loading it.
          await c.hooks.drop(cfg, t.target, scratch);
          await rm(marker('created'), { force: true });
        }
        await c.hooks.load(cfg, {
          dir: input.dir, database: t.database, target: t.target, scratch, signal: ctx.cancellationSignal, drill: input.drill ?? false,
          ...(recorded ? { created: () => writeFile(marker('created'), '', { mode: 0o600 }) } : {}),
        });
        const done: LoadedDatabase = { ...t, server: c.hooks.server, ms: Date.now() - started, ...(where ? { where } : {}) };
        if (recorded) await writeFile(marker('done'), JSON.stringify(done), { mode: 0o600 });
        loaded.push(done);
      }
      return { loaded };
    } finally {
      clearInterval(timer);
      await Promise.all([...servers.values()].map((s) => s.stop()));
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
      const { hooks, cfg, scratch: throwaway } = connectionOf(job, t, true);
      if (throwaway) continue; // gone with its throwaway server
      await hooks.drop(cfg, t.target, scratch);
      dropped.push(t.target);
    }
    return { dropped };
  });
}
