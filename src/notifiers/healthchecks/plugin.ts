import { isSecretRef } from '../../config/fields.js';
import type { NotifierPlugin } from '../types.js';
import { HealthchecksNotifier } from './index.js';
import { healthchecksNotifierSchema } from './schema.js';

export const plugin: NotifierPlugin<typeof healthchecksNotifierSchema> = {
  type: 'healthchecks',
  schema: healthchecksNotifierSchema,
  create: (name, cfg) => new HealthchecksNotifier(name, cfg),
  secretRefs: (cfg) => [cfg.uuid, cfg.pingKey].filter(isSecretRef),
};
