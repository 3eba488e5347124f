import { mkdir, readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import { log } from '@temporalio/activity';
import { taskQueueOf } from '../config/load.js';
import type { BackupType, RunPlan } from '../contracts/backup.js';
import type { Manifest } from '../contracts/manifest.js';
import { destinationPlugin, withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { finalizedAt } from '../repository/catalog.js';
import { layout } from '../repository/layout.js';
import { createSource } from '../sources/index.js';
import { trustOf } from '../state/keys.js';
import { stagingDir } from '../state/staging.js';
import { currentRun, jobContext, resolveRun, runActivity, type ActivityDeps } from './context.js';
import { chooseBase } from './diff-base.js';

export interface PreflightInput {
  job: string;
  type: BackupType;
  tier?: string;
  slot: string;
}

/** The last finalized manifest of a job on this worker, if any: the best estimate of the next run's size. */
export async function lastManifest(stateDir: string, job: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, 'last', `${job}.json`), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/**
 * Checks, before anything is dumped, that the run can succeed: the job exists, every destination is reachable
 * (host key checked), no backup for this slot exists yet, and there is room for the estimated size locally and
 * on every destination. Returns the run's plan (names and paths only).
 */
export function preflight(deps: ActivityDeps) {
  return (input: PreflightInput): Promise<RunPlan> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    const { workflowId, taskQueue } = currentRun();
    if (taskQueue !== taskQueueOf(config, job)) {
      throw new BackupError('CONFIG_INVALID', `job "${input.job}" runs on task queue "${taskQueueOf(config, job)}", but this run was started on "${taskQueue}"`, {
        hint: `start it with --task-queue ${taskQueueOf(config, job)}`,
      });
    }
    const tier = input.tier ?? job.tier;
    const slot = new Date(input.slot);
    // A diff stores what changed since its base full; without a usable full it becomes a full, and says so.
    const warnings: string[] = [];
    let type = input.type;
    let base: RunPlan['base'];
    if (type === 'diff') {
      const chosen = await chooseBase(config, input.job, job, job.destinations);
      base = chosen.base;
      if (chosen.recovered) log.info(chosen.recovered);
      if (!base) {
        type = 'full';
        warnings.push(`no usable full backup to take a diff against (${chosen.reason}): this diff run stored a full backup, the base of the next diffs`);
      }
    }
    // Named as requested (a diff that became a full keeps its diff name, so it never takes the name of a full run of
    // the same slot); the manifest's type says what it holds.
    const paths = layout(input.job, input.type, tier, slot, workflowId);
    const margin = 1 + config.settings.spaceMargin / 100;
    const last = await lastManifest(config.stateDir, input.job);
    let estimate: number;
    let basis: string;
    if (last) {
      estimate = last.artifact.size;
      basis = `the last backup (${formatBytes(last.artifact.size)})`;
    } else {
      const sizes = await Promise.all(job.sources.map((s) => createSource(s).estimate()));
      estimate = sizes.reduce((a, b) => a + b, 0);
      basis = `the uncompressed size of the sources (${formatBytes(estimate)}; no earlier backup to go by)`;
    }
    const needed = Math.ceil(estimate * margin);

    const destinations: RunPlan['destinations'] = [];
    const alreadyStored: RunPlan['alreadyStored'] = [];
    const trust = trustOf(config);
    // Every destination is checked at once, each on its own connection; when several fail, the first in the job's
    // order is the error.
    const checks = await Promise.allSettled(job.destinations.map((name) => withDestination(config, name, async (d) => {
      // A slot is backed up once: a destination that already holds this slot's finalized backup is left alone.
      const held = await finalizedAt(d, paths, input.job, trust);
      if (held === 'stored') return true;
      if (held !== 'absent') {
        throw new BackupError('MANIFEST_UNVERIFIED', `destination "${name}" (${d.location}) holds ${paths.manifestPath} for this slot, but it is no backup of this deployment: ${held.problem}; nothing was written`, {
          permanent: true, hint: 'a planted or damaged file: look at it, move it and its artifact away, then run the slot again',
        });
      }
      const free = await d.freeBytes();
      if (free !== undefined && free < needed) {
        throw new BackupError('DESTINATION_SPACE', `not enough space on destination "${name}" (${d.location}): ${formatBytes(free)} free, ${formatBytes(needed)} needed (estimated from ${basis}, +${config.settings.spaceMargin}%)`, {
          hint: 'free space on the destination or remove old backups',
        });
      }
      return false;
    })));
    const stored = checks.map((c) => { if (c.status === 'rejected') throw c.reason; return c.value; });
    for (const [i, name] of job.destinations.entries()) {
      if (stored[i]) {
        alreadyStored.push({ destination: name, path: paths.finalPath });
        continue;
      }
      destinations.push({ name, type: config.destinations[name]!.type, dir: paths.dir, finalPath: paths.finalPath, tempPath: paths.tempPath, manifestPath: paths.manifestPath });
    }
    if (destinations.length === 0) {
      return {
        job: input.job, type, tier, slot: input.slot, workflowId, artifactName: paths.artifactName, sources: [], destinations, alreadyStored,
        notifiers: job.notify, retries: config.settings.retries, heartbeatTimeoutMs: config.settings.heartbeatTimeout,
        verifyAttempts: config.settings.verifyAttempts, notifyTimeoutMs: config.settings.notifyTimeout, warnings: [],
        resolved: resolveRun(config, input.job),
      };
    }
    const staging = stagingDir(config, workflowId);
    await mkdir(staging, { recursive: true, mode: 0o700 });
    const local = await statfs(staging);
    const localFree = local.bavail * local.bsize;
    if (localFree < needed) {
      throw new BackupError('STAGING_SPACE', `not enough space for staging on the worker: ${formatBytes(localFree)} free in ${staging}, ${formatBytes(needed)} needed (estimated from ${basis}, +${config.settings.spaceMargin}%)`, {
        hint: `free space under ${config.stateDir} or move stateDir to a larger disk`,
      });
    }

    // The first destination's upload follows the dump where it can write at offsets (SFTP, a filesystem); an S3 one
    // waits for the sealed artifact.
    const follows = config.settings.uploadWhileDumping && destinationPlugin(destinations[0]!.type).follows;
    return {
      job: input.job, type, tier, slot: input.slot, workflowId, artifactName: paths.artifactName,
      sources: job.sources.map((s) => ({ name: s.name, type: s.type })),
      destinations, alreadyStored, notifiers: job.notify,
      retries: config.settings.retries, heartbeatTimeoutMs: config.settings.heartbeatTimeout,
      verifyAttempts: config.settings.verifyAttempts, notifyTimeoutMs: config.settings.notifyTimeout,
      warnings, ...(base ? { base } : {}), prune: job.retention !== undefined, uploadWhileDumping: follows,
      resolved: resolveRun(config, input.job),
    };
  });
}
