import type { DestinationPlugin, OpenOptions } from '../types.js';
import { SftpSession } from './index.js';
import { sftpDestinationSchema, type SftpDestinationConfig } from './schema.js';

/**
 * SSH connections are kept per destination on this worker and reused by every step of a run (and by later runs),
 * closed after 30 s unused or when the connection drops.
 */
const sessions = new Map<string, Promise<SftpSession>>();

async function open(name: string, cfg: SftpDestinationConfig, opts: OpenOptions): Promise<SftpSession> {
  const key = `${name}\0${JSON.stringify(cfg)}`;
  let pending = sessions.get(key);
  if (pending && opts.fresh) {
    sessions.delete(key);
    (await pending.catch(() => undefined))?.close();
    pending = undefined;
  }
  if (pending) {
    const existing = await pending.catch(() => undefined);
    if (!existing || existing.closed) {
      if (sessions.get(key) === pending) sessions.delete(key);
      pending = undefined;
    }
  }
  if (!pending) {
    const session = new SftpSession(name, cfg);
    pending = session.connect();
    sessions.set(key, pending);
    session.onIdle = () => {
      if (sessions.get(key) === pending) sessions.delete(key);
      session.close();
    };
    pending.catch(() => { if (sessions.get(key) === pending) sessions.delete(key); });
  }
  const session = await pending;
  session.retain();
  return session;
}

export const plugin: DestinationPlugin<typeof sftpDestinationSchema> = {
  type: 'sftp',
  schema: sftpDestinationSchema,
  open,
  async closeAll() {
    const all = [...sessions.values()];
    sessions.clear();
    for (const p of all) (await p.catch(() => undefined))?.close();
  },
  secretRefs: (cfg) => (cfg.passphrase ? [cfg.passphrase] : []),
  resolvePaths(cfg, abs) {
    cfg.privateKey = abs(cfg.privateKey);
    if (cfg.knownHosts) cfg.knownHosts = abs(cfg.knownHosts);
  },
};
