import { loadConfig } from '../config/load.js';
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
