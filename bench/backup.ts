/**
 * Comparison 2: a verified full backup of the mixed dataset to the loopback sshd.
 * backupctl (Temporal workflow, in-process worker) against a good shell script (the notes' case "b"), the same workflow
 * with encryption at rest (age), the streaming shell pipeline (tar | zstd | ssh 'cat > file', then a remote sha256sum
 * against the local one: a verified single-stream upload), restic's first backup of the same dataset into a fresh
 * sftp: repository on the same sshd (restic encrypts too) and borg's first `borg create` into a fresh repokey
 * repository over ssh (`borg serve` on the remote side) on the same sshd (restic and borg when installed).
 * backupctl (age) also runs as a user types it, `backupctl run bench-age --wait` (served by the running worker).
 * Interleaved per repetition: backupctl, script, backupctl (age), backupctl run --wait (age), streaming pipeline,
 * restic, borg.
 */
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import path from 'node:path';
import { startBenchTemporal } from './config.js';
import type { WorkflowHandle } from '@temporalio/client';
import { closeDestinations } from '../src/destinations/index.js';
import type { BackupResult } from '../src/contracts/index.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { runCommand } from '../test/helpers/util.js';
import type { DatasetInfo } from './dataset.js';
import { cpuText, summarize, summarizeContender, type Summary } from './stats.js';
import { borg as borgTool, restic as resticTool, runRecord } from './anchors.js';
import { runCli } from './postgres.js';
import { log, measure, mustRun, sha256File, shellQuote, sync } from './sys.js';
import { sftpArgs, type RunRecord } from './transport.js';

export interface PhaseTimes {
  /** Per activity type (summed over its executions): schedule-to-start and start-to-close, seconds. */
  activities: { type: string; queueS: number; runS: number; attempts: number }[];
  /** WorkflowExecutionStarted → WorkflowExecutionCompleted, seconds. */
  workflowS: number;
  /** Workflow time not covered by any activity (outside the union of their intervals: workflow tasks, scheduling), seconds. */
  outsideActivitiesS: number;
}

export interface BackupContender {
  name: string;
  description: string;
  runs: (RunRecord & { phases?: Record<string, number>; outputBytes?: number })[];
  warmup: (RunRecord & { phases?: Record<string, number>; outputBytes?: number })[];
  summary: Summary;
  /** Median per phase over the measured runs, seconds. */
  phaseMedians: Record<string, number>;
  /** Median CPU seconds per command over the measured runs (largest first; see `SampledRss.cpuByCommand`). */
  cpuMedians?: Record<string, number>;
}

export interface BackupReport {
  dataset: DatasetInfo & { sqlZstdRatio: number; duBytes: number };
  reps: number;
  contenders: BackupContender[];
  /** Baseline median ÷ backupctl median (> 1: backupctl is faster). */
  speedup: number;
  /** backupctl with encryption (age, one recipient) ÷ backupctl without, minus 1 (0.05: encryption adds 5 %). */
  encryptionOverhead: number;
  encryptionTarget: string;
  /** backupctl (age), whose upload follows the dump (the default) ÷ backupctl (age, steps in turn): < 1 when following saves time. */
  overlapRatio?: number;
  /** The same on a 100 MB/s link (BENCH_LINK_ROWS, default on). */
  linkOverlapRatio?: number;
  /** restic's first backup beside ours (absent when restic is not installed): medians' time ratios, > 1: slower than restic. */
  /** level2Ratio: the encrypted run with zstd's level 2 (BENCH_LEVEL_ROWS), what the 0.5× target would take. */
  restic?: { version: string; ageRatio: number; plainRatio: number; level2Ratio?: number };
  /** borg's first `borg create` beside ours (absent when borg is not installed): the same ratios. */
  borg?: { version: string; ageRatio: number; plainRatio: number };
  /** Issue 19's target: the verified full backup (with encryption, as restic always encrypts) ≤ 0.5× restic's first backup. */
  resticTarget: { ratio: number; limit: number; met: boolean } | undefined;
  target: string;
  verified: { remoteSha256: string; resultSha256: string; size: number; remoteSize: number };
  temporalStartSeconds: number;
  workerCreateSeconds: number;
}

