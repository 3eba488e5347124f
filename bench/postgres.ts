/**
 * Section 3 (BENCH_ONLY=postgres): one verified backup of a PostgreSQL database of ≥ 1 GiB, through the real path:
 * a separate worker process (`bin/backupctl.js --config <cfg> worker` through its shebang, as `backupctl worker`
 * starts; TEMPORAL_ADDRESS → a Temporal dev server), the run started with `bin/backupctl.js --config <cfg> run <job> --wait --json`, a `postgres` source
 * (pg_dump over TCP with a password) and the loopback sshd as the destination (pinned host key).
 *
 * The database is generated server-side (INSERT … SELECT … FROM generate_series: numbers, timestamps, md5 text; two
 * tables with a primary key and a secondary index each), vacuumed and checkpointed before the timed run.
 *
 * Measured: wall time of the `run` command (start → result), the per-activity durations from the workflow history,
 * the worker's peak RSS (VmHWM from /proc/<pid>/status just before it is stopped) and the sampled peak RSS of its
 * process tree (pg_dump, pg_restore, zstd included), CPU seconds per process tree, the artifact's size; the remote
 * file's SHA-256 and size are checked against the result, and its manifest against both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSftpJobConfig } from './config.js';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import type { Manifest } from '../src/contracts/index.js';
import { startPostgres, type PostgresHandle } from '../test/helpers/postgres.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { startTemporalDevServer } from '../test/helpers/temporal-server.js';
import { LogBuffer, isProcessAlive, killAll, listDescendants, runCommand, sleep, type RunResult } from '../test/helpers/util.js';
import { phasesFromHistory } from './backup.js';
import { loadAvg, log, measure, sha256File, sync, treeCpu } from './sys.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(REPO_ROOT, 'bin', 'backupctl.js');
const GIB = 2 ** 30;
const MIB = 2 ** 20;
const DB = 'benchdb';
const JOB = 'pgbench';
const PASSWORD_ENV = 'BENCH_PG_PASSWORD';

/**
 * Calibration (PostgreSQL 15, this schema): one "unit" of 1,000,000 orders + 200,000 customers, indexed and
 * vacuumed, adds ~256 MB to pg_database_size; an order alone (with its two index entries) ~215 bytes. The empty
 * database is ~7.5 MB. Used to size the generation; the result is then checked and topped up if short.
 */
const UNIT_BYTES = 256e6;
const ORDER_BYTES = 215;
const EMPTY_DB_BYTES = 7.5e6;
const ORDERS_PER_CHUNK = 500_000;

export interface LoadSample {
  at: string;
  loadavg: number[];
  /** `uptime` as printed. */
  uptime: string;
}

export interface PostgresReport {
  server: { version: string; pgDump: string };
  database: {
    name: string;
    /** pg_database_size just before the run. */
    sizeBytes: number;
    sizeGiB: number;
    targetGiB: number;
    /** The brief's requirement: ≥ 1.0 GiB on disk. */
    atLeast1GiB: boolean;
    tables: { name: string; rows: number; totalBytes: number; heapBytes: number; indexBytes: number }[];
    generateSeconds: number;
  };
  run: {
    workflowId: string;
    status: string;
    exitCode: number | null;
    /** `backupctl run --wait --json`: process start → exit with the result. */
    wallSeconds: number;
    /** Source bytes (pg_database_size) per wall second, MB/s (1e6). */
    dbMBps: number;
    busyCores: number;
    /** Machine-wide busy cores not accounted for by the bench, its children, the worker tree or the servers. */
    foreignCores: number;
    cpuSeconds: { worker: number; postgres: number; sshd: number; temporal: number; runCli: number; bench: number };
    warnings: string[];
  };
  /** Seconds per activity (start→close, summed over executions) and time queued; from the workflow history. */
  phases: Record<string, number>;
  attempts: Record<string, number>;
  worker: {
    pid: number;
    startSeconds: number;
    /** VmHWM of the worker process right after it reported "polling" (before the run). */
    readyHwmMiB: number | undefined;
    /** VmHWM and VmRSS of the worker process read just before stopping it: its peak resident memory over its life. */
    peakRssMiB: number | undefined;
    rssAtStopMiB: number | undefined;
    /** Sum of VmRSS over the worker and its descendants, sampled every 250 ms during the run: the largest sum. */
    treePeakRssMiB: number;
    treeSamples: number;
    exitCode: number | null;
    exitSignal: string | null;
    stopSeconds: number;
  };
  artifact: {
    remotePath: string;
    size: number;
    sha256: string;
    /** pg_database_size ÷ artifact size. */
    ratioToDatabase: number;
    components: { name: string; member: string; size: number; stats: Record<string, number | string> }[];
  };
  verified: { remoteSha256: string; resultSha256: string; remoteSize: number; resultSize: number; manifestSha256: string; manifestSize: number; ok: boolean };
  temporalStartSeconds: number;
  load: { sectionStart: LoadSample; beforeRun: LoadSample; afterRun: LoadSample };
}

