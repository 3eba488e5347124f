import { readFile } from 'node:fs/promises';
import type { SecretRef } from './schema.js';
import { BackupError } from '../errors.js';

/** Reads a secret on the worker. The value must never leave the activity that needs it. */
export async function readSecret(ref: SecretRef, what: string): Promise<string> {
  if ('env' in ref) {
    const v = process.env[ref.env];
    if (v === undefined || v === '') {
      throw new BackupError('SECRET_UNAVAILABLE', `${what}: environment variable ${ref.env} is not set on the worker`, {
        hint: `set ${ref.env} in the worker's environment (for systemd: EnvironmentFile=)`,
      });
    }
    return v;
  }
  try {
    return (await readFile(ref.file, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new BackupError('SECRET_UNAVAILABLE', `${what}: cannot read secret file ${ref.file}: ${(err as Error).message}`, { cause: err });
  }
}
