/**
 * Types and pure helpers shared by the workflow (deterministic sandbox), activities and the CLI.
 * No Node built-ins here: the workflow bundle imports this file.
 */

export const BACKUP_WORKFLOW = 'backupWorkflow';
export const CANCEL_SIGNAL = 'cancel';
export const PROGRESS_QUERY = 'progress';

export type BackupType = 'full' | 'diff';

/** The workflow's input: plain JSON, so that `temporal workflow start --input '{"job":"app"}'` works. */
export interface BackupInput {
  job: string;
  type?: BackupType;
  /** ISO time of the schedule slot; defaults to the scheduled time, or the start time for manual runs. */
  slot?: string;
  tier?: string;
}

export type Step = 'lock' | 'preflight' | 'dump' | 'archive' | 'upload' | 'verify' | 'checksum' | 'finalize' | 'notify' | 'cleanup';

export interface DestinationPlan {
  name: string;
  type: 'local' | 'sftp';
  /** Directory, final file, temporary file and manifest, relative to the destination's root. */
  dir: string;
  finalPath: string;
  tempPath: string;
  manifestPath: string;
}

/** What preflight resolved from the config: names and paths only, never secrets (the Web UI shows it all). */
export interface RunPlan {
  job: string;
  type: BackupType;
  tier: string;
  slot: string;
  workflowId: string;
  artifactName: string;
  sources: { name: string; type: string }[];
  destinations: DestinationPlan[];
  /** Destinations that already hold this slot's finalized backup (an earlier run of the same slot). */
  alreadyStored: { destination: string; path: string }[];
  notifiers: string[];
  retries: number;
  heartbeatTimeoutMs: number;
  verifyAttempts: number;
  notifyTimeoutMs: number;
  warnings: string[];
  /** A diff run's base full (absent on a full, and on a diff that had to become a full: `type` says which). */
  base?: ManifestBase;
  /** The job has a retention policy: prune after a successful run. */
  prune?: boolean;
}

export interface ComponentResult {
  name: string;
  type: string;
  /** Member name inside the artifact. */
  member: string;
  /** Offset of the member's header in the artifact, and of the end of its padded data. */
  offset: number;
  end: number;
  size: number;
  warnings: string[];
  stats: Record<string, number | string>;
  /** Files sources: the GNU tar snapshot (`--listed-incremental`) stored as the member after the component. */
  snapshot?: SnapshotMember;
  /**
   * The worker's boot ID when the component was written. Staging is not fsynced: a machine that restarted since may
   * have lost staged bytes, so later steps refuse staging written before a different boot.
   */
  bootId: string;
}

/**
 * The GNU tar snapshot file of a files component, stored in the artifact as its own member (`<source>.snar`), so that
 * a diff can be taken against a full even when the worker's local copy is lost. `offset` is the member's header.
 */
export interface SnapshotMember {
  member: string;
  offset: number;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: 'backupctl-manifest/1';
  job: string;
  type: BackupType;
  tier: string;
  slot: string;
  workflowId: string;
  runId: string;
  createdAt: string;
  artifact: { name: string; size: number; sha256: string; format: 'tar' };
  components: { name: string; type: string; member: string; size: number; sha256: string; stats: Record<string, number | string>; snapshot?: SnapshotMember }[];
  warnings: string[];
  tools: Record<string, string>;
  /**
   * A differential run's base: the finalized full it holds the changes against. Restore unpacks the base first, then
   * this artifact (files components are GNU tar `--listed-incremental` archives, so deletions are applied too).
   * Absent on a full.
   */
  base?: ManifestBase;
}

export interface ManifestBase {
  workflowId: string;
  slot: string;
  /** The base artifact's final path, relative to the destination's root, and its size and SHA-256. */
  path: string;
  size: number;
  sha256: string;
}

