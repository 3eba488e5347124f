import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Context, log } from '@temporalio/activity';
import { taskQueueOf } from '../config/load.js';
import { PGBACKREST_WORKFLOW, isPgbackrestResult, type PgbackrestFacts } from '../contracts/pgbackrest.js';
import { BackupError, errorMessage } from '../errors.js';
import { lastLines, runCapture } from '../lib/process.js';
import { jobRunsQuery } from '../lib/visibility.js';
import { scratchHome } from '../lib/scratch-server.js';
import { ensureOk, primaryConnection, runPgbackrest } from '../pgbackrest/cli.js';
import { readInfo } from '../pgbackrest/repo.js';
import { runCheckSql } from '../pgbackrest/sql.js';
import { safeWorkflowId } from '../repository/names.js';
import { pgbackrestContext, runActivity, type ActivityDeps } from './context.js';

export interface PgbackrestDrillPlan {
  stanza: string;
  label: string;
  type: string;
  target: 'immediate' | 'latest';
  /** What the drill check returned on the primary just after that backup (from the run that made it). */
  expected?: PgbackrestFacts['check'] & { workflowId: string };
  notifiers: string[];
  notifyOnSuccess: boolean;
  notifyTimeoutMs: number;
}

/**
 * The drill's plan: the newest backup of the stanza (pgbackrest info) and, from the completed pgbackrestWorkflow run
 * that made it, what the check query returned on the primary just after it.
 */
export function pgbackrestDrillPlan(deps: ActivityDeps) {
  return (input: { job: string }): Promise<PgbackrestDrillPlan> => runActivity(async () => {
    const { config, job } = pgbackrestContext(deps, input.job);
    const info = await readInfo(job);
    const newest = [...info.backup].sort((a, b) => a.timestamp.stop - b.timestamp.stop).at(-1);
    if (!newest) throw new BackupError('RESTORE_NOT_FOUND', `stanza "${job.stanza}" has no backup to drill`);
    let expected: PgbackrestDrillPlan['expected'];
    const client = Context.current().client;
    // This config's job (its task queue): another config's stanza of the same job name can have a backup of the same label.
    const query = `${jobRunsQuery(input.job, taskQueueOf(config, job))} AND WorkflowType="${PGBACKREST_WORKFLOW}" AND ExecutionStatus="Completed"`;
    let looked = 0;
    for await (const w of client.workflow.list({ query })) {
      if (++looked > 50) break;
      const r = await client.workflow.getHandle(w.workflowId, w.runId).result().catch(() => undefined);
      if (isPgbackrestResult(r) && r.pgbackrest.label === newest.label && r.pgbackrest.check) {
        expected = { ...r.pgbackrest.check, workflowId: w.workflowId };
        break;
      }
    }
    return {
      stanza: job.stanza, label: newest.label, type: newest.type, target: job.drill.target, ...(expected ? { expected } : {}),
      notifiers: job.notify, notifyOnSuccess: job.drill.notifyOnSuccess, notifyTimeoutMs: config.settings.notifyTimeout,
    };
  });
}

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The server binaries of a major version: /usr/lib/postgresql/<version>/bin, else `pg_config --bindir`. */
async function serverBindir(version: string | undefined): Promise<string> {
  const debian = version ? `/usr/lib/postgresql/${version}/bin` : undefined;
  if (debian && existsSync(path.join(debian, 'pg_ctl'))) return debian;
  const r = await runCapture('pg_config', ['--bindir']).catch(() => undefined);
  const dir = r?.code === 0 ? r.stdout.trim() : '';
  if (dir && existsSync(path.join(dir, 'pg_ctl'))) return dir;
  throw new BackupError('RESTORE_FAILED', `a pgBackRest drill starts the restored copy with PostgreSQL ${version ?? ''} server binaries, which are not installed on the worker`, { hint: `apt-get install postgresql-${version ?? ''}` });
}

export interface PgbackrestDrillOutcome {
  restoreMs?: number;
  checks: string[];
  problems: string[];
}

/**
 * Restores the backup into a scratch data directory (`pgbackrest restore --set=<label> --type=immediate
 * --target-action=promote`, or to the end of the archive with `target: latest`; archiving off, tablespaces mapped
 * into the scratch directory), starts a throwaway postgres on a free loopback port with its own configuration and
 * trust authentication over a private socket, runs the check query and compares it with the primary's result,
 * then stops the server and removes everything, whatever happened. The restore time (RTO) runs from the restore to
 * the check's answer.
 */
