import { BackupError } from '../errors.js';

/**
 * The lookup every plugin kind's dispatch needs, over its registry module (`export { plugin as <type> } …`): the
 * plugins in the registry's order, their types, and the plugin of a type (`get` refuses an unregistered one with
 * the list of the registered types).
 */
export function pluginLookup<P>(registry: object, kind: 'source' | 'destination' | 'notifier') {
  const byType = registry as Record<string, P | undefined>;
  const types: readonly string[] = Object.keys(registry);
  const find = (type: string): P | undefined => (Object.hasOwn(byType, type) ? byType[type] : undefined);
  return {
    all: Object.values(registry) as readonly P[],
    types,
    find,
    get(type: string): P {
      const plugin = find(type);
      if (!plugin) throw new BackupError('CONFIG_INVALID', `no ${kind} type "${type}" (types: ${types.join(', ')})`);
      return plugin;
    },
  };
}
