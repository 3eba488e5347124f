import type { Config, NotifierConfig } from '../config/schema.js';
import { BackupError } from '../errors.js';
import { pluginLookup } from '../lib/plugins.js';
import * as registry from './registry.js';
import type { Notifier, NotifierPlugin } from './types.js';

export type { Notifier, NotifierPlugin, RenderedMessage } from './types.js';

/** A plugin as the dispatch sees it: its hooks take any notifier config (the registry matched the type). */
export type AnyNotifierPlugin = NotifierPlugin<(typeof registry)[keyof typeof registry]['schema'], NotifierConfig>;

const lookup = pluginLookup<AnyNotifierPlugin>(registry, 'notifier');

/** Every registered notifier plugin, in the registry's order. */
export const NOTIFIER_PLUGINS: readonly AnyNotifierPlugin[] = lookup.all;

/** The registered notifier types. */
export const NOTIFIER_TYPES: readonly string[] = lookup.types;

/** The plugin of a notifier type. */
export const notifierPlugin = lookup.get;

export function createNotifier(config: Config, name: string): Notifier {
  const cfg = config.notifiers[name];
  if (!cfg) throw new BackupError('CONFIG_INVALID', `no notifier named "${name}" in the config`);
  return notifierPlugin(cfg.type).create(name, cfg);
}
