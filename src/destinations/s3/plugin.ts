import type { DestinationPlugin } from '../types.js';
import { s3DestinationSchema } from './schema.js';

/**
 * S3 clients are pooled (src/destinations/pool.ts): their keep-alive sockets serve every step of a run. The session
 * module (and with it the AWS SDK, about 5 MiB of a worker's memory) is loaded when the first S3 destination connects.
 */
export const plugin: DestinationPlugin<typeof s3DestinationSchema> = {
  type: 's3',
  schema: s3DestinationSchema,
  connect: async (name, cfg) => new (await import('./index.js')).S3Session(name, cfg).connect(),
  reuse: true,
  follows: false,
  bandwidthLimit: (cfg) => cfg.bandwidthLimit,
  secretRefs: (cfg) => [cfg.accessKeyId, cfg.secretAccessKey, cfg.sessionToken].filter((r) => r !== undefined),
  resolvePaths(cfg, abs) {
    if (cfg.caFile) cfg.caFile = abs(cfg.caFile);
  },
};