type HistoryEvent = {
  eventId?: unknown;
  eventTime?: { seconds?: unknown; nanos?: number | null } | null;
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null;
  activityTaskStartedEventAttributes?: { scheduledEventId?: unknown; attempt?: number | null } | null;
  activityTaskCompletedEventAttributes?: { scheduledEventId?: unknown } | null;
  workflowExecutionStartedEventAttributes?: unknown;
  workflowExecutionCompletedEventAttributes?: unknown;
};

const tsMs = (t: HistoryEvent['eventTime']): number => (t ? Number(String(t.seconds ?? 0)) * 1000 + (t.nanos ?? 0) / 1e6 : Number.NaN);

/** Activity timings from the run's history: where the workflow's time goes. */
export async function phasesFromHistory(handle: WorkflowHandle): Promise<PhaseTimes> {
  const history = await handle.fetchHistory();
  const events = (history.events ?? []) as HistoryEvent[];
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<string, { at: number; attempt: number }>();
  const byType = new Map<string, { queueS: number; runS: number; attempts: number }>();
  let wfStart = Number.NaN;
  let wfEnd = Number.NaN;
  // Activities may overlap (checksum runs beside verify): time in activities is the union of their intervals.
  const intervals: [number, number][] = [];
  for (const e of events) {
    const at = tsMs(e.eventTime);
    const id = String(e.eventId);
    if (e.workflowExecutionStartedEventAttributes) wfStart = at;
    if (e.workflowExecutionCompletedEventAttributes) wfEnd = at;
    if (e.activityTaskScheduledEventAttributes) scheduled.set(id, { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at });
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), { at, attempt: e.activityTaskStartedEventAttributes.attempt ?? 1 });
    if (e.activityTaskCompletedEventAttributes) {
      const sid = String(e.activityTaskCompletedEventAttributes.scheduledEventId);
      const s = scheduled.get(sid);
      const st = started.get(sid);
      if (!s || !st) continue;
      const t = byType.get(s.type) ?? { queueS: 0, runS: 0, attempts: 0 };
      t.queueS += (st.at - s.at) / 1000;
      t.runS += (at - st.at) / 1000;
      t.attempts += st.attempt;
      byType.set(s.type, t);
      intervals.push([st.at, at]);
    }
  }
  let inActivities = 0;
  let reach = -Infinity;
  for (const [a, b] of intervals.sort((x, y) => x[0] - y[0])) {
    if (b > reach) inActivities += (b - Math.max(a, reach)) / 1000;
    reach = Math.max(reach, b);
  }
  const workflowS = (wfEnd - wfStart) / 1000;
  return {
    activities: [...byType].map(([type, t]) => ({ type, ...t })),
    workflowS,
    outsideActivitiesS: workflowS - inActivities,
  };
}

/** Removes everything under `dir` but keeps `dir`. */
async function emptyDir(dir: string): Promise<void> {
  for (const entry of await readdir(dir)) await rm(path.join(dir, entry), { recursive: true, force: true });
}

