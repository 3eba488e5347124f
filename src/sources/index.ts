import { BackupError } from '../errors.js';
import type { SecretRef } from '../config/fields.js';
import type { SourceConfig } from '../config/schema.js';
import * as registry from './registry.js';
import type { Source, SourcePlugin } from './types.js';

export type { Source, DumpContext, DumpOutcome, SourcePlugin } from './types.js';

/** A plugin as the dispatch sees it: its hooks take any source config (the registry matched the type). */
export type AnySourcePlugin = SourcePlugin<(typeof registry)[keyof typeof registry]['schema'], SourceConfig>;

/** Every registered source plugin, in the registry's order. */
export const SOURCE_PLUGINS: readonly AnySourcePlugin[] = Object.values(registry) as AnySourcePlugin[];

/** The registered source types. */
export const SOURCE_TYPES: readonly string[] = Object.keys(registry);

/** The plugin of a source type; undefined for a type that is not registered (e.g. read from a manifest). */
export function findSourcePlugin(type: string): AnySourcePlugin | undefined {
  return (registry as Record<string, AnySourcePlugin | undefined>)[type];
}

/** The plugin of a source type. */
export function sourcePlugin(type: string): AnySourcePlugin {
  const plugin = findSourcePlugin(type);
  if (!plugin) throw new BackupError('CONFIG_INVALID', `no source type "${type}" (types: ${SOURCE_TYPES.join(', ')})`);
  return plugin;
}

export function createSource(cfg: SourceConfig): Source {
  return sourcePlugin(cfg.type).open(cfg);
}

/** Every secret reference of a source (for resolving relative `file` paths against the config file). */
export function sourceSecretRefs(cfg: SourceConfig): SecretRef[] {
  return sourcePlugin(cfg.type).secretRefs(cfg);
}
