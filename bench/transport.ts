/**
 * Comparison 1: SFTP upload of one random file to a loopback sshd.
 * backupctl's SftpSession (connect + upload with SHA-256 on a worker thread + fsync + close) against OpenSSH `sftp`
 * with the same cipher (aes128-gcm), with and without a separate `openssl dgst -sha256` of the file.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'ssh2';
import { sftpDestinationSchema, type SftpDestinationConfig } from '../src/destinations/sftp/schema.js';
import { SftpSession } from '../src/destinations/sftp/index.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { runCommand } from '../test/helpers/util.js';
import { summarize, type Summary } from './stats.js';
import { log, measure, mustRun, sha256File, shellQuote, sync, type Measured } from './sys.js';

export interface RunRecord {
  rep: number;
  seconds: number;
  mbps: number;
  busyCores: number;
  nodeCpuS: number;
  childCpuS: number;
  nodePeakRssMiB?: number;
  maxRssBeforeMiB?: number;
  maxRssAfterMiB?: number;
  nodeRssBeforeMiB?: number;
  serverCpuS?: number;
  foreignCores?: number;
  /** GNU time %M of the client command (OpenSSH contenders), MiB. */
  clientMaxRssMiB?: number;
  /** Machine-wide steal during the run, CPU seconds. */
  stealS?: number;
  /**
   * Sampled (every 200 ms) peak RSS of the contender's own processes, MiB: for backupctl in the bench process, that
   * process and the commands it starts; for a command (restic, borg, a script, the `backupctl` CLI), its process tree.
   */
  clientPeakRssMiB?: number;
  /** Sampled peak RSS of the sshd session processes (internal-sftp, `borg serve`, remote sha256sum), MiB. */
  sessionsPeakRssMiB?: number;
  rssSamples?: number;
  /** CPU seconds by command during the run, from the 200 ms samples (see `SampledRss.cpuByCommand`). */
  cpuByCommand?: Record<string, number>;
  extra?: Record<string, unknown>;
}

export interface ContenderResult {
  name: string;
  description: string;
  runs: RunRecord[];
  warmup: RunRecord[];
  summary: Summary;
}

export interface TransportReport {
  fileBytes: number;
  fileSha256: string;
  generateSeconds: number;
  ssh2Cipher: string | undefined;
  reps: number;
  contenders: ContenderResult[];
  /** Ratios of median throughput: backupctl ÷ each OpenSSH contender. */
  ratios: Record<string, number>;
  target: string;
  profile?: { reps: number; contenders: ContenderResult[] };
}

/** The helper's OpenSSH options with `-p` replaced by `-P` (sftp's port flag). */
export function sftpArgs(sshd: SshdHandle): string[] {
  const args = [...sshd.sshArgs];
  const i = args.indexOf('-p');
  if (i >= 0) args[i] = '-P';
  return args;
}

export function sftpConfig(sshd: SshdHandle, parallelWrites = 32): SftpDestinationConfig {
  return sftpDestinationSchema.parse({
    type: 'sftp', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyPath,
    hostKey: sshd.hostKeyFingerprint, path: sshd.root, parallelWrites,
  });
}

/** The cipher ssh2 negotiates with this server by default (read from ssh2's handshake debug output). */
async function ssh2Cipher(sshd: SshdHandle): Promise<string | undefined> {
  const privateKey = await readFile(sshd.clientKeyPath);
  return new Promise((resolve) => {
    const c = new Client();
    let cipher: string | undefined;
    const done = () => { c.end(); resolve(cipher); };
    c.on('ready', done);
    c.on('error', done);
    c.connect({
      host: sshd.host, port: sshd.port, username: sshd.user, privateKey, hostVerifier: () => true,
      debug: (line: string) => {
        const m = /Handshake: C->S Cipher: (\S+)/.exec(line);
        if (m) cipher = m[1];
      },
    });
  });
}

interface Contender {
  name: string;
  description: string;
  remote: string;
  run(): Promise<Measured<{ clientMaxRssMiB?: number; extra?: Record<string, unknown> }>>;
}

