/**
 * Comparison 4 (issue 6, must-show 7, second half): a differential backup with nothing changed since the full, against
 * restic's second backup of the same unchanged data (the notes' case "f": restic 0.14, sftp backend).
 *
 * backupctl: one full (untimed), then diff runs of the unchanged dataset through the real workflow (Temporal dev
 * server, in-process worker, loopback sshd), each a new slot: preflight (base full chosen from the manifests), dump
 * (GNU tar --listed-incremental against a copy of the full's snapshot | zstd), archive, upload, remote verify,
 * finalize, cleanup. restic: `init` and a first backup (untimed), then second backups. Interleaved A B A B.
 * Target: backupctl's median within 2× of restic's.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { closeDestinations } from '../src/destinations/index.js';
import type { BackupResult, Manifest } from '../src/contracts/index.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { runCommand } from '../test/helpers/util.js';
import { phasesFromHistory } from './backup.js';
import { startBenchTemporal } from './config.js';
import type { DatasetInfo } from './dataset.js';
import { summarize, summarizeContender, type Summary } from './stats.js';
import { log, measure, sync } from './sys.js';

export interface DiffContender {
  name: string;
  description: string;
  runs: { rep: number; seconds: number; busyCores: number; foreignCores: number; nodeCpuS: number; childCpuS: number; serverCpuS: number; outputBytes?: number; phases?: Record<string, number> }[];
  summary: Summary;
  phaseMedians: Record<string, number>;
}

export interface DiffReport {
  dataset: DatasetInfo;
  reps: number;
  contenders: DiffContender[];
  /** backupctl median ÷ restic median (≤ 2 meets the target). */
  ratio: number;
  target: string;
  full: { seconds: number; size: number };
  resticFirstSeconds: number;
  resticVersion: string;
  /** The diff artifact's files component (stats from its manifest): what an unchanged diff stores. */
  diffArtifact: { size: number; files: number | string; entries: number | string };
}

