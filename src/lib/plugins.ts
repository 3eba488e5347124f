import { BackupError } from '../errors.js';

/**
 * The lookup every plugin kind's dispatch needs, over its registry module (`export { plugin as <type> } …`): the
 * plugins in the registry's order, their types, and the plugin of a type (`get` refuses an unregistered one with
 * the list of the registered types).
 */
export function pluginLookup<P>(registry: object, kind: 'source' | 'destination' | 'notifier') {
  const byType = registry as Record<string, P | undefined>;
  // Sorted by type whoever loaded the registry (a module namespace is sorted, a bundler's object is not).
  const types: readonly string[] = Object.keys(registry).sort();
  const find = (type: string): P | undefined => (Object.hasOwn(byType, type) ? byType[type] : undefined);
  return {
    all: types.map((t) => byType[t]!) as readonly P[],
    types,
    find,
    get(type: string): P {
      const plugin = find(type);
      if (!plugin) throw new BackupError('CONFIG_INVALID', `no ${kind} type "${type}" (types: ${types.join(', ')})`);
      return plugin;
    },
  };
}
