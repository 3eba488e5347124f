/** Process and machine measurements read from /proc (Linux), plus small shell helpers. */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { listDescendants, runCommand, sleep, type RunResult } from '../test/helpers/util.js';

const CLK_TCK = 100; // USER_HZ on Linux

/** Machine-wide CPU jiffies: busy, total (all cores) and steal (time the hypervisor gave to other guests). */
function machineCpu(): { busy: number; total: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busy: total - idle, total, steal: v[7] ?? 0 };
}

/** Machine-wide steal since boot, CPU seconds (the 8th value of /proc/stat's "cpu" line). */
export function stealSeconds(): number {
  return machineCpu().steal / CLK_TCK;
}

/** Whether the CPU has the SHA extensions (SHA-NI: the `sha_ni` flag in /proc/cpuinfo), and the crypto flags beside it. */
export function cpuFlags(): { shaNi: boolean; flags: string[] } {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return { shaNi: false, flags: [] };
  }
  const all = new Set((/^flags\s*:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/));
  return { shaNi: all.has('sha_ni'), flags: ['sha_ni', 'aes', 'pclmulqdq', 'avx2', 'avx512f', 'vaes'].filter((f) => all.has(f)) };
}

/** Direct children of a process, from /proc/<pid>/task/<tid>/children (every thread's). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Descendants of `pid`, not entering the subtrees of the `skip` processes (nor listing them). */
function descendantsExcept(pid: number, skip: ReadonlySet<number>): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of childrenOf(queue.shift()!)) {
      if (skip.has(c)) continue;
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

const PAGE_KIB = 4; // x86-64 / arm64 Linux default page size

/** Resident set of a process in KiB (/proc/<pid>/statm), 0 when it is gone. */
function rssKiB(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE_KIB;
  } catch {
    return 0;
  }
}

export interface SampledRss {
  /** Largest sum over a sample of: this process and its descendants outside the servers' trees (MiB). */
  selfAndChildrenMiB: number;
  /** The same without this process: the commands it started (tar, zstd, ssh, restic, borg, a `backupctl` CLI …). */
  childrenMiB: number;
  /** The session processes of the first server (sshd's children and theirs: internal-sftp, `borg serve`, sha256sum …). */
  sessionsMiB: number;
  samples: number;
  /**
   * CPU seconds during the run by command name, from the same samples: this process's threads (`node/<thread name>`),
   * the commands it started (tar, zstd, age, restic …) and the servers' processes (`server/<command>`: sshd and its
   * sessions, commands run by them, the Temporal dev server). A process that ends between two samples is missed for
   * its last tick or all of it: what the samples do not explain is under `(unsampled)` keys (see `measure`).
   */
  cpuByCommand: Record<string, number>;
}

/**
 * A /proc stat file: the command name and its CPU ticks, own (utime + stime, fields 14–15) and reaped children's
 * (cutime + cstime, 16–17); throws when the process is gone.
 */
function procStat(file: string): { comm: string; own: number; reaped: number } {
  const stat = readFileSync(file, 'utf8');
  const close = stat.lastIndexOf(')');
  // Field 14 (utime) is at index 11 after "pid (comm) ".
  const f = stat.slice(close + 2).split(' ').map(Number);
  return { comm: stat.slice(stat.indexOf('(') + 1, close), own: f[11]! + f[12]!, reaped: f[13]! + f[14]! };
}

/** `comm` and own CPU ticks of a /proc stat file, undefined when the process is gone. */
function procTicks(file: string): { comm: string; ticks: number } | undefined {
  try {
    const s = procStat(file);
    return { comm: s.comm, ticks: s.own };
  } catch {
    return undefined;
  }
}

const RSS_SAMPLE_MS = 200;

