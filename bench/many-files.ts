/**
 * BENCH_ONLY=manyfiles (not part of the default run): a tree of many small files (BENCH_FILES, default 1,000,000:
 * 1,000 folders of 1,000 files of 16–80 bytes) backed up through the real path, a separate `backupctl worker`
 * process and `backupctl run --wait --json` against the loopback sshd, beside restic's first backup of the same tree
 * into an sftp: repository on the same sshd (when restic is installed), in one run.
 *
 * Measured: wall time and files per second of each, the worker's peak RSS (VmHWM, target < 300 MB), the peak RSS of
 * its process tree (tar, zstd), and the file count the manifest records (must be the tree's).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from '../src/contracts/index.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { startTemporalDevServer } from '../test/helpers/temporal-server.js';
import { runCommand, sleep } from '../test/helpers/util.js';
import { writeSftpJobConfig } from './config.js';
import { procMem, runCli, sampleTreeRss, startWorker } from './postgres.js';
import { log, measure, sync } from './sys.js';

const JOB = 'manyfiles';
const PER_DIR = 1000;

export interface ManyFilesReport {
  files: number;
  treeBytes: number;
  generateSeconds: number;
  backupctl: { seconds: number; filesPerSecond: number; workerPeakRssMiB?: number; treePeakRssMiB: number; manifestFiles: number | string; artifactBytes: number; status: string };
  restic?: { version: string; seconds: number; filesPerSecond: number; peakRssMiB: number };
  /** backupctl's files per second ÷ restic's (≥ 1: no worse than restic). */
  rateRatio?: number;
  rssTargetMiB: number;
}

/** Writes `files` small files (16–80 bytes, deterministic) in folders of PER_DIR; returns their total size. */
function generateTree(dir: string, files: number): number {
  let bytes = 0;
  for (let d = 0; d * PER_DIR < files; d++) {
    const sub = path.join(dir, `d${String(d).padStart(4, '0')}`);
    mkdirSync(sub, { recursive: true });
    for (let i = 0; i < PER_DIR && d * PER_DIR + i < files; i++) {
      const n = d * PER_DIR + i;
      const body = `file ${n} ${'x'.repeat(8 + (n * 7919) % 64)}\n`;
      writeFileSync(path.join(sub, `f${i}.txt`), body);
      bytes += Buffer.byteLength(body);
    }
  }
  return bytes;
}

