import type { Config } from '../config/schema.js';
import { BackupError } from '../errors.js';
import { LocalSession } from './local/index.js';
import { SftpSession } from './sftp/index.js';
import type { DestinationSession } from './types.js';

export type { DestinationSession } from './types.js';

/**
 * SSH connections are kept per destination on this worker and reused by every step of a run (and by later runs),
 * closed after 30 s unused or when the connection drops.
 */
const sftpSessions = new Map<string, Promise<SftpSession>>();

export interface OpenOptions {
  /**
   * Do not reuse the cached connection; close it and open a new one. A retried step asks for this: the connection
   * its previous attempt used may be the one that stalled (alive for TCP and keepalives, but answering nothing).
   */
  fresh?: boolean;
}

export async function openDestination(config: Config, name: string, opts: OpenOptions = {}): Promise<DestinationSession> {
  const cfg = config.destinations[name];
  if (!cfg) throw new BackupError('CONFIG_INVALID', `no destination named "${name}" in the config`);
  if (cfg.type === 'local') return new LocalSession(name, cfg).connect();
  const key = `${name}\0${JSON.stringify(cfg)}`;
  let pending = sftpSessions.get(key);
  if (pending && opts.fresh) {
    sftpSessions.delete(key);
    (await pending.catch(() => undefined))?.close();
    pending = undefined;
  }
  if (pending) {
    const existing = await pending.catch(() => undefined);
    if (!existing || existing.closed) {
      if (sftpSessions.get(key) === pending) sftpSessions.delete(key);
      pending = undefined;
    }
  }
  if (!pending) {
    const session = new SftpSession(name, cfg);
    pending = session.connect();
    sftpSessions.set(key, pending);
    session.onIdle = () => {
      if (sftpSessions.get(key) === pending) sftpSessions.delete(key);
      session.close();
    };
    pending.catch(() => { if (sftpSessions.get(key) === pending) sftpSessions.delete(key); });
  }
  const session = await pending;
  session.retain();
  return session;
}

/** Closes every cached connection (worker shutdown, end of a CLI command). */
export async function closeDestinations(): Promise<void> {
  const all = [...sftpSessions.values()];
  sftpSessions.clear();
  for (const p of all) (await p.catch(() => undefined))?.close();
}

/** Opens a destination for the duration of `fn`. */
export async function withDestination<T>(config: Config, name: string, fn: (d: DestinationSession) => Promise<T>, opts: OpenOptions = {}): Promise<T> {
  const d = await openDestination(config, name, opts);
  try {
    return await fn(d);
  } finally {
    d.release();
  }
}
