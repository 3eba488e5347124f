import { ActivityFailure, ApplicationFailure, CancellationScope, defineQuery, log, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import type { RestoreInput, RestoreResult } from '../contracts/index.js';
import { describeFailure, endOfRun } from './failure.js';
import { longSteps, shortSteps } from './proxies.js';

export type RestoreStep = 'plan' | 'fetch' | 'unpack' | 'load databases' | 'cleanup';
export const restoreProgressQuery = defineQuery<{ step: RestoreStep }>('progress');

const quick = shortSteps();

/** The part of an activity that failed, when the activity said (FailureDetails.step in src/activities/context.ts). */
function failedStep(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  const details = cause instanceof ApplicationFailure ? cause.details?.[0] as { step?: unknown } | undefined : undefined;
  return typeof details?.step === 'string' ? details.step : undefined;
}

/**
 * A restore: plan (pick the backup, resolve its chain from the manifests) → fetch each artifact, base first, unpacking
 * it while it downloads into a temporary directory beside the target (size, SHA-256, member headers and, when
 * encrypted, age's authentication of every byte are checked; any failure removes the temporary directory) → unpack:
 * rename the checked tree to the target, only once every artifact passed → optionally load the dumps into new
 * databases, from the renamed target → cleanup (staging markers and any half unpack, also on failure or cancellation).
 */
export async function restoreWorkflow(input: RestoreInput): Promise<RestoreResult> {
  const info = workflowInfo();
  const startedAt = Date.now();
  if (typeof input !== 'object' || input === null || typeof input.job !== 'string' || typeof input.to !== 'string' || !input.to.startsWith('/')) {
    throw ApplicationFailure.nonRetryable('input must be a JSON object with "job" and an absolute "to" directory', 'CONFIG_INVALID');
  }
  let step: RestoreStep = 'plan';
  setHandler(restoreProgressQuery, () => ({ step }));
  const details = (text: string) => setCurrentDetails(`restore of **${input.job}** into ${input.to}: ${text}`);
  try {
    details('choosing the backup');
    const plan = await quick.planRestore({
      job: input.job, backup: input.backup, at: input.at, destination: input.destination, intoDatabases: input.intoDatabases, to: input.to,
      ...(input.trustUnsigned === true ? { trustUnsigned: true } : {}),
      ...(typeof input.identity === 'string' ? { identity: input.identity } : {}),
    });
    const unverified = plan.chain.filter((a) => a.unverified !== undefined).map((a) => ({ path: a.path, reason: a.unverified! }));
    const warning = unverified.length === 0 ? undefined
      : `RESTORED WITHOUT A VERIFIED SIGNATURE (--trust-unsigned): ${unverified.map((u) => `${u.path}: ${u.reason}`).join('; ')}. Nothing proves this backup was made by this deployment; check its contents before trusting them.`;
    if (warning) log.warn(warning);
    const long = longSteps(plan);
    const picked = plan.chain.at(-1)!;
    step = 'fetch';
    let bytes = 0;
    for (const [index, artifact] of plan.chain.entries()) {
      details(`downloading, checking and unpacking ${artifact.path} from ${plan.destination}`);
      try {
        const f = await long.fetchArtifact({
          job: input.job, workflowId: info.workflowId, destination: plan.destination, index, chain: plan.chain, to: input.to,
          ...(typeof input.identity === 'string' ? { identity: input.identity } : {}),
        });
        bytes += f.bytes;
      } catch (err) {
        // The bytes matched the manifest and their unpack failed (age's verdict, tar, a full disk): the unpack step's.
        if (failedStep(err) === 'unpack') step = 'unpack';
        throw err;
      }
    }
    step = 'unpack';
    details('moving the checked tree into place');
    const unpacked = await long.unpackArtifacts({ job: input.job, workflowId: info.workflowId, to: input.to, chain: plan.chain });
    const databases: RestoreResult['databases'] = [];
    if (plan.targets.length > 0) {
      step = 'load databases';
      details(`loading ${plan.targets.map((t) => `${t.source}.${t.database} → ${t.target}`).join(', ')}`);
      await long.loadDatabases({ job: input.job, workflowId: info.workflowId, dir: input.to, targets: plan.targets });
      databases.push(...plan.targets.map((t) => ({ source: t.source, database: t.database, target: t.target })));
    }
    step = 'cleanup';
    await quick.cleanupRestore({ job: input.job, workflowId: info.workflowId });
    details(`restored ${picked.type} backup of slot ${picked.slot}`);
    return {
      status: 'restored', workflowId: info.workflowId, job: input.job, destination: plan.destination,
      backup: { workflowId: picked.workflowId, type: picked.type, slot: picked.slot, path: picked.path },
      chain: plan.chain.map((a) => ({ workflowId: a.workflowId, type: a.type, slot: a.slot, path: a.path, size: a.size, sha256: a.sha256 })),
      to: input.to, components: unpacked.components, databases, bytes, durationMs: Date.now() - startedAt,
      ...(warning ? { unverified, warning } : {}),
    };
  } catch (err) {
    const f = describeFailure(err);
    log.error('restore failed', { step, ...f });
    await CancellationScope.nonCancellable(async () => {
      try {
        await quick.cleanupRestore({ job: input.job, workflowId: info.workflowId, to: input.to });
      } catch (cleanupErr) {
        f.error += `\n(cleanup also failed: ${describeFailure(cleanupErr).error})`;
      }
    });
    details(`failed in the ${step} step: ${f.error}`);
    throw endOfRun(err, `restore of ${input.job}`, step, f);
  }
}
