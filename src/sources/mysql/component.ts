/**
 * What a mysql component holds, read from its manifest entry. No Node built-ins: the drill workflow reads it
 * (through src/sources/databases.ts).
 */

/** The databases of a mysql component: its `databases` stat, comma-separated. */
export function mysqlDatabases(stats: Record<string, number | string>): string[] {
  return String(stats.databases ?? '').split(',').filter(Boolean);
}
