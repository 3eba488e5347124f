import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Context, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Config } from '../config/schema.js';
import type { OrphanReport, PruneInput, PruneReport } from '../contracts/prune.js';
import { withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { catalogDestination, type CatalogEntry } from '../repository/catalog.js';
import { safeWorkflowId, stagedWriteOf } from '../repository/names.js';
import { signatureName } from '../repository/signatures.js';
import { planRetention } from '../repository/retention.js';
import { trustOf } from '../state/keys.js';
import { stagingRoot } from '../state/staging.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';


/**
 * Which workflows run, by the name they give their files (temporary files and staging folders carry the workflow ID
 * with unsafe characters replaced): every running workflow from visibility, and a direct describe for IDs visibility
 * may not show yet. 'unknown' when Temporal cannot tell: then nothing of it is touched.
 */
function runningChecker(client: Client): (id: string) => Promise<'running' | 'ended' | 'unknown'> {
  let listed: Promise<Set<string> | undefined> | undefined;
  return async (id) => {
    listed ??= (async () => {
      try {
        const ids = new Set<string>();
        for await (const w of client.workflow.list({ query: 'ExecutionStatus="Running"' })) {
          // An ID that cannot name a folder (".", "..") owns no staging or temporary file.
          try { ids.add(safeWorkflowId(w.workflowId)); } catch { /* nothing of it on disk */ }
        }
        return ids;
      } catch (err) {
        log.warn('could not list running workflows', { error: errorMessage(err) });
        return undefined;
      }
    })();
    const running = await listed;
    if (!running) return 'unknown';
    if (running.has(id)) return 'running';
    try {
      const d = await client.workflow.getHandle(id).describe();
      return d.status.name === 'RUNNING' ? 'running' : 'ended';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || (err as Error).name === 'WorkflowNotFoundError') return 'ended';
      log.warn('could not ask Temporal about a workflow', { workflowId: id, error: errorMessage(err) });
      return 'unknown';
    }
  };
}

/**
 * Orphan sweep on a job's destinations: pending writes (temporary upload files `.<artifact>.<workflow ID>.tmp`; on S3
 * the record of that name and its multipart upload) older than `orphanGrace` whose workflow is not running (asked of
 * Temporal; not found counts as ended) are discarded, and so are stray pending writes no record names (`sweepStray`).
 * A temporary file of a running workflow, or one Temporal cannot vouch for, is left alone.
 */
export async function sweepOrphans(config: Config, jobName: string, client: Client, opts: { dryRun: boolean; now?: number }): Promise<{ orphans: OrphanReport[]; problems: string[] }> {
  const job = config.jobs[jobName]!;
  const now = opts.now ?? Date.now();
  const grace = config.settings.orphanGrace;
  const runningState = runningChecker(client);
  const orphans: OrphanReport[] = [];
  const problems: string[] = [];
  for (const name of job.destinations) {
    try {
      await withDestination(config, name, async (d) => {
        const { temporary } = await catalogDestination(d, jobName, trustOf(config));
        for (const t of temporary) {
          const base = { destination: name, path: t.path, workflowId: t.workflowId };
          if (now - t.mtimeMs < grace) {
            orphans.push({ ...base, action: 'kept', reason: `younger than the grace period (${Math.round(grace / 60_000)} min)` });
            continue;
          }
          const state = await runningState(t.workflowId);
          if (state !== 'ended') {
            orphans.push({ ...base, action: 'kept', reason: state === 'running' ? 'its workflow is running' : 'Temporal could not say whether its workflow runs' });
            continue;
          }
          // The pending write is discarded: the temporary file, or the S3 multipart upload it records (aborted).
          if (!opts.dryRun) await d.discard(stagedWriteOf(t.path, jobName));
          orphans.push({ ...base, action: 'removed', reason: `its workflow is not running and it is ${Math.round((now - t.mtimeMs) / 60_000)} min old` });
        }
        // Pending writes no temporary file names any more (S3: a multipart upload whose record is gone), past the grace.
        for (const s of (await d.sweepStray?.(now - grace, opts.dryRun)) ?? []) {
          orphans.push({ destination: name, path: s.path, workflowId: '', action: 'removed', reason: s.detail });
        }
      });
    } catch (err) {
      problems.push(`destination "${name}": orphan sweep failed: ${errorMessage(err).split('\n')[0]}`);
    }
  }
  return { orphans, problems };
}