/** Samples resident memory every RSS_SAMPLE_MS until stopped (peaks of sums; processes shorter than a tick may be missed). */
function sampleRss(servers: readonly number[]): { stop(): SampledRss } {
  const skip = new Set(servers);
  const r: SampledRss = { selfAndChildrenMiB: 0, childrenMiB: 0, sessionsMiB: 0, samples: 0, cpuByCommand: {} };
  // Per thread or process: its label, its ticks when first seen (0 if it started after the first sample), and lately.
  const seen = new Map<string, { label: string; first: number; last: number }>();
  const note = (key: string, file: string, label: (comm: string) => string) => {
    const t = procTicks(file);
    if (!t) return;
    const e = seen.get(key);
    // The last name counts: a shell that execs its command (`ssh host cmd`: bash -c, then cmd) takes the command's.
    if (e) Object.assign(e, { label: label(t.comm), last: t.ticks });
    else seen.set(key, { label: label(t.comm), first: r.samples === 0 ? t.ticks : 0, last: t.ticks });
  };
  const tick = () => {
    const childPids = descendantsExcept(process.pid, skip);
    const children = childPids.reduce((s, p) => s + rssKiB(p), 0) / 1024;
    const self = rssKiB(process.pid) / 1024;
    // Each server's descendants (the first server's are its sessions, whose memory is summed).
    const serverDescendants = servers.map((s) => descendantsExcept(s, new Set()));
    const sessions = (serverDescendants[0] ?? []).reduce((s, p) => s + rssKiB(p), 0) / 1024;
    let tids: string[] = [];
    try {
      tids = readdirSync('/proc/self/task');
    } catch {
      // no /proc
    }
    for (const tid of tids) note(`t${tid}`, `/proc/self/task/${tid}/stat`, (c) => `node/${c}`);
    for (const p of childPids) note(`c${p}`, `/proc/${p}/stat`, (c) => c);
    for (const p of [...servers, ...serverDescendants.flat()]) note(`s${p}`, `/proc/${p}/stat`, (c) => `server/${c}`);
    r.childrenMiB = Math.max(r.childrenMiB, children);
    r.selfAndChildrenMiB = Math.max(r.selfAndChildrenMiB, self + children);
    r.sessionsMiB = Math.max(r.sessionsMiB, sessions);
    r.samples++;
  };
  tick();
  const timer = setInterval(tick, RSS_SAMPLE_MS);
  return {
    stop: () => {
      clearInterval(timer);
      tick();
      const cpu: Record<string, number> = {};
      for (const e of seen.values()) if (e.last > e.first) cpu[e.label] = (cpu[e.label] ?? 0) + (e.last - e.first) / CLK_TCK;
      r.cpuByCommand = cpu;
      return r;
    },
  };
}

/** CPU seconds of this process (all threads) and of its waited-for descendants (tar, zstd, sftp, ssh, bash …). */
function ownCpu(): { self: number; children: number } {
  const s = procStat('/proc/self/stat');
  return { self: s.own / CLK_TCK, children: s.reaped / CLK_TCK };
}

/** CPU seconds of a process tree: every live member's own time plus what it has reaped; 0 for a vanished process. */
export function treeCpu(pid: number): number {
  let ticks = 0;
  for (const p of [pid, ...listDescendants(pid)]) {
    try {
      const s = procStat(`/proc/${p}/stat`);
      ticks += s.own + s.reaped;
    } catch {
      // exited meanwhile: its time is in its parent's cutime once reaped
    }
  }
  return ticks / CLK_TCK;
}

/** Resets this process's peak RSS (VmHWM) by writing 5 to /proc/self/clear_refs; false if the kernel refuses. */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** VmHWM of this process in KiB (peak RSS since start or since the last reset). */
function peakRssKiB(): number | undefined {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : undefined;
}

export interface Measured<T> {
  value: T;
  seconds: number;
  /** Busy cores machine-wide during the run (of `os.availableParallelism()`), sshd included. */
  busyCores: number;
  /** CPU seconds of this node process (all threads) during the run. */
  nodeCpuS: number;
  /** CPU seconds of child processes reaped during the run (tar, zstd, sftp, ssh, bash, …). */
  childCpuS: number;
  /** Peak RSS of this node process during the run (MiB), if VmHWM could be reset first. */
  nodePeakRssMiB?: number;
  /** process.resourceUsage().maxRSS before and after (MiB): process-wide high-water mark, never reset. */
  maxRssBeforeMiB: number;
  maxRssAfterMiB: number;
  /** RSS of this node process just before the run (MiB): what the peak grew from. */
  nodeRssBeforeMiB: number;
  /** CPU seconds of the server process trees passed in `servers` (sshd and its sessions, the Temporal dev server). */
  serverCpuS: number;
  /**
   * Cores busy with work that is neither this process, its children nor the servers (other users of the machine),
   * averaged over the run plus a short settling pause after it. A noise indicator: near 0 on a quiet machine.
   */
  foreignCores: number;
  /** Machine-wide steal during the run (CPU seconds the hypervisor gave to other guests; 0 on bare metal). */
  stealS: number;
  /** With `sampleRss`: sampled peak resident memory of the processes around the run. */
  rss?: SampledRss;
}

export interface MeasureOptions {
  /** PIDs of server processes whose trees count as part of the system under test (the first: sshd, for `rss.sessionsMiB`). */
  servers?: readonly number[];
  /** Sample the resident memory of this process, its children (not the servers) and the first server's sessions. */
  sampleRss?: boolean;
}

