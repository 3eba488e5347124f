/**
 * Section "worker" (BENCH_ONLY=worker; part of the default run, under a minute): the worker's start-up and memory,
 * as a user meets them, against issue 19's targets.
 *
 *  - worker start → polling: `node bin/backupctl.js --config <example> worker` against a running Temporal dev server,
 *    from spawn until it prints "worker polling task queue(s)". The first start registers the example's schedules and
 *    creates the signing key; later starts find them.
 *  - idle RSS: VmRSS of the first start's worker process once polling has settled (sampled every 250 ms for
 *    BENCH_WORKER_IDLE_S seconds, default 15, after "polling": the last sample and the largest), then again after one
 *    run of the example (`backupctl run app --wait`) has been served and the worker idled as long again; VmHWM (its
 *    peak over its life) beside them. V8 gives memory back some seconds after start-up (the SDK drops its copy of the
 *    workflow code after 10 s; the memory reducer shrinks the heap when allocation stops), so a short window reads
 *    more. Later starts are timed only (and their VmRSS read 1 s after polling).
 *  - `up --run app --exit` of the README's example from nothing: a fresh copy of examples/backup.yml and
 *    examples/data (no state folder: the dev server's database, the signing key and the schedules are created), on
 *    free ports, wall time from spawn to exit, with the times at which it printed the dev server's address, "worker
 *    polling", the run's start and its outcome.
 *  - peak RSS during a backup, one row per dataset size: a verified full backup of the bench's mixed dataset to the
 *    loopback sshd, run with `backupctl run --wait --json` on a fresh `backupctl worker` process per size: VmHWM of
 *    that process (its peak over its life, start-up included), the largest VmRSS of its process tree (tar, zstd)
 *    sampled every 250 ms, and the run's activity times from its history (the upload's seconds among them).
 *    BENCH_WORKER_SIZES lists the sizes as dataset scales (1 is the ~1 GB dataset, 5 and 20 the 5 and 20 GiB ones:
 *    `BENCH_WORKER_SIZES=1,5,20`); default: BENCH_DATASET_SCALE alone, on the dataset the run already has. A size
 *    other than that one is generated in the bench's temp dir for its row and removed after it, with the run's
 *    staging and remote copy (20 needs about 45 GB of free disk while its row runs).
 *
 * Every `backupctl` is started as a user types it: the bin script itself (bin/backupctl.js, through its shebang), not
 * `node bin/backupctl.js`, so that `worker` and `up` get the start-up settings the script gives them.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { getFreePort } from '../test/helpers/free-port.js';
import { startTemporalDevServer } from '../test/helpers/temporal-server.js';
import { killAll, listDescendants, runCommand, sleep } from '../test/helpers/util.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { phasesFromHistory } from './backup.js';
import { writeSftpJobConfig } from './config.js';
import { generateDataset, type DatasetInfo } from './dataset.js';
import { procMem, sampleTreeRss } from './postgres.js';
import { median } from './stats.js';
import { log } from './sys.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(REPO_ROOT, 'bin', 'backupctl.js');

export const WORKER_TARGETS = { startS: 1, idleRssMiB: 150, upS: 4, peakRssMiB: 200 } as const;

export interface WorkerStartRun {
  rep: number;
  /** Spawn → "worker polling task queue(s)" on stderr, seconds. */
  toPollingS: number;
  /** VmRSS once polling settled (last sample of the idle window; later starts: 1 s after polling), MiB. */
  idleRssMiB: number;
  /** The largest VmRSS sampled in the idle window, MiB. */
  idleMaxRssMiB: number;
  /** VmRSS after serving one run of the example and idling again, MiB. */
  afterRunRssMiB?: number;
  /** VmHWM at the end (peak over the worker's life), MiB. */
  hwmMiB?: number;
  /** Threads of the worker process when idle (/proc/<pid>/status Threads). */
  threads?: number;
}

export interface UpRun {
  rep: number;
  /** Spawn → exit, seconds. */
  seconds: number;
  exitCode: number | null;
  /** Seconds from spawn at which `up` printed each milestone. */
  marks: { devServer?: number; polling?: number; started?: number; outcome?: number };
  /** VmHWM of the `up` process (dev server not included) just before it exited, MiB, when it could be read. */
  hwmMiB?: number;
}