function baselineScript(o: { sshd: SshdHandle; dataset: string; staging: string; remoteDir: string; batch: string }): string {
  const ssh = ['ssh', ...o.sshd.sshArgs, `${o.sshd.user}@${o.sshd.host}`].map(shellQuote).join(' ');
  const sftp = ['sftp', '-q', '-b', o.batch, ...sftpArgs(o.sshd), `${o.sshd.user}@${o.sshd.host}`].map(shellQuote).join(' ');
  const local = path.join(o.staging, 'a.tar.zst');
  const remote = path.join(o.remoteDir, 'a.tar.zst');
  // The notes' case "b": archive to staging, hash, upload to .tmp, re-hash remotely, rename. Phase marks go to stdout.
  return `set -euo pipefail
mark() { echo "MARK $1 $(date +%s.%N)"; }
mark start
tar -cf - -C ${shellQuote(path.dirname(o.dataset))} ${shellQuote(path.basename(o.dataset))} | zstd -T0 -3 -q -o ${shellQuote(local)}
mark archive
sum=$(sha256sum ${shellQuote(local)} | cut -d' ' -f1)
mark hash
${sftp}
mark upload
rsum=$(${ssh} sha256sum ${shellQuote(`${remote}.tmp`)} | cut -d' ' -f1)
[ "$sum" = "$rsum" ] || { echo "checksum mismatch: $sum != $rsum" >&2; exit 3; }
mark verify
${ssh} mv ${shellQuote(`${remote}.tmp`)} ${shellQuote(remote)}
mark rename
echo "SHA $sum"
`;
}

/**
 * The streaming shell pipeline: one stream from tar through zstd into ssh `cat > file.tmp`, the local SHA-256 taken
 * from the same stream (tee into a process substitution), the remote `sha256sum` of the stored file as soon as `cat`
 * ends (same connection), compared, then `ssh mv`. Nothing is staged locally.
 */
function streamScript(o: { sshd: SshdHandle; dataset: string; work: string; remoteDir: string }): string {
  const ssh = ['ssh', ...o.sshd.sshArgs, `${o.sshd.user}@${o.sshd.host}`].map(shellQuote).join(' ');
  const remote = path.join(o.remoteDir, 'a.tar.zst');
  const tmp = shellQuote(`${remote}.tmp`);
  const receive = shellQuote(`cat > ${tmp} && sha256sum ${tmp}`);
  const fifo = shellQuote(path.join(o.work, 'stream.fifo'));
  const sumFile = shellQuote(path.join(o.work, 'stream.sum'));
  const rsumFile = shellQuote(path.join(o.work, 'stream.rsum'));
  return `set -euo pipefail
mark() { echo "MARK $1 $(date +%s.%N)"; }
rm -f ${fifo} ${sumFile} ${rsumFile}
mkfifo ${fifo}
mark start
sha256sum < ${fifo} > ${sumFile} & hasher=$!
tar -cf - -C ${shellQuote(path.dirname(o.dataset))} ${shellQuote(path.basename(o.dataset))} | zstd -T0 -3 -q | tee ${fifo} | ${ssh} ${receive} > ${rsumFile}
wait $hasher
mark stream+verify
sum=$(cut -c1-64 ${sumFile}); rsum=$(cut -c1-64 ${rsumFile})
[ "\${#sum}" = 64 ] && [ "$sum" = "$rsum" ] || { echo "checksum mismatch: $sum != $rsum" >&2; exit 3; }
${ssh} mv ${tmp} ${shellQuote(remote)}
mark rename
echo "SHA $sum"
`;
}

function baselinePhases(stdout: string): Record<string, number> {
  const marks = [...stdout.matchAll(/^MARK (\S+) (\d+\.\d+)$/gm)].map((m) => ({ name: m[1]!, t: Number(m[2]) }));
  const out: Record<string, number> = {};
  for (let i = 1; i < marks.length; i++) out[marks[i]!.name] = marks[i]!.t - marks[i - 1]!.t;
  return out;
}

