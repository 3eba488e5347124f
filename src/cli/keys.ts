import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import { BackupError } from '../errors.js';
import { describeExit, lastLines, runCapture } from '../lib/process.js';
import { createSigningKey } from '../state/keys.js';
import { EXIT } from './output.js';

/**
 * `backupctl keys init`: creates the manifest signing key pair where the config says (`signing.key.file`, default
 * `<stateDir>/keys/signing.key`), never over an existing one, and says what to keep where.
 */
export async function keysInitCommand(opts: { config?: string; json?: boolean }): Promise<number> {
  const { config } = loadConfig(opts.config);
  const k = createSigningKey(config);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(k)}\n`);
    return EXIT.OK;
  }
  process.stdout.write([
    'created the manifest signing key pair (Ed25519)',
    `  private key: ${k.privateFile} (mode 0600): every worker of this deployment needs it, nothing else does`,
    `  public key:  ${k.publicFile} (mode 0644)`,
    `  key ID:      ${k.keyId}`,
    `  public key for signing.trust on other hosts: ${k.publicKey}`,
    'Back up the private key now, offline (a password manager or a USB stick in a safe), never on a backup destination:',
    'without it new workers cannot sign, and without its public key restores need --trust-unsigned.',
    '',
  ].join('\n'));
  return EXIT.OK;
}

/**
 * `backupctl keys age-generate FILE`: an age X25519 key pair (with `age-keygen`): the identity goes into FILE (mode
 * 0600; an existing file is never overwritten), the public key is printed for `encryption.recipients`, and where the
 * identity must be kept (and where not) is said plainly.
 */
export async function keysAgeGenerateCommand(file: string, opts: { json?: boolean }): Promise<number> {
  const to = path.resolve(file);
  if (existsSync(to)) throw new BackupError('CONFIG_INVALID', `${to} exists; an age identity is never overwritten (backups made for it could not be opened any more)`);
  // A new folder for it is private to this user.
  await mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
  const r = await runCapture('age-keygen', ['-o', to]).catch((err: unknown) => {
    throw new BackupError('CONFIG_INVALID', `age-keygen cannot be started: ${(err as Error).message}`, { cause: err, hint: 'install age (Debian: apt-get install age)' });
  });
  if (r.code !== 0) throw new BackupError('CONFIG_INVALID', `age-keygen ${describeExit(r)}: ${lastLines(r.stderr, 3)}`);
  const pub = await runCapture('age-keygen', ['-y', to]);
  const recipient = pub.stdout.trim();
  if (pub.code !== 0 || !/^age1/.test(recipient)) throw new BackupError('CONFIG_INVALID', `age-keygen -y ${describeExit(pub)}: ${lastLines(pub.stderr, 3)}`);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ identityFile: to, recipient })}\n`);
    return EXIT.OK;
  }
  process.stdout.write([
    'created an age key pair (X25519) for encryption at rest',
    `  public key (recipient): ${recipient}`,
    '      put it in the config: encryption: { recipients: [ <this key> ] } (it is not secret)',
    `  identity (private key): ${to} (mode 0600)`,
    '      it decrypts every backup made for this recipient. Keep it OFF the workers that back up and off every backup',
    '      destination: offline (a password manager, a USB stick in a safe) and on the host that restores or runs drills',
    '      (`restore --identity FILE`, `drill.identity: { file }`). Without it, no backup made for it can be restored.',
    '',
  ].join('\n'));
  return EXIT.OK;
}
