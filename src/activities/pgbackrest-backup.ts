import { Context, log } from '@temporalio/activity';
import type { BackupType } from '../contracts/backup.js';
import type { PgbackrestFacts } from '../contracts/pgbackrest.js';
import { BackupError } from '../errors.js';
import { ensureOk, primaryConnection, runPgbackrest } from '../pgbackrest/cli.js';
import { readInfo } from '../pgbackrest/repo.js';
import { runCheckSql } from '../pgbackrest/sql.js';
import { pgbackrestContext, runActivity, type ActivityDeps } from './context.js';

export interface PgbackrestBackupResult {
  label: string;
  durationMs: number;
  check?: PgbackrestFacts['check'];
}

/**
 * `pgbackrest --stanza=S --type=T backup`, heartbeating every second with pgBackRest's progress (the backup lock's
 * `size-cplt` of `size`, as `pgbackrest info` reports it while it runs). Cancellation stops pgbackrest with SIGTERM.
 * Then, when the job's drill has a check query, records what it returns on the primary (drills compare with it).
 */
export function pgbackrestBackup(deps: ActivityDeps) {
  return (input: { job: string; type: BackupType; labels: string[] }): Promise<PgbackrestBackupResult> => runActivity(async () => {
    const { job } = pgbackrestContext(deps, input.job);
    const ctx = Context.current();
    const progress: { done?: number; total?: number } = {};
    let polling = false;
    let ticks = 0;
    const onTick = () => {
      ctx.heartbeat({ step: 'backup', bytes: progress.done ?? 0, ...(progress.total ? { total: progress.total } : {}) });
      if (polling || ++ticks % 5 !== 0) return;
      polling = true;
      readInfo(job, { signal: ctx.cancellationSignal }).then((info) => {
        const lock = info.status.lock?.backup;
        if (lock?.held && lock.size) Object.assign(progress, { done: lock['size-cplt'] ?? 0, total: lock.size });
      }).catch(() => undefined).finally(() => { polling = false; });
    };
    ctx.heartbeat({ step: 'backup', bytes: 0 });
    const t0 = Date.now();
    const r = await runPgbackrest(job, 'backup', [`--type=${input.type}`], { signal: ctx.cancellationSignal, onTick });
    // Cancelled: the SDK's own CancelledFailure ends the activity as cancelled (pgbackrest got SIGTERM).
    if (ctx.cancellationSignal.aborted) throw (ctx.cancellationSignal.reason as Error | undefined) ?? new BackupError('PGBACKREST_BACKUP_FAILED', 'the backup was cancelled');
    ensureOk(r, `pgbackrest ${input.type} backup of stanza "${job.stanza}"`, 'PGBACKREST_BACKUP_FAILED');
    const durationMs = Date.now() - t0;
    const info = await readInfo(job);
    const fresh = info.backup.filter((b) => !input.labels.includes(b.label));
    const made = fresh.at(-1);
    if (!made) throw new BackupError('PGBACKREST_VERIFY_FAILED', `pgbackrest backup exited 0, but pgbackrest info shows no new backup of stanza "${job.stanza}"`);
    log.info('pgbackrest backup done', { label: made.label, type: made.type });
    let check: PgbackrestFacts['check'];
    if (job.drill.check) {
      const conn = await primaryConnection(job);
      const result = await runCheckSql(job, conn, job.drill.check.sql, job.drill.check.database, 'PGBACKREST_VERIFY_FAILED', ctx.cancellationSignal);
      check = { sql: job.drill.check.sql, database: job.drill.check.database, result };
    }
    return { label: made.label, durationMs, ...(check ? { check } : {}) };
  });
}
