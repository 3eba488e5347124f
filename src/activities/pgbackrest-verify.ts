import { Context } from '@temporalio/activity';
import type { BackupType } from '../contracts/backup.js';
import type { PgbackrestFacts } from '../contracts/pgbackrest.js';
import { BackupError } from '../errors.js';
import { ensureOk, runPgbackrest } from '../pgbackrest/cli.js';
import { archivedWal, readInfo, requireContinuity } from '../pgbackrest/repo.js';
import { pgbackrestContext, runActivity, type ActivityDeps } from './context.js';

/**
 * Verifies a pgBackRest backup: `pgbackrest info` shows the run's label with the requested type and `error: false`;
 * `pgbackrest verify` passes; the WAL archive is unbroken from the oldest retained backup's first segment to the
 * newest archived one (pgBackRest's verify does not notice a missing segment). Returns the run's facts.
 */
export function pgbackrestVerify(deps: ActivityDeps) {
  return (input: { job: string; type: BackupType; label: string; check?: PgbackrestFacts['check'] }): Promise<PgbackrestFacts> => runActivity(async () => {
    const { job } = pgbackrestContext(deps, input.job);
    const ctx = Context.current();
    const beat = () => ctx.heartbeat({ step: 'verify' });
    beat();
    const info = await readInfo(job, { signal: ctx.cancellationSignal, onTick: beat });
    const b = info.backup.find((x) => x.label === input.label);
    if (!b) throw new BackupError('PGBACKREST_VERIFY_FAILED', `backup ${input.label} is not in pgbackrest info of stanza "${job.stanza}"`);
    // pgBackRest makes a full when a diff has no full to build on (and says so): the run reports what it made.
    const fellBack = input.type === 'diff' && b.type === 'full';
    if (b.type !== input.type && !fellBack) throw new BackupError('PGBACKREST_VERIFY_FAILED', `backup ${input.label} is a ${b.type} backup, a ${input.type} was requested`);
    if (b.error !== false) throw new BackupError('PGBACKREST_VERIFY_FAILED', `pgbackrest info reports ${b.error === true ? 'errors (page checksums)' : 'no error state'} for backup ${input.label}`);
    if (!b.archive.start || !b.archive.stop) throw new BackupError('PGBACKREST_VERIFY_FAILED', `backup ${input.label} names no WAL range`);
    ensureOk(await runPgbackrest(job, 'verify', [], { signal: ctx.cancellationSignal, onTick: beat }), `pgbackrest verify of stanza "${job.stanza}"`, 'PGBACKREST_VERIFY_FAILED');
    const wal = await archivedWal(job, info, { signal: ctx.cancellationSignal, onTick: beat });
    const c = requireContinuity(job, info, wal);
    const db = info.db.find((d) => d.id === b.database.id) ?? info.db.at(-1);
    return {
      stanza: job.stanza, label: b.label, type: fellBack ? 'full' : input.type, size: b.info.size, delta: b.info.delta, repoSize: b.info.repository.size,
      repoDelta: b.info.repository.delta, archiveStart: b.archive.start, archiveStop: b.archive.stop,
      archiveRange: { from: c.from, to: c.to, segments: c.segments }, stoppedAt: new Date(b.timestamp.stop * 1000).toISOString(),
      systemId: db?.['system-id'] ?? '', ...(input.check ? { check: input.check } : {}),
    };
  });
}
