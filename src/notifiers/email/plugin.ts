import type { NotifierPlugin } from '../types.js';
import { EmailNotifier } from './index.js';
import { emailNotifierSchema } from './schema.js';

export const plugin: NotifierPlugin<typeof emailNotifierSchema> = {
  type: 'email',
  schema: emailNotifierSchema,
  create: (name, cfg) => new EmailNotifier(name, cfg),
  secretRefs: (cfg) => (cfg.password ? [cfg.password] : []),
};
