/**
 * One error class for the whole project. Every error carries a stable `code` (listed once here) so that logs,
 * notifications, CLI exit codes and Temporal's `nonRetryableErrorTypes` can refer to it. `permanent` errors are
 * never retried: retrying an authentication failure or a host key mismatch only hides it.
 */
export const ERROR_CODES = {
  CONFIG_INVALID: { permanent: true },
  CONFIG_NOT_FOUND: { permanent: true },
  JOB_UNKNOWN: { permanent: true },
  SECRET_UNAVAILABLE: { permanent: true },
  SOURCE_UNREADABLE: { permanent: true },
  SOURCE_EMPTY: { permanent: true },
  DUMP_FAILED: { permanent: false },
  // The dump tool said it succeeded but its output fails the source's check (no trailer, unreadable TOC, below minSize).
  DUMP_INCOMPLETE: { permanent: true },
  // The database refused the configured credentials.
  DATABASE_AUTH: { permanent: true },
  ARCHIVE_FAILED: { permanent: false },
  STAGING_SPACE: { permanent: true },
  // The restore target (or the drill's scratch space, or staging for decrypted components) has too little free space
  // for what the backup's manifest says it unpacks to: refused before anything is written.
  RESTORE_SPACE: { permanent: true },
  // Staging written before the worker's machine restarted (it is not fsynced): not used, the run fails.
  STAGING_LOST: { permanent: true },
  DESTINATION_UNREACHABLE: { permanent: false },
  DESTINATION_AUTH: { permanent: true },
  HOST_KEY_MISMATCH: { permanent: true },
  DESTINATION_SPACE: { permanent: true },
  DESTINATION_IO: { permanent: false },
  DESTINATION_EXISTS: { permanent: true },
  UPLOAD_CORRUPTED: { permanent: true },
  // Not retried by the verify step itself: the workflow uploads again (a bounded number of times) instead.
  VERIFY_MISMATCH: { permanent: true },
  VERIFY_MISSING: { permanent: true },
  FINALIZE_FAILED: { permanent: false },
  NOTIFY_FAILED: { permanent: false },
  SIZE_ANOMALY: { permanent: true },
  TEMPORAL_UNAVAILABLE: { permanent: true },
  // No worker picked up a workflow the CLI started (prune, restore or drill with --no-worker) within the bounded wait.
  NO_WORKER: { permanent: true },
  // A diff run's base full has no GNU tar snapshot on this worker any more (state lost between preflight and dump).
  SNAPSHOT_MISSING: { permanent: true },
  // A retention rule would delete every backup of a tier: nothing is deleted.
  RETENTION_REFUSED: { permanent: true },
  // Restore: no backup matches, a downloaded artifact or component does not match its manifest, the target is in use.
  RESTORE_NOT_FOUND: { permanent: true },
  RESTORE_CHECKSUM_MISMATCH: { permanent: true },
  RESTORE_TARGET_EXISTS: { permanent: true },
  RESTORE_FAILED: { permanent: true },
  // Restore: the backup's manifest (or its base's) has no signature that verifies against a trusted public key: it is
  // no backup of this deployment (README, "Signed manifests"); `restore --trust-unsigned` restores it anyway.
  MANIFEST_UNVERIFIED: { permanent: true },
  // The worker's manifest signing key: configured but missing, unreadable or not Ed25519; `keys init` found one.
  SIGNING_KEY_MISSING: { permanent: true },
  SIGNING_KEY_INVALID: { permanent: true },
  SIGNING_KEY_EXISTS: { permanent: true },
  // A restore drill's check failed (file count, sizes, a dump that does not load).
  DRILL_FAILED: { permanent: true },
  // An encrypted backup (README, "Encryption"): no age identity was given where it must be decrypted (restore
  // --identity, drill.identity), or the one given opens none of the recipients it was encrypted to.
  ENCRYPTION_IDENTITY: { permanent: true },
  // age could not authenticate a component's ciphertext (altered or truncated although its hashes matched): refused.
  ENCRYPTION_CORRUPT: { permanent: true },
  // pgBackRest jobs: `pgbackrest check` failed (archive_command, stanza, connection), the backup command failed, the
  // backup it reported is missing or in error or `pgbackrest verify` failed, an archived WAL segment is missing.
  PGBACKREST_CHECK_FAILED: { permanent: true },
  PGBACKREST_BACKUP_FAILED: { permanent: false },
  PGBACKREST_VERIFY_FAILED: { permanent: true },
  WAL_GAP: { permanent: true },
} as const satisfies Record<string, { permanent: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class BackupError extends Error {
  readonly code: ErrorCode;
  readonly permanent: boolean;
  /** What the operator can do about it, shown after the message. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; hint?: string; permanent?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BackupError';
    this.code = code;
    this.permanent = options.permanent ?? ERROR_CODES[code].permanent;
    this.hint = options.hint;
  }

  /** The message with its hint, as shown to people. */
  get detail(): string {
    return this.hint ? `${this.message}\nHINT: ${this.hint}` : this.message;
  }
}

/** Error codes that must never be retried, for `RetryPolicy.nonRetryableErrorTypes` (the workflow imports this). */
export const PERMANENT_CODES: string[] = Object.entries(ERROR_CODES)
  .filter(([, v]) => v.permanent)
  .map(([k]) => k);

export function errorMessage(err: unknown): string {
  if (err instanceof BackupError) return err.detail;
  if (err instanceof Error) return err.message;
  return String(err);
}
