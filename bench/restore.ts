/**
 * Comparison 4 (issue 6, must-show 7, first half): restoring the mixed dataset's backup from the loopback sshd.
 * backupctl's restoreWorkflow (Temporal, in-process worker: plan, fetch = pipelined SFTP reads fed into zstd -d | tar -x
 * in a temp dir as they arrive and hashed on a thread, with size, SHA-256 and member check at the end, unpack = the
 * rename of the checked temp dir) against OpenSSH
 * `sftp get` of the same artifact followed by `tar -xOf artifact member | zstd -d | tar -x`, without a checksum and
 * with `openssl dgst -sha256` of the download checked before unpacking; and (issue 19) backupctl as a user types it,
 * `backupctl restore <job> --to DIR` in a process of its own (no worker serves the job's queue: it runs its own, as on
 * a machine where none runs) and with `--no-worker` (served by the running worker, here the bench's), beside
 * `restic restore latest --target DIR` and `borg extract` (repositories on the same sshd, filled untimed beforehand;
 * each row left out with a log line when its tool is missing). Interleaved per repetition.
 */
import { createReadStream, existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { closeDestinations } from '../src/destinations/index.js';
import type { BackupResult, RestoreResult } from '../src/contracts/index.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { runCommand } from '../test/helpers/util.js';
import { phasesFromHistory } from './backup.js';
import { startBenchTemporal } from './config.js';
import type { DatasetInfo } from './dataset.js';
import { fmt, median, summarize, summarizeContender, table, type Summary } from './stats.js';
import { borg as borgTool, medianOf, restic as resticTool, runRecord } from './anchors.js';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { runCli } from './postgres.js';
import { log, measure, shellQuote, sync } from './sys.js';
import { sftpArgs, type RunRecord } from './transport.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface RestoreContender {
  name: string;
  description: string;
  runs: (RunRecord & { phases?: Record<string, number> })[];
  warmup: (RunRecord & { phases?: Record<string, number> })[];
  summary: Summary;
  phaseMedians: Record<string, number>;
}

export interface RestoreReport {
  dataset: DatasetInfo;
  artifact: { path: string; size: number; sha256: string };
  reps: number;
  contenders: RestoreContender[];
  /** Baseline median ÷ backupctl median (≥ 1: backupctl is no slower). */
  speedup: number;
  /** The same against the baseline that also checks the download's SHA-256 (`openssl dgst`) before unpacking. */
  speedupChecked: number;
  target: string;
  /** The filesystem the restored trees were written to (`restoreTargets`). */
  targetFs: string;
  /** Regular files in the first restored tree of each contender (both must equal the dataset's). */
  restoredFiles: Record<string, number>;
  /** Issue 19's target: `backupctl restore --to` as typed ≤ 0.6× `restic restore latest` (absent without restic). */
  resticTarget?: { ratio: number; limit: number; met: boolean; resticVersion: string };
  /** `backupctl restore --to` as typed ÷ `borg extract`, for information (absent without borg). */
  borgRatio?: number;
  borgVersion?: string;
}

