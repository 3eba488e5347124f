/**
 * A job's encryption at rest (README, "Encryption"): the job's own `encryption`, else the config's top-level one; its
 * recipients (public keys) resolved on the worker, files of them read at each run.
 */
import { readFileSync } from 'node:fs';
import { BackupError } from '../errors.js';
import { parseRecipients } from '../lib/age.js';
import type { Config, Encryption, Job } from './schema.js';

/** The encryption that applies to a job's new backups, if any. */
export function jobEncryption(config: Pick<Config, 'encryption'>, job: Pick<Job, 'encryption'>): Encryption | undefined {
  return job.encryption ?? config.encryption;
}

/**
 * The age public keys of an encryption config, in order, without duplicates: the keys given inline and those in the
 * recipients files. A file that cannot be read, holds a line that is no age public key, or holds none is a config error
 * (the run fails before anything is dumped, never falls back to plaintext).
 */
export function resolveRecipients(enc: Encryption): string[] {
  const out: string[] = [];
  const add = (r: string) => { if (!out.includes(r)) out.push(r); };
  for (const r of enc.recipients) {
    if (typeof r === 'string') {
      add(r);
      continue;
    }
    let text: string;
    try {
      text = readFileSync(r.file, 'utf8');
    } catch (err) {
      throw new BackupError('CONFIG_INVALID', `encryption: cannot read the recipients file ${r.file}: ${(err as Error).message}`, { cause: err });
    }
    const { recipients, invalid } = parseRecipients(text);
    // The line itself is never quoted: it might be a private key put there by mistake.
    if (invalid.length > 0) {
      const secret = invalid.some((l) => /^AGE-SECRET-KEY-/i.test(l));
      throw new BackupError('CONFIG_INVALID', `encryption: the recipients file ${r.file} holds ${invalid.length} line(s) that are no age X25519 public key${secret ? ', among them a PRIVATE key (AGE-SECRET-KEY-…)' : ''}`, {
        hint: 'one public key (age1…) per line; an identity (private key) never belongs on a worker that only backs up',
      });
    }
    if (recipients.length === 0) throw new BackupError('CONFIG_INVALID', `encryption: the recipients file ${r.file} holds no public key`);
    for (const l of recipients) add(l);
  }
  return out;
}
