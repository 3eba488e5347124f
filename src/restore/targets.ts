import { dumpedDatabases, type DbTarget, type RestoreArtifact } from '../contracts/restore.js';
import { DATABASE_LISTS } from '../sources/databases.js';
import { BackupError } from '../errors.js';

/**
 * `--into-databases` entries: `source=target` (a source whose dump holds one database) or `source.database=target`.
 * Every key must name a database source of the backup; every target appears once.
 */
export function resolveTargets(mapping: Record<string, string>, chain: RestoreArtifact[]): DbTarget[] {
  const dumped = dumpedDatabases(chain, DATABASE_LISTS);
  const out: DbTarget[] = [];
  for (const [key, target] of Object.entries(mapping)) {
    let src = dumped.find((d) => d.source === key);
    let database: string | undefined;
    if (src) {
      if (src.databases.length !== 1) {
        throw new BackupError('CONFIG_INVALID', `--into-databases ${key}=${target}: source "${key}" holds ${src.databases.length} databases (${src.databases.join(', ')}); name one as ${key}.<database>=${target}`);
      }
      database = src.databases[0]!;
    } else {
      src = dumped.find((d) => key.startsWith(`${d.source}.`));
      if (!src) {
        throw new BackupError('CONFIG_INVALID', `--into-databases ${key}=${target}: the backup has no MariaDB/MySQL or PostgreSQL source "${key.split('.')[0]}" (it has: ${dumped.map((d) => d.source).join(', ') || 'none'})`);
      }
      database = key.slice(src.source.length + 1);
      if (!src.databases.includes(database)) {
        throw new BackupError('CONFIG_INVALID', `--into-databases ${key}=${target}: source "${src.source}" holds no database "${database}" (it holds ${src.databases.join(', ')})`);
      }
    }
    if (out.some((t) => t.target === target && t.type === src.type)) throw new BackupError('CONFIG_INVALID', `--into-databases: target database ${target} is named twice`);
    out.push({ source: src.source, type: src.type, database, target });
  }
  return out;
}

/** Parses `a=b,c.d=e` (repeatable flag values joined) into a mapping. */
export function parseIntoDatabases(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)) {
    const i = v.lastIndexOf('=');
    if (i <= 0 || i === v.length - 1) throw new BackupError('CONFIG_INVALID', `--into-databases "${v}": expected source=target or source.database=target`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}
