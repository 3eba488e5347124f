import type { Config, NotifierConfig } from '../config/schema.js';
import { BackupError } from '../errors.js';
import * as registry from './registry.js';
import type { Notifier, NotifierPlugin } from './types.js';

export type { Notifier, NotifierPlugin, RenderedMessage } from './types.js';

/** A plugin as the dispatch sees it: its hooks take any notifier config (the registry matched the type). */
export type AnyNotifierPlugin = NotifierPlugin<(typeof registry)[keyof typeof registry]['schema'], NotifierConfig>;

/** Every registered notifier plugin, in the registry's order. */
export const NOTIFIER_PLUGINS: readonly AnyNotifierPlugin[] = Object.values(registry) as AnyNotifierPlugin[];

/** The registered notifier types. */
export const NOTIFIER_TYPES: readonly string[] = Object.keys(registry);

/** The plugin of a notifier type. */
export function notifierPlugin(type: string): AnyNotifierPlugin {
  const plugin = (registry as Record<string, AnyNotifierPlugin>)[type];
  if (!plugin) throw new BackupError('CONFIG_INVALID', `no notifier type "${type}" (types: ${NOTIFIER_TYPES.join(', ')})`);
  return plugin;
}

export function createNotifier(config: Config, name: string): Notifier {
  const cfg = config.notifiers[name];
  if (!cfg) throw new BackupError('CONFIG_INVALID', `no notifier named "${name}" in the config`);
  return notifierPlugin(cfg.type).create(name, cfg);
}