function record(rep: number, m: Measured<{ clientMaxRssMiB?: number; extra?: Record<string, unknown> }>, bytes: number): RunRecord {
  return {
    rep, seconds: m.seconds, mbps: bytes / 1e6 / m.seconds, busyCores: m.busyCores, nodeCpuS: m.nodeCpuS, childCpuS: m.childCpuS,
    nodePeakRssMiB: m.nodePeakRssMiB, maxRssBeforeMiB: m.maxRssBeforeMiB, maxRssAfterMiB: m.maxRssAfterMiB, nodeRssBeforeMiB: m.nodeRssBeforeMiB,
    serverCpuS: m.serverCpuS, foreignCores: m.foreignCores,
    clientMaxRssMiB: m.value.clientMaxRssMiB, extra: m.value.extra,
  };
}

/** Runs contenders interleaved (A B C A B C …), removing the uploaded file and syncing between runs (untimed). */
async function interleave(contenders: Contender[], reps: number, warmup: number, bytes: number, verifyHash: string, checkFirst: boolean): Promise<ContenderResult[]> {
  const results = contenders.map((c) => ({ name: c.name, description: c.description, runs: [] as RunRecord[], warmup: [] as RunRecord[] }));
  const checked = new Set<string>();
  for (let rep = 1 - warmup; rep <= reps; rep++) {
    for (const [i, c] of contenders.entries()) {
      await rm(c.remote, { force: true });
      await sync();
      const m = await c.run();
      const st = await stat(c.remote).catch(() => undefined);
      if (st?.size !== bytes) throw new Error(`${c.name}: remote file ${c.remote} has ${st?.size ?? 'no'} bytes, expected ${bytes}`);
      if (checkFirst && !checked.has(c.name)) {
        const h = await sha256File(c.remote);
        if (h !== verifyHash) throw new Error(`${c.name}: remote file's SHA-256 ${h} differs from the source's ${verifyHash}`);
        checked.add(c.name);
      }
      const r = record(rep, m, bytes);
      (rep <= 0 ? results[i]!.warmup : results[i]!.runs).push(r);
      log(`  ${rep <= 0 ? 'warm-up' : `rep ${rep}/${reps}`} ${c.name}: ${r.seconds.toFixed(2)} s, ${r.mbps.toFixed(0)} MB/s, busy cores ${r.busyCores.toFixed(2)}, node CPU ${r.nodeCpuS.toFixed(2)} s, child CPU ${r.childCpuS.toFixed(2)} s, sshd CPU ${r.serverCpuS?.toFixed(2)} s, foreign load ${r.foreignCores?.toFixed(2)} cores`);
      await rm(c.remote, { force: true });
    }
  }
  await sync();
  return results.map((r) => ({ ...r, summary: summarize(r.runs.map((x) => x.seconds), bytes) }));
}

function backupctlContender(name: string, sshd: SshdHandle, file: string, remoteRel: string, parallelWrites: number, fileSha256: string, bytes: number): Contender {
  const cfg = sftpConfig(sshd, parallelWrites);
  return {
    name,
    description: `SftpSession.connect() + upload() (SHA-256 on a worker thread, ${parallelWrites} WRITEs in flight, fsync) + close()`,
    remote: path.join(sshd.root, remoteRel),
    run: async () => {
      const m = await measure(async () => {
        const session = await new SftpSession('bench', cfg).connect();
        try {
          return await session.upload(file, remoteRel);
        } finally {
          session.close();
        }
      }, { servers: [sshd.pid] });
      if (m.value.sha256 !== fileSha256 || m.value.bytes !== bytes) {
        throw new Error(`${name}: upload returned ${m.value.bytes} bytes / ${m.value.sha256}, expected ${bytes} / ${fileSha256}`);
      }
      return { ...m, value: { extra: { sha256Ok: true } } };
    },
  };
}

async function gnuTimeRss(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const kib = Number(text.trim().split('\n').pop());
  return Number.isFinite(kib) && kib > 0 ? kib / 1024 : undefined;
}

