import type { DestinationPlugin } from '../types.js';
import { S3Session } from './index.js';
import { s3DestinationSchema } from './schema.js';

/** S3 clients are pooled (src/destinations/pool.ts): their keep-alive sockets serve every step of a run. */
export const plugin: DestinationPlugin<typeof s3DestinationSchema> = {
  type: 's3',
  schema: s3DestinationSchema,
  connect: (name, cfg) => new S3Session(name, cfg).connect(),
  reuse: true,
  bandwidthLimit: (cfg) => cfg.bandwidthLimit,
  secretRefs: (cfg) => [cfg.accessKeyId, cfg.secretAccessKey, cfg.sessionToken].filter((r) => r !== undefined),
  resolvePaths(cfg, abs) {
    if (cfg.caFile) cfg.caFile = abs(cfg.caFile);
  },
};
