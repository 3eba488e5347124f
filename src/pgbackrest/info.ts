/**
 * `pgbackrest info --output=json`, parsed and checked. The database's `system-id` exceeds 2^53: `JSON.parse` would
 * round it (7713577997676752295 becomes 7713577997676752000), so it is turned into a string in the text first.
 */
import { z } from 'zod';

const Backup = z.object({
  label: z.string().regex(/^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/),
  type: z.enum(['full', 'diff', 'incr']),
  error: z.boolean().optional(),
  archive: z.object({ start: z.string().nullable(), stop: z.string().nullable() }),
  info: z.object({ size: z.number(), delta: z.number(), repository: z.object({ size: z.number(), delta: z.number() }) }),
  lsn: z.object({ start: z.string(), stop: z.string() }).optional(),
  timestamp: z.object({ start: z.number(), stop: z.number() }),
  database: z.object({ id: z.number() }),
});
const Stanza = z.object({
  name: z.string(),
  archive: z.array(z.object({ id: z.string(), min: z.string().nullable(), max: z.string().nullable(), database: z.object({ id: z.number() }) })).default([]),
  backup: z.array(Backup).default([]),
  // The version names the server binaries a drill runs (/usr/lib/postgresql/<version>/bin): a major version, no path.
  db: z.array(z.object({ id: z.number(), 'system-id': z.string(), version: z.string().regex(/^\d{1,3}(\.\d{1,3})?$/) })).default([]),
  status: z.object({
    code: z.number(), message: z.string(),
    lock: z.object({ backup: z.object({ held: z.boolean(), size: z.number().optional(), 'size-cplt': z.number().optional() }).optional() }).optional(),
  }),
});
export type StanzaInfo = z.infer<typeof Stanza>;
export type BackupEntry = z.infer<typeof Backup>;

/** The JSON text with every `"system-id": <digits>` turned into a string, so that no digit is lost. */
export function quoteSystemIds(json: string): string {
  return json.replace(/("system-id"\s*:\s*)(-?\d+)/g, '$1"$2"');
}

/** The stanza's entry of `pgbackrest info --output=json`; throws with what is wrong. */
export function parseInfo(json: string, stanza: string): StanzaInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(quoteSystemIds(json));
  } catch (err) {
    throw new Error(`pgbackrest info printed no JSON: ${(err as Error).message}`);
  }
  const list = z.array(z.unknown()).safeParse(raw);
  if (!list.success) throw new Error('pgbackrest info printed no list of stanzas');
  const entry = list.data.find((s) => (s as { name?: unknown } | null)?.name === stanza);
  if (!entry) throw new Error(`pgbackrest info knows no stanza "${stanza}"`);
  const parsed = Stanza.safeParse(entry);
  if (!parsed.success) throw new Error(`pgbackrest info for stanza "${stanza}" has an unexpected shape: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** The newest backup of a type (by `timestamp.stop`). */
export function newestOfType(info: StanzaInfo, type: string): BackupEntry | undefined {
  return info.backup.filter((b) => b.type === type).sort((a, b) => b.timestamp.stop - a.timestamp.stop)[0];
}

/** The archive (e.g. `15-1`) of the database the newest backup belongs to. */
export function currentArchiveId(info: StanzaInfo): string | undefined {
  const db = info.backup.at(-1)?.database.id ?? info.db.at(-1)?.id;
  return info.archive.filter((a) => a.database.id === db).at(-1)?.id;
}

/** `pgbackrest repo-ls --recurse --output=json`: every file's path (relative) and modification time (seconds). */
export function parseRepoLs(json: string): { path: string; time?: number; size?: number }[] {
  const parsed = z.record(z.string(), z.object({ type: z.string(), time: z.number().optional(), size: z.number().optional() })).safeParse(JSON.parse(json));
  if (!parsed.success) throw new Error('pgbackrest repo-ls printed an unexpected listing');
  return Object.entries(parsed.data).filter(([, v]) => v.type === 'file').map(([p, v]) => ({ path: p, time: v.time, size: v.size }));
}
