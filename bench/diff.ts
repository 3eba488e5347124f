/**
 * Comparison 4 (issue 6, must-show 7, second half): a differential backup with nothing changed since the full, against
 * restic's second backup of the same unchanged data (the notes' case "f": restic 0.14, sftp backend).
 *
 * backupctl: one full (untimed), then diff runs of the unchanged dataset through the real workflow (Temporal dev
 * server, in-process worker, loopback sshd), each a new slot: preflight (base full chosen from the manifests), dump
 * (GNU tar --listed-incremental against a copy of the full's snapshot | zstd), archive, upload, remote verify,
 * finalize, cleanup. restic: `init` and a first backup (untimed), then second backups. borg (issue 19's anchors):
 * `init --encryption repokey` and a first `borg create` over ssh (untimed), then further creates of the unchanged
 * dataset; and backupctl's diff as a user types it, `backupctl run diffbench --type diff --wait` (served by the running
 * worker). Interleaved per repetition. restic and borg rows are left out (with a log line) when the tool is missing.
 * Targets: backupctl's median within 2× of restic's (issue 6), and ≤ 0.5× restic's (issue 19).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { closeDestinations } from '../src/destinations/index.js';
import type { BackupResult, Manifest } from '../src/contracts/index.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { runCommand } from '../test/helpers/util.js';
import { phasesFromHistory } from './backup.js';
import { startBenchTemporal } from './config.js';
import type { DatasetInfo } from './dataset.js';
import { summarize, summarizeContender, type Summary } from './stats.js';
import { borg as borgTool, restic as resticTool, runRecord } from './anchors.js';
import { runCli } from './postgres.js';
import { log, measure, sync, type Measured } from './sys.js';
import type { RunRecord } from './transport.js';

export interface DiffContender {
  name: string;
  description: string;
  runs: (RunRecord & { foreignCores: number; serverCpuS: number; outputBytes?: number; phases?: Record<string, number> })[];
  summary: Summary;
  phaseMedians: Record<string, number>;
}

export interface DiffReport {
  dataset: DatasetInfo;
  reps: number;
  contenders: DiffContender[];
  /** backupctl median ÷ restic median (≤ 2 meets the target); NaN without restic. */
  ratio: number;
  target: string;
  /** Issue 19's target: ≤ 0.5× restic's second backup. */
  resticTarget?: { ratio: number; limit: number; met: boolean };
  /** backupctl median ÷ borg's (for information); absent without borg. */
  borgRatio?: number;
  full: { seconds: number; size: number };
  /** Untimed first backups, seconds (absent when the tool is not installed). */
  resticFirstSeconds?: number;
  resticVersion?: string;
  borgFirstSeconds?: number;
  borgVersion?: string;
  /** The diff artifact's files component (stats from its manifest): what an unchanged diff stores. */
  diffArtifact: { size: number; files: number | string; entries: number | string };
}

