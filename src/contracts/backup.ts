/**
 * The backup workflow's messages: its name, input, the plan preflight resolves, each step's result and the run's
 * outcome, its signal and query names, and its workflow ID. Plain JSON, no Node built-ins (the workflow bundle imports
 * this; lint enforces it for all of src/contracts).
 */
import type { ManifestBase, ManifestDraft, SnapshotMember } from './manifest.js';

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

/** The steps of a run (`backup`: a pgBackRest job's backup command). */
export type Step = 'lock' | 'preflight' | 'dump' | 'archive' | 'upload' | 'verify' | 'checksum' | 'finalize' | 'notify' | 'cleanup' | 'backup';

export interface DestinationPlan {
  name: string;
  /** The destination's type (a registered destination plugin). */
  type: string;
  /** Directory, final file, temporary file and manifest, relative to the destination's root. */
  dir: string;
  finalPath: string;
  tempPath: string;
  manifestPath: string;
}

/**
 * The config as preflight read it, trimmed to what one run uses: its job, that job's destinations, the settings and
 * the state folder. Every later step of the run acts on this copy and never reads backup.yml again, so an edit of the
 * file mid-run cannot change a running backup. Plain JSON that only activities look into (it is a `Config` there).
 * Secrets appear only as references (`{ env }` / `{ file }`), read on the worker. Notifiers are not in it: a
 * notification looks its notifier up by name when it is sent (a webhook URL may itself be a secret).
 */
export type ResolvedConfig = { readonly stateDir: string } & Record<string, unknown>;

/** What an activity of a run is given to find its job: the job's name and, once preflight ran, the resolved config. */
export interface RunRef {
  job: string;
  resolved?: ResolvedConfig;
}

/** What preflight resolved from the config: names, paths and secret references, never secret values (the Web UI shows it all). */
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
  /**
   * The first destination's upload starts beside the dump (settings.uploadWhileDumping, on by default, where that
   * destination writes at offsets; absent or false: it starts once archive sealed the artifact).
   */
  uploadWhileDumping?: boolean;
  /** The config this run acts on from here on (see ResolvedConfig). */
  resolved: ResolvedConfig;
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
  /** Encrypted: the component's size before encryption, and the recipients it was encrypted to. */
  plaintextSize?: number;
  recipients?: string[];
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

export interface UploadResult {
  bytes: number;
  sha256: string;
  durationMs: number;
  /** The destination's own word for what it will hold (S3: the composite SHA-256 of the parts); verify and finalize check it. */
  receipt?: string;
}

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

/** A run that did nothing on purpose (the job lock was held too long by another run). Not a backup. */
export interface SkippedResult {
  status: 'skipped';
  workflowId: string;
  job: string;
  type: BackupType;
  slot: string;
  reason: string;
}

/** `2025-11-04T03:00:00.000Z` → `2025-11-04T03:00:00Z` (what Temporal appends to scheduled workflow IDs). */
export function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * What a schedule's action names its runs, `backup:<deployment>:<job>:<type>`: the server appends `-<slot>`, which
 * gives `backupWorkflowId`. The deployment (`temporal.deployment`) is in it, so that the same job name in two configs on
 * one namespace gives two runs of a slot, not one rejected start.
 */
export function backupActionId(deployment: string, job: string, type: BackupType): string {
  return `backup:${deployment}:${job}:${type}`;
}

/** One workflow ID per deployment, job, type and slot: a second start for the same slot is rejected by Temporal. */
export function backupWorkflowId(deployment: string, job: string, type: BackupType, slot: Date): string {
  return `${backupActionId(deployment, job, type)}-${rfc3339Seconds(slot)}`;
}


/** How far in the future a slot may lie (clock skew between the CLI's machine, Temporal and the worker). */
export const SLOT_MAX_AHEAD_MS = 5 * 60_000;

/**
 * Why a slot cannot be backed up now: a slot later than `now` plus five minutes would be the "newest" backup for
 * years (freshness never stale, restore and drill picking it by default). Undefined when it is fine.
 */
export function futureSlotProblem(slot: Date, now: number): string | undefined {
  if (slot.getTime() <= now + SLOT_MAX_AHEAD_MS) return undefined;
  return `slot ${rfc3339Seconds(slot)} is in the future (now is ${rfc3339Seconds(new Date(now))}; at most 5 minutes ahead are accepted): a backup cannot be made for a time that has not come`;
}
