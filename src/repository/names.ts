/**
 * The names backupctl gives files on a destination, and the one parser that reads them back. A slot folder holds, per
 * job and slot, `<job>-<type>-<YYYYMMDDTHHMMSSZ>.tar` (the artifact), `<artifact>.manifest.json` (its manifest) and,
 * while an upload runs, `.<artifact>.<workflow ID>.tmp` (the temporary file). Listing (catalog), the walkers and the
 * orphan sweep all read names through `parseName`; `layout()` writes them through the builders below.
 */
import type { BackupType } from '../contracts/backup.js';
import { NAME_RULE, isName } from '../contracts/names.js';
import { BackupError } from '../errors.js';

export { NAME_PATTERN, NAME_RULE, isName } from '../contracts/names.js';

/**
 * Refuses a name that is not of the name grammar (src/contracts/names.ts) before it becomes a path segment: a job,
 * source, destination or tier name, or a component name or type read from a manifest. `what` names it in the message.
 */
export function checkName(what: string, v: unknown): string {
  if (!isName(v)) throw new BackupError('CONFIG_INVALID', `${what} ${JSON.stringify(v)} is not a valid name: use ${NAME_RULE}`);
  return v;
}

/**
 * A workflow ID made safe to be a file or folder name: every character but letters, digits and `._:-` becomes `_`.
 * An ID that would become `.`, `..` or nothing is refused (a permanent CONFIG_INVALID), so that
 * `<stateDir>/staging/<id>` is always a folder of its own, never the state directory or its parent. Used for the
 * temporary upload file, staging, snapshot, drill scratch and restore folders: the one sanitiser.
 */
export function safeWorkflowId(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._:-]/g, '_');
  if (safe === '' || safe === '.' || safe === '..') {
    throw new BackupError('CONFIG_INVALID', `workflow ID ${JSON.stringify(id)} cannot name a folder (it is empty, "." or ".."); start the run with another workflow ID`);
  }
  return safe;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `2025-11-04T03:00:00.123Z` → `20251104T030000Z` (UTC, seconds). */
export function slotStamp(slot: Date): string {
  return `${slot.getUTCFullYear()}${pad(slot.getUTCMonth() + 1)}${pad(slot.getUTCDate())}T${pad(slot.getUTCHours())}${pad(slot.getUTCMinutes())}${pad(slot.getUTCSeconds())}Z`;
}

/** The artifact's file name: `<job>-<type>-<YYYYMMDDTHHMMSSZ>.tar`. */
export function artifactName(job: string, type: BackupType, slot: Date): string {
  return `${job}-${type}-${slotStamp(slot)}.tar`;
}

/** The manifest's file name beside its artifact. */
export function manifestName(artifact: string): string {
  return `${artifact}.manifest.json`;
}

/** The temporary upload file beside the final artifact: hidden, and naming the (sanitised) workflow ID that writes it. */
export function temporaryName(artifact: string, workflowId: string): string {
  return `.${artifact}.${safeWorkflowId(workflowId)}.tmp`;
}

/** A file name of one job read back: which kind of file it is, and what its name says. */
export interface ParsedName {
  kind: 'artifact' | 'manifest' | 'temporary';
  /** The artifact's file name (for a manifest or temporary file: the artifact it belongs to). */
  artifact: string;
  job: string;
  type: BackupType;
  /** The slot from the name, `YYYY-MM-DDTHH:MM:SSZ`. */
  slot: string;
  /** Temporary files only: the sanitised workflow ID of the run that wrote it. */
  workflowId?: string;
}

const escapeRe = (v: string) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const parsers = new Map<string, RegExp>();

function parserFor(job: string): RegExp {
  let re = parsers.get(job);
  if (!re) {
    // One of: `.<artifact>.<id>.tmp`, `<artifact>.manifest.json`, `<artifact>`; the job is matched literally.
    const stem = `${escapeRe(job)}-(?:full|diff)-\\d{8}T\\d{6}Z\\.tar`;
    re = new RegExp(`^(?:\\.(?<temp>${stem})\\.(?<id>.+)\\.tmp|(?<manifest>${stem})\\.manifest\\.json|(?<artifact>${stem}))$`);
    if (parsers.size > 100) parsers.clear();
    parsers.set(job, re);
  }
  return re;
}

/**
 * Reads a file name in a slot folder as one of `job`'s artifacts, manifests or temporary files; `undefined` for
 * anything else (another job's files, hand-made or hostile names). The job is matched literally, so job `app` never
 * claims `app-db-full-….tar`.
 */
export function parseName(fileName: string, job: string): ParsedName | undefined {
  const m = parserFor(job).exec(fileName);
  if (!m?.groups) return undefined;
  const { temp, id, manifest, artifact: art } = m.groups;
  const artifact = (temp ?? manifest ?? art)!;
  const s = /-(full|diff)-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z\.tar$/.exec(artifact)!;
  const slot = `${s[2]}-${s[3]}-${s[4]}T${s[5]}:${s[6]}:${s[7]}Z`;
  const base = { artifact, job, type: s[1] as BackupType, slot };
  if (temp !== undefined) return { kind: 'temporary', ...base, workflowId: id! };
  return { kind: manifest !== undefined ? 'manifest' : 'artifact', ...base };
}

/**
 * The staged write a temporary file name belongs to: `<dir>/.<artifact>.<id>.tmp` is pending for `<dir>/<artifact>`.
 * Refused (a permanent CONFIG_INVALID) for any other name: compensation and the orphan sweep name only these.
 */
export function stagedWriteOf(pending: string, job: string): { pending: string; final: string } {
  const slash = pending.lastIndexOf('/');
  const parsed = parseName(pending.slice(slash + 1), job);
  if (parsed?.kind !== 'temporary') throw new BackupError('CONFIG_INVALID', `${JSON.stringify(pending)} is not a temporary upload file of job ${job}`);
  return { pending, final: `${pending.slice(0, slash + 1)}${parsed.artifact}` };
}