export async function loadSample(): Promise<LoadSample> {
  const r = await runCommand('uptime', []).catch(() => undefined);
  return { at: new Date().toISOString(), loadavg: loadAvg(), uptime: r?.stdout.trim() ?? '' };
}

/** VmHWM / VmRSS of a process in MiB, undefined when it is gone. */
export function procMem(pid: number): { hwmMiB?: number; rssMiB?: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) / 1024 : undefined;
    };
    return { hwmMiB: kib('VmHWM'), rssMiB: kib('VmRSS') };
  } catch {
    return {};
  }
}

/** Samples the summed RSS of a process tree until stopped; returns the largest sum. */
export function sampleTreeRss(pid: number, intervalMs = 250): { stop(): { peakMiB: number; samples: number } } {
  let peak = 0;
  let samples = 0;
  const tick = () => {
    let sum = 0;
    for (const p of [pid, ...listDescendants(pid)]) sum += procMem(p).rssMiB ?? 0;
    peak = Math.max(peak, sum);
    samples++;
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return { stop: () => { clearInterval(timer); tick(); return { peakMiB: peak, samples }; } };
}

/** psql on the bench database with a long timeout (the helper's sql() stops at 2 min). */
async function sqlLong(pg: PostgresHandle, text: string, timeoutMs = 60 * 60_000): Promise<string> {
  const r = await pg.tool('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', DB, '-c', text], { timeoutMs });
  if (r.code !== 0) throw new Error(`SQL failed (${r.code ?? r.signal}): ${r.stderr}\n${text.slice(0, 500)}`);
  return r.stdout;
}

const ordersInsert = (from: number, to: number, customers: number) => `INSERT INTO orders
  SELECT g, 1 + (g * 7919) % ${customers}, (g % 5)::smallint, 1 + (g % 20)::int, round((random() * 1000)::numeric, 2),
         timestamptz '2021-01-01' + g * interval '3 seconds', md5(g::text),
         md5((g * 31)::text) || ' ' || substr(md5((g * 17)::text), 1, (g % 24)::int + 8)
  FROM generate_series(${from}::bigint, ${to}::bigint) g`;