export async function runDiff(opts: {
  sshd: SshdHandle; tmp: string; dataset: DatasetInfo; reps: number; warmup: number; onCleanup: (fn: () => Promise<void>) => void;
}): Promise<DiffReport> {
  const { sshd, tmp, dataset } = opts;
  const repo = path.join(sshd.root, 'restic-repo');
  // restic's local cache as in normal use (the notes' figures were taken with it), in the bench's temp dir.
  const rt = await resticTool(sshd, repo, path.join(tmp, 'restic-cache'));
  if (!rt) log('diff: restic is not installed (apt-get install -y restic): no restic row');
  const borgRepo = path.join(sshd.root, 'borg-repo');
  const bt = await borgTool(sshd, borgRepo, path.join(tmp, 'borg-base-diff'));
  if (!bt) log('diff: borg is not installed (apt-get install -y borgbackup): no borg row');
  const resticBackup = ['backup', '--quiet', dataset.dir];
  const borgCreate = (name: string) => ['create', `::${name}`, dataset.dir];

  const { server, client, workers: w, taskQueue, configFile } = await startBenchTemporal(tmp, 'diffbench', sshd, {
    diffbench: { sources: [{ name: 'data', type: 'files', paths: [dataset.dir] }], destinations: ['nas'] },
  }, opts.onCleanup);

  const start = (type: 'full' | 'diff', minute: number) => client.workflow.start('backupWorkflow', {
    taskQueue, workflowId: `diffbench-${type}-${minute}`, args: [{ job: 'diffbench', type, slot: new Date(Date.UTC(2025, 1, 1, 0, minute)).toISOString() }],
  });

  const mine: DiffContender = {
    name: 'backupctl diff', description: 'backupWorkflow type diff, nothing changed since the full (GNU tar --listed-incremental | zstd, upload, remote verify, finalize)',
    runs: [], summary: summarize([], 1), phaseMedians: {},
  };
  const typed: DiffContender = {
    name: 'backupctl run --type diff --wait (as typed)', description: '`bin/backupctl.js --config <cfg> run diffbench --type diff --slot <slot> --wait --json` in a process of its own; the running worker (the bench\'s) does the run',
    runs: [], summary: summarize([], 1), phaseMedians: {},
  };
  const cliEnv: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default' };
  const theirs: DiffContender = {
    name: 'restic 2nd backup', description: `${rt?.version ?? 'restic'}: backup of the unchanged dataset into an sftp: repository that already holds it: ${rt?.describe(resticBackup) ?? ''}`,
    runs: [], summary: summarize([], 1), phaseMedians: {},
  };
  const borg: DiffContender = {
    name: 'borg create (2nd, unchanged)', description: `${bt?.version ?? 'borg'}: create of the unchanged dataset into a repokey repository over ssh that already holds it (its files cache kept, as in normal use): ${bt?.describe(borgCreate('<rep>')) ?? ''}`,
    runs: [], summary: summarize([], 1), phaseMedians: {},
  };
  let full = { seconds: 0, size: 0 };
  let resticFirstSeconds: number | undefined;
  let borgFirstSeconds: number | undefined;
  let diffArtifact: DiffReport['diffArtifact'] = { size: 0, files: '?', entries: '?' };

  await w.workers[0]!.runUntil(async () => {
    // Untimed setup: the full both contenders diff against.
    log('diff: backupctl full (untimed)');
    const f = await measure(async () => (await start('full', 0)).result() as Promise<BackupResult>);
    if (!f.value.status.startsWith('succeeded') || f.value.type !== 'full') throw new Error(`backupctl full: unexpected result ${JSON.stringify(f.value)}`);
    full = { seconds: f.seconds, size: f.value.size };
    log(`diff: full ${f.seconds.toFixed(2)} s, ${(f.value.size / 1e6).toFixed(1)} MB`);
    await mkdir(path.dirname(repo), { recursive: true });
    if (rt) {
      log('diff: restic init and first backup (untimed)');
      await rt.remove();
      await rt.init();
      const rf = await measure(() => rt.run(resticBackup));
      resticFirstSeconds = rf.seconds;
      log(`diff: restic first backup ${rf.seconds.toFixed(2)} s`);
    }
    if (bt) {
      log('diff: borg init and first create (untimed)');
      await bt.remove();
      await bt.init();
      const bf = await measure(() => bt.run(borgCreate('first')));
      borgFirstSeconds = bf.seconds;
      log(`diff: borg first create ${bf.seconds.toFixed(2)} s`);
    }

    for (let rep = 1 - opts.warmup; rep <= opts.reps; rep++) {
      await closeDestinations();
      await sync();
      const m = await measure(async () => {
        const handle = await start('diff', rep + 10);
        return { handle, result: (await handle.result()) as BackupResult };
      }, { servers: [sshd.pid, server.pid], sampleRss: true });
      const { handle, result } = m.value;
      if (result.type !== 'diff' || !result.status.startsWith('succeeded')) throw new Error(`backupctl diff: unexpected result ${JSON.stringify(result)}`);
      const ph = await phasesFromHistory(handle);
      const phases: Record<string, number> = { workflow: ph.workflowS, 'outside activities': ph.outsideActivitiesS };
      for (const a of ph.activities) phases[a.type] = a.runS;
      const manifest = JSON.parse((await runCommand('cat', [path.join(sshd.root, `${result.locations[0]!.path}.manifest.json`)])).stdout) as Manifest;
      diffArtifact = { size: result.size, files: manifest.components[0]?.stats.files ?? '?', entries: manifest.components[0]?.stats.entries ?? '?' };
      const rec = (x: Measured<unknown>, own: 'self' | 'children') => ({ ...runRecord(rep, x, dataset.bytes, own), foreignCores: x.foreignCores, serverCpuS: x.serverCpuS });
      if (rep > 0) mine.runs.push({ ...rec(m, 'self'), outputBytes: result.size, phases });
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} backupctl diff: ${m.seconds.toFixed(2)} s (${ph.activities.map((a) => `${a.type} ${a.runS.toFixed(2)}`).join(', ')}), ${result.size} bytes, foreign load ${m.foreignCores.toFixed(2)} cores, peak RSS (sampled, with its commands) ${m.rss?.selfAndChildrenMiB.toFixed(0) ?? '?'} MiB`);

      await closeDestinations();
      await sync();
      const slot = new Date(Date.UTC(2025, 1, 1, 0, rep + 40)).toISOString();
      const t = await measure(() => runCli(['--config', configFile, 'run', 'diffbench', '--type', 'diff', '--slot', slot, '--wait', '--json'], cliEnv, opts.onCleanup, 15 * 60_000), { servers: [sshd.pid, server.pid], sampleRss: true });
      const out = JSON.parse(t.value.stdout.trim().split('\n').pop() || '{}') as { status?: string; size?: number };
      if (t.value.code !== 0 || !out.status?.startsWith('succeeded')) throw new Error(`backupctl run --type diff --wait failed (exit ${t.value.code ?? t.value.signal}): ${t.value.stdout.slice(-1000)}\n${t.value.stderr.slice(-3000)}`);
      if (rep > 0) typed.runs.push({ ...rec(t, 'self'), outputBytes: out.size });
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} ${typed.name}: ${t.seconds.toFixed(2)} s, foreign load ${t.foreignCores.toFixed(2)} cores, peak RSS (bench worker and CLI, sampled) ${t.rss?.selfAndChildrenMiB.toFixed(0) ?? '?'} MiB`);

      for (const [c, tool, args] of [[theirs, rt, resticBackup], [borg, bt, borgCreate(`rep-${rep + 10}`)]] as const) {
        if (!tool) continue;
        await sync();
        const r = await measure(() => tool.run(args), { servers: [sshd.pid, server.pid], sampleRss: true });
        if (rep > 0) c.runs.push(rec(r, 'children'));
        log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} ${c.name}: ${r.seconds.toFixed(2)} s, foreign load ${r.foreignCores.toFixed(2)} cores, peak RSS ${r.rss?.childrenMiB.toFixed(0) ?? '?'} MiB (server sessions ${r.rss?.sessionsMiB.toFixed(0) ?? '?'})`);
      }
    }
  });
  await rt?.remove();
  await bt?.remove();

  const contenders = [mine, typed, ...(rt ? [theirs] : []), ...(bt ? [borg] : [])];
  for (const c of contenders) summarizeContender(c, dataset.bytes);
  const ratio = rt ? mine.summary.median / theirs.summary.median : Number.NaN;
  return {
    dataset, reps: opts.reps, contenders, ratio,
    target: 'backupctl diff (nothing changed) within 2× of restic\'s second backup: ratio ≤ 2', full, diffArtifact,
    ...(rt ? { resticTarget: { ratio, limit: 0.5, met: ratio <= 0.5 }, resticFirstSeconds, resticVersion: rt.version } : {}),
    ...(bt ? { borgRatio: mine.summary.median / borg.summary.median, borgFirstSeconds, borgVersion: bt.version } : {}),
  };
}
