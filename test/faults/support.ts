import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { expect } from 'vitest';
import type { Manifest } from '../../src/contracts/index.js';
import { awaitBackup, runBackup, startBackup, type BackupOutcome } from '../helpers/run-backup.js';
import type { SmtpSink } from '../helpers/smtp-sink.js';
import type { SshdHandle } from '../helpers/sshd.js';
import { listFiles, withWorker, type Env, type JobSetup } from '../e2e/fixture.js';

/**
 * The scenario table: each row names a fault, where it strikes, and the only outcomes allowed.
 * (a) completed: final file and manifest exist, a fresh SHA-256 of the stored file equals the manifest;
 * (b) failed or cancelled: a failure/cancellation notification delivered, no temporary file on any destination,
 *     no staging on the worker, every earlier backup untouched.
 * Anything else is (c), which no row allows.
 */
export const SCENARIOS = {
  'cut-10': { fault: 'TCP connection to sshd cut after 10% of the artifact', strikes: 'upload', allowed: ['a'] },
  'cut-50': { fault: 'TCP connection to sshd cut after 50% of the artifact', strikes: 'upload', allowed: ['a'] },
  'cut-99': { fault: 'TCP connection to sshd cut after 99% of the artifact', strikes: 'upload', allowed: ['a'] },
  stall: { fault: 'TCP connection to sshd stalled (open, no bytes either way)', strikes: 'upload', allowed: ['a'] },
  'sshd-down-upload': { fault: 'sshd stopped for the upload\'s whole retry budget and then some, back after 40 s', strikes: 'upload, then compensation', allowed: ['b'] },
  'sshd-down': { fault: 'sshd stopped for the whole retry budget', strikes: 'preflight (every attempt)', allowed: ['b'] },
  'remote-full-upload': { fault: 'remote tmpfs fills up', strikes: 'upload', allowed: ['b'] },
  'remote-full-preflight': { fault: 'remote tmpfs smaller than the estimated size', strikes: 'preflight', allowed: ['b'] },
  'staging-full': { fault: 'worker staging tmpfs fills up', strikes: 'dump', allowed: ['b'] },
  'kill-dump': { fault: 'worker SIGKILLed, a new worker started', strikes: 'dump', allowed: ['a', 'b'] },
  'kill-upload': { fault: 'worker SIGKILLed, a new worker started', strikes: 'upload', allowed: ['a', 'b'] },
  'kill-verify-finalize': { fault: 'worker SIGKILLed, a new worker started', strikes: 'between verify and finalize', allowed: ['a', 'b'] },
  'kill-notify': { fault: 'worker SIGKILLed after the mail went out, a new worker started', strikes: 'notify', allowed: ['a', 'b'] },
  'smtp-down': { fault: 'SMTP server down when the run fails, back later', strikes: 'notify (failure)', allowed: ['b'] },
  'notifiers-cut': { fault: 'SMTP connection cut mid-message and webhook connection stalled mid-request (proxies)', strikes: 'notify (failure)', allowed: ['b'] },
  'same-slot-x3': { fault: 'three starts of the same slot at the same moment', strikes: 'start', allowed: ['a'] },
  'files-changing': { fault: 'a file being written while tar reads it', strikes: 'dump (files source)', allowed: ['a'] },
  'mariadb-down': { fault: 'MariaDB server stopped', strikes: 'dump', allowed: ['b'] },
  'postgres-down': { fault: 'PostgreSQL server stopped', strikes: 'dump', allowed: ['b'] },
  's3-cut': { fault: 'TCP connection to the S3 server cut during the part uploads', strikes: 'upload', allowed: ['a'] },
  's3-down': { fault: 'S3 server refusing connections for the whole retry budget', strikes: 'preflight (every attempt)', allowed: ['b'] },
  's3-kill-upload': { fault: 'worker SIGKILLed during the S3 part uploads, a new worker started', strikes: 'upload', allowed: ['a', 'b'] },
  's3-same-slot-x3': { fault: 'three starts of the same slot at the same moment, to S3', strikes: 'start', allowed: ['a'] },
  's3-flip': { fault: 'one byte of a part flipped on the way to the S3 server (proxy)', strikes: 'upload', allowed: ['a'] },
} as const satisfies Record<string, { fault: string; strikes: string; allowed: readonly ('a' | 'b')[] }>;

