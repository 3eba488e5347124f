import type { DestinationPlugin } from '../types.js';
import { sftpDestinationSchema } from './schema.js';

/**
 * SSH connections are pooled (src/destinations/pool.ts): each new one costs about 0.3 s of key exchange and login.
 * The session module (and with it ssh2) is loaded when the first SFTP destination connects.
 */
export const plugin: DestinationPlugin<typeof sftpDestinationSchema> = {
  type: 'sftp',
  schema: sftpDestinationSchema,
  connect: async (name, cfg) => new (await import('./index.js')).SftpSession(name, cfg).connect(),
  reuse: true,
  follows: true,
  bandwidthLimit: (cfg) => cfg.bandwidthLimit,
  secretRefs: (cfg) => (cfg.passphrase ? [cfg.passphrase] : []),
  resolvePaths(cfg, abs) {
    cfg.privateKey = abs(cfg.privateKey);
    if (cfg.knownHosts) cfg.knownHosts = abs(cfg.knownHosts);
  },
};