/** Every regular file under these paths (files or directories), for reading them back into the page cache. */
async function filesUnder(paths: readonly string[]): Promise<string[]> {
  const r = await runCommand('find', [...paths, '-type', 'f']);
  if (r.code !== 0) throw new Error(`find ${paths.join(' ')} failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** Regular files of a restored tree, not counting backupctl's record of the restore. */
async function countFiles(dir: string): Promise<number> {
  const r = await runCommand('bash', ['-c', `find ${shellQuote(dir)} -type f ! -name .backupctl-restore.json | wc -l`]);
  return Number(r.stdout.trim());
}

/**
 * Where the restored trees go. By default (as root, where loop devices work) a journaled ext4 created for the section:
 * a sparse image file in the bench's temp dir on a loop device with direct I/O, inode tables written at mkfs (no
 * background initialisation during the runs). The root filesystem of the machines this bench runs on is ext4 without a
 * journal, where creating files for minutes after ~30,000 were deleted (the previous repetition's tree) makes the
 * kernel skip every recently freed inode (`recently_deleted()`, checked only without a journal): a `tar -x` of the
 * dataset took 3.2 s there right after the tree was deleted (page cache dropped) and 2.0 s where nothing had been
 * deleted. A server's data filesystem has a journal. `BENCH_RESTORE_FS=tmp` restores into the temp dir instead.
 */
async function restoreTargets(tmp: string, onCleanup: (fn: () => Promise<void>) => void): Promise<{ dir: string; fs: string }> {
  const inTmp = { dir: path.join(tmp, 'restore-targets'), fs: 'the bench\'s temp dir (its filesystem)' };
  if (process.env.BENCH_RESTORE_FS === 'tmp' || process.getuid?.() !== 0) return inTmp;
  const image = path.join(tmp, 'restore-targets.ext4');
  const dir = path.join(tmp, 'restore-targets-fs');
  const step = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { timeoutMs: 5 * 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout.trim();
  };
  try {
    await step('truncate', ['-s', '24G', image]);
    await step('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
    const dev = await step('losetup', ['--find', '--show', '--direct-io=on', image]);
    onCleanup(async () => { await runCommand('losetup', ['-d', dev]); await rm(image, { force: true }); });
    await mkdir(dir, { recursive: true });
    await step('mount', [dev, dir]);
    onCleanup(async () => { await runCommand('umount', [dir]); });
    return { dir: path.join(dir, 'targets'), fs: `a journaled ext4 on ${dev} (a sparse 24 GiB image in the temp dir, direct I/O)` };
  } catch (err) {
    log(`restore: no journaled scratch filesystem for the targets (${(err as Error).message.split('\n')[0]}): restoring into the temp dir`);
    await rm(image, { force: true });
    return inTmp;
  }
}

export async function runRestore(opts: {
  sshd: SshdHandle; tmp: string; dataset: DatasetInfo; reps: number; warmup: number; onCleanup: (fn: () => Promise<void>) => void;
}): Promise<RestoreReport> {
  const { sshd, tmp, dataset } = opts;
  const { server, client, workers: w, taskQueue, configFile } = await startBenchTemporal(tmp, 'restore-bench', sshd, {
    rbench: { sources: [{ name: 'data', type: 'files', paths: [dataset.dir] }], destinations: ['nas'] },
  }, opts.onCleanup);

  const { dir: targets, fs: targetFs } = await restoreTargets(tmp, opts.onCleanup);
  log(`restore: restoring into ${targetFs}`);
  const staging = path.join(tmp, 'restore-baseline-staging');
  await mkdir(targets, { recursive: true });
  await mkdir(staging, { recursive: true });
  const mine: RestoreContender = {
    name: 'backupctl restore', description: 'restoreWorkflow: plan, fetch (pipelined SFTP reads streamed into zstd -d | tar -x in a temp dir while a thread hashes them, SHA-256; size + member check at the end), unpack (rename of the checked temp dir), cleanup',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const base: RestoreContender = {
    name: 'sftp get + zstd -d | tar -x', description: 'bash: sftp -b get (default cipher); tar -xOf artifact data.tar.zst | zstd -d | tar -x (no checksum)',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const checked: RestoreContender = {
    name: 'sftp get + SHA-256 + zstd -d | tar -x', description: 'the same, with `openssl dgst -sha256` of the download compared with the manifest\'s before unpacking (the check backupctl makes)',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const typed: RestoreContender = {
    name: 'backupctl restore --to (as typed)', description: '`bin/backupctl.js --config <cfg> restore rbench --to DIR` (through its shebang, as `backupctl restore` runs), a process of its own with TEMPORAL_ADDRESS set; no worker serves the job\'s queue (its own config\'s), so the command runs its own worker, as where none runs',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const noWorker: RestoreContender = {
    name: 'backupctl restore --to --no-worker', description: 'the same command with --no-worker and the bench\'s config: the restore runs on the running worker (the bench\'s in-process one)',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const resticRepo = path.join(sshd.root, 'restic-restore-repo');
  const rt = await resticTool(sshd, resticRepo, path.join(tmp, 'restic-cache-restore'));
  if (!rt) log('restore: restic is not installed (apt-get install -y restic): no restic row');
  const borgRepo = path.join(sshd.root, 'borg-restore-repo');
  const bt = await borgTool(sshd, borgRepo, path.join(tmp, 'borg-base-restore'));
  if (!bt) log('restore: borg is not installed (apt-get install -y borgbackup): no borg row');
  const resticRestore = (to: string) => ['restore', 'latest', '--target', to];
  const borgExtract = ['extract', '::first'];
  const resticC: RestoreContender = {
    name: 'restic restore latest', description: `${rt?.version ?? 'restic'}: ${rt?.describe(resticRestore('DIR')) ?? ''} (repository filled by one untimed backup; its local cache kept)`,
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const borgC: RestoreContender = {
    name: 'borg extract', description: `${bt?.version ?? 'borg'}: cd DIR && ${bt?.describe(borgExtract) ?? ''} (repokey repository filled by one untimed create)`,
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  // The typed command's config: the bench's (same job, destination and signing key: the backup's manifest must verify),
  // with a state directory of its own and another task queue, one no worker polls.
  const cliConfig = path.join(tmp, 'restore-cli.yml');
  const benchConfig = parseYaml(await readFile(configFile, 'utf8')) as { stateDir: string; temporal: { taskQueue: string }; signing?: unknown };
  await writeFile(cliConfig, stringifyYaml({
    ...benchConfig,
    stateDir: path.join(tmp, 'restore-cli-state'),
    temporal: { ...benchConfig.temporal, taskQueue: `restore-cli-${process.pid}` },
    signing: { key: { file: path.join(benchConfig.stateDir, 'keys', 'signing.key') } },
  }));
  const cliEnv: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default' };
  const restoredFiles: Record<string, number> = {};
  let artifact: RestoreReport['artifact'] | undefined;

  await w.workers[0]!.runUntil(async () => {
    const backup = (await client.workflow.execute('backupWorkflow', { taskQueue, workflowId: 'restore-bench-backup', args: [{ job: 'rbench', slot: '2025-01-01T00:00:00Z' }] })) as BackupResult;
    artifact = { path: backup.locations[0]!.path, size: backup.size, sha256: backup.sha256 };
    log(`restore: backup stored, ${(backup.size / 1e6).toFixed(1)} MB at ${artifact.path}`);
    const batch = path.join(tmp, 'restore-baseline.batch');
    const local = path.join(staging, 'a.tar');
    await writeFile(batch, `get ${path.join(sshd.root, artifact.path)} ${local}\n`);
    const sftp = ['sftp', '-q', '-b', batch, ...sftpArgs(sshd), `${sshd.user}@${sshd.host}`].map(shellQuote).join(' ');
    const remote = path.join(sshd.root, artifact.path);
    if (rt) {
      log('restore: restic init and backup (untimed)');
      await rt.remove();
      await rt.init();
      await rt.run(['backup', '--quiet', dataset.dir]);
    }
    if (bt) {
      log('restore: borg init and create (untimed)');
      await bt.remove();
      await bt.init();
      await bt.run(['create', '::first', dataset.dir]);
    }
    // What the server side reads: the artifact, and the restic and borg repositories.
    const stored = [remote, ...(rt ? [resticRepo] : []), ...(bt ? [borgRepo] : [])];
    // Between runs: the restored tree is deleted, dirty pages written out and (as root) the page cache dropped, then the
    // stored artifact is read back into it, so that every run starts alike: artifact cached on the server side, an
    // empty target. Dropping the cache matters on ext4 without a journal (this machine's root, where the targets are
    // only with BENCH_RESTORE_FS=tmp or without a loop device, see restoreTargets): for minutes after
    // ~30,000 files are deleted, creating files makes the kernel skip each recently freed inode whose inode-table block
    // is still cached (recently_deleted()), measured at 18 s of system time for a `tar -x` that otherwise takes 3 s.
    // Without the right to drop caches, the trees stay until the end of the section instead.
    let canDrop = true;
    let primeWarned = false;
    const programs = [
      process.execPath, realpathSync(path.join(REPO_ROOT, 'node_modules')), path.join(REPO_ROOT, 'dist'), path.join(REPO_ROOT, 'bin'),
      ...(rt ? ['/usr/bin/restic'] : []),
      ...(bt ? ['/usr/bin/borg', '/usr/bin/python3.11', '/usr/lib/python3.11', '/usr/lib/python3/dist-packages/borg', '/usr/lib/python3/dist-packages/msgpack'] : []),
    ].filter((f) => existsSync(f));
    const settle = async (tree?: string) => {
      if (tree && canDrop) await rm(tree, { recursive: true, force: true });
      await sync();
      if (canDrop) {
        await writeFile('/proc/sys/vm/drop_caches', '1').catch((err: Error) => {
          canDrop = false;
          log(`restore: cannot drop the page cache (${err.message}): restored trees stay until the end of the section`);
        });
      }
      for (const file of await filesUnder(stored)) await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), new Writable({ write: (_c, _e, cb) => cb() }));
      // And the programs the timed commands load (node, backupctl's code and node_modules, restic, borg and its
      // Python), so that no row pays for reading its program from disk after the drop.
      if (canDrop) {
        const r = await runCommand('bash', ['-c', `find ${programs.map(shellQuote).join(' ')} -type f -print0 2>/dev/null | xargs -0 cat > /dev/null`], { timeoutMs: 10 * 60_000 });
        if (r.code !== 0 && !primeWarned) {
          primeWarned = true;
          log(`restore: reading the programs back into the page cache: ${r.stderr.trim().split('\n')[0] ?? ''}`);
        }
      }
    };
    await settle();

    const runMine = async (rep: number) => {
      const to = path.join(targets, `mine-${rep}`);
      const m = await measure(async () => {
        const handle = await client.workflow.start('restoreWorkflow', { taskQueue, workflowId: `restore-bench-${rep}`, args: [{ job: 'rbench', to }] });
        return { handle, result: (await handle.result()) as RestoreResult };
      }, { servers: [sshd.pid, server.pid], sampleRss: true });
      if (m.value.result.status !== 'restored') throw new Error(`restore ${rep}: ${JSON.stringify(m.value.result)}`);
      restoredFiles[mine.name] ??= await countFiles(to);
      const ph = await phasesFromHistory(m.value.handle);
      const phases: Record<string, number> = { 'start→result (client)': m.seconds, workflow: ph.workflowS, 'outside activities': ph.outsideActivitiesS };
      for (const a of ph.activities) phases[a.type] = a.runS;
      (rep <= 0 ? mine.warmup : mine.runs).push({ ...runRecord(rep, m, dataset.bytes, 'self'), phases });
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} backupctl restore: ${m.seconds.toFixed(2)} s (${ph.activities.map((a) => `${a.type} ${a.runS.toFixed(2)}`).join(', ')}), busy cores ${m.busyCores.toFixed(2)}, foreign ${m.foreignCores.toFixed(2)}`);
      await closeDestinations();
      await settle(to);
    };
    const runBase = async (rep: number, c: RestoreContender) => {
      const check = c === checked;
      const to = path.join(targets, `${check ? 'checked' : 'base'}-${rep}`);
      await mkdir(to, { recursive: true });
      const script = `set -euo pipefail
mark() { echo "MARK $1 $(date +%s.%N)"; }
mark start
${sftp}
mark get
${check ? `test "$(openssl dgst -sha256 -r ${shellQuote(local)} | cut -c1-64)" = ${artifact!.sha256}
mark check
` : ''}tar -xOf ${shellQuote(local)} data.tar.zst | zstd -d -q | tar -x -C ${shellQuote(to)}
mark unpack
`;
      const m = await measure(() => runCommand('bash', ['-c', script], { timeoutMs: 15 * 60_000 }), { servers: [sshd.pid, server.pid], sampleRss: true });
      if (m.value.code !== 0) throw new Error(`baseline restore failed (exit ${m.value.code}):\n${m.value.stderr}${m.value.stdout}`);
      restoredFiles[c.name] ??= await countFiles(to);
      const marks = [...m.value.stdout.matchAll(/^MARK (\S+) (\d+\.\d+)$/gm)].map((x) => ({ name: x[1]!, t: Number(x[2]) }));
      const phases: Record<string, number> = {};
      for (let i = 1; i < marks.length; i++) phases[marks[i]!.name] = marks[i]!.t - marks[i - 1]!.t;
      (rep <= 0 ? c.warmup : c.runs).push({ ...runRecord(rep, m, dataset.bytes, 'children'), phases });
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} sftp get${check ? ' + SHA-256' : ''} + unpack: ${m.seconds.toFixed(2)} s (${Object.entries(phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}), busy cores ${m.busyCores.toFixed(2)}, foreign ${m.foreignCores.toFixed(2)}`);
      await rm(local, { force: true });
      await settle(to);
    };
    // One command, timed from start to exit: a `backupctl` CLI process, restic or borg.
    const runCommandRow = async (rep: number, c: RestoreContender, run: (to: string) => Promise<void>) => {
      const to = path.join(targets, `${c.name.replace(/[^a-z0-9]+/gi, '-')}-${rep}`);
      await mkdir(to, { recursive: true });
      const m = await measure(() => run(to), { servers: [sshd.pid, server.pid], sampleRss: true });
      restoredFiles[c.name] ??= await countFiles(to);
      (rep <= 0 ? c.warmup : c.runs).push(runRecord(rep, m, dataset.bytes, c === noWorker ? 'self' : 'children'));
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} ${c.name}: ${m.seconds.toFixed(2)} s, busy cores ${m.busyCores.toFixed(2)}, foreign ${m.foreignCores.toFixed(2)}, peak RSS ${(c === noWorker ? m.rss?.selfAndChildrenMiB : m.rss?.childrenMiB)?.toFixed(0) ?? '?'} MiB (server sessions ${m.rss?.sessionsMiB.toFixed(0) ?? '?'})`);
      await closeDestinations();
      await settle(to);
    };
    const backupctlCli = (config: string, extra: string[]) => async (to: string) => {
      // The target must not exist or be empty: it is empty here.
      const r = await runCli(['--config', config, 'restore', 'rbench', '--to', to, ...extra], cliEnv, opts.onCleanup, 15 * 60_000);
      if (r.code !== 0) throw new Error(`backupctl restore ${extra.join(' ')} failed (exit ${r.code ?? r.signal}):\n${r.stderr.slice(-3000)}${r.stdout.slice(-1000)}`);
    };
    for (let rep = 1 - opts.warmup; rep <= opts.reps; rep++) {
      await runMine(rep);
      await runBase(rep, base);
      await runBase(rep, checked);
      await runCommandRow(rep, typed, backupctlCli(cliConfig, []));
      await runCommandRow(rep, noWorker, backupctlCli(configFile, ['--no-worker']));
      if (rt) await runCommandRow(rep, resticC, async (to) => { await rt.run(resticRestore(to)); });
      if (bt) await runCommandRow(rep, borgC, async (to) => { await bt.run(borgExtract, { cwd: to }); });
    }
  });
  const contenders = [mine, base, checked, typed, noWorker, ...(rt ? [resticC] : []), ...(bt ? [borgC] : [])];
  for (const c of contenders) summarizeContender(c, dataset.bytes);
  await rm(targets, { recursive: true, force: true });
  await rt?.remove();
  await bt?.remove();
  const resticRatio = typed.summary.median / resticC.summary.median;
  return {
    ...(rt ? { resticTarget: { ratio: resticRatio, limit: 0.6, met: resticRatio <= 0.6, resticVersion: rt.version } } : {}),
    ...(bt ? { borgRatio: typed.summary.median / borgC.summary.median, borgVersion: bt.version } : {}),
    dataset, artifact: artifact!, reps: opts.reps, contenders,
    speedup: base.summary.median / mine.summary.median,
    speedupChecked: checked.summary.median / mine.summary.median,
    target: 'backupctl restore no slower than sftp get + zstd -d | tar -x: speed-up ≥ 1',
    targetFs,
    restoredFiles,
  };
}