export function pgbackrestDrill(deps: ActivityDeps) {
  return (input: { job: string; workflowId: string; plan: PgbackrestDrillPlan }): Promise<PgbackrestDrillOutcome> => runActivity(async () => {
    const { job } = pgbackrestContext(deps, input.job);
    const ctx = Context.current();
    const beat = () => ctx.heartbeat({ step: 'drill' });
    beat();
    const timer = setInterval(beat, 1000);
    const out: PgbackrestDrillOutcome = { checks: [], problems: [] };
    const home = await scratchHome('pgbr-drill', job.user ?? 'postgres');
    // The restored data goes into the scratch home (private, owned by the server's account) unless drill.scratchDir
    // names a larger disk, whose path the account must be able to reach.
    const scratch = job.drill.scratchDir ? path.join(job.drill.scratchDir, safeWorkflowId(input.workflowId)) : path.join(home.dir, 'restore');
    const data = path.join(scratch, 'data');
    let bindir: string | undefined;
    let started = false;
    try {
      await mkdir(scratch, { recursive: true, mode: 0o700 });
      if (home.account) {
        const id = async (flag: string) => Number((await runCapture('id', [flag, home.account!])).stdout.trim());
        await chown(scratch, await id('-u'), await id('-g'));
      }
      const info = await readInfo(job);
      const version = info.db.at(-1)?.version;
      bindir = await serverBindir(version);
      const t0 = Date.now();
      const restoreArgs = [
        `--pg1-path=${data}`, '--archive-mode=off', `--tablespace-map-all=${path.join(scratch, 'tablespaces')}`,
        ...(input.plan.target === 'immediate' ? [`--set=${input.plan.label}`, '--type=immediate', '--target-action=promote'] : []),
      ];
      ensureOk(await runPgbackrest(job, 'restore', restoreArgs, { signal: ctx.cancellationSignal }), `pgbackrest restore of ${input.plan.label}`, 'RESTORE_FAILED');
      out.checks.push(`pgbackrest restore of ${input.plan.label} (${input.plan.target === 'immediate' ? 'to the end of the backup, promoted' : 'to the end of the archived WAL'}) into a scratch data directory`);
      const port = await freePort();
      const conf = path.join(home.dir, 'postgresql.conf');
      await writeFile(path.join(home.dir, 'pg_hba.conf'), 'local all all trust\n');
      await writeFile(path.join(home.dir, 'pg_ident.conf'), '');
      await writeFile(conf, [
        `port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${home.dir}'`, `hba_file = '${path.join(home.dir, 'pg_hba.conf')}'`,
        `ident_file = '${path.join(home.dir, 'pg_ident.conf')}'`, 'archive_mode = off', 'hot_standby = off', 'fsync = off', 'shared_buffers = 32MB', '',
      ].join('\n'));
      if (home.account) {
        const id = async (flag: string) => Number((await runCapture('id', [flag, home.account!])).stdout.trim());
        for (const f of ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf']) await chown(path.join(home.dir, f), await id('-u'), await id('-g'));
      }
      started = true;
      const start = await home.run(path.join(bindir, 'pg_ctl'), ['-D', data, '-l', path.join(home.dir, 'server.log'), '-w', '-t', '600', '-o', `-c config_file=${conf}`, 'start'], { signal: ctx.cancellationSignal });
      if (start.code !== 0) {
        const text = await readFile(path.join(home.dir, 'server.log'), 'utf8').catch(() => '');
        throw new BackupError('RESTORE_FAILED', `the restored copy did not start: ${lastLines(`${start.stderr}\n${text}`, 6)}`);
      }
      // pg_ctl returns once the server runs; it accepts connections when recovery ended (hot_standby off).
      const user = (await primaryConnection(job)).user;
      const conn = { host: home.dir, port, user, bindir };
      const deadline = Date.now() + 3_600_000;
      for (;;) {
        const state = await runCheckSql(job, conn, 'SELECT pg_is_in_recovery()', 'postgres', 'DRILL_FAILED', ctx.cancellationSignal).catch((err: unknown) => err as Error);
        if (state === 'f') break;
        if (Date.now() > deadline) throw new BackupError('DRILL_FAILED', `the restored copy did not finish recovery within an hour: ${typeof state === 'string' ? 'still in recovery' : state.message}`);
        if (ctx.cancellationSignal.aborted) throw new BackupError('DRILL_FAILED', 'the drill was cancelled');
        await new Promise((r) => setTimeout(r, 500));
      }
      out.checks.push(`the restored copy started (PostgreSQL ${version ?? ''} on 127.0.0.1:${port}) and finished recovery`);
      const check = job.drill.check;
      if (check) {
        const got = await runCheckSql(job, conn, check.sql, check.database, 'DRILL_FAILED', ctx.cancellationSignal);
        out.restoreMs = Date.now() - t0;
        const exp = input.plan.expected;
        if (input.plan.target === 'latest') {
          out.checks.push(`${check.sql} on the restored copy (latest WAL): ${got}${exp ? `; the primary returned ${exp.result} just after the backup` : ''}`);
        } else if (!exp) {
          out.problems.push(`no completed backupctl run recorded what ${check.sql} returned on the primary after backup ${input.plan.label}: nothing to compare the restored ${got} with`);
        } else if (got !== exp.result) {
          out.problems.push(`${check.sql} returned ${got} on the restored copy, ${exp.result} on the primary just after backup ${input.plan.label} (run ${exp.workflowId})`);
        } else {
          out.checks.push(`${check.sql} returned ${got} on the restored copy, as on the primary just after the backup (run ${exp.workflowId})`);
        }
      } else {
        out.restoreMs = Date.now() - t0;
      }
    } catch (err) {
      if (ctx.cancellationSignal.aborted) throw err;
      out.problems.push(errorMessage(err).split('\nHINT:')[0]!);
    } finally {
      clearInterval(timer);
      if (started && bindir) {
        const stop = await home.run(path.join(bindir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']).catch(() => undefined);
        if (stop && stop.code !== 0 && existsSync(path.join(data, 'postmaster.pid'))) {
          const pid = Number((await readFile(path.join(data, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
          if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        }
      }
      await rm(scratch, { recursive: true, force: true }).catch((err: unknown) => { out.problems.push(`could not remove the scratch data ${scratch}: ${errorMessage(err)}`); });
      await home.remove().catch(() => undefined);
      out.checks.push('the scratch server was stopped and its data removed');
      log.info('pgbackrest drill done', { job: input.job, problems: out.problems.length });
    }
    return out;
  });
}
