import { BackupError, errorMessage } from '../errors.js';

/** Exit codes, documented in the README: cron wrappers and monitoring rely on them. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, WARNINGS: 3 } as const;

export function fail(err: unknown): never {
  process.stderr.write(`backupctl: ${errorMessage(err)}\n`);
  // A ConfigError (config/load.ts) is a BackupError with the code CONFIG_INVALID.
  const usage = err instanceof BackupError && (err.code === 'CONFIG_INVALID' || err.code === 'CONFIG_NOT_FOUND' || err.code === 'JOB_UNKNOWN');
  process.exit(usage ? EXIT.USAGE : EXIT.FAILED);
}

export function uiLink(uiUrl: string, namespace: string, workflowId: string): string {
  return `${uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
