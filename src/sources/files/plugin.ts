import path from 'node:path';
import type { SourcePlugin } from '../types.js';
import { FilesSource } from './index.js';
import { filesSourceSchema } from './schema.js';

export const plugin: SourcePlugin<typeof filesSourceSchema> = {
  type: 'files',
  schema: filesSourceSchema,
  open: (cfg) => new FilesSource(cfg),
  secretRefs: () => [],
  resolvePaths(cfg, abs) { cfg.paths = cfg.paths.map(abs); },
  incremental: true,
  restore: {
    /** Its tree, with the original absolute paths below it. */
    path: (name) => path.join('files', name),
    unpack: 'incremental-tree',
    countFiles: true,
  },
};