const SETTLE_MS = 300;

/** Times `fn` and records CPU use and memory around it. The /proc reads happen outside the timed span. */
export async function measure<T>(fn: () => Promise<T>, opts: MeasureOptions = {}): Promise<Measured<T>> {
  const servers = opts.servers ?? [];
  const serverCpu = () => servers.reduce((sum, pid) => sum + treeCpu(pid), 0);
  const srv0 = serverCpu();
  const maxRssBefore = process.resourceUsage().maxRSS / 1024;
  const rssBefore = process.memoryUsage.rss() / 2 ** 20;
  const canReset = resetPeakRss();
  const sampler = opts.sampleRss ? sampleRss(servers) : undefined;
  const cpu0 = machineCpu();
  const own0 = ownCpu();
  const t0 = performance.now();
  let value: T;
  try {
    value = await fn();
  } catch (err) {
    sampler?.stop();
    throw err;
  }
  const t1 = performance.now();
  const own1 = ownCpu();
  const cpu1 = machineCpu();
  const rss = sampler?.stop();
  const hwm = canReset ? peakRssKiB() : undefined;
  const seconds = (t1 - t0) / 1000;
  const cores = os.availableParallelism();
  // Let servers reap their session processes (the SSH connection may close just after the run), then account.
  await sleep(SETTLE_MS);
  const cpu2 = machineCpu();
  const own2 = ownCpu();
  const srv2 = serverCpu();
  const windowS = (performance.now() - t0) / 1000;
  const machineBusyS = ((cpu2.busy - cpu0.busy) / Math.max(1, cpu2.total - cpu0.total)) * cores * windowS;
  const serverCpuS = srv2 - srv0;
  const foreign = machineBusyS - (own2.self - own0.self) - (own2.children - own0.children) - serverCpuS;
  if (rss) {
    // What the samples did not see: threads and processes that ended between two samples (or within one). A command
    // that its parent never reaps (restic's ssh) is seen but not in the children's total: that difference stays 0.
    const sum = (pick: (label: string) => boolean) => Object.entries(rss.cpuByCommand).reduce((s, [k, v]) => s + (pick(k) ? v : 0), 0);
    const nodeSeen = sum((k) => k.startsWith('node/'));
    const serverSeen = sum((k) => k.startsWith('server/'));
    const childSeen = sum((k) => !k.startsWith('node/') && !k.startsWith('server/'));
    rss.cpuByCommand['node (unsampled)'] = Math.max(0, own1.self - own0.self - nodeSeen);
    rss.cpuByCommand['children (unsampled)'] = Math.max(0, own1.children - own0.children - childSeen);
    rss.cpuByCommand['server (unsampled)'] = Math.max(0, serverCpuS - serverSeen);
  }
  return {
    serverCpuS,
    foreignCores: Math.max(0, foreign / windowS),
    stealS: (cpu1.steal - cpu0.steal) / CLK_TCK,
    ...(rss ? { rss } : {}),
    value,
    seconds,
    busyCores: cpu1.total > cpu0.total ? ((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * cores : 0,
    nodeCpuS: own1.self - own0.self,
    childCpuS: own1.children - own0.children,
    nodePeakRssMiB: hwm === undefined ? undefined : hwm / 1024,
    maxRssBeforeMiB: maxRssBefore,
    maxRssAfterMiB: process.resourceUsage().maxRSS / 1024,
    nodeRssBeforeMiB: rssBefore,
  };
}

/** Runs a command and throws with its output if it fails. */
export async function mustRun(file: string, args: readonly string[], timeoutMs = 10 * 60_000): Promise<RunResult> {
  const r = await runCommand(file, args, { timeoutMs });
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${r.code ?? r.signal}):\n${r.stderr}${r.stdout}`);
  return r;
}

/** `openssl dgst -sha256` of a local file (SHA-NI; about 1.3 GB/s here). */
export async function sha256File(file: string): Promise<string> {
  const r = await mustRun('openssl', ['dgst', '-sha256', '-r', file]);
  const m = /^([0-9a-f]{64})\b/.exec(r.stdout.trim());
  if (!m) throw new Error(`openssl dgst printed no hash for ${file}: ${r.stdout}`);
  return m[1]!;
}

/** Flush dirty pages so that one run's writeback does not land in the next run (untimed). */
export async function sync(): Promise<void> {
  await mustRun('sync', []);
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function loadAvg(): number[] {
  return os.loadavg().map((v) => Math.round(v * 100) / 100);
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
