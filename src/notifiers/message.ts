import { createHash } from 'node:crypto';
import { eventWorkflowId, type BackupEvent } from '../contracts/events.js';
import type { BackupResult } from '../contracts/backup.js';
import type { DrillReport } from '../contracts/drill.js';
import { isPgbackrestResult } from '../contracts/pgbackrest.js';
import { formatBytes } from '../lib/format.js';
import { jobRunsQuery } from '../lib/visibility.js';
import { pgbackrestDrill, pgbackrestSuccess } from './pgbackrest-message.js';
import type { RenderedMessage } from './types.js';

export interface MessageContext {
  uiUrl: string;
  namespace: string;
  /**
   * The config's deployment and the job's task queue: an alert's ID and its link to the job's runs are this config's
   * job's, not those of another config's job of the same name.
   */
  deployment?: string;
  taskQueue?: string;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function runLink(ctx: MessageContext, workflowId: string, runId?: string): string {
  const base = ctx.uiUrl.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(ctx.namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}/history`;
}

/** One text for every notifier: what happened, where, and what to look at next. */
export function renderMessage(event: BackupEvent, ctx: MessageContext): RenderedMessage {
  const workflowId = eventWorkflowId(event);
  // Stable across resends: the same run and event always get the same ID (an alert: its alertId, stable per job,
  // problems and day; else the same job, problems and check).
  const key = workflowId ?? (event.kind === 'alert' ? `${ctx.deployment ?? ''}\0${event.alertId ?? `${event.job}\0${event.checkedAt}\0${event.problems.join('\n')}`}` : '');
  const id = createHash('sha256').update(`${key}\0${event.kind}`).digest('hex').slice(0, 32);
  if (event.kind === 'start') {
    return { id, subject: `[backupctl] started: ${event.job} ${event.type} backup ${event.slot}`, text: `Backup started: job ${event.job}, ${event.type}, slot ${event.slot}.\n\nRun: ${runLink(ctx, event.workflowId, event.runId)}` };
  }
  if (event.kind === 'skipped') {
    return {
      id, subject: `[backupctl] SKIPPED: ${event.job} ${event.type} backup ${event.slot}`,
      text: [`Backup SKIPPED: job ${event.job}, ${event.type}, slot ${event.slot}.`, '', `Reason: ${event.reason}`, '', 'No backup was stored for this slot.', '', `Run: ${runLink(ctx, event.workflowId, event.runId)}`, `Workflow ID: ${event.workflowId}`].join('\n'),
    };
  }
  if (event.kind === 'alert') {
    return {
      id, subject: `[backupctl] ALERT: ${event.job}: ${event.problems[0]}${event.problems.length > 1 ? ` (+${event.problems.length - 1} more)` : ''}`,
      text: [`Monitoring found problems with job ${event.job} (checked ${event.checkedAt}):`, '', ...event.problems.map((p) => `  - ${p}`), '', `Runs: ${ctx.uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(ctx.namespace)}/workflows?query=${encodeURIComponent(jobRunsQuery(event.job, ctx.taskQueue))}`].join('\n'),
    };
  }
  if (event.kind === 'drill' && event.report.format === 'backupctl-pgbackrest-drill/1') {
    return { id, ...pgbackrestDrill(event.report, runLink(ctx, event.report.workflowId, event.runId)) };
  }
  if (event.kind === 'success' && isPgbackrestResult(event.result)) {
    return { id, ...pgbackrestSuccess(event.result, runLink(ctx, event.result.workflowId)) };
  }
  if (event.kind === 'drill') {
    const r = event.report as DrillReport;
    const b = r.backup;
    const lines = [
      `Restore drill ${r.ok ? 'PASSED' : 'FAILED'}: job ${r.job}${b ? `, ${b.type} backup of slot ${b.slot}` : ''}.`,
      '',
      ...(r.problems.length ? ['PROBLEMS:', ...r.problems.map((p) => `  - ${p}`), ''] : []),
      ...(r.restoreMs !== undefined ? [`Restore time (measured RTO): ${duration(r.restoreMs)}`] : []),
      ...(b ? [`Backup: ${b.destination}: ${b.path} (${formatBytes(b.size)})`] : []),
      ...(r.checks.length ? ['Checked:', ...r.checks.map((c) => `  - ${c}`)] : []),
      '',
      `Run: ${runLink(ctx, r.workflowId, event.runId)}`,
      `Workflow ID: ${r.workflowId}`,
    ];
    return { id, subject: `[backupctl] DRILL ${r.ok ? 'OK' : 'FAILED'}: ${r.job}${r.ok ? '' : `: ${(r.problems[0] ?? '').slice(0, 140)}`}`, text: lines.join('\n') };
  }
  if (event.kind === 'success') {
    const r = event.result as BackupResult;
    const warn = r.warnings.length > 0;
    const lines = [
      `Backup ${warn ? 'succeeded with warnings' : 'succeeded'}: job ${r.job}, ${r.type}, slot ${r.slot}.`,
      '',
      ...(warn ? ['WARNINGS:', ...r.warnings.map((w) => `  - ${w}`), ''] : []),
      `Size:     ${formatBytes(r.size)} (${r.size} bytes)`,
      `SHA-256:  ${r.sha256}`,
      `Duration: ${duration(r.durationMs)}`,
      'Stored and verified (size and SHA-256 re-read from the stored file) at:',
      ...r.locations.map((l) => `  - ${l.destination}: ${l.path}`),
      '',
      `Run: ${runLink(ctx, r.workflowId)}`,
      `Workflow ID: ${r.workflowId}`,
    ];
    const headline = warn ? ` (${r.warnings.length} warning${r.warnings.length > 1 ? 's' : ''}${r.warnings[0]!.startsWith('size anomaly') ? `: ${r.warnings[0]!.slice(0, 120)}` : ''})` : '';
    return { id, subject: `[backupctl] ${warn ? 'WARNING' : 'OK'}: ${r.job} ${r.type} backup ${r.slot}${headline}`, text: lines.join('\n') };
  }
  const cancelled = event.kind === 'cancelled';
  const lines = [
    cancelled
      ? `Backup CANCELLED during the ${event.step} step: job ${event.job}, ${event.type}, slot ${event.slot}.`
      : `Backup FAILED in the ${event.step} step: job ${event.job}, ${event.type}, slot ${event.slot}.`,
    '',
    `Step:     ${event.step}`,
    `Error:    ${event.error}`,
    `Code:     ${event.code}`,
    `Attempts: ${event.attempts}`,
    `Duration: ${duration(event.durationMs)}`,
    '',
    event.finalized.length > 0
      ? `Already stored and verified before the failure: ${event.finalized.map((l) => `${l.destination}: ${l.path}`).join(', ')}`
      : event.leftovers?.length
        ? 'No backup was stored for this slot. Local staging was removed; earlier backups were not touched.'
        : 'No backup was stored for this slot. Temporary files and local staging were removed; earlier backups were not touched.',
    ...(event.leftovers?.length
      ? ['', `Temporary files that could not be removed yet (the destination did not answer): ${event.leftovers.map((l) => `${l.destination}: ${l.path}`).join(', ')}. `
        + `backupctl keeps trying to remove them for ${duration(event.leftoversRetryMs ?? 0)}; the run stays open until then (see the Web UI).`]
      : []),
    '',
    `Run: ${runLink(ctx, event.workflowId, event.runId)}`,
    `Workflow ID: ${event.workflowId}`,
  ];
  return {
    id,
    subject: `[backupctl] ${cancelled ? 'CANCELLED' : 'FAILED'}: ${event.job} ${event.type} backup ${event.slot} (${event.step})`,
    text: lines.join('\n'),
  };
}
