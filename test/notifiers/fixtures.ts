import { renderMessage } from '../../src/notifiers/message.js';
import type { RenderedMessage } from '../../src/notifiers/types.js';
import type { BackupEvent } from '../../src/contracts/index.js';

/** Events of one run (same workflow ID), plus a monitoring alert, and their rendered messages. */
export const workflowId = 'backup-app-full-2025-11-04T03:00:00Z';
const run = { job: 'app', type: 'full' as const, slot: '2025-11-04T03:00:00Z', workflowId, runId: 'run-1' };

export const events = {
  start: { kind: 'start', ...run },
  success: {
    kind: 'success',
    result: {
      status: 'succeeded', workflowId, job: 'app', type: 'full', slot: run.slot, size: 2048, sha256: 'ab'.repeat(32),
      locations: [{ destination: 'nas', path: 'daily/2025/11/04/0300/app-full-20251104T030000Z.tar' }], warnings: [], durationMs: 4200,
    },
  },
  failure: {
    kind: 'failure', ...run, step: 'verify', error: 'SHA-256 mismatch <expected> & <actual>', code: 'VERIFY_MISMATCH', attempts: 2,
    finalized: [], durationMs: 5000,
  },
  cancelled: {
    kind: 'cancelled', ...run, step: 'upload', error: 'cancelled', code: 'CANCELLED', attempts: 1, finalized: [], durationMs: 900,
  },
  skipped: { kind: 'skipped', ...run, reason: 'another run of app held the job lock for 30 min' },
  alert: { kind: 'alert', job: 'app', problems: ['newest full backup is 26 h old (threshold 25 h)'], checkedAt: '2025-11-05T05:00:00Z' },
  drill: {
    kind: 'drill', runId: 'run-2',
    report: {
      format: 'backupctl-drill/1', job: 'app', workflowId: 'drill-app-2025-11-09T05:00:00Z', ok: false, startedAt: '2025-11-09T05:00:00.000Z',
      finishedAt: '2025-11-09T05:01:00.000Z', checks: [], problems: ['restore refused: artifact daily/x.tar has SHA-256 00, its manifest says ab (RESTORE_CHECKSUM_MISMATCH)'],
    },
  },
} satisfies Record<BackupEvent['kind'], BackupEvent>;

export function message(event: BackupEvent): RenderedMessage {
  return renderMessage(event, { uiUrl: 'http://localhost:8233', namespace: 'default' });
}

/** Runs `fn` expecting it to reject, and returns the error. */
export async function rejection(fn: () => Promise<unknown>): Promise<Error & { code?: string; permanent?: boolean }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string; permanent?: boolean };
  }
  throw new Error('expected a rejection');
}