export function restoreText(r: RestoreReport): string {
  const range = (min: number, max: number) => `${fmt(min)}–${fmt(max)}`;
  const rows = r.contenders.map((c) => {
    const med = (f: (x: (typeof c.runs)[number]) => number | undefined) => median(c.runs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
    return [
      c.name, String(c.summary.n), `${fmt(c.summary.median)} [${range(c.summary.min, c.summary.max)}]`,
      `${fmt(c.summary.mbps.median, 1)} [${range(c.summary.mbps.worst, c.summary.mbps.best)}]`, fmt(r.contenders[1]!.summary.median / c.summary.median),
      fmt(med((x) => x.nodeCpuS + x.childCpuS)), fmt(med((x) => x.serverCpuS)), fmt(med((x) => x.busyCores)), fmt(med((x) => x.foreignCores)),
      fmt(medianOf(c.runs, (x) => x.clientPeakRssMiB), 0), fmt(medianOf(c.runs, (x) => x.sessionsPeakRssMiB), 0), fmt(medianOf(c.runs, (x) => x.stealS)),
      String(r.restoredFiles[c.name] ?? '?'),
    ];
  });
  const out = [
    `4. Restore of the mixed dataset's backup (${r.dataset.files} files, ${(r.dataset.bytes / 1e6).toFixed(1)} MB; artifact ${(r.artifact.size / 1e6).toFixed(1)} MB) from loopback sshd`,
    `restored into ${r.targetFs}`,
    table(['contender', 'n', 's median [min–max]', 'MB/s of source median [min–max]', 'speed-up vs baseline', 'client CPU s', 'server CPU s', 'busy cores', 'foreign cores', 'own peak RSS MiB', 'sshd sessions peak RSS MiB', 'steal s', 'files restored'], rows),
  ];
  for (const c of r.contenders) {
    if (Object.keys(c.phaseMedians).length > 0) out.push('', table([`${c.name} phase`, 'median s'], Object.entries(c.phaseMedians).map(([k, v]) => [k, fmt(v, 3)])));
  }
  out.push(`ratio of medians baseline ÷ backupctl restore: ${fmt(r.speedup)}`);
  out.push(`ratio of medians baseline with the same SHA-256 check ÷ backupctl restore: ${fmt(r.speedupChecked)}`);
  out.push(`target (${r.target}): ${r.speedup >= 1 ? 'MET' : 'NOT MET'} (${fmt(r.speedup)}×)`);
  out.push(r.resticTarget
    ? `target (issue 19: backupctl restore --to as typed ≤ ${r.resticTarget.limit}× restic restore latest, ${r.resticTarget.resticVersion.split(' ').slice(0, 2).join(' ')}): ${r.resticTarget.met ? 'MET' : 'NOT MET'} (${fmt(r.resticTarget.ratio)}×)`
    : 'restic not installed: no restic row, no issue 19 restore ratio');
  out.push(r.borgRatio !== undefined ? `backupctl restore --to as typed ÷ borg extract (${r.borgVersion ?? 'borg'}; for information): ${fmt(r.borgRatio)}` : 'borg not installed: no borg row');
  return out.join('\n');
}