export async function runDiff(opts: {
  sshd: SshdHandle; tmp: string; dataset: DatasetInfo; reps: number; warmup: number; onCleanup: (fn: () => Promise<void>) => void;
}): Promise<DiffReport> {
  const { sshd, tmp, dataset } = opts;
  const restic = await runCommand('restic', ['version']).catch(() => undefined);
  if (!restic || restic.code !== 0) throw new Error('restic is not installed (Debian: apt-get install -y restic)');
  const resticVersion = restic.stdout.trim();

  const { server, client, workers: w, taskQueue } = await startBenchTemporal(tmp, 'diffbench', sshd, {
    diffbench: { sources: [{ name: 'data', type: 'files', paths: [dataset.dir] }], destinations: ['nas'] },
  }, opts.onCleanup);

  const repo = path.join(sshd.root, 'restic-repo');
  const sftpCommand = ['ssh', ...sshd.sshArgs, `${sshd.user}@${sshd.host}`, '-s', 'sftp'].join(' ');
  // restic's local cache as in normal use (the notes' figures were taken with it), in the bench's temp dir.
  const resticArgs = ['-r', `sftp:${sshd.user}@${sshd.host}:${repo}`, '-o', `sftp.command=${sftpCommand}`, '--cache-dir', path.join(tmp, 'restic-cache')];
  const resticEnv = { ...process.env, RESTIC_PASSWORD: 'bench-only-password' };
  const resticRun = async (args: string[]) => {
    const r = await runCommand('restic', [...resticArgs, ...args], { env: resticEnv, timeoutMs: 15 * 60_000 });
    if (r.code !== 0) throw new Error(`restic ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
    return r;
  };

  const start = (type: 'full' | 'diff', minute: number) => client.workflow.start('backupWorkflow', {
    taskQueue, workflowId: `diffbench-${type}-${minute}`, args: [{ job: 'diffbench', type, slot: new Date(Date.UTC(2025, 1, 1, 0, minute)).toISOString() }],
  });

  const mine: DiffContender = {
    name: 'backupctl diff', description: 'backupWorkflow type diff, nothing changed since the full (GNU tar --listed-incremental | zstd, upload, remote verify, finalize)',
    runs: [], summary: summarize([], 1), phaseMedians: {},
  };
  const theirs: DiffContender = {
    name: 'restic 2nd backup', description: `${resticVersion}: backup of the unchanged dataset into an sftp: repository that already holds it`,
    runs: [], summary: summarize([], 1), phaseMedians: {},
  };
  let full = { seconds: 0, size: 0 };
  let resticFirstSeconds = 0;
  let diffArtifact: DiffReport['diffArtifact'] = { size: 0, files: '?', entries: '?' };

  await w.workers[0]!.runUntil(async () => {
    // Untimed setup: the full both contenders diff against.
    log('diff: backupctl full (untimed)');
    const f = await measure(async () => (await start('full', 0)).result() as Promise<BackupResult>);
    if (!f.value.status.startsWith('succeeded') || f.value.type !== 'full') throw new Error(`backupctl full: unexpected result ${JSON.stringify(f.value)}`);
    full = { seconds: f.seconds, size: f.value.size };
    log(`diff: full ${f.seconds.toFixed(2)} s, ${(f.value.size / 1e6).toFixed(1)} MB`);
    log('diff: restic init and first backup (untimed)');
    await mkdir(path.dirname(repo), { recursive: true });
    await resticRun(['init']);
    const rf = await measure(() => resticRun(['backup', '--quiet', dataset.dir]));
    resticFirstSeconds = rf.seconds;
    log(`diff: restic first backup ${rf.seconds.toFixed(2)} s`);

    for (let rep = 1 - opts.warmup; rep <= opts.reps; rep++) {
      await closeDestinations();
      await sync();
      const m = await measure(async () => {
        const handle = await start('diff', rep + 10);
        return { handle, result: (await handle.result()) as BackupResult };
      }, { servers: [sshd.pid, server.pid] });
      const { handle, result } = m.value;
      if (result.type !== 'diff' || !result.status.startsWith('succeeded')) throw new Error(`backupctl diff: unexpected result ${JSON.stringify(result)}`);
      const ph = await phasesFromHistory(handle);
      const phases: Record<string, number> = { workflow: ph.workflowS, 'outside activities': ph.outsideActivitiesS };
      for (const a of ph.activities) phases[a.type] = a.runS;
      const manifest = JSON.parse((await runCommand('cat', [path.join(sshd.root, `${result.locations[0]!.path}.manifest.json`)])).stdout) as Manifest;
      diffArtifact = { size: result.size, files: manifest.components[0]?.stats.files ?? '?', entries: manifest.components[0]?.stats.entries ?? '?' };
      if (rep > 0) mine.runs.push({ rep, seconds: m.seconds, busyCores: m.busyCores, foreignCores: m.foreignCores, nodeCpuS: m.nodeCpuS, childCpuS: m.childCpuS, serverCpuS: m.serverCpuS, outputBytes: result.size, phases });
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} backupctl diff: ${m.seconds.toFixed(2)} s (${ph.activities.map((a) => `${a.type} ${a.runS.toFixed(2)}`).join(', ')}), ${result.size} bytes, foreign load ${m.foreignCores.toFixed(2)} cores`);

      await sync();
      const r = await measure(() => resticRun(['backup', '--quiet', dataset.dir]), { servers: [sshd.pid] });
      if (rep > 0) theirs.runs.push({ rep, seconds: r.seconds, busyCores: r.busyCores, foreignCores: r.foreignCores, nodeCpuS: r.nodeCpuS, childCpuS: r.childCpuS, serverCpuS: r.serverCpuS });
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} restic 2nd backup: ${r.seconds.toFixed(2)} s, foreign load ${r.foreignCores.toFixed(2)} cores`);
    }
  });
  await rm(repo, { recursive: true, force: true });

  for (const c of [mine, theirs]) summarizeContender(c, dataset.bytes);
  return {
    dataset, reps: opts.reps, contenders: [mine, theirs], ratio: mine.summary.median / theirs.summary.median,
    target: 'backupctl diff (nothing changed) within 2× of restic\'s second backup: ratio ≤ 2', full, resticFirstSeconds, resticVersion, diffArtifact,
  };
}
