/**
 * Decrypting the components of an encrypted backup (README, "Encryption"). A restore decrypts each component as it
 * streams from the destination (`age -d` is the first program of the component's unpack, src/restore/unpack.ts); what
 * age wrote counts only once it has authenticated the whole stream (age detects a flipped or truncated byte only at its
 * end), and nothing is renamed into place before that. This file holds the identity check and age's verdicts. An
 * identity that opens none of the recipients, and a ciphertext that is not authentic, are permanent errors.
 */
import { access, constants } from 'node:fs/promises';
import type { RestoreArtifact } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { ageFailure } from '../lib/age.js';
import { describeExit, lastLines, type Exit } from '../lib/process.js';

/** The permanent error for an encrypted chain without a usable identity, naming who can open it. */
export function identityError(a: Pick<RestoreArtifact, 'path' | 'encryption'>, problem: string): BackupError {
  const recipients = a.encryption?.recipients ?? [];
  return new BackupError('ENCRYPTION_IDENTITY', `${a.path} is encrypted with age to ${recipients.join(', ')}: ${problem}; nothing was unpacked`, {
    hint: 'give the identity (private key) of one of those recipients: `backupctl restore --identity FILE`, or `drill.identity: { file }` for drills',
  });
}

/**
 * Throws ENCRYPTION_IDENTITY when the chain holds an encrypted artifact and no identity file is given, or it cannot be
 * read. Reads nothing but the file's accessibility (age reads the key itself, on the worker).
 */
export async function checkIdentity(chain: Pick<RestoreArtifact, 'path' | 'encryption'>[], identity: string | undefined): Promise<void> {
  const encrypted = chain.find((a) => a.encryption !== undefined);
  if (!encrypted) return;
  if (identity === undefined) throw identityError(encrypted, 'no identity was given');
  try {
    await access(identity, constants.R_OK);
  } catch (err) {
    throw identityError(encrypted, `the identity file ${identity} cannot be read (${(err as Error).message})`);
  }
}

/**
 * Why `age -d` failed on component `member`: ENCRYPTION_IDENTITY when the identity opens none of the recipients, else
 * ENCRYPTION_CORRUPT (the ciphertext is not authentic, or was cut short).
 */
export function ageExitError(exit: Exit, stderr: string, member: string, a: Pick<RestoreArtifact, 'path' | 'encryption'>, identity: string): BackupError {
  const why = lastLines(stderr, 3);
  if (ageFailure(why) === 'identity') return identityError(a, `the identity ${identity} opens none of them (age: ${why})`);
  return new BackupError('ENCRYPTION_CORRUPT', `restore refused: component ${member} of ${a.path} failed decryption: age ${describeExit(exit)}: ${why}; nothing was unpacked`, {
    hint: 'the stored ciphertext was altered or damaged although its hashes match its manifest: restore another backup (--backup, --at) or from another destination (--destination)',
  });
}