/**
 * A manifest before its hashes are known: the artifact's SHA-256 is what the first upload sent, the components' are
 * computed from the staged artifact while the first destination re-reads its copy (`checksum`).
 */
export type ManifestDraft = Omit<Manifest, 'artifact' | 'components'> & {
  artifact: Omit<Manifest['artifact'], 'sha256'>;
  components: Omit<Manifest['components'][number], 'sha256'>[];
};

export interface ArchiveResult {
  size: number;
  /** The boot ID the staged artifact belongs to (see ComponentResult.bootId). */
  bootId: string;
  manifest: ManifestDraft;
}

export interface ChecksumResult {
  /** SHA-256 of each component's bytes in the staged artifact, in manifest order. */
  components: string[];
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The manifest with every hash filled in; throws when one is missing or malformed (never a manifest with a hole). */
export function completeManifest(draft: ManifestDraft, artifactSha256: string, componentSha256: string[]): Manifest {
  if (!SHA256_HEX.test(artifactSha256)) throw new Error(`no valid artifact SHA-256 for the manifest: "${artifactSha256}"`);
  if (componentSha256.length !== draft.components.length || !componentSha256.every((h) => SHA256_HEX.test(h))) {
    throw new Error(`component hashes do not match the components: ${componentSha256.length} for ${draft.components.length}`);
  }
  return {
    ...draft,
    artifact: { ...draft.artifact, sha256: artifactSha256 },
    components: draft.components.map((c, i) => ({ ...c, sha256: componentSha256[i]! })),
  };
}

export interface UploadResult { bytes: number; sha256: string; durationMs: number }

export interface VerifyResult { size: number; sha256: string; method: string }

export interface BackupResult {
  status: 'succeeded' | 'succeeded_with_warnings';
  workflowId: string;
  job: string;
  type: BackupType;
  slot: string;
  size: number;
  sha256: string;
  locations: { destination: string; path: string }[];
  warnings: string[];
  durationMs: number;
  /** A diff's base full. */
  base?: ManifestBase;
  /** What retention removed after the run (jobs with a retention policy). */
  pruned?: string[];
}

/** Something a notifier may report. Plain JSON (it is an activity input): names and paths, never secrets. */
/** A run that did nothing on purpose (the job lock was held too long by another run). Not a backup. */
export interface SkippedResult {
  status: 'skipped';
  workflowId: string;
  job: string;
  type: BackupType;
  slot: string;
  reason: string;
}

export type BackupEvent =
  /** A run began (dead-man's-switch pings: healthchecks `/start`). */
  | { kind: 'start'; job: string; type: BackupType; slot: string; workflowId: string; runId: string }
  | { kind: 'success'; result: BackupResult }
  | { kind: 'failure' | 'cancelled'; job: string; type: BackupType; slot: string; workflowId: string; runId: string;
      step: Step; error: string; code: string; attempts: number; finalized: { destination: string; path: string }[];
      durationMs: number;
      /** Temporary files the compensation could not remove yet (destination unreachable); retried for leftoversRetryMs. */
      leftovers?: { destination: string; path: string }[]; leftoversRetryMs?: number }
  /** The run did nothing, on purpose: another run of the job held the job lock too long. */
  | { kind: 'skipped'; job: string; type: BackupType; slot: string; workflowId: string; runId: string; reason: string }
  /** Monitoring found a problem without a run: stale backups, a missing or paused schedule, repeated failures. */
  | { kind: 'alert'; job: string; problems: string[]; checkedAt: string }
  /** A restore drill finished (failures always notified; successes when the job's drill asks for it). */
  | DrillEvent;

/** The workflow ID (for message IDs and links) an event belongs to, if any. */
export function eventWorkflowId(e: BackupEvent): string | undefined {
  if (e.kind === 'success') return e.result.workflowId;
  if (e.kind === 'alert') return undefined;
  if (e.kind === 'drill') return e.report.workflowId;
  return e.workflowId;
}

export function eventJob(e: BackupEvent): string {
  return e.kind === 'success' ? e.result.job : e.kind === 'drill' ? e.report.job : e.job;
}

/** `2025-11-04T03:00:00.000Z` → `2025-11-04T03:00:00Z` (what Temporal appends to scheduled workflow IDs). */
export function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** One workflow ID per job, type and slot: a second start for the same slot is rejected by Temporal. */
export function backupWorkflowId(job: string, type: BackupType, slot: Date): string {
  return `backup-${job}-${type}-${rfc3339Seconds(slot)}`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Remote layout: `<tier>/YYYY/MM/DD/HHMM/<job>-<type>-<YYYYMMDDTHHMMSSZ>.tar`, in UTC. */
export function layout(job: string, type: BackupType, tier: string, slot: Date, workflowId: string) {
  const y = slot.getUTCFullYear(), mo = pad(slot.getUTCMonth() + 1), d = pad(slot.getUTCDate());
  const hm = `${pad(slot.getUTCHours())}${pad(slot.getUTCMinutes())}`;
  const stamp = `${y}${mo}${d}T${hm}${pad(slot.getUTCSeconds())}Z`;
  const dir = `${tier}/${y}/${mo}/${d}/${hm}`;
  const artifactName = `${job}-${type}-${stamp}.tar`;
  const safeId = workflowId.replace(/[^A-Za-z0-9._:-]/g, '_');
  return {
    dir,
    artifactName,
    finalPath: `${dir}/${artifactName}`,
    tempPath: `${dir}/.${artifactName}.${safeId}.tmp`,
    manifestPath: `${dir}/${artifactName}.manifest.json`,
  };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export const JOB_LOCK_WORKFLOW = 'jobLockWorkflow';
export const FRESHNESS_WORKFLOW = 'freshnessWorkflow';
export const PRUNE_WORKFLOW = 'pruneWorkflow';
export const ACQUIRE_SIGNAL = 'acquire';
export const RELEASE_SIGNAL = 'release';
export const LOCK_GRANTED_SIGNAL = 'lockGranted';

/**
 * One lock workflow per job serialises its runs, whatever started them. Its ID includes the job's task queue: the
 * same job name in another config (another host, another queue) is another job.
 */
export function lockWorkflowId(job: string, taskQueue: string): string {
  return `backup-lock-${taskQueue}-${job}`;
}

export interface LockRequest {
  workflowId: string;
  runId: string;
}

/** The custom search attributes backupctl sets on runs (registered by `backupctl up` and the worker). */
export const SEARCH_ATTRIBUTE_NAMES = { job: 'BackupJob', type: 'BackupType', outcome: 'BackupOutcome' } as const;

export const RESTORE_WORKFLOW = 'restoreWorkflow';
export const DRILL_WORKFLOW = 'drillWorkflow';

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
}

export interface RestorePlan {
  job: string;
  destination: string;
  /** Base first. */
  chain: RestoreArtifact[];
  /** `intoDatabases` resolved against the backup's components. */
  targets: { source: string; type: 'mysql' | 'postgres'; database: string; target: string }[];
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
}

/** A restore drill's outcome, stored as JSON on each destination under `drills/<job>/`. */
export interface DrillReport {
  format: 'backupctl-drill/1';
  job: string;
  workflowId: string;
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  /** Measured restore time (RTO): download, checksums, unpack and database loads. */
  restoreMs?: number;
  backup?: { workflowId: string; type: BackupType; slot: string; path: string; destination: string; size: number };
  checks: string[];
  problems: string[];
}

export type DrillEvent = { kind: 'drill'; report: DrillReport; runId: string };

export function restoreWorkflowId(job: string, at: Date): string {
  return `restore-${job}-${rfc3339Seconds(at)}`;
}

export function drillWorkflowId(job: string, at: Date): string {
  return `drill-${job}-${rfc3339Seconds(at)}`;
}
