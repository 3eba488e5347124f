import { mysqlDatabases } from './mysql/component.js';
import { postgresDatabases } from './postgres/component.js';

/**
 * The database sources' `database.list` hooks, for the drill workflow: it picks its scratch databases in the workflow
 * sandbox, which must not load a plugin (they use Node). No Node built-ins here. Each entry is the same function as
 * the plugin's hook (test/sources/registry.test.ts checks it): a database source type adds its line here too.
 */
export const DATABASE_LISTS = {
  mysql: mysqlDatabases,
  postgres: postgresDatabases,
} as const;

export type DatabaseSourceType = keyof typeof DATABASE_LISTS;