export interface BackupPeak {
  /** The dataset's scale (BENCH_WORKER_SIZES): 1 is the ~1 GB mixed dataset. */
  scale: number;
  datasetBytes: number;
  datasetFiles: number;
  seconds: number;
  /** VmHWM of the worker process after the backup, MiB. */
  workerHwmMiB?: number;
  /** VmRSS of the worker process just before the run, MiB. */
  workerRssBeforeMiB?: number;
  /** Largest summed VmRSS of the worker and its children (tar, zstd), MiB. */
  treePeakMiB: number;
  /** Seconds per activity type (dump, upload, verify, checksum, ...) from the run's history. */
  activities: Record<string, number>;
  /** Size of the artifact, bytes. */
  artifactBytes?: number;
}

export interface WorkerReport {
  reps: number;
  /** The first of `backups` (kept for earlier result files' readers). */
  backup?: BackupPeak;
  /** One per BENCH_WORKER_SIZES entry, in that order. */
  backups: BackupPeak[];
  idleWindowS: number;
  starts: WorkerStartRun[];
  ups: UpRun[];
  medians: { toPollingS: number; idleRssMiB: number; afterRunRssMiB: number; upS: number };
  targets: typeof WORKER_TARGETS;
}

/** A copy of the README's example (examples/backup.yml, examples/data) under `dir`; returns the config's path. */
async function copyExample(dir: string): Promise<string> {
  const examples = path.join(dir, 'examples');
  await mkdir(path.join(examples, 'backups'), { recursive: true });
  await cp(path.join(REPO_ROOT, 'examples', 'data'), path.join(examples, 'data'), { recursive: true });
  const config = path.join(examples, 'backup.yml');
  await writeFile(config, await readFile(path.join(REPO_ROOT, 'examples', 'backup.yml')));
  return config;
}

function threadsOf(pid: number): number | undefined {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Spawns the CLI, timestamps each line of its output (seconds since spawn), and resolves with them when it exits. */
function spawnCli(args: string[], env: NodeJS.ProcessEnv) {
  const t0 = performance.now();
  // The bin script through its shebang, as a user types `backupctl ...`: `worker` and `up` get their settings there.
  const child = spawn(CLI, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: { at: number; text: string }[] = [];
  let output = '';
  const partial = { stdout: '', stderr: '' };
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream].on('data', (c: Buffer) => {
      const at = (performance.now() - t0) / 1000;
      output += c.toString('utf8');
      partial[stream] += c.toString('utf8');
      const parts = partial[stream].split('\n');
      partial[stream] = parts.pop() ?? '';
      for (const text of parts) lines.push({ at, text });
    });
  }
  const exited = new Promise<{ code: number | null; seconds: number }>((resolve) => {
    child.once('exit', (code) => resolve({ code, seconds: (performance.now() - t0) / 1000 }));
  });
  const killNow = () => { if (child.pid) killAll([...listDescendants(child.pid), child.pid], 'SIGKILL'); };
  process.once('exit', killNow);
  void exited.then(() => process.removeListener('exit', killNow));
  return {
    child, lines, exited, output: () => output,
    /** Seconds from spawn at which a line matching `re` appeared; waits for it (rejects if the process exits first). */
    async waitLine(re: RegExp, timeoutMs = 120_000): Promise<number> {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines.find((l) => re.test(l.text));
        if (hit) return hit.at;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`backupctl ${args.join(' ')} exited (${child.exitCode ?? child.signalCode}) before printing ${re}:\n${output.slice(-4000)}`);
        if (Date.now() > end) throw new Error(`backupctl ${args.join(' ')} did not print ${re} within ${timeoutMs / 1000} s:\n${output.slice(-4000)}`);
        await sleep(10);
      }
    },
    killNow,
  };
}