export async function runManyFiles(opts: { sshd: SshdHandle; tmp: string; files: number; onCleanup: (fn: () => Promise<void>) => void }): Promise<ManyFilesReport> {
  const { sshd, tmp, files } = opts;
  const tree = path.join(tmp, 'many-files');
  let t = Date.now();
  const treeBytes = generateTree(tree, files);
  const generateSeconds = (Date.now() - t) / 1000;
  log(`manyfiles: ${files.toLocaleString('en')} files, ${treeBytes.toLocaleString('en')} bytes, generated in ${generateSeconds.toFixed(1)} s`);
  await sync();

  const server = await startTemporalDevServer();
  opts.onCleanup(() => server.stop());
  const { configFile } = await writeSftpJobConfig(tmp, 'bench-many', sshd, { [JOB]: { sources: [{ name: 'tree', type: 'files', paths: [tree] }], destinations: ['nas'] } });
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default' };
  const worker = startWorker(configFile, env);
  opts.onCleanup(async () => { await worker.stop(10_000); });
  t = Date.now();
  while (!worker.log.toString().includes('worker polling task queue(s)')) {
    if (worker.isExited()) throw new Error(`the worker exited before polling:\n${worker.log.toString().slice(-4000)}`);
    if (Date.now() - t > 180_000) throw new Error('the worker did not report polling within 180 s');
    await sleep(100);
  }

  // backupctl, as a user runs it.
  const sampler = sampleTreeRss(worker.pid);
  let treePeak: { peakMiB: number };
  let m;
  try {
    m = await measure(() => runCli(['--config', configFile, 'run', JOB, '--wait', '--json'], env, opts.onCleanup, 3 * 3_600_000), { servers: [sshd.pid, server.pid, worker.pid] });
  } finally {
    treePeak = sampler.stop();
  }
  const workerMem = procMem(worker.pid);
  const line = m.value.stdout.trim().split('\n').pop() ?? '';
  const out = JSON.parse(line || '{}') as { status?: string; remotePath?: string; size?: number };
  if (!out.status?.startsWith('succeeded') || !out.remotePath) throw new Error(`backupctl run failed (exit ${m.value.code}): ${line}\n${m.value.stderr}\nworker:\n${worker.log.toString().slice(-4000)}`);
  const manifest = JSON.parse(await readFile(path.join(sshd.root, `${out.remotePath}.manifest.json`), 'utf8')) as Manifest;
  const manifestFiles = manifest.components[0]?.stats.files ?? '?';
  log(`manyfiles: backupctl ${m.seconds.toFixed(1)} s (${(files / m.seconds).toFixed(0)} files/s), worker VmHWM ${workerMem.hwmMiB?.toFixed(0) ?? '?'} MiB, tree peak ${treePeak.peakMiB.toFixed(0)} MiB, manifest files ${manifestFiles}`);
  await worker.stop();
  await rm(path.join(sshd.root, out.remotePath.split('/')[0]!), { recursive: true, force: true });
  const report: ManyFilesReport = {
    files, treeBytes, generateSeconds, rssTargetMiB: 300,
    backupctl: { seconds: m.seconds, filesPerSecond: files / m.seconds, workerPeakRssMiB: workerMem.hwmMiB, treePeakRssMiB: treePeak.peakMiB, manifestFiles, artifactBytes: out.size ?? 0, status: out.status },
  };

  // restic's first backup of the same tree, into an sftp: repository on the same sshd.
  const version = await runCommand('restic', ['version']).catch(() => undefined);
  if (!version || version.code !== 0) {
    log('manyfiles: restic is not installed (apt-get install -y restic): no restic row');
    return report;
  }
  const repo = path.join(sshd.root, 'restic-many');
  const sftpCommand = ['ssh', ...sshd.sshArgs, `${sshd.user}@${sshd.host}`, '-s', 'sftp'].join(' ');
  const args = ['-r', `sftp:${sshd.user}@${sshd.host}:${repo}`, '-o', `sftp.command=${sftpCommand}`, '--cache-dir', path.join(tmp, 'restic-cache-many')];
  const resticEnv = { ...process.env, RESTIC_PASSWORD: 'bench-only-password' };
  const init = await runCommand('restic', [...args, 'init'], { env: resticEnv, timeoutMs: 10 * 60_000 });
  if (init.code !== 0) throw new Error(`restic init failed: ${init.stderr}`);
  await sync();
  const r = await measure(async () => {
    const res = await runCommand('/usr/bin/time', ['-f', 'PEAKRSS %M', 'restic', ...args, 'backup', '--quiet', tree], { env: resticEnv, timeoutMs: 3 * 3_600_000 });
    if (res.code !== 0) throw new Error(`restic backup failed (exit ${res.code}): ${res.stderr.slice(-2000)}`);
    return res;
  }, { servers: [sshd.pid] });
  const peakKiB = Number(/PEAKRSS (\d+)/.exec(r.value.stderr)?.[1] ?? 0);
  report.restic = { version: version.stdout.trim(), seconds: r.seconds, filesPerSecond: files / r.seconds, peakRssMiB: peakKiB / 1024 };
  report.rateRatio = report.backupctl.filesPerSecond / report.restic.filesPerSecond;
  log(`manyfiles: restic ${r.seconds.toFixed(1)} s (${(files / r.seconds).toFixed(0)} files/s, peak RSS ${(peakKiB / 1024).toFixed(0)} MiB); backupctl's rate ÷ restic's ${report.rateRatio.toFixed(2)}`);
  await rm(repo, { recursive: true, force: true });
  await rm(tree, { recursive: true, force: true });
  return report;
}
