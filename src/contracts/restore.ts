/** The restore workflow: its name, input, plan, result and workflow ID; which databases a restored chain holds. */
import { rfc3339Seconds, type BackupType } from './backup.js';
import type { Manifest, ManifestEncryption } from './manifest.js';

export const RESTORE_WORKFLOW = 'restoreWorkflow';

/** What to restore: a backup by its workflow ID, or the newest at or before a time (default: the newest). */
export interface RestoreInput {
  job: string;
  /** Workflow ID of the backup run. */
  backup?: string;
  /** ISO time: the newest backup whose slot is at or before it. */
  at?: string;
  /** Absolute directory to restore into; must not exist or be empty. */
  to: string;
  destination?: string;
  /** Loads dumps into databases: `source` or `source.database` → target database (created, must not exist). */
  intoDatabases?: Record<string, string>;
  /**
   * Disaster recovery (`restore --trust-unsigned`): also restore a backup whose manifest signature does not verify
   * against a trusted key (key lost, backups made before signing existed). The result says so.
   */
  trustUnsigned?: boolean;
  /**
   * An encrypted backup: the path of the age identity file on the worker (`restore --identity FILE`). Only the path:
   * the key itself never enters the workflow; age reads it on the worker.
   */
  identity?: string;
}

/** One artifact of a restore chain (a full, or a diff's base full then the diff), as the plan step resolved it. */
export interface RestoreArtifact {
  /** Path of the artifact relative to the destination's root. */
  path: string;
  workflowId: string;
  type: BackupType;
  slot: string;
  size: number;
  sha256: string;
  components: Manifest['components'];
  /** Set when its members are age files (decrypted with the restore's identity before anything is unpacked). */
  encryption?: ManifestEncryption;
  /** Set when its manifest's signature does not verify (only with `trustUnsigned`): why. */
  unverified?: string;
}

export interface RestorePlan {
  job: string;
  destination: string;
  /** Base first. */
  chain: RestoreArtifact[];
  /** `intoDatabases` resolved against the backup's components. */
  targets: DbTarget[];
  retries: number;
  heartbeatTimeoutMs: number;
}

export interface UnpackedComponent {
  name: string;
  type: string;
  /** Where it went, relative to the restore directory. */
  path: string;
  /** Files components, in a drill: regular files and their bytes in the restored tree. */
  files?: number;
  bytes?: number;
}

export interface RestoreResult {
  status: 'restored';
  workflowId: string;
  job: string;
  destination: string;
  backup: { workflowId: string; type: BackupType; slot: string; path: string };
  chain: { workflowId: string; type: BackupType; slot: string; path: string; size: number; sha256: string }[];
  to: string;
  components: UnpackedComponent[];
  databases: { source: string; database: string; target: string }[];
  bytes: number;
  durationMs: number;
  /** Artifacts restored although their manifest's signature does not verify (`trustUnsigned`), and why. */
  unverified?: { path: string; reason: string }[];
  /** Said loudly when `unverified` is set. */
  warning?: string;
}

/** A database inside a restored dump, and the database it is loaded into. */
export interface DbTarget {
  source: string;
  /** The source's type: a database source (see DatabaseLists). */
  type: string;
  database: string;
  target: string;
}

/**
 * How each database source type reads the databases its component holds from the manifest's stats. The sources'
 * registry supplies it (`DATABASE_LISTS` in src/sources/databases.ts, Node-free like this file).
 */
export type DatabaseLists = Readonly<Record<string, (stats: Record<string, number | string>) => string[]>>;

/** The databases each database component of a chain holds (the newest artifact's component wins). */
export function dumpedDatabases(chain: RestoreArtifact[], lists: DatabaseLists): { source: string; type: string; databases: string[] }[] {
  const out = new Map<string, { source: string; type: string; databases: string[] }>();
  for (const a of chain) {
    for (const c of a.components) {
      if (!Object.hasOwn(lists, c.type)) continue;
      out.set(c.name, { source: c.name, type: c.type, databases: lists[c.type]!(c.stats) });
    }
  }
  return [...out.values()];
}

/** A restore's workflow ID, `restore:<deployment>:<job>-<time>`. */
export function restoreWorkflowId(deployment: string, job: string, at: Date): string {
  return `restore:${deployment}:${job}-${rfc3339Seconds(at)}`;
}