export async function runBackup(opts: {
  sshd: SshdHandle; tmp: string; dataset: DatasetInfo; reps: number; warmup: number; onCleanup: (fn: () => Promise<void>) => void;
}): Promise<BackupReport> {
  const { sshd, tmp, dataset } = opts;
  const du = await runCommand('du', ['-sb', dataset.dir]);
  const duBytes = Number(du.stdout.split('\t')[0]);
  const z = await runCommand('bash', ['-c', `zstd -T0 -3 -q -c ${shellQuote(path.join(dataset.dir, 'sql', 'dump.sql'))} | wc -c`], { timeoutMs: 5 * 60_000 });
  const sqlZstdRatio = dataset.sqlBytes / Number(z.stdout.trim());
  log(`backup: dataset ${dataset.files} files, ${(dataset.bytes / 1e6).toFixed(1)} MB (du -sb ${(duBytes / 1e6).toFixed(1)} MB), SQL zstd -3 ratio ${sqlZstdRatio.toFixed(2)}x`);

  // The same job encrypted with age to one recipient (a worker holds only the public key).
  const keygen = await runCommand('bash', ['-c', 'age-keygen 2>/dev/null | age-keygen -y']);
  const recipient = keygen.stdout.trim();
  if (keygen.code !== 0 || !recipient.startsWith('age1')) throw new Error(`age-keygen failed: ${keygen.stderr}`);
  // Temporal: dev server, runtime, connections, worker.
  const { server, client, workers: w, stateDir, taskQueue, configFile, temporalStartSeconds, workerCreateSeconds } = await startBenchTemporal(tmp, 'bench', sshd, {
    bench: { sources: [{ name: 'data', type: 'files', paths: [dataset.dir] }], destinations: ['nas'] },
    'bench-age': { sources: [{ name: 'data', type: 'files', paths: [dataset.dir] }], destinations: ['nas'], encryption: { recipients: [recipient] } },
  }, opts.onCleanup);
  log(`backup: Temporal dev server at ${server.address} (${temporalStartSeconds.toFixed(1)} s), worker created (${workerCreateSeconds.toFixed(1)} s, bundling included)`);

  const staging = path.join(tmp, 'baseline-staging');
  const remoteDir = path.join(sshd.root, 'baseline');
  const batch = path.join(tmp, 'baseline.batch');
  const script = path.join(tmp, 'baseline.sh');
  await mkdir(staging, { recursive: true });
  await writeFile(batch, `put ${path.join(staging, 'a.tar.zst')} ${path.join(remoteDir, 'a.tar.zst')}.tmp\n`);
  await writeFile(script, baselineScript({ sshd, dataset: dataset.dir, staging, remoteDir, batch }));
  const streamWork = path.join(tmp, 'stream-work');
  const streamFile = path.join(tmp, 'stream.sh');
  await mkdir(streamWork, { recursive: true });
  await writeFile(streamFile, streamScript({ sshd, dataset: dataset.dir, work: streamWork, remoteDir }));

  const mine: BackupContender = {
    name: 'backupctl', description: 'backupWorkflow via Temporal: preflight, dump (tar | zstd -T0 -3 into staging) with the upload following it (the default), archive, remote verify (component checksums beside it), finalize, cleanup',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const base: BackupContender = {
    name: 'script (b)', description: 'bash: tar | zstd -T0 -3 -o; sha256sum; sftp -b put .tmp (default cipher); ssh sha256sum; ssh mv',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const mineAge: BackupContender = {
    name: 'backupctl (age)', description: 'the same workflow with encryption: tar | zstd -T0 -3 | age -e -r (one X25519 recipient) into staging',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const linkRows = process.env.BENCH_LINK_ROWS !== '0';
  // What the 0.5× target would take (issue 19): the same encrypted run with zstd's level 2, whose output is larger than
  // that of restic's own compressor (its default, klauspost zstd SpeedDefault, compresses about as zstd -3 does).
  const levelRows = process.env.BENCH_LEVEL_ROWS !== '0';
  const mineAgeLevel2: BackupContender = {
    name: 'backupctl (age, zstd -2)', description: 'the encrypted workflow with settings.compressionLevel: 2 (default 3): lighter compression, a larger artifact',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const mineAgeInTurn: BackupContender = {
    name: 'backupctl (age, steps in turn)', description: 'the encrypted workflow with settings.uploadWhileDumping: false: the upload starts once archive sealed the artifact',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  // The same two on a link of 100 MB/s (the destination's bandwidthLimit), as to a NAS over 1 GbE: the upload is then
  // bound by the link, not by this machine's CPU, which the dump has to itself.
  const linkAge: BackupContender = {
    name: 'backupctl (age, 100 MB/s link, upload following the dump)', description: 'the encrypted workflow with the destination limited to 100 MB/s (bandwidthLimit), upload following the dump (uploadWhileDumping: true)',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const linkAgeInTurn: BackupContender = {
    name: 'backupctl (age, 100 MB/s link, steps in turn)', description: 'the same with the steps in turn (uploadWhileDumping: false)',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const typedAge: BackupContender = {
    name: 'backupctl run --wait (age, as typed)', description: '`bin/backupctl.js --config <cfg> run bench-age --slot <slot> --wait --json` in a process of its own (TEMPORAL_ADDRESS set); the running worker (the bench\'s) does the backup with encryption',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  const cliEnv: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default' };
  const stream: BackupContender = {
    name: 'streaming pipeline', description: 'bash: tar | zstd -T0 -3 | tee fifo (sha256sum) | ssh "cat > .tmp && sha256sum .tmp"; compare; ssh mv (one stream, nothing staged)',
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  // restic's first backup: a fresh repository per repetition (`restic init` untimed), `restic backup` timed.
  const resticRepo = path.join(sshd.root, 'restic-repo');
  const rt = await resticTool(sshd, resticRepo, path.join(tmp, 'restic-cache-backup'));
  const resticVersion = rt?.version;
  if (!rt) log('backup: restic is not installed (apt-get install -y restic): no restic row');
  const resticBackup = ['backup', '--quiet', dataset.dir];
  const restic: BackupContender = {
    name: 'restic 1st backup', description: `${resticVersion ?? 'restic'}: init (untimed) of a fresh sftp: repository on the same sshd, then a timed first backup of the dataset (encrypted, compressed as its repository version does); not in the warm-up: ${rt?.describe(resticBackup) ?? ''}`,
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  // borg's first backup: the same, a fresh repository per repetition (`borg init -e repokey` untimed).
  const borgRepo = path.join(sshd.root, 'borg-repo');
  const bt = await borgTool(sshd, borgRepo, path.join(tmp, 'borg-base-backup'));
  if (!bt) log('backup: borg is not installed (apt-get install -y borgbackup): no borg row');
  const borgCreate = ['create', '::first', dataset.dir];
  const borg: BackupContender = {
    name: 'borg create (1st)', description: `${bt?.version ?? 'borg'}: init --encryption repokey (untimed) of a fresh repository over ssh on the same sshd (borg serve remote), then a timed first create (default lz4 compression); not in the warm-up: ${bt?.describe(borgCreate) ?? ''}`,
    runs: [], warmup: [], summary: summarize([], 1), phaseMedians: {},
  };
  let verified: BackupReport['verified'] | undefined;

  // Untimed, before every contender: read the whole dataset, so that each starts from the page cache. Kernels with
  // DAMON's proactive reclaim (here: pages out what it saw untouched for 60 s, up to 128 MB/s, and reads through
  // read() do not count as touches) otherwise evict parts of it between contenders, and the one after the slowest
  // (borg) found its files on disk: backupctl's dump took 5.1 s instead of 2.8 s in the two repetitions that followed
  // borg's create.
  const warm = () => mustRun('bash', ['-c', 'cd "$1" && find . -type f -print0 | xargs -0 cat > /dev/null', 'bash', dataset.dir]);

  const runMine = async (rep: number, job = 'bench', contender = mine, idTag = job) => {
    await warm();
    const workflowId = `${idTag}-${rep <= 0 ? `warmup${-rep}` : rep}`;
    const slot = new Date(Date.UTC(2025, 0, 1, 0, rep + 10)).toISOString().replace('.000Z', 'Z');
    const m = await measure(async () => {
      const handle = await client.workflow.start('backupWorkflow', { taskQueue, workflowId, args: [{ job, slot }] });
      return { handle, result: (await handle.result()) as BackupResult };
    }, { servers: [sshd.pid, server.pid], sampleRss: true });
    const { handle, result } = m.value;
    if (!result.status.startsWith('succeeded') || result.locations.length !== 1) throw new Error(`backupctl run ${workflowId}: unexpected result ${JSON.stringify(result)}`);
    const remoteFile = path.join(sshd.root, result.locations[0]!.path);
    if (!verified && contender === mine) {
      const remoteSha256 = await sha256File(remoteFile);
      const remoteSize = (await stat(remoteFile)).size;
      verified = { remoteSha256, resultSha256: result.sha256, size: result.size, remoteSize };
      if (remoteSha256 !== result.sha256 || remoteSize !== result.size) throw new Error(`backupctl: remote file ${remoteFile} (${remoteSize} bytes, ${remoteSha256}) differs from the result (${result.size} bytes, ${result.sha256})`);
    }
    const ph = await phasesFromHistory(handle);
    const phases: Record<string, number> = { 'start→result (client)': m.seconds, workflow: ph.workflowS };
    for (const a of ph.activities) {
      phases[a.type] = a.runS;
      phases[`${a.type} (queue)`] = a.queueS;
      if (a.attempts > 1) log(`  warning: ${a.type} took ${a.attempts} attempts in ${workflowId}`);
    }
    phases['outside activities'] = ph.outsideActivitiesS;
    const rec = {
      ...runRecord(rep, m, dataset.bytes, 'self'),
      phases, outputBytes: result.size, extra: { workflowId, status: result.status, durationMs: result.durationMs, warnings: result.warnings },
    };
    (rep <= 0 ? contender.warmup : contender.runs).push(rec);
    const phaseText = ph.activities.map((a) => `${a.type} ${a.runS.toFixed(2)}`).join(', ');
    log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} ${contender.name}: ${m.seconds.toFixed(2)} s (${phaseText}; outside activities ${ph.outsideActivitiesS.toFixed(2)}), busy cores ${m.busyCores.toFixed(2)}, foreign load ${m.foreignCores.toFixed(2)} cores, node peak RSS ${m.nodePeakRssMiB?.toFixed(0) ?? '?'} MiB (with its commands, sampled: ${m.rss?.selfAndChildrenMiB.toFixed(0) ?? '?'} MiB); CPU s: ${cpuText(m.rss?.cpuByCommand)}`);
    // Untimed: remove the backup and the last-backup record (preflight then estimates from du each time), drop the
    // cached SSH connection (a scheduled run would find none), flush.
    await emptyDir(sshd.root);
    await rm(path.join(stateDir, 'last', `${job}.json`), { force: true });
    await closeDestinations();
    await sync();
  };

  /** Runs `fn` with the config file changed by `edit`, then puts the file back (preflight reads it at every run). */
  const withConfig = async <T>(edit: (c: { settings?: Record<string, unknown>; destinations: Record<string, Record<string, unknown>> }) => void, fn: () => Promise<T>): Promise<T> => {
    const original = await readFile(configFile, 'utf8');
    const cfg = parse(original) as Parameters<typeof edit>[0];
    edit(cfg);
    await writeFile(configFile, stringify(cfg));
    try {
      return await fn();
    } finally {
      await writeFile(configFile, original);
    }
  };

  // backupctl as a user types it, served by the running worker: start, wait, result, as the CLI does them.
  const runTyped = async (rep: number) => {
    const slot = new Date(Date.UTC(2025, 0, 2, 0, rep + 10)).toISOString();
    await warm();
    const m = await measure(() => runCli(['--config', configFile, 'run', 'bench-age', '--slot', slot, '--wait', '--json'], cliEnv, opts.onCleanup, 15 * 60_000), { servers: [sshd.pid, server.pid], sampleRss: true });
    const out = JSON.parse(m.value.stdout.trim().split('\n').pop() || '{}') as { status?: string; size?: number };
    if (m.value.code !== 0 || !out.status?.startsWith('succeeded')) throw new Error(`backupctl run --wait failed (exit ${m.value.code ?? m.value.signal}): ${m.value.stdout.slice(-1000)}\n${m.value.stderr.slice(-3000)}`);
    const rec = { ...runRecord(rep, m, dataset.bytes, 'self'), outputBytes: out.size };
    (rep <= 0 ? typedAge.warmup : typedAge.runs).push(rec);
    log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} ${typedAge.name}: ${m.seconds.toFixed(2)} s, busy cores ${m.busyCores.toFixed(2)}, foreign load ${m.foreignCores.toFixed(2)} cores, peak RSS (bench worker and CLI, sampled) ${rec.clientPeakRssMiB?.toFixed(0) ?? '?'} MiB; CPU s: ${cpuText(m.rss?.cpuByCommand)}`);
    await emptyDir(sshd.root);
    await rm(path.join(stateDir, 'last', 'bench-age.json'), { force: true });
    await closeDestinations();
    await sync();
  };

  const runBase = async (rep: number, c = base, file = script) => {
    await mkdir(remoteDir, { recursive: true });
    await rm(path.join(staging, 'a.tar.zst'), { force: true });
    await sync();
    await warm();
    const m = await measure(() => runCommand('bash', [file], { timeoutMs: 15 * 60_000 }), { servers: [sshd.pid, server.pid], sampleRss: true });
    if (m.value.code !== 0) throw new Error(`${c.name} failed (exit ${m.value.code}):\n${m.value.stderr}${m.value.stdout}`);
    const phases = baselinePhases(m.value.stdout);
    const remoteFile = path.join(remoteDir, 'a.tar.zst');
    const outputBytes = (await stat(remoteFile)).size;
    if (c === stream && rep === 1) {
      const sum = /^SHA ([0-9a-f]{64})$/m.exec(m.value.stdout)?.[1];
      if (sum !== await sha256File(remoteFile)) throw new Error(`${c.name}: the stored file's SHA-256 differs from the script's (${sum ?? 'none printed'})`);
    }
    const rec = { ...runRecord(rep, m, dataset.bytes, 'children'), phases, outputBytes };
    (rep <= 0 ? c.warmup : c.runs).push(rec);
    log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}`} ${c.name}: ${m.seconds.toFixed(2)} s (${Object.entries(phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}), busy cores ${m.busyCores.toFixed(2)}, foreign load ${m.foreignCores.toFixed(2)} cores, peak RSS ${rec.clientPeakRssMiB?.toFixed(0) ?? '?'} MiB; CPU s: ${cpuText(m.rss?.cpuByCommand)}`);
    await emptyDir(sshd.root);
    await rm(path.join(staging, 'a.tar.zst'), { force: true });
    await sync();
  };

  // A first backup by restic or borg: fresh repository and local cache, init untimed, the backup command timed.
  const runAnchor = async (rep: number, c: BackupContender, tool: NonNullable<typeof rt>, repo: string, args: string[]) => {
    await emptyDir(sshd.root);
    await tool.remove();
    await tool.init();
    await sync();
    await warm();
    const m = await measure(() => tool.run(args), { servers: [sshd.pid, server.pid], sampleRss: true });
    const du = await runCommand('du', ['-sb', repo]);
    const rec = { ...runRecord(rep, m, dataset.bytes, 'children'), outputBytes: Number(du.stdout.split('\t')[0]) };
    c.runs.push(rec);
    log(`  rep ${rep} ${c.name}: ${m.seconds.toFixed(2)} s, repository ${(rec.outputBytes / 1e6).toFixed(1)} MB, client CPU ${(m.nodeCpuS + m.childCpuS).toFixed(2)} s, peak RSS ${rec.clientPeakRssMiB?.toFixed(0) ?? '?'} MiB (server sessions ${rec.sessionsPeakRssMiB?.toFixed(0) ?? '?'}), busy cores ${m.busyCores.toFixed(2)}, foreign load ${m.foreignCores.toFixed(2)} cores; CPU s: ${cpuText(m.rss?.cpuByCommand)}`);
    await emptyDir(sshd.root);
    await tool.remove();
    await sync();
  };

  await w.workers[0]!.runUntil(async () => {
    for (let rep = 1 - opts.warmup; rep <= opts.reps; rep++) {
      await runMine(rep);
      await runBase(rep);
      await runMine(rep, 'bench-age', mineAge);
      // The same with the steps in turn (preflight reads the config file at every run).
      await withConfig((c) => { c.settings = { ...c.settings, uploadWhileDumping: false }; }, () => runMine(rep, 'bench-age', mineAgeInTurn, 'bench-age-in-turn'));
      if (levelRows) await withConfig((c) => { c.settings = { ...c.settings, compressionLevel: 2 }; }, () => runMine(rep, 'bench-age', mineAgeLevel2, 'bench-age-level2'));
      if (linkRows) {
        await withConfig((c) => { c.destinations.nas!.bandwidthLimit = '100MB'; c.settings = { ...c.settings, uploadWhileDumping: true }; }, () => runMine(rep, 'bench-age', linkAge, 'bench-age-link'));
        await withConfig((c) => { c.destinations.nas!.bandwidthLimit = '100MB'; c.settings = { ...c.settings, uploadWhileDumping: false }; }, () => runMine(rep, 'bench-age', linkAgeInTurn, 'bench-age-link-in-turn'));
      }
      await runTyped(rep);
      await runBase(rep, stream, streamFile);
      // No warm-up for restic and borg: the dataset is in the page cache already, and a first backup takes as long as ours.
      if (rt && rep > 0) await runAnchor(rep, restic, rt, resticRepo, resticBackup);
      if (bt && rep > 0) await runAnchor(rep, borg, bt, borgRepo, borgCreate);
    }
  });

  const all = [mine, base, mineAge, mineAgeInTurn, ...(levelRows ? [mineAgeLevel2] : []), ...(linkRows ? [linkAge, linkAgeInTurn] : []), typedAge, stream, ...(rt ? [restic] : []), ...(bt ? [borg] : [])];
  for (const c of all) summarizeContender(c, dataset.bytes);
  return {
    dataset: { ...dataset, sqlZstdRatio, duBytes },
    reps: opts.reps,
    contenders: all,
    speedup: base.summary.median / mine.summary.median,
    encryptionOverhead: mineAge.summary.median / mine.summary.median - 1,
    encryptionTarget: 'encryption (age) adds at most 10 % to the verified full backup: overhead ≤ 0.10',
    overlapRatio: mineAge.summary.median / mineAgeInTurn.summary.median,
    ...(linkRows ? { linkOverlapRatio: linkAge.summary.median / linkAgeInTurn.summary.median } : {}),
    ...(resticVersion ? { restic: { version: resticVersion, ageRatio: mineAge.summary.median / restic.summary.median, plainRatio: mine.summary.median / restic.summary.median, ...(levelRows ? { level2Ratio: mineAgeLevel2.summary.median / restic.summary.median } : {}) } } : {}),
    ...(bt ? { borg: { version: bt.version, ageRatio: mineAge.summary.median / borg.summary.median, plainRatio: mine.summary.median / borg.summary.median } } : {}),
    resticTarget: rt ? { ratio: mineAge.summary.median / restic.summary.median, limit: 0.5, met: mineAge.summary.median / restic.summary.median <= 0.5 } : undefined,
    target: 'backupctl faster than the shell script (b): speed-up > 1',
    verified: verified!,
    temporalStartSeconds,
    workerCreateSeconds,
  };
}
