import { ApplicationFailure, CancellationScope, log, proxyActivities, setCurrentDetails, uuid4, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { drillTargets, type DrillReport } from '../contracts/drill.js';
import { DATABASE_LISTS } from '../sources/databases.js';
import type { RestoreArtifact, RestorePlan, UnpackedComponent } from '../contracts/restore.js';
import { formatBytes } from '../lib/format.js';
import { describeFailure } from './failure.js';
import { longSteps, notifySteps } from './proxies.js';

// Its own retry policy (no interval cap; no list of permanent codes), kept as it was: not one of proxies.ts's sets.
const quick = proxyActivities<Activities>({ startToCloseTimeout: '5m', retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 5 } });

/**
 * Every component of the backup must have been unpacked; where its source counts the restored tree's regular files and
 * bytes (files sources), they must match what the manifest recorded.
 */
export function compareFileStats(newest: RestoreArtifact, unpacked: UnpackedComponent[]): { checks: string[]; problems: string[] } {
  const checks: string[] = [];
  const problems: string[] = [];
  for (const c of newest.components) {
    const u = unpacked.find((x) => x.name === c.name);
    if (!u) {
      problems.push(`${c.type} component ${c.name} was not unpacked`);
      continue;
    }
    if (u.files === undefined) continue;
    // A diff's stats describe what changed; the whole tree is recorded as treeFiles/treeBytes when its source knows them.
    const files = Number(newest.type === 'full' ? c.stats.files : c.stats.treeFiles);
    const bytes = Number(newest.type === 'full' ? c.stats.bytes : c.stats.treeBytes);
    if (!Number.isFinite(files) || !Number.isFinite(bytes)) {
      checks.push(`${c.type} ${c.name}: ${u.files} files, ${formatBytes(u.bytes ?? 0)} unpacked (the manifest records no totals to compare)`);
    } else if (u.files !== files || u.bytes !== bytes) {
      problems.push(`${c.type} ${c.name}: the restored tree has ${u.files} files and ${u.bytes} bytes, the manifest records ${files} files and ${bytes} bytes`);
    } else {
      checks.push(`${c.type} ${c.name}: ${files} files and ${bytes} bytes, as recorded`);
    }
  }
  return { checks, problems };
}

/**
 * A restore drill: restores the newest backup into a scratch directory on the worker and checks it (every artifact's
 * and component's SHA-256; files count and size against the manifest; every MariaDB/MySQL and PostgreSQL dump loaded
 * into a scratch database), then removes the scratch data and databases. The report (with the measured restore time)
 * is stored beside the backups as `drills/<job>/<time>.json`; a failed drill is notified (a passed one when
 * `drill.notifyOnSuccess`) and ends the workflow failed.
 */
export async function drillWorkflow(input: { job: string }): Promise<DrillReport> {
  const info = workflowInfo();
  if (typeof input !== 'object' || input === null || typeof input.job !== 'string') throw ApplicationFailure.nonRetryable('input must be {"job": NAME}', 'CONFIG_INVALID');
  const job = input.job;
  const startedAt = new Date().toISOString();
  const details = (text: string) => setCurrentDetails(`restore drill of **${job}**: ${text}`);
  const report: DrillReport = { format: 'backupctl-drill/1', job, workflowId: info.workflowId, ok: false, startedAt, finishedAt: startedAt, checks: [], problems: [] };
  const prep = await quick.prepareDrill({ job, workflowId: info.workflowId });
  let targets: RestorePlan['targets'] = [];
  try {
    details('choosing the newest backup');
    const identity = prep.identity !== undefined ? { identity: prep.identity } : {};
    const plan = await quick.planRestore({ job, ...identity });
    const long = longSteps(plan);
    const newest = plan.chain.at(-1)!;
    report.backup = { workflowId: newest.workflowId, type: newest.type, slot: newest.slot, path: newest.path, destination: plan.destination, size: newest.size };
    const t0 = Date.now();
    for (const [index, artifact] of plan.chain.entries()) {
      details(`downloading, checking and unpacking ${artifact.path}`);
      await long.fetchArtifact({ job, workflowId: info.workflowId, destination: plan.destination, index, chain: plan.chain, to: prep.to, components: true, ...identity });
      report.checks.push(`artifact ${artifact.path}: ${artifact.size} bytes, SHA-256 ${artifact.sha256} and its ${artifact.components.length} components' SHA-256 as in its manifest`);
    }
    details('counting the unpacked trees');
    const unpacked = await long.unpackArtifacts({ job, workflowId: info.workflowId, to: prep.to, chain: plan.chain, count: true });
    for (const a of plan.chain) {
      if (a.encryption) report.checks.push(`artifact ${a.path}: its ${a.components.length} components decrypted with drill.identity and authenticated by age (encrypted to ${a.encryption.recipients.join(', ')}), each of its recorded plaintext size`);
    }
    report.checks.push(`unpacked ${unpacked.components.length} components (${formatBytes(unpacked.bytes)})`);
    targets = drillTargets(plan.chain, `backupctl_drill_${uuid4().replace(/-/g, '').slice(0, 8)}`, DATABASE_LISTS);
    if (targets.length > 0) {
      details('loading the dumps into scratch databases');
      const loaded = await long.loadDatabases({ job, workflowId: info.workflowId, dir: prep.to, targets, drill: true });
      for (const l of loaded.loaded) report.checks.push(`${l.server} ${l.source}.${l.database}: loaded into a scratch database${l.where ? ` on ${l.where}` : ''} in ${Math.round(l.ms / 100) / 10} s`);
    }
    report.restoreMs = Date.now() - t0;
    const stats = compareFileStats(newest, unpacked.components);
    report.checks.push(...stats.checks);
    report.problems.push(...stats.problems);
  } catch (err) {
    const f = describeFailure(err);
    report.problems.push(`${f.error} (${f.code})`);
  } finally {
    await CancellationScope.nonCancellable(async () => {
      details('removing the scratch data');
      if (targets.length > 0) {
        await quick.dropDatabases({ job, workflowId: info.workflowId, targets }).catch((err: unknown) => { report.problems.push(`could not drop the scratch databases: ${describeFailure(err).error}`); });
      }
      await quick.cleanupRestore({ job, workflowId: info.workflowId, to: prep.to, removeTarget: true }).catch((err: unknown) => { report.problems.push(`could not remove the scratch data: ${describeFailure(err).error}`); });
    });
  }
  report.ok = report.problems.length === 0;
  report.finishedAt = new Date().toISOString();
  await quick.writeDrillReport({ report }).catch((err: unknown) => { log.error('drill report not stored', { error: describeFailure(err).error }); });
  if (!report.ok || prep.notifyOnSuccess) {
    const n = notifySteps(prep.notifyTimeoutMs);
    await Promise.all(prep.notifiers.map((notifier) => n.notify({ job, notifier, event: { kind: 'drill', report, runId: info.runId } })
      .catch((err: unknown) => { log.error('notification failed', { notifier, error: describeFailure(err).error }); })));
  }
  details(report.ok ? `passed; restore time ${Math.round((report.restoreMs ?? 0) / 1000)} s` : `FAILED: ${report.problems[0]}`);
  if (!report.ok) throw ApplicationFailure.create({ message: `restore drill of ${job} failed: ${report.problems.join('; ')}`, type: 'DRILL_FAILED', nonRetryable: true, details: [report] });
  return report;
}
