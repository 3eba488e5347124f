/** What a pgBackRest repository holds, read through pgbackrest itself: the stanza's info and its archived WAL. */
import type { PgbackrestJob } from '../config/schema.js';
import { BackupError } from '../errors.js';
import { ensureOk, runPgbackrest, type RunOptions } from './cli.js';
import { currentArchiveId, parseInfo, parseRepoLs, type StanzaInfo } from './info.js';
import { DEFAULT_WAL_SEGMENT_SIZE, archivedSegment, checkContinuity, segmentSizesFor, type Continuity } from './wal.js';

export async function readInfo(job: PgbackrestJob, o: RunOptions = {}): Promise<StanzaInfo> {
  const r = ensureOk(await runPgbackrest(job, 'info', ['--output=json'], o), 'pgbackrest info', 'PGBACKREST_VERIFY_FAILED');
  try {
    return parseInfo(r.stdout, job.stanza);
  } catch (err) {
    throw new BackupError('PGBACKREST_VERIFY_FAILED', (err as Error).message);
  }
}

export interface ArchivedWal {
  archiveId: string;
  /** Segment names (timeline, log, segment), as archived. */
  segments: string[];
  /** The newest segment and when it was archived (seconds since the epoch, from the repository's listing). */
  newest?: { segment: string; time?: number };
}

/** The WAL segments archived for the stanza's current database (`repo-ls archive/<stanza>/<id> --recurse`). */
export async function archivedWal(job: PgbackrestJob, info: StanzaInfo, o: RunOptions = {}): Promise<ArchivedWal> {
  const archiveId = currentArchiveId(info);
  if (!archiveId) return { archiveId: '', segments: [] };
  const r = ensureOk(await runPgbackrest(job, 'repo-ls', ['--recurse', '--output=json'], { ...o, parameters: [`archive/${job.stanza}/${archiveId}`] }), 'pgbackrest repo-ls', 'PGBACKREST_VERIFY_FAILED');
  let newest: ArchivedWal['newest'];
  const segments: string[] = [];
  for (const f of parseRepoLs(r.stdout)) {
    const seg = archivedSegment(f.path.split('/').at(-1)!);
    if (!seg) continue;
    segments.push(seg);
    if (!newest || seg.slice(8) > newest.segment.slice(8) || (seg.slice(8) === newest.segment.slice(8) && seg > newest.segment)) newest = { segment: seg, time: f.time };
  }
  return { archiveId, segments, newest };
}

/** The job's WAL segment size: configured, else the one size every backup's start LSN and first segment agree on, else 16 MiB. */
export function walSegmentSize(job: Pick<PgbackrestJob, 'walSegmentSize'>, info: StanzaInfo): number {
  if (job.walSegmentSize) return job.walSegmentSize;
  const pairs = info.backup.filter((b) => b.lsn && b.archive.start).map((b) => ({ lsn: b.lsn!.start, segment: b.archive.start! }));
  const sizes = pairs.length > 0 ? segmentSizesFor(pairs) : [];
  return sizes.length === 1 ? sizes[0]! : DEFAULT_WAL_SEGMENT_SIZE;
}

/**
 * The WAL continuity check: every segment from the oldest retained backup's `archive.start` to the newest archived
 * segment must be in the repository. Fails with WAL_GAP naming the first missing segment.
 */
export function requireContinuity(job: PgbackrestJob, info: StanzaInfo, wal: ArchivedWal): Continuity {
  // Backups of an earlier database (before a stanza-upgrade) have their WAL in that database's archive: not walked.
  const db = info.backup.at(-1)?.database.id;
  const oldest = info.backup.filter((b) => b.database.id === db).sort((a, b) => a.timestamp.start - b.timestamp.start).find((b) => b.archive.start);
  if (!oldest?.archive.start) throw new BackupError('PGBACKREST_VERIFY_FAILED', `stanza "${job.stanza}" has no backup with WAL to check`);
  const size = walSegmentSize(job, info);
  let c: Continuity;
  try {
    c = checkContinuity(wal.segments, oldest.archive.start, size);
  } catch (err) {
    throw new BackupError('PGBACKREST_VERIFY_FAILED', `WAL continuity check of stanza "${job.stanza}": ${(err as Error).message}`);
  }
  if (c.missing) {
    throw new BackupError('WAL_GAP', `WAL archive of stanza "${job.stanza}" has a gap: segment ${c.missing} is missing${c.missingCount > 1 ? ` (${c.missingCount} segments missing in all)` : ''}; `
      + `the archive must be unbroken from ${c.from} (start of the oldest retained backup, ${oldest.label}) to ${c.to} (newest archived). `
      + `Point-in-time recovery across the gap is impossible, and backups that need ${c.missing} cannot be restored`, {
      hint: 'take a new full backup once archiving works again (check archive_command and the repository); older backups cannot be repaired',
    });
  }
  return c;
}
