import type { PgbackrestDrillReport, PgbackrestResult } from '../contracts/pgbackrest.js';
import { formatBytes } from '../lib/format.js';

// The texts of a pgBackRest job's success and drill (renderMessage in message.ts calls these; failures, skips and
// alerts are worded as for every job).

const seconds = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.floor(ms / 60_000)} min ${Math.round(ms / 1000) % 60} s`);

export function pgbackrestSuccess(r: PgbackrestResult, link: string): { subject: string; text: string } {
  const f = r.pgbackrest;
  const warn = r.warnings.length > 0;
  const lines = [
    `pgBackRest ${f.type} backup ${warn ? 'succeeded with warnings' : 'succeeded'}: job ${r.job}, stanza ${f.stanza}, slot ${r.slot}.`,
    '',
    ...(warn ? ['WARNINGS:', ...r.warnings.map((w) => `  - ${w}`), ''] : []),
    `Label:    ${f.label} (${f.type})`,
    `Size:     ${formatBytes(f.size)} database, ${formatBytes(f.delta)} copied (delta); in the repository ${formatBytes(f.repoSize)}, ${formatBytes(f.repoDelta)} this backup`,
    `Duration: ${seconds(r.durationMs)}`,
    `WAL:      ${f.archiveStart} to ${f.archiveStop} needed by this backup; archive unbroken from ${f.archiveRange.from} to ${f.archiveRange.to} (${f.archiveRange.segments} segments)`,
    `System:   ${f.systemId}`,
    ...(f.check ? [`Check:    ${f.check.sql} on the primary just after the backup: ${f.check.result}`] : []),
    'Verified: pgbackrest info (label, type, no error), pgbackrest verify, WAL continuity',
    '',
    `Run: ${link}`,
    `Workflow ID: ${r.workflowId}`,
  ];
  return { subject: `[backupctl] ${warn ? 'WARNING' : 'OK'}: ${r.job} ${f.type} backup ${f.label} (pgBackRest)`, text: lines.join('\n') };
}

export function pgbackrestDrill(r: PgbackrestDrillReport, link: string): { subject: string; text: string } {
  const lines = [
    `pgBackRest restore drill ${r.ok ? 'PASSED' : 'FAILED'}: job ${r.job}, stanza ${r.stanza}${r.backup ? `, backup ${r.backup.label} (${r.backup.type}, target ${r.backup.target})` : ''}.`,
    '',
    ...(r.problems.length ? ['PROBLEMS:', ...r.problems.map((p) => `  - ${p}`), ''] : []),
    ...(r.restoreMs !== undefined ? [`Restore time (measured RTO): ${seconds(r.restoreMs)}`] : []),
    ...(r.checks.length ? ['Checked:', ...r.checks.map((c) => `  - ${c}`)] : []),
    '',
    `Run: ${link}`,
    `Workflow ID: ${r.workflowId}`,
  ];
  return { subject: `[backupctl] DRILL ${r.ok ? 'OK' : 'FAILED'}: ${r.job}${r.ok ? '' : `: ${(r.problems[0] ?? '').slice(0, 140)}`}`, text: lines.join('\n') };
}
