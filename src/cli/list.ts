import { getJob, loadConfig } from '../config/load.js';
import { closeDestinations, withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { catalogDestination, type DestinationCatalog } from '../repository/catalog.js';
import { trustOf } from '../state/keys.js';
import { EXIT } from './output.js';

/**
 * `backupctl list <job> [--json]`: the finalized backups (artifact + manifest) on each destination, newest first.
 * Temporary and manifest-less files are never listed as backups; they are shown apart, as what they are. So are
 * backups whose manifest signature does not verify against a trusted key (`unverified`, with the reason).
 */
export async function listCommand(jobName: string, opts: { config?: string; json?: boolean }): Promise<number> {
  const { config } = loadConfig(opts.config);
  const job = getJob(config, jobName);
  const trust = trustOf(config);
  const result: (Omit<DestinationCatalog, 'backups' | 'unverified'> & {
    backups: (Omit<DestinationCatalog['backups'][number], 'manifest'> & { baseMissing?: boolean; encryption?: { type: 'age'; recipients: string[] } })[];
    unverified: Omit<DestinationCatalog['unverified'][number], 'manifest'>[];
    error?: string;
  })[] = [];
  try {
    for (const name of job.destinations) {
      try {
        const cat = await withDestination(config, name, (d) => catalogDestination(d, jobName, trust));
        const paths = new Set(cat.backups.map((b) => b.path));
        // A diff whose base full is not on this destination cannot be restored from it: say so.
        result.push({
          ...cat,
          // Encrypted backups: which public keys' identities can open each (key rotation affects new backups only).
          backups: cat.backups.map(({ manifest: m, ...b }) => ({
            ...b, ...(b.base && !paths.has(b.base.path) ? { baseMissing: true } : {}),
            ...(m.encryption ? { encryption: { type: m.encryption.type, recipients: m.encryption.recipients } } : {}),
          })),
          unverified: cat.unverified.map(({ manifest: _m, ...u }) => u),
        });
      } catch (err) {
        result.push({ destination: name, backups: [], unverified: [], anomalies: [], temporary: [], error: errorMessage(err).split('\n')[0] });
      }
    }
  } finally {
    await closeDestinations();
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ job: jobName, destinations: result }, null, 2)}\n`);
  } else {
    const lines: string[] = [];
    for (const r of result) {
      lines.push(`${jobName} on ${r.destination}: ${r.error ? `cannot be read: ${r.error}` : `${r.backups.length} backup(s)`}`);
      for (const b of r.backups) {
        lines.push(`  ${b.slot}  ${b.type.padEnd(4)}  ${formatBytes(b.size).padStart(10)}  ${b.sha256}  ${b.path}${b.base ? `  (base: ${b.base.path}${b.baseMissing ? ', MISSING on this destination' : ''})` : ''}${b.encryption ? `  encrypted (age) to ${b.encryption.recipients.join(', ')}` : ''}`);
      }
      if (r.unverified.length > 0) lines.push(`  UNVERIFIED, not a backup of this deployment (manifest signature does not verify; restore only with --trust-unsigned):`);
      for (const u of r.unverified) lines.push(`    ${u.slot}  ${u.type.padEnd(4)}  ${formatBytes(u.size).padStart(10)}  ${u.path}: ${u.reason}`);
      for (const a of r.anomalies) lines.push(`  not a backup: ${a.path}: ${a.problem}`);
      for (const t of r.temporary) lines.push(`  temporary: ${t.path} (workflow ${t.workflowId})`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return result.some((r) => r.error) ? EXIT.FAILED : EXIT.OK;
}