export async function runWorkerBench(opts: {
  tmp: string; reps: number; idleS: number; sshd?: SshdHandle;
  /** The run's dataset, at scale `datasetScale`; other sizes are generated for their row. */
  dataset?: DatasetInfo; datasetScale?: number; sizes?: number[];
  onCleanup: (fn: () => Promise<void>) => void;
}): Promise<WorkerReport> {
  const { tmp, reps, idleS } = opts;
  const base = path.join(tmp, 'worker-bench');
  const server = await startTemporalDevServer();
  opts.onCleanup(() => server.stop());
  const config = await copyExample(path.join(base, 'worker'));
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default' };
  delete env.BACKUPCTL_LOG_LEVEL;

  const starts: WorkerStartRun[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    const w = spawnCli(['--config', config, 'worker'], env);
    try {
      const toPollingS = await w.waitLine(/^worker polling task queue/);
      const pid = w.child.pid!;
      let idleMax = 0;
      let last = 0;
      const end = Date.now() + (rep === 1 ? idleS : 1) * 1000;
      while (Date.now() < end) {
        await sleep(250);
        last = procMem(pid).rssMiB ?? 0;
        idleMax = Math.max(idleMax, last);
      }
      const threads = threadsOf(pid);
      // One run of the example on this worker, then idle again: what a worker holds between runs.
      let afterRunRssMiB: number | undefined;
      if (rep === 1) {
        const r = await runCommand(CLI, ['--config', config, 'run', 'app', '--wait'], { env, cwd: REPO_ROOT, timeoutMs: 120_000 });
        if (r.code !== 0) throw new Error(`backupctl run app --wait failed (exit ${r.code}):\n${r.stderr}`);
        await sleep(idleS * 1000);
        afterRunRssMiB = procMem(pid).rssMiB;
      }
      const run: WorkerStartRun = { rep, toPollingS, idleRssMiB: last, idleMaxRssMiB: idleMax, afterRunRssMiB, hwmMiB: procMem(pid).hwmMiB, threads };
      starts.push(run);
      log(`  worker start ${rep}: polling after ${toPollingS.toFixed(2)} s, idle VmRSS ${last.toFixed(0)} MiB (max ${idleMax.toFixed(0)}), ${afterRunRssMiB === undefined ? '' : `after a run ${afterRunRssMiB.toFixed(0)} MiB, `}VmHWM ${run.hwmMiB?.toFixed(0) ?? '?'} MiB, ${threads ?? '?'} threads`);
    } finally {
      w.child.kill('SIGTERM');
      const timer = setTimeout(w.killNow, 15_000);
      await w.exited;
      clearTimeout(timer);
    }
  }

  // `up --run app --exit` from nothing: a fresh copy of the example per repetition, free ports, no TEMPORAL_ADDRESS.
  const upEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(upEnv)) if (k.startsWith('TEMPORAL_') && k !== 'TEMPORAL_CLI_PATH') delete upEnv[k];
  delete upEnv.BACKUPCTL_LOG_LEVEL;
  const ups: UpRun[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    const cfg = await copyExample(path.join(base, `up-${rep}`));
    const [port, uiPort] = [await getFreePort(), await getFreePort()];
    const u = spawnCli(['--config', cfg, 'up', '--run', 'app', '--exit', '--port', String(port), '--ui-port', String(uiPort)], upEnv);
    let hwmMiB: number | undefined;
    // The up process's own peak, read as late as possible (it is gone once it exits).
    const sampler = setInterval(() => { const m = procMem(u.child.pid!).hwmMiB; if (m !== undefined) hwmMiB = m; }, 100);
    const timer = setTimeout(u.killNow, 180_000);
    const { code, seconds } = await u.exited;
    clearTimeout(timer);
    clearInterval(sampler);
    const at = (re: RegExp) => u.lines.find((l) => re.test(l.text))?.at;
    const run: UpRun = {
      rep, seconds, exitCode: code, hwmMiB,
      marks: { devServer: at(/^Temporal dev server at /), polling: at(/^worker polling task queue/), started: at(/^started backup-/), outcome: at(/^(succeeded|failed|skipped|cancelled)/) },
    };
    if (code !== 0) throw new Error(`backupctl up --run app --exit failed (exit ${code}):\n${u.output().slice(-4000)}`);
    ups.push(run);
    const m = run.marks;
    log(`  up --run app --exit ${rep}: ${seconds.toFixed(2)} s (dev server ${m.devServer?.toFixed(2) ?? '?'}, polling ${m.polling?.toFixed(2) ?? '?'}, started ${m.started?.toFixed(2) ?? '?'}, outcome ${m.outcome?.toFixed(2) ?? '?'}), VmHWM ${hwmMiB?.toFixed(0) ?? '?'} MiB`);
  }

  const backups: BackupPeak[] = [];
  const sshd = opts.sshd;
  for (const scale of opts.sshd ? opts.sizes ?? [opts.datasetScale ?? 1] : []) {
    const shared = opts.dataset && scale === (opts.datasetScale ?? 1) ? opts.dataset : undefined;
    const genDir = path.join(base, `dataset-${scale}`);
    try {
      const dataset = shared ?? await generateDataset(genDir, scale);
      if (!shared) log(`  dataset at scale ${scale}: ${(dataset.bytes / 1e6).toFixed(0)} MB, ${dataset.files} files, generated in ${dataset.seconds.toFixed(0)} s`);
      backups.push(await backupPeak(base, `peak-${scale}`, scale, sshd!, dataset, env));
    } finally {
      await rm(genDir, { recursive: true, force: true });
    }
  }

  return {
    reps, idleWindowS: idleS, starts, ups, targets: WORKER_TARGETS, backup: backups[0], backups,
    medians: {
      toPollingS: median(starts.map((s) => s.toPollingS)),
      idleRssMiB: starts[0]!.idleRssMiB,
      afterRunRssMiB: median(starts.flatMap((s) => (s.afterRunRssMiB === undefined ? [] : [s.afterRunRssMiB]))),
      upS: median(ups.map((u) => u.seconds)),
    },
  };
}

