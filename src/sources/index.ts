import type { SecretRef } from '../config/fields.js';
import type { SourceConfig } from '../config/schema.js';
import { pluginLookup } from '../lib/plugins.js';
import * as registry from './registry.js';
import type { Source, SourcePlugin } from './types.js';

export type { Source, DumpContext, DumpOutcome, SourcePlugin } from './types.js';

/** A plugin as the dispatch sees it: its hooks take any source config (the registry matched the type). */
export type AnySourcePlugin = SourcePlugin<(typeof registry)[keyof typeof registry]['schema'], SourceConfig>;

const lookup = pluginLookup<AnySourcePlugin>(registry, 'source');

/** Every registered source plugin, in the registry's order. */
export const SOURCE_PLUGINS: readonly AnySourcePlugin[] = lookup.all;

/** The registered source types. */
export const SOURCE_TYPES: readonly string[] = lookup.types;

/** The plugin of a source type; undefined for a type that is not registered (e.g. read from a manifest). */
export const findSourcePlugin = lookup.find;

/** The plugin of a source type. */
export const sourcePlugin = lookup.get;

export function createSource(cfg: SourceConfig): Source {
  return sourcePlugin(cfg.type).open(cfg);
}

/** Every secret reference of a source (for resolving relative `file` paths against the config file). */
export function sourceSecretRefs(cfg: SourceConfig): SecretRef[] {
  return sourcePlugin(cfg.type).secretRefs(cfg);
}