/** Creates and fills the database server-side; returns the table facts. */
async function generateDatabase(pg: PostgresHandle, targetGiB: number): Promise<{ orders: number; customers: number }> {
  const units = Math.max(0.02, (targetGiB * GIB - EMPTY_DB_BYTES) / UNIT_BYTES);
  const customers = Math.round(units * 200_000);
  let orders = Math.round(units * 1_000_000);
  await pg.createDatabase(DB, 'backup');
  await sqlLong(pg, `
    CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, balance numeric(14,2) NOT NULL, created_at timestamptz NOT NULL);
    CREATE TABLE orders (id bigint NOT NULL, customer_id bigint NOT NULL, status smallint NOT NULL, quantity integer NOT NULL,
                         amount numeric(12,2) NOT NULL, ordered_at timestamptz NOT NULL, reference text NOT NULL, note text NOT NULL);
    ALTER TABLE customers OWNER TO backup; ALTER TABLE orders OWNER TO backup;`);
  log(`postgres: generating ${customers.toLocaleString('en')} customers and ${orders.toLocaleString('en')} orders (target ${targetGiB} GiB)`);
  await sqlLong(pg, `INSERT INTO customers SELECT g, 'customer ' || g, md5(g::text) || '@example.org', round((random() * 100000)::numeric, 2),
    timestamptz '2020-01-01' + g * interval '17 seconds' FROM generate_series(1::bigint, ${customers}::bigint) g`);
  // Orders in chunks, two sessions at a time (no indexes yet: they are built once at the end).
  const chunks: [number, number][] = [];
  for (let from = 1; from <= orders; from += ORDERS_PER_CHUNK) chunks.push([from, Math.min(orders, from + ORDERS_PER_CHUNK - 1)]);
  let done = 0;
  const lane = async () => {
    for (let c = chunks.shift(); c; c = chunks.shift()) {
      await sqlLong(pg, ordersInsert(c[0], c[1], customers));
      done += c[1] - c[0] + 1;
      log(`postgres:   orders ${done.toLocaleString('en')} / ${orders.toLocaleString('en')}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(2, os.availableParallelism()) }, lane));
  log('postgres: building indexes, VACUUM ANALYZE');
  await sqlLong(pg, `SET maintenance_work_mem = '256MB';
    ALTER TABLE orders ADD PRIMARY KEY (id);
    CREATE INDEX orders_customer_time ON orders (customer_id, ordered_at);
    CREATE UNIQUE INDEX customers_email ON customers (email);`);
  await sqlLong(pg, 'VACUUM ANALYZE');
  // Short of the target (calibration off for this server version): add orders, with the indexes in place.
  for (let i = 0; i < 10; i++) {
    const size = Number((await sqlLong(pg, `SELECT pg_database_size(current_database())`)).trim());
    if (size >= targetGiB * GIB * 0.97) break;
    const more = Math.ceil((targetGiB * GIB - size) / ORDER_BYTES);
    log(`postgres: ${(size / GIB).toFixed(3)} GiB, short of the target: adding ${more.toLocaleString('en')} orders`);
    await sqlLong(pg, ordersInsert(orders + 1, orders + more, customers));
    orders += more;
    await sqlLong(pg, 'VACUUM ANALYZE orders');
  }
  await pg.sql('CHECKPOINT');
  return { orders, customers };
}

export interface Worker {
  child: ChildProcess;
  pid: number;
  log: LogBuffer;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isExited(): boolean;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL the worker and whatever it started. Idempotent. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startWorker(configFile: string, env: NodeJS.ProcessEnv): Worker {
  const logs = new LogBuffer(4 * MIB);
  const child = spawn(CLI, ['--config', configFile, 'worker'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (c: Buffer) => logs.append(c));
  child.stderr?.on('data', (c: Buffer) => logs.append(c));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { done = true; resolve({ code, signal }); });
    child.once('error', (err) => { logs.append(`spawn error: ${err.message}\n`); done = true; resolve({ code: null, signal: null }); });
  });
  const pid = child.pid ?? 0;
  // If the bench dies, the worker and its children must not outlive it.
  const killNow = () => { if (pid) killAll([...listDescendants(pid), pid], 'SIGKILL'); };
  process.once('exit', killNow);
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const stop = (graceMs = 30_000) => {
    stopping ??= (async () => {
      const descendants = pid ? listDescendants(pid) : [];
      if (!done) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => { killAll([...listDescendants(pid), pid], 'SIGKILL'); }, graceMs);
        await exited;
        clearTimeout(timer);
      }
      killAll(descendants.filter(isProcessAlive), 'SIGKILL');
      process.removeListener('exit', killNow);
      return exited;
    })();
    return stopping;
  };
  return { child, pid, log: logs, exited, isExited: () => done, stop };
}

/**
 * `bin/backupctl.js …` (through its shebang) to completion, collecting its output (like runCommand), but the child is known to the
 * cleanup: if the bench is interrupted, it is killed instead of waiting forever for a server that is gone.
 */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, onCleanup: (fn: () => Promise<void>) => void, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // As typed: the bin script through its shebang (the launcher's per-verb settings apply), not `node bin/backupctl.js`.
    const child = spawn(CLI, [...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    let done = false;
    const kill = () => { if (!done && child.pid) killAll([...listDescendants(child.pid), child.pid], 'SIGKILL'); };
    process.once('exit', kill);
    onCleanup(async () => kill());
    const timer = setTimeout(kill, timeoutMs);
    child.once('error', (err) => { done = true; clearTimeout(timer); process.removeListener('exit', kill); reject(err); });
    child.once('close', (code, signal) => {
      done = true;
      clearTimeout(timer);
      process.removeListener('exit', kill);
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
  });
}

export async function runPostgres(opts: {
  sshd: SshdHandle; tmp: string; targetGiB: number; onCleanup: (fn: () => Promise<void>) => void;
}): Promise<PostgresReport> {
  const { sshd, tmp, targetGiB } = opts;
  const sectionStart = await loadSample();
  const password = `bench-${process.pid}-pw`;

  // PostgreSQL and the database.
  let t = Date.now();
  const pg = await startPostgres();
  opts.onCleanup(() => pg.stop());
  const postmasterPid = Number(readFileSync(path.join(pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  log(`postgres: ${pg.version} on ${pg.host}:${pg.port} (pid ${postmasterPid}, ${((Date.now() - t) / 1000).toFixed(1)} s), dir ${pg.dir}`);
  await pg.createRole('backup', password, 'SUPERUSER');
  t = Date.now();
  const generated = await generateDatabase(pg, targetGiB);
  const generateSeconds = (Date.now() - t) / 1000;
  const sizeBytes = Number((await pg.sql(`SELECT pg_database_size('${DB}')`)).trim());
  const tableRows = (await pg.sql(`SELECT relname, pg_total_relation_size(oid), pg_relation_size(oid), pg_indexes_size(oid) FROM pg_class
    WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname`, DB)).trim().split('\n');
  const tables = tableRows.map((line) => {
    const [name, total, heap, index] = line.split('|');
    return { name: name!, rows: name === 'orders' ? generated.orders : generated.customers, totalBytes: Number(total), heapBytes: Number(heap), indexBytes: Number(index) };
  });
  log(`postgres: database ${DB} ${(sizeBytes / GIB).toFixed(3)} GiB (pg_database_size ${sizeBytes} bytes) generated in ${generateSeconds.toFixed(1)} s: ${tables.map((x) => `${x.name} ${x.rows.toLocaleString('en')} rows ${(x.totalBytes / MIB).toFixed(0)} MiB`).join(', ')}`);
  if (targetGiB >= 1 && sizeBytes < GIB) throw new Error(`database ${DB} is ${sizeBytes} bytes, below 1 GiB`);
  await sync();

  // Temporal dev server; the worker as its own process.
  t = Date.now();
  const server = await startTemporalDevServer();
  opts.onCleanup(() => server.stop());
  const temporalStartSeconds = (Date.now() - t) / 1000;
  const { configFile } = await writeSftpJobConfig(tmp, 'bench-pg', sshd, {
    [JOB]: {
      sources: [{ name: 'pg', type: 'postgres', host: pg.host, port: pg.port, user: 'backup', password: { env: PASSWORD_ENV }, databases: [DB] }],
      destinations: ['nas'],
    },
  });
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default', [PASSWORD_ENV]: password };
  for (const k of ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE']) delete env[k];

  t = Date.now();
  const worker = startWorker(configFile, env);
  opts.onCleanup(async () => { await worker.stop(10_000); });
  for (;;) {
    if (worker.log.toString().includes('worker polling task queue(s)')) break;
    if (worker.isExited()) throw new Error(`the worker exited before polling:\n${worker.log.toString().slice(-4000)}`);
    if (Date.now() - t > 180_000) throw new Error(`the worker did not report polling within 180 s:\n${worker.log.toString().slice(-4000)}`);
    await sleep(100);
  }
  const workerStartSeconds = (Date.now() - t) / 1000;
  const readyHwmMiB = procMem(worker.pid).hwmMiB;
  log(`postgres: Temporal dev server at ${server.address} (${temporalStartSeconds.toFixed(1)} s); worker pid ${worker.pid} polling after ${workerStartSeconds.toFixed(1)} s (VmHWM ${readyHwmMiB?.toFixed(0) ?? '?'} MiB)`);

  // The timed run.
  const cpuOf = () => ({ worker: treeCpu(worker.pid), postgres: treeCpu(postmasterPid), sshd: treeCpu(sshd.pid), temporal: treeCpu(server.pid) });
  const beforeRun = await loadSample();
  log(`postgres: load before the run: ${beforeRun.uptime}`);
  const cpu0 = cpuOf();
  const sampler = sampleTreeRss(worker.pid);
  let tree: { peakMiB: number; samples: number };
  let m;
  try {
    m = await measure(
      () => runCli(['--config', configFile, 'run', JOB, '--wait', '--json'], env, opts.onCleanup, 2 * 3_600_000),
      { servers: [sshd.pid, server.pid, worker.pid, postmasterPid] },
    );
  } finally {
    tree = sampler.stop();
  }
  const cpu1 = cpuOf();
  const afterRun = await loadSample();
  log(`postgres: load after the run: ${afterRun.uptime}`);
  const r = m.value;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let out: { status?: string; workflowId?: string; remotePath?: string; size?: number; sha256?: string; warnings?: string[]; error?: string };
  try {
    out = JSON.parse(line) as typeof out;
  } catch {
    throw new Error(`backupctl run printed no JSON result (exit ${r.code ?? r.signal}):\n${r.stdout}${r.stderr}\nworker:\n${worker.log.toString().slice(-4000)}`);
  }
  if ((r.code !== 0 && r.code !== 3) || !out.status?.startsWith('succeeded') || !out.remotePath || !out.sha256 || out.size === undefined || !out.workflowId) {
    throw new Error(`backupctl run failed (exit ${r.code ?? r.signal}): ${line}\n${r.stderr}\nworker:\n${worker.log.toString().slice(-4000)}`);
  }
  log(`postgres: run ${out.workflowId} ${out.status} in ${m.seconds.toFixed(2)} s, artifact ${out.size} bytes`);

  // Phases from the history.
  const connection = await Connection.connect({ address: server.address });
  let ph;
  try {
    ph = await phasesFromHistory(new Client({ connection, namespace: 'default' }).workflow.getHandle(out.workflowId));
  } finally {
    await connection.close();
  }
  const phases: Record<string, number> = { 'start→result (client)': m.seconds, workflow: ph.workflowS };
  const attempts: Record<string, number> = {};
  for (const a of ph.activities) {
    phases[a.type] = a.runS;
    phases[`${a.type} (queue)`] = a.queueS;
    attempts[a.type] = a.attempts;
    if (a.attempts > 1) log(`  warning: ${a.type} took ${a.attempts} attempts`);
  }
  phases['outside activities'] = ph.outsideActivitiesS;
  log(`postgres: phases ${ph.activities.map((a) => `${a.type} ${a.runS.toFixed(2)}`).join(', ')}; outside activities ${ph.outsideActivitiesS.toFixed(2)}`);

  // Peak memory of the worker, read just before it is stopped.
  const mem = procMem(worker.pid);
  t = Date.now();
  const exit = await worker.stop();
  const stopSeconds = (Date.now() - t) / 1000;
  log(`postgres: worker VmHWM ${mem.hwmMiB?.toFixed(0) ?? '?'} MiB (VmRSS ${mem.rssMiB?.toFixed(0) ?? '?'} MiB), tree peak ${tree.peakMiB.toFixed(0)} MiB; stopped in ${stopSeconds.toFixed(1)} s (exit ${exit.code ?? exit.signal})`);

  // The stored file against the result and its manifest.
  const remoteFile = path.join(sshd.root, out.remotePath);
  const remoteSha256 = await sha256File(remoteFile);
  const remoteSize = (await stat(remoteFile)).size;
  const manifest = JSON.parse(await readFile(`${remoteFile}.manifest.json`, 'utf8')) as Manifest;
  const ok = remoteSha256 === out.sha256 && remoteSize === out.size && manifest.artifact.sha256 === out.sha256 && manifest.artifact.size === out.size;
  const verified = { remoteSha256, resultSha256: out.sha256, remoteSize, resultSize: out.size, manifestSha256: manifest.artifact.sha256, manifestSize: manifest.artifact.size, ok };
  if (!ok) throw new Error(`remote file ${remoteFile} differs from the result or its manifest: ${JSON.stringify(verified)}`);
  log(`postgres: remote file ${remoteSize} bytes, sha256 ${remoteSha256}: matches the result and the manifest`);
  await rm(path.join(sshd.root, out.remotePath.split('/')[0]!), { recursive: true, force: true });

  const pgDump = (await pg.tool('pg_dump', ['--version'])).stdout.trim();
  return {
    server: { version: pg.version, pgDump },
    database: { name: DB, sizeBytes, sizeGiB: sizeBytes / GIB, targetGiB, atLeast1GiB: sizeBytes >= GIB, tables, generateSeconds },
    run: {
      workflowId: out.workflowId, status: out.status, exitCode: r.code, wallSeconds: m.seconds, dbMBps: sizeBytes / 1e6 / m.seconds,
      busyCores: m.busyCores, foreignCores: m.foreignCores,
      cpuSeconds: {
        worker: cpu1.worker - cpu0.worker, postgres: cpu1.postgres - cpu0.postgres, sshd: cpu1.sshd - cpu0.sshd,
        temporal: cpu1.temporal - cpu0.temporal, runCli: m.childCpuS, bench: m.nodeCpuS,
      },
      warnings: out.warnings ?? [],
    },
    phases,
    attempts,
    worker: {
      pid: worker.pid, startSeconds: workerStartSeconds, readyHwmMiB, peakRssMiB: mem.hwmMiB, rssAtStopMiB: mem.rssMiB,
      treePeakRssMiB: tree.peakMiB, treeSamples: tree.samples, exitCode: exit.code, exitSignal: exit.signal, stopSeconds,
    },
    artifact: {
      remotePath: out.remotePath, size: out.size, sha256: out.sha256, ratioToDatabase: sizeBytes / out.size,
      components: manifest.components.map((c) => ({ name: c.name, member: c.member, size: c.size, stats: c.stats })),
    },
    verified,
    temporalStartSeconds,
    load: { sectionStart, beforeRun, afterRun },
  };
}
