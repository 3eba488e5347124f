import type { DestinationPlugin } from '../types.js';
import { LocalSession } from './index.js';
import { localDestinationSchema } from './schema.js';

export const plugin: DestinationPlugin<typeof localDestinationSchema> = {
  type: 'local',
  schema: localDestinationSchema,
  connect: (name, cfg) => new LocalSession(name, cfg).connect(),
  reuse: false,
  follows: true,
  secretRefs: () => [],
  resolvePaths(cfg, abs) { cfg.path = abs(cfg.path); },
};