export type ScenarioId = keyof typeof SCENARIOS;

export function title(id: ScenarioId): string {
  const s = SCENARIOS[id];
  return `${id}: ${s.fault}, during ${s.strikes} → only ${s.allowed.map((o) => `(${o})`).join(' or ')}`;
}

/** Where the test can look at a destination's files (directly, or inside sshd's mount namespace). */
export interface Remote {
  list(): Promise<string[]>;
  sha256(rel: string): Promise<string>;
  read(rel: string): Promise<string>;
}

export function localRemote(root: string): Remote {
  return {
    list: async () => (existsSync(root) ? listFiles(root) : []),
    sha256: async (rel) => createHash('sha256').update(readFileSync(path.join(root, rel))).digest('hex'),
    read: async (rel) => readFileSync(path.join(root, rel), 'utf8'),
  };
}

export function namespaceRemote(sshd: SshdHandle): Remote {
  const run = async (args: string[]) => {
    const r = await sshd.inNamespace(args);
    if (r.code !== 0) throw new Error(`${args.join(' ')} in sshd's namespace: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  return {
    list: async () => (await run(['find', sshd.root, '-type', 'f', '-printf', '%P\\n'])).split('\n').filter(Boolean).sort(),
    sha256: async (rel) => (await run(['sha256sum', path.join(sshd.root, rel)])).slice(0, 64),
    read: (rel) => run(['cat', path.join(sshd.root, rel)]),
  };
}

/** Every file on a destination with its hash: what "earlier backups untouched" is checked against. */
export async function snapshot(remote: Remote): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const f of await remote.list()) m.set(f, await remote.sha256(f));
  return m;
}

// Test files run one after another, each in its own process: ten slots per second of start time keep their
// workflow IDs apart (and apart from the e2e tests' 2025 slots). The slots lie in the past (2021-01-01 to 2024-03):
// a slot more than five minutes ahead of now is refused.
const slotBase = Math.floor(Date.now() / 1000) * 10;
let slotCounter = 0;
/** A distinct slot per run, so workflow IDs never collide between tests and test files. */
export function nextSlot(): Date {
  return new Date(Date.UTC(2021, 0, 1) + ((slotBase + slotCounter++) % 100_000_000) * 1000);
}

export function startRun(env: Env, job: JobSetup, slot = nextSlot()): Promise<WorkflowHandle> {
  return startBackup(env.client, { taskQueue: job.taskQueue, slot });
}

/** The run's end: `completed` is (a) when its status is a success, failed or cancelled is (b) (test/helpers/run-backup.ts). */
export type Outcome = BackupOutcome;

export const outcomeOf = awaitBackup;

/** (a) or (b): how the scenario table names an outcome. */
const kindOf = (outcome: Outcome): 'a' | 'b' => (outcome.status === 'completed' ? 'a' : 'b');

/** Starts a run with a plain worker for the job and waits for its end. */
export function runToOutcome(env: Env, job: JobSetup): Promise<{ handle: WorkflowHandle; outcome: Outcome }> {
  return withWorker(env, job, async () => {
    const outcome = await runBackup(env.client, { taskQueue: job.taskQueue, slot: nextSlot() });
    return { handle: outcome.handle, outcome };
  });
}

export interface InvariantInput {
  id: ScenarioId;
  handle: WorkflowHandle;
  outcome: Outcome;
  remotes: Remote[];
  /** Files on the destinations before the run (path → SHA-256), per remote. */
  before: Map<string, string>[];
  smtp: SmtpSink;
  /** Lists the worker's staging folder (default: the job's stateDir on this machine). */
  staging?: () => Promise<string[]>;
  job: JobSetup;
  /** How long to wait for the failure notification (default 60 s). */
  notifyWithinMs?: number;
  /** Anything else worth recording in the results table. */
  note?: string;
}

/**
 * The invariant every scenario asserts: the outcome is one the row allows, and it is a real (a) or (b) — never (c).
 * Returns a one-line description of what was observed, also appended to $FAULT_RESULTS (JSON lines) when set.
 */
export async function assertInvariant(input: InvariantInput): Promise<string> {
  const { outcome, handle } = input;
  const row = SCENARIOS[input.id];
  const wid = handle.workflowId;
  const stagingRoot = path.join(input.job.stateDir, 'staging');
  const staging = await (input.staging ?? (async () => (existsSync(stagingRoot) ? [...listFiles(stagingRoot), ...(existsSync(path.join(stagingRoot, wid)) ? [`${wid}/`] : [])] : [])))();
  let observed: string;
  const kind = kindOf(outcome);
  if (outcome.status === 'completed') {
    const r = outcome.result;
    // A completed run that is not a success (skipped) is not (a).
    expect(['succeeded', 'succeeded_with_warnings'], `(c): the run completed as ${r.status}`).toContain(r.status);
    expect(r.locations.length).toBeGreaterThan(0);
    for (const [i, remote] of input.remotes.entries()) {
      const files = await remote.list();
      const loc = r.locations[i]!;
      expect(files, '(c): completed without its final file').toContain(loc.path);
      expect(files, '(c): completed without its manifest').toContain(`${loc.path}.manifest.json`);
      const manifest = JSON.parse(await remote.read(`${loc.path}.manifest.json`)) as Manifest;
      const fresh = await remote.sha256(loc.path);
      expect(fresh, '(c): the stored file does not hash to its manifest').toBe(manifest.artifact.sha256);
      expect(manifest.artifact.sha256).toBe(r.sha256);
      expect(manifest.workflowId).toBe(wid);
      // Exactly one final file, one manifest and its signature for this run; no temporary file of it.
      const dir = path.posix.dirname(loc.path);
      const ofRun = files.filter((f) => path.posix.dirname(f) === dir && (f.startsWith(loc.path) || f.includes(wid)));
      expect(ofRun.sort(), 'duplicate or temporary files next to the backup').toEqual([loc.path, `${loc.path}.manifest.json`, `${loc.path}.manifest.json.sig`].sort());
      for (const [f, h] of input.before[i]!) {
        expect(files, `an earlier backup vanished: ${f}`).toContain(f);
        expect(await remote.sha256(f), `an earlier backup changed: ${f}`).toBe(h);
      }
      expect(files.filter((f) => f.endsWith('.tmp') && !input.before[i]!.has(f)), 'a temporary file was left behind').toEqual([]);
    }
    observed = `(a) ${r.status}, ${r.size} bytes, remote SHA-256 = manifest${r.warnings.length ? `, warnings: ${r.warnings.length}` : ''}`;
  } else {
    const failed = outcome.status === 'cancelled' ? 'CANCELLED' : 'FAILED';
    // A failure or cancellation notification, for this run.
    const mail = await input.smtp.waitFor((m) => m.text?.includes(wid) === true && m.subject?.includes(failed) === true, input.notifyWithinMs ?? 60_000);
    expect(input.smtp.messages.some((m) => m.text?.includes(wid) === true && /\] (OK|WARNING):/.test(m.subject ?? '')), '(c): a success mail for a failed run').toBe(false);
    for (const [i, remote] of input.remotes.entries()) {
      const files = await remote.list();
      const added = files.filter((f) => !input.before[i]!.has(f));
      expect(added, 'the failed run left files on the destination').toEqual([]);
      for (const [f, h] of input.before[i]!) {
        expect(files, `an earlier backup vanished: ${f}`).toContain(f);
        expect(await remote.sha256(f), `an earlier backup changed: ${f}`).toBe(h);
      }
    }
    observed = `(b) ${failed.toLowerCase()}: ${(outcome.error.cause as { type?: string } | undefined)?.type ?? '?'}; mail "${mail.subject}"`;
  }
  expect(staging.filter((f) => f.includes(wid.replace(/[^A-Za-z0-9._:-]/g, '_'))), 'staging left on the worker').toEqual([]);
  expect(row.allowed as readonly string[], `outcome (${kind}) is not allowed for ${input.id}: ${observed}`).toContain(kind);
  if (process.env.FAULT_RESULTS) {
    appendFileSync(process.env.FAULT_RESULTS, `${JSON.stringify({ id: input.id, outcome: kind, observed, note: input.note, at: new Date().toISOString() })}\n`);
  }
  return observed;
}

/** The failure's message (the workflow's own ApplicationFailure, which carries the step and error). */
export function failureMessage(o: Outcome): string {
  return o.status !== 'completed' ? o.error.cause?.message ?? '' : '';
}
