import type { Config, DestinationConfig } from '../config/schema.js';
import { BackupError } from '../errors.js';
import { pluginLookup } from '../lib/plugins.js';
import * as registry from './registry.js';
import { closePooled, pooled } from './pool.js';
import { throttled } from './throttle.js';
import type { DestinationPlugin, DestinationSession, OpenOptions } from './types.js';

export type { DestinationPlugin, DestinationSession, OpenOptions } from './types.js';

/** A plugin as the dispatch sees it: its hooks take any destination config (the registry matched the type). */
export type AnyDestinationPlugin = DestinationPlugin<(typeof registry)[keyof typeof registry]['schema'], DestinationConfig>;

const lookup = pluginLookup<AnyDestinationPlugin>(registry, 'destination');

/** Every registered destination plugin, in the registry's order. */
export const DESTINATION_PLUGINS: readonly AnyDestinationPlugin[] = lookup.all;

/** The registered destination types. */
export const DESTINATION_TYPES: readonly string[] = lookup.types;

/** The plugin of a destination type. */
export const destinationPlugin = lookup.get;

export async function openDestination(config: Config, name: string, opts: OpenOptions = {}): Promise<DestinationSession> {
  const cfg = config.destinations[name];
  if (!cfg) throw new BackupError('CONFIG_INVALID', `no destination named "${name}" in the config`);
  const plugin = destinationPlugin(cfg.type);
  // Pool and throttle wrap every destination alike (src/destinations/pool.ts, throttle.ts).
  const session = await pooled(`${name}\0${JSON.stringify(cfg)}`, plugin.reuse, () => plugin.connect(name, cfg), opts);
  const limit = plugin.bandwidthLimit?.(cfg);
  return limit ? throttled(session, limit) : session;
}

/** Closes every pooled connection (worker shutdown, end of a CLI command). */
export async function closeDestinations(): Promise<void> {
  await closePooled();
}

/** Opens a destination for the duration of `fn`. */
export async function withDestination<T>(config: Config, name: string, fn: (d: DestinationSession) => Promise<T>, opts: OpenOptions = {}): Promise<T> {
  const d = await openDestination(config, name, opts);
  try {
    return await fn(d);
  } finally {
    d.release();
  }
}
