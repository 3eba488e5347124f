/**
 * What a postgres component holds, read from its manifest entry. No Node built-ins: the drill workflow reads it
 * (through src/sources/databases.ts).
 */

/** The databases of a postgres component: its `database.<name>.bytes` stats (a name may hold a comma), sorted. */
export function postgresDatabases(stats: Record<string, number | string>): string[] {
  return Object.keys(stats).map((k) => /^database\.(.+)\.bytes$/.exec(k)?.[1]).filter((d): d is string => d !== undefined).sort();
}
