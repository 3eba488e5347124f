import { isSecretRef } from '../../config/fields.js';
import type { NotifierPlugin } from '../types.js';
import { WebhookNotifier } from './index.js';
import { webhookNotifierSchema } from './schema.js';

export const plugin: NotifierPlugin<typeof webhookNotifierSchema> = {
  type: 'webhook',
  schema: webhookNotifierSchema,
  create: (name, cfg) => new WebhookNotifier(name, cfg),
  secretRefs: (cfg) => [cfg.url, cfg.secret, ...Object.values(cfg.headers)].filter(isSecretRef),
};
