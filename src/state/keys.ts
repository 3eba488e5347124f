/**
 * The manifest signing keys on this host. The private key (Ed25519, PEM) is `signing.key.file`, by default
 * `<stateDir>/keys/signing.key`; its public key lies beside it as `<file>.pub`. Only workers need the private key: it is
 * read here, in the activity that signs, and never leaves the host (no workflow input, result or history holds it). A
 * host trusts its own public key and those listed in `signing.trust` (rotation, restore-only hosts).
 */
import type { KeyObject } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { BackupError } from '../errors.js';
import { generateSigningKeyPair, keyIdOf, parsePrivateKey, parsePublicKey, publicKeyLine } from '../lib/signing.js';
import { trustFrom, type SigningKey, type Trust } from '../repository/signatures.js';

type SigningConfig = Pick<Config, 'stateDir' | 'signing'>;

/** Where this host's key pair is, and whether the config names it (else it is the default under the state directory). */
export function signingKeyFiles(config: SigningConfig): { privateFile: string; publicFile: string; configured: boolean } {
  const privateFile = config.signing?.key?.file ?? path.join(config.stateDir, 'keys', 'signing.key');
  return { privateFile, publicFile: `${privateFile}.pub`, configured: config.signing?.key !== undefined };
}

export interface CreatedKey {
  privateFile: string;
  publicFile: string;
  keyId: string;
  publicKey: string;
}

/**
 * Creates the key pair: the private key 0600 (in a 0700 folder when it creates the folder), the public key 0644.
 * Refuses to overwrite either file. The private key appears complete or not at all (written aside, then linked).
 */
export function createSigningKey(config: SigningConfig): CreatedKey {
  const { privateFile, publicFile } = signingKeyFiles(config);
  for (const f of [privateFile, publicFile]) {
    if (existsSync(f)) throw new BackupError('SIGNING_KEY_EXISTS', `${f} already exists; it was not overwritten`, { hint: 'a key pair exists already: back it up, or move it away first to make a new one (see README, "Signed manifests", rotation)' });
  }
  mkdirSync(path.dirname(privateFile), { recursive: true, mode: 0o700 });
  const { privatePem, publicPem } = generateSigningKeyPair();
  const aside = `${privateFile}.${process.pid}.${Date.now()}.new`;
  writeFileSync(aside, privatePem, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(aside, privateFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BackupError('SIGNING_KEY_EXISTS', `${privateFile} already exists; it was not overwritten`);
    throw err;
  } finally {
    unlinkSync(aside);
  }
  writeFileSync(publicFile, publicPem, { mode: 0o644 });
  chmodSync(publicFile, 0o644);
  const key = parsePublicKey(publicPem);
  return { privateFile, publicFile, keyId: keyIdOf(key), publicKey: publicKeyLine(key) };
}

/**
 * Makes sure the worker has a signing key: a configured key file must exist; without `signing.key` the default one is
 * created on first use, with one line on stderr saying so. Returns the key created, if any.
 */
export function ensureSigningKey(config: SigningConfig): CreatedKey | undefined {
  const { privateFile, configured } = signingKeyFiles(config);
  if (existsSync(privateFile)) return undefined;
  if (configured) {
    throw new BackupError('SIGNING_KEY_MISSING', `the manifest signing key ${privateFile} (signing.key.file) does not exist`, { hint: 'restore it from your offline copy, or create a new one with `backupctl keys init` (then trust the old public key, README "Signed manifests")' });
  }
  try {
    const created = createSigningKey(config);
    process.stderr.write(`signing key created: ${created.privateFile} (key ID ${created.keyId}); keep an offline copy, see README "Signed manifests"\n`);
    return created;
  } catch (err) {
    // Another worker process created it at the same moment.
    if (err instanceof BackupError && err.code === 'SIGNING_KEY_EXISTS' && existsSync(privateFile)) return undefined;
    throw err;
  }
}

/** The worker's private key, read from its file (created first when none is configured and the default is missing). */
export function loadSigningKey(config: SigningConfig): SigningKey {
  ensureSigningKey(config);
  const { privateFile } = signingKeyFiles(config);
  let pem: string;
  try {
    const st = statSync(privateFile);
    if ((st.mode & 0o077) !== 0) {
      throw new BackupError('SIGNING_KEY_INVALID', `the manifest signing key ${privateFile} is readable by others (mode ${(st.mode & 0o777).toString(8)})`, { hint: `chmod 600 ${privateFile}` });
    }
    pem = readFileSync(privateFile, 'utf8');
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError('SIGNING_KEY_MISSING', `cannot read the manifest signing key ${privateFile}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const privateKey = parsePrivateKey(pem);
    return { keyId: keyIdOf(privateKey), privateKey };
  } catch (err) {
    throw new BackupError('SIGNING_KEY_INVALID', `${privateFile}: ${(err as Error).message}`);
  }
}

/**
 * The public keys this host trusts: its own (derived from the private key when it can read it, else `<key>.pub`) and
 * every `signing.trust` entry. A trusted key that cannot be read is a config error: a silently shorter trust list would
 * turn good backups into unverified ones.
 */
export function trustOf(config: SigningConfig): Trust {
  const { privateFile, publicFile } = signingKeyFiles(config);
  const keys: KeyObject[] = [];
  let own: KeyObject | undefined;
  try {
    own = parsePublicKey(readFileSync(publicFile, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new BackupError('SIGNING_KEY_INVALID', `${publicFile}: ${(err as Error).message}`);
  }
  if (!own && existsSync(privateFile)) {
    try {
      own = parsePublicKey(publicKeyLine(parsePrivateKey(readFileSync(privateFile, 'utf8'))));
    } catch {
      // not readable here: only the trust list counts
    }
  }
  if (own) keys.push(own);
  for (const [i, t] of (config.signing?.trust ?? []).entries()) {
    const where = typeof t === 'string' ? `signing.trust[${i}]` : `signing.trust[${i}] (${t.file})`;
    try {
      keys.push(parsePublicKey(typeof t === 'string' ? t : readFileSync(t.file, 'utf8')));
    } catch (err) {
      throw new BackupError('SIGNING_KEY_INVALID', `${where}: ${(err as Error).message}`, { hint: 'fix or remove the entry (README, "Signed manifests")' });
    }
  }
  return trustFrom(keys, `this host has no signing key (${publicFile}) and signing.trust is empty`);
}