function opensshContender(name: string, description: string, sshd: SshdHandle, tmp: string, file: string, remote: string, withHash: string | undefined): Contender {
  const batch = path.join(tmp, `${name}.batch`);
  const script = path.join(tmp, `${name}.sh`);
  const timeFile = path.join(tmp, `${name}.time`);
  const sftp = ['sftp', '-q', '-c', 'aes128-gcm@openssh.com', '-b', batch, ...sftpArgs(sshd), `${sshd.user}@${sshd.host}`].map(shellQuote).join(' ');
  const body = withHash ? `${sftp} && openssl dgst -sha256 -r ${shellQuote(file)}` : sftp;
  return {
    name, description, remote,
    run: async () => {
      await writeFile(batch, `put ${file} ${remote}\n`);
      await writeFile(script, `set -euo pipefail\n${body}\n`);
      const m = await measure(() => runCommand('/usr/bin/time', ['-o', timeFile, '-f', '%M', 'bash', script], { timeoutMs: 10 * 60_000 }), { servers: [sshd.pid] });
      if (m.value.code !== 0) throw new Error(`${name} failed (exit ${m.value.code}):\n${m.value.stderr}${m.value.stdout}`);
      if (withHash && !m.value.stdout.trim().split('\n').pop()?.startsWith(withHash)) throw new Error(`${name}: openssl printed ${m.value.stdout.trim()}, expected ${withHash}`);
      return { ...m, value: { clientMaxRssMiB: await gnuTimeRss(timeFile) } };
    },
  };
}

export async function runTransport(opts: { sshd: SshdHandle; tmp: string; reps: number; warmup: number; sizeMiB: number; profile: 'auto' | 'on' | 'off'; profileReps: number }): Promise<TransportReport> {
  const { sshd, tmp } = opts;
  const file = path.join(tmp, 'transport.bin');
  const t0 = Date.now();
  log(`transport: writing ${opts.sizeMiB} MiB from /dev/urandom to ${file}`);
  await mustRun('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${opts.sizeMiB}`, 'iflag=fullblock', 'status=none']);
  const generateSeconds = (Date.now() - t0) / 1000;
  const bytes = (await stat(file)).size;
  const fileSha256 = await sha256File(file);
  const cipher = await ssh2Cipher(sshd);
  log(`transport: ${bytes} bytes, sha256 ${fileSha256}, ssh2 negotiates ${cipher ?? 'an unknown cipher'}`);
  await mkdir(path.join(sshd.root, 'transport'), { recursive: true });

  const contenders: Contender[] = [
    backupctlContender('backupctl', sshd, file, 'transport/backupctl.bin', 32, fileSha256, bytes),
    opensshContender('sftp-gcm', 'OpenSSH sftp -c aes128-gcm@openssh.com -b (put)', sshd, tmp, file, path.join(sshd.root, 'transport', 'sftp-gcm.bin'), undefined),
    opensshContender('sftp-gcm+sha256', 'OpenSSH sftp -c aes128-gcm@openssh.com put, then openssl dgst -sha256 of the local file', sshd, tmp, file, path.join(sshd.root, 'transport', 'sftp-gcm-sha.bin'), fileSha256),
  ];
  const results = await interleave(contenders, opts.reps, opts.warmup, bytes, fileSha256, true);
  const mine = results[0]!.summary;
  const ratios: Record<string, number> = {};
  for (const r of results.slice(1)) ratios[`backupctl / ${r.name}`] = mine.mbps.median / r.summary.mbps.median;

  const report: TransportReport = {
    fileBytes: bytes, fileSha256, generateSeconds, ssh2Cipher: cipher, reps: opts.reps, contenders: results, ratios,
    target: 'backupctl >= 0.9 x OpenSSH sftp throughput with the same cipher (aes128-gcm)',
  };

  const below = (ratios['backupctl / sftp-gcm'] ?? 0) < 0.9;
  if (opts.profile === 'on' || (opts.profile === 'auto' && below)) {
    log(`transport: profiling backupctl's parallelWrites (${opts.profileReps} interleaved reps each)`);
    const variants = [32, 64, 128].map((pw) => backupctlContender(`backupctl pw=${pw}`, sshd, file, `transport/pw${pw}.bin`, pw, fileSha256, bytes));
    report.profile = { reps: opts.profileReps, contenders: await interleave(variants, opts.profileReps, 0, bytes, fileSha256, false) };
  }
  await rm(file, { force: true });
  await rm(path.join(sshd.root, 'transport'), { recursive: true, force: true });
  return report;
}
