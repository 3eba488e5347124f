import type { Config } from '../config/schema.js';
import { BackupError } from '../errors.js';
import { EmailNotifier } from './email/index.js';
import { HealthchecksNotifier } from './healthchecks/index.js';
import type { Notifier } from './types.js';
import { WebhookNotifier } from './webhook/index.js';

export type { Notifier, RenderedMessage } from './types.js';

export function createNotifier(config: Config, name: string): Notifier {
  const cfg = config.notifiers[name];
  if (!cfg) throw new BackupError('CONFIG_INVALID', `no notifier named "${name}" in the config`);
  switch (cfg.type) {
    case 'email':
      return new EmailNotifier(name, cfg);
    case 'webhook':
      return new WebhookNotifier(name, cfg);
    case 'healthchecks':
      return new HealthchecksNotifier(name, cfg);
  }
}
