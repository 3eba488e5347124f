/** Modes and size caps every destination plugin applies (README, "What a destination cannot do"). */
import { BackupError } from '../errors.js';

/**
 * What backupctl stores and creates on a destination is private to the backup account: files (artifacts, manifests,
 * drill reports) are created 0600 and folders 0700 (the server's umask may only take more away).
 */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/**
 * The largest "small file" (a manifest, a drill report) read back from a destination: a larger one is refused before
 * it is read into memory, never parsed (a hostile destination must not exhaust the worker's memory).
 */
export const SMALL_FILE_MAX_BYTES = 1024 * 1024;

/**
 * At most this many entries are read from one folder's listing (and, on S3, of parts or incomplete uploads): a
 * hostile or broken store that lists without end must not exhaust the worker's memory.
 */
export const LIST_MAX = 200_000;

/** A listing above LIST_MAX: refused (permanent), never read on. */
export function tooManyEntries(destination: string, dir: string): BackupError {
  return new BackupError('DESTINATION_IO', `destination "${destination}": more than ${LIST_MAX} entries under ${dir || '/'}; refused`, {
    permanent: true, hint: 'a folder this large was not made by backupctl: look at it on the destination',
  });
}

/** The largest range `readRange` reads into memory (a GNU tar snapshot member). */
export const RANGE_MAX_BYTES = 256 * 1024 * 1024;

/** A small file above its cap: refused, never read (SMALL_FILE_MAX_BYTES). */
export function tooLarge(destination: string, p: string, size: number, max: number): BackupError {
  return new BackupError('DESTINATION_IO', `destination "${destination}": ${p} has ${size} bytes or more, more than the ${max} a small file may have; it was not read`, { permanent: true });
}

/** Refuses a range that is not whole numbers or larger than RANGE_MAX_BYTES, before anything is allocated. */
export function checkRange(destination: string, p: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || length > RANGE_MAX_BYTES) {
    throw new BackupError('DESTINATION_IO', `destination "${destination}": refusing to read ${length} bytes at ${offset} of ${p} (at most ${RANGE_MAX_BYTES} bytes, whole numbers)`, { permanent: true });
  }
}