/** Staging folders (`<stateDir>/staging/<workflow ID>`) of runs no longer running, older than `orphanGrace`. */
async function sweepStaging(config: Config, client: Client, dryRun: boolean, now: number): Promise<PruneReport['staging']> {
  const root = stagingRoot(config);
  const names = await readdir(root).catch(() => [] as string[]);
  const out: PruneReport['staging'] = [];
  const runningState = runningChecker(client);
  for (const n of names) {
    const p = path.join(root, n);
    const st = await stat(p).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    if (now - st.mtimeMs < config.settings.orphanGrace) continue;
    const state = await runningState(n);
    if (state !== 'ended') {
      out.push({ path: p, action: 'kept', reason: state === 'running' ? 'its workflow is running' : 'Temporal could not say whether its workflow runs' });
      continue;
    }
    if (!dryRun) await rm(p, { recursive: true, force: true });
    out.push({ path: p, action: 'removed', reason: 'its workflow is not running' });
  }
  return out;
}

/**
 * `prune`: the job's retention policy on each destination (after each successful run, and `backupctl prune`), the
 * orphan sweep, and stale staging on this worker. Runs on the job's task queue, i.e. on the host with the staging.
 * Deleting a backup removes its manifest first (so it stops being a backup at once), then its signature and artifact.
 * A backup whose manifest signature does not verify is never deleted (left alone, reported).
 */
export function prune(deps: ActivityDeps) {
  return (input: PruneInput): Promise<PruneReport> => runActivity(async () => {
    const { config, job } = jobContext(deps, input);
    const ctx = Context.current();
    const client = ctx.client;
    const now = Date.now();
    const report: PruneReport = { job: input.job, dryRun: input.dryRun, destinations: [], orphans: [], staging: [], problems: [] };
    const swept = await sweepOrphans(config, input.job, client, { dryRun: input.dryRun, now });
    report.orphans = swept.orphans;
    report.problems.push(...swept.problems);
    report.staging = await sweepStaging(config, client, input.dryRun, now);
    const trust = trustOf(config);
    for (const name of job.destinations) {
      ctx.heartbeat({ destination: name });
      const r: PruneReport['destinations'][number] = { destination: name, kept: [], removed: [], leftAlone: [], problems: [] };
      report.destinations.push(r);
      await withDestination(config, name, async (d) => {
        const cat = await catalogDestination(d, input.job, trust);
        for (const a of cat.anomalies) r.leftAlone.push({ path: a.path, reason: `${a.problem}: ${a.detail}` });
        // Not a backup of this deployment: retention neither counts nor deletes it.
        for (const u of cat.unverified) r.leftAlone.push({ path: u.path, reason: `unverified manifest: ${u.reason}` });
        if (!job.retention) {
          for (const b of cat.backups) r.kept.push({ path: b.path, slot: b.slot, type: b.type, reasons: ['the job has no retention policy'] });
          return;
        }
        const items = cat.backups.map((b) => ({ ...b, id: b.path, baseWorkflowId: b.base?.workflowId }));
        const plan = planRetention<CatalogEntry & { id: string; baseWorkflowId?: string }>(items, job.retention, now);
        for (const k of plan.keep) r.kept.push({ path: k.item.path, slot: k.item.slot, type: k.item.type, reasons: k.reasons });
        for (const m of plan.missingBases) r.problems.push(`the diff ${m.path} names base full ${m.base?.path ?? '?'}, which is not on this destination: it cannot be restored`);
        if (plan.refused) {
          r.refused = plan.refused;
          return;
        }
        for (const b of plan.remove) {
          ctx.heartbeat({ destination: name, path: b.path });
          if (input.dryRun) {
            r.removed.push(b.path);
            continue;
          }
          try {
            await d.remove(b.manifestPath);
            await d.remove(signatureName(b.manifestPath));
            await d.remove(b.path);
            r.removed.push(b.path);
          } catch (err) {
            r.problems.push(`could not remove ${b.path}: ${errorMessage(err).split('\n')[0]}`);
          }
        }
      }).catch((err: unknown) => { r.problems.push(`destination "${name}" could not be pruned: ${errorMessage(err).split('\n')[0]}`); });
    }
    const refused = report.destinations.filter((r) => r.refused).map((r) => `destination "${r.destination}": ${r.refused}`);
    if (refused.length) report.refused = refused.join('\n');
    report.problems.push(...report.destinations.flatMap((r) => r.problems.map((p) => `destination "${r.destination}": ${p}`)));
    log.info('prune done', { job: input.job, dryRun: input.dryRun, removed: report.destinations.reduce((n, r) => n + r.removed.length, 0) });
    return report;
  });
}
