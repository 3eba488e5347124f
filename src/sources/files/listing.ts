import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { BackupError, errorMessage } from '../../errors.js';

/** What tar's `-vv` listing of one component says: entries, regular files (and hard links) and their bytes. */
export type ListingStats = {
  files: number;
  bytes: number;
  entries: number;
};

const NL = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;
/** The longest line kept across chunks: a line longer than this is counted by its first bytes only (its name). */
const MAX_CARRY = 64 * 1024;

/**
 * Counts a tar `-vv` listing (`-rw-r--r-- user/group SIZE date time name`, one member a line) as it streams by, a
 * chunk at a time: a tree of millions of files has a listing of hundreds of MiB, more than a string may hold
 * (ERR_STRING_TOO_LONG at 512 MiB), so it is never read whole. Only the line's first byte (the member's type) and
 * its third field (the size) are looked at; names are never decoded.
 */
export class ListingCounter {
  private files = 0;
  private bytes = 0;
  private entries = 0;
  /** The start of a line that continues in the next chunk (at most MAX_CARRY bytes of it). */
  private carry: Buffer = Buffer.alloc(0);
  private carryTruncated = false;

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) break;
      if (this.carry.length > 0 || this.carryTruncated) {
        this.line(this.carryWith(chunk.subarray(start, nl)));
        this.carry = Buffer.alloc(0);
        this.carryTruncated = false;
      } else {
        this.line(chunk.subarray(start, nl));
      }
      start = nl + 1;
    }
    if (start < chunk.length) this.carry = this.carryWith(chunk.subarray(start));
  }

  /** The counts; a last line without its newline counts too. */
  end(): ListingStats {
    if (this.carry.length > 0) this.line(this.carry);
    this.carry = Buffer.alloc(0);
    this.carryTruncated = false;
    return { files: this.files, bytes: this.bytes, entries: this.entries };
  }

  private carryWith(part: Buffer): Buffer {
    const room = MAX_CARRY - this.carry.length;
    if (part.length > room) this.carryTruncated = true;
    return room <= 0 ? this.carry : Buffer.concat([this.carry, part.subarray(0, room)]);
  }

  private line(line: Buffer): void {
    if (line.length === 0) return;
    this.entries++;
    const type = line[0];
    // '-' a regular file, 'h' a hard link to one (GNU tar's -vv spells both this way).
    if (type !== 0x2d && type !== 0x68) return;
    this.files++;
    const size = thirdField(line);
    if (size !== undefined) this.bytes += size;
  }
}

/** The third whitespace-separated field of a listing line as a whole number, or undefined when it is not one. */
function thirdField(line: Buffer): number | undefined {
  let i = 0;
  for (let field = 0; field < 2; field++) {
    while (i < line.length && line[i] !== SPACE && line[i] !== TAB) i++;
    while (i < line.length && (line[i] === SPACE || line[i] === TAB)) i++;
  }
  let value = 0;
  let digits = 0;
  for (; i < line.length && line[i]! >= 0x30 && line[i]! <= 0x39; i++, digits++) value = value * 10 + (line[i]! - 0x30);
  const boundary = i === line.length || line[i] === SPACE || line[i] === TAB;
  return digits > 0 && boundary && Number.isSafeInteger(value) ? value : undefined;
}

/** Counts a listing from a stream (tests feed synthetic ones). */
export async function countListing(input: Readable | AsyncIterable<Buffer>): Promise<ListingStats> {
  const counter = new ListingCounter();
  for await (const chunk of input) counter.push(chunk as Buffer);
  return counter.end();
}

/**
 * Counts the listing tar wrote to `file`. A listing that cannot be read is a failure of the dump, never a count of
 * zero: a zero would turn a tree of millions of files into SOURCE_EMPTY, hiding the real cause.
 */
export async function listingStats(file: string, source: string): Promise<ListingStats> {
  try {
    return await countListing(createReadStream(file, { highWaterMark: 1 << 20 }));
  } catch (err) {
    throw new BackupError('DUMP_FAILED', `source "${source}": could not read tar's listing ${file}: ${errorMessage(err)}`, {
      hint: 'check the staging disk (space, permissions); the archive itself was written',
    });
  }
}
