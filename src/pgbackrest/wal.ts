/**
 * WAL segment names and the continuity check: pgBackRest's own `verify` does not notice a missing archived segment
 * (pgbackrest#2229), so backupctl walks the archived names itself. Pure functions, no I/O.
 *
 * A segment name is timeline, log and segment, 8 hex digits each. A log holds 4 GiB of WAL, so it holds
 * `2^32 / segment size` segments: 256 of the default 16 MiB, 64 of 64 MiB. The segment after `…000000FF` of a 16 MiB
 * cluster is the next log's `…00000000`, and a gap check that counts in hex without the segment size is wrong.
 */

export const WAL_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
/** An archived segment file: the name, then pgBackRest's `-<sha1>` and compression suffix (never .partial, .backup or .history). */
const ARCHIVED = /^([0-9A-F]{24})(?:-[0-9a-f]{40})?(?:\.(?:gz|bz2|lz4|zst|xz))?$/;

export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;
const MIN_SEGMENT = 1024 * 1024;
const MAX_SEGMENT = 1024 * 1024 * 1024;

function segmentsPerLog(segmentSize: number): bigint {
  if (!Number.isInteger(segmentSize) || segmentSize < MIN_SEGMENT || segmentSize > MAX_SEGMENT || (segmentSize & (segmentSize - 1)) !== 0) {
    throw new Error(`WAL segment size ${segmentSize} is not a power of two between 1 MiB and 1 GiB`);
  }
  return 0x1_0000_0000n / BigInt(segmentSize);
}

export interface Segment { timeline: number; segno: bigint }

/** A segment name as timeline and segment number; throws on a malformed name or a segment beyond its log. */
export function parseSegment(name: string, segmentSize: number): Segment {
  const m = WAL_NAME.exec(name);
  if (!m) throw new Error(`"${name}" is not a WAL segment name`);
  const per = segmentsPerLog(segmentSize);
  const seg = BigInt(`0x${m[3]}`);
  if (seg >= per) throw new Error(`"${name}" is no segment of a cluster with ${segmentSize / 1024 / 1024} MiB WAL segments (its segment part exceeds ${(per - 1n).toString(16).toUpperCase()})`);
  return { timeline: parseInt(m[1]!, 16), segno: BigInt(`0x${m[2]}`) * per + seg };
}

export function segmentName(s: Segment, segmentSize: number): string {
  const per = segmentsPerLog(segmentSize);
  const hex = (v: bigint | number) => v.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(s.timeline)}${hex(s.segno / per)}${hex(s.segno % per)}`;
}

/** The WAL segment name of an archived file's name (`<segment>-<sha1>.gz`), or undefined for anything else. */
export function archivedSegment(fileName: string): string | undefined {
  return ARCHIVED.exec(fileName)?.[1];
}

/** `0/3000028` → 50331688n. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`"${lsn}" is not an LSN`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

/**
 * The WAL segment sizes consistent with every (start LSN, first WAL segment) pair of the backups: each power of two
 * from 1 MiB to 1 GiB whose segment of the LSN has that name. One size is the answer; none means the pairs disagree.
 */
export function segmentSizesFor(pairs: { lsn: string; segment: string }[]): number[] {
  const out: number[] = [];
  for (let size = MIN_SEGMENT; size <= MAX_SEGMENT; size *= 2) {
    const fits = pairs.every(({ lsn, segment }) => {
      try {
        const s = parseSegment(segment, size);
        return s.segno === parseLsn(lsn) / BigInt(size);
      } catch {
        return false;
      }
    });
    if (fits) out.push(size);
  }
  return out;
}

export interface Continuity {
  /** First and last segment of the walk, and how many segments it covered. */
  from: string;
  to: string;
  segments: number;
  /** The first segment of the range that is not archived. */
  missing?: string;
  /** Segments missing in all (the first is `missing`). */
  missingCount: number;
}

/**
 * Walks the archived segments from `from` to the newest archived one and names the first missing. A segment counts as
 * archived on any timeline (after a promotion the history continues on the new timeline at the same segment number).
 * The walk goes over the archived segments, not over every number between them: the names come from the repository,
 * and one planted name far ahead (`…FFFFFFFF000000FF`) must make a huge gap, not a loop of 10^12 steps.
 */
export function checkContinuity(archivedNames: readonly string[], from: string, segmentSize: number): Continuity {
  const start = parseSegment(from, segmentSize);
  const present = new Map<bigint, number>();
  let newest = start;
  for (const name of archivedNames) {
    const s = parseSegment(name, segmentSize);
    const tl = present.get(s.segno);
    if (tl === undefined || s.timeline > tl) present.set(s.segno, s.timeline);
    if (s.segno > newest.segno || (s.segno === newest.segno && s.timeline > newest.timeline)) newest = s;
  }
  let missing: string | undefined;
  let missingCount = 0n;
  let timeline = start.timeline;
  let expected = start.segno;
  const gapUntil = (segno: bigint) => {
    if (segno <= expected) return;
    missingCount += segno - expected;
    missing ??= segmentName({ timeline, segno: expected }, segmentSize);
  };
  for (const segno of [...present.keys()].filter((n) => n >= start.segno).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    gapUntil(segno);
    timeline = present.get(segno)!;
    expected = segno + 1n;
  }
  gapUntil(newest.segno + 1n);
  return { from, to: segmentName(newest, segmentSize), segments: Number(newest.segno - start.segno + 1n), missing, missingCount: Number(missingCount) };
}