/**
 * A verified full backup of `dataset` on a fresh `backupctl worker` process: its VmHWM, its tree's sampled peak and
 * the run's activity times. The run's staging and remote copy are removed afterwards (a 20 GiB row would otherwise
 * keep twice its artifact on the disk).
 */
async function backupPeak(base: string, name: string, scale: number, sshd: SshdHandle, dataset: DatasetInfo, env: NodeJS.ProcessEnv): Promise<BackupPeak> {
  const { configFile, stateDir } = await writeSftpJobConfig(base, name, sshd, { peak: { sources: [{ name: 'data', type: 'files', paths: [dataset.dir] }], destinations: ['nas'] } });
  const w = spawnCli(['--config', configFile, 'worker'], env);
  let remotePath: string | undefined;
  try {
    await w.waitLine(/^worker polling task queue/);
    await sleep(1000);
    const pid = w.child.pid!;
    const before = procMem(pid).rssMiB;
    const sampler = sampleTreeRss(pid);
    const t = performance.now();
    const r = await runCommand(CLI, ['--config', configFile, 'run', 'peak', '--wait', '--json'], { env, cwd: REPO_ROOT, timeoutMs: 60 * 60_000 });
    const seconds = (performance.now() - t) / 1000;
    const tree = sampler.stop();
    const hwm = procMem(pid).hwmMiB;
    if (r.code !== 0 && r.code !== 3) throw new Error(`backupctl run peak --wait failed (exit ${r.code}):\n${r.stderr}\nworker:\n${w.output().slice(-4000)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { workflowId?: string; size?: number; remotePath?: string };
    remotePath = out.remotePath;
    const activities: Record<string, number> = {};
    if (out.workflowId) {
      const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
      try {
        const ph = await phasesFromHistory(new Client({ connection, namespace: 'default' }).workflow.getHandle(out.workflowId));
        for (const a of ph.activities) activities[a.type] = (activities[a.type] ?? 0) + a.runS;
      } finally {
        await connection.close();
      }
    }
    const peak: BackupPeak = { scale, datasetBytes: dataset.bytes, datasetFiles: dataset.files, seconds, workerHwmMiB: hwm, workerRssBeforeMiB: before, treePeakMiB: tree.peakMiB, activities, artifactBytes: out.size };
    const acts = Object.entries(activities).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
    log(`  backup of ${(dataset.bytes / 1e6).toFixed(0)} MB (${dataset.files} files) on a worker process: ${seconds.toFixed(2)} s (${acts}), worker VmRSS before ${before?.toFixed(0) ?? '?'} MiB, VmHWM ${hwm?.toFixed(0) ?? '?'} MiB, tree peak ${tree.peakMiB.toFixed(0)} MiB`);
    return peak;
  } finally {
    w.child.kill('SIGTERM');
    const timer = setTimeout(w.killNow, 15_000);
    await w.exited;
    clearTimeout(timer);
    await rm(stateDir, { recursive: true, force: true });
    // The artifact and its manifest on the destination (the run's slot folder stays, empty).
    if (remotePath) for (const f of [remotePath, `${remotePath}.manifest.json`]) await rm(path.join(sshd.root, f), { force: true });
  }
}
