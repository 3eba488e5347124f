import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupWorkflowId, type DrillReport, type Manifest } from '../../src/contracts/index.js';
import { BLOCK, END_OF_ARCHIVE, padding, tarHeader } from '../../src/lib/tar.js';
import { layout } from '../../src/repository/layout.js';
import { backupResult, failureOf, runBackup } from '../helpers/run-backup.js';
import { runCommand } from '../helpers/util.js';
import { listFiles, signAsDeployment, startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Issue 14: a destination is untrusted storage. A manifest and artifact planted on the SFTP destination (a component
// named `../../../victim`, a member with `../`, a type other than the source's) make `restore` and `drill` refuse
// before anything is written: the files beside the restore target and the drill's scratch folder stay untouched. And
// what backupctl stores is private: artifacts and manifests 0600, the folders it creates 0700, on SFTP and local
// destinations. Real servers on loopback: Temporal, OpenSSH, SMTP sink.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
let env: Env;

const backupctl = (args: string[]) => runCommand(process.execPath, [cli, ...args], { timeoutMs: 180_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

beforeAll(async () => { env = await startEnv(); });
afterAll(async () => { await env?.close(); });

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let jobs = 0;
/** A files job `app` (writeJob) whose SFTP destination is a folder of its own under sshd's root: no test sees another's files. */
async function ownJob(patch: Parameters<typeof writeJob>[1] = () => undefined): Promise<JobSetup> {
  const remote = path.join(env.sshd.root, `untrusted-${++jobs}`);
  mkdirSync(remote);
  return writeJob(env, (c) => { c.destinations.nas.path = remote; patch(c); });
}

interface Planted { name: string; type: string; member: string }

/**
 * Plants a backup of job `app` on the SFTP destination the way an attacker with write access would: an artifact whose
 * one member is a zstd tar holding `planted.txt`, under the member name given, and a manifest describing it exactly
 * (sizes and every SHA-256 match, so the fetch checks pass).
 */
function plant(job: JobSetup, c: Planted, slot: Date): { path: string; workflowId: string } {
  const src = path.join(env.tmp.path, `plant-${slot.getTime()}`);
  mkdirSync(src, { recursive: true });
  writeFileSync(path.join(src, 'planted.txt'), 'written by the attacker\n');
  const data = execFileSync('sh', ['-c', `tar -c -C '${src}' planted.txt | zstd -q -c`]);
  const artifactBytes = Buffer.concat([tarHeader(c.member, data.length, slot), data, Buffer.alloc(padding(data.length)), END_OF_ARCHIVE]);
  const workflowId = `backup-app-full-${slot.toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
  const l = layout('app', 'full', 'daily', slot, workflowId);
  const manifest: Manifest = {
    format: 'backupctl-manifest/1', job: 'app', type: 'full', tier: 'daily', slot: slot.toISOString().replace(/\.\d{3}Z$/, 'Z'), workflowId, runId: 'planted',
    createdAt: slot.toISOString(), artifact: { name: l.artifactName, size: artifactBytes.length, sha256: sha256(artifactBytes), format: 'tar' },
    components: [{ name: c.name, type: c.type, member: c.member, size: data.length, sha256: sha256(artifactBytes.subarray(BLOCK, BLOCK + data.length)), stats: {} }],
    warnings: [], tools: {},
  };
  const root = (job.config.destinations as Record<string, { path: string }>).nas!.path;
  mkdirSync(path.join(root, l.dir), { recursive: true });
  writeFileSync(path.join(root, l.finalPath), artifactBytes);
  writeFileSync(path.join(root, l.manifestPath), JSON.stringify(manifest));
  // Signed with the deployment's key, as if the attacker had it too (or an operator restored with --trust-unsigned):
  // these checks hold even then. Without the key the signature check refuses it first (signing.test.ts).
  signAsDeployment(env, path.join(root, l.manifestPath));
  return { path: l.finalPath, workflowId };
}

/** Files an escape would hit: `<T>/victim/keep.txt` beside a restore into `<T>/restore/target`, `<S>/victim/keep.txt` in the drill's scratch folder S. */
function victims(base: string): { to: string; scratch: string; files: string[] } {
  const to = path.join(base, 'restore', 'target');
  const scratch = path.join(base, 'scratch');
  const files = [path.join(base, 'victim', 'keep.txt'), path.join(scratch, 'victim', 'keep.txt')];
  for (const f of files) {
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, 'must stay\n');
  }
  mkdirSync(path.dirname(to), { recursive: true });
  return { to, scratch, files };
}

async function refusedEverywhere(planted: Planted, restoreCode: string, message: RegExp): Promise<void> {
  const base = path.join(env.tmp.path, `untrusted-${restoreCode}-${planted.type}-${Date.now()}`);
  const v = victims(base);
  const job = await ownJob((c) => { c.jobs.app.drill = { scratchDir: v.scratch }; });
  plant(job, planted, new Date(Date.UTC(2025, 7, 1, 3, 0, 0)));

  const res = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', v.to, '--json']);
  expect(res.code, res.stdout + res.stderr).toBe(1);
  const failed = JSON.parse(res.stdout) as { status: string; code: string; error: string };
  expect(failed).toMatchObject({ status: 'failed', code: restoreCode });
  expect(failed.error).toMatch(message);

  const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
  expect(drill.code, drill.stdout + drill.stderr).toBe(1);
  const report = JSON.parse(drill.stdout) as DrillReport;
  expect(report.ok).toBe(false);
  expect(report.problems[0]).toMatch(message);

  // Nothing written anywhere: the files beside the target and in the scratch folder are as they were, the target's
  // folder holds nothing, no staging is left, and the planted file appears nowhere.
  for (const f of v.files) expect(readFileSync(f, 'utf8'), f).toBe('must stay\n');
  expect(listFiles(base).sort()).toEqual(['scratch/victim/keep.txt', 'victim/keep.txt']);
  expect(readdirSync(path.dirname(v.to))).toEqual([]);
  expect(existsSync(path.join(job.stateDir, 'staging')) ? listFiles(path.join(job.stateDir, 'staging')) : []).toEqual([]);
}

describe('a planted manifest and artifact on the destination', () => {
  it('a component named ../../../victim (a PostgreSQL tree, which a restore replaces): no backup to restore or drill, nothing removed or written', async () => {
    await refusedEverywhere({ name: '../../../victim', type: 'postgres', member: '../../../victim.tar.zst' }, 'RESTORE_NOT_FOUND', /no finalized backup of job app/);
  });

  it('a member with ../ (a command source\'s output file): refused, nothing written', async () => {
    await refusedEverywhere({ name: 'app-files', type: 'command', member: 'app-files.bin/../../../../victim/keep.txt' }, 'RESTORE_NOT_FOUND', /no finalized backup of job app/);
  });

  it('a component whose type is not its source\'s: the plan refuses it, naming both types', async () => {
    await refusedEverywhere({ name: 'app-files', type: 'postgres', member: 'app-files.tar.zst' }, 'RESTORE_FAILED',
      /restore refused: the manifest of daily\/2025\/08\/01\/0300\/app-full-20250801T030000Z\.tar says component "app-files" is of type "postgres", but source "app-files" of job app is of type files; nothing was fetched or written/);
  });

  it('list shows the planted manifests apart, as not a backup', async () => {
    const job = await ownJob();
    plant(job, { name: '../../../victim', type: 'postgres', member: '../../../victim.tar.zst' }, new Date(Date.UTC(2025, 7, 2, 3, 0, 0)));
    const out = await backupctl(['--config', job.configFile, 'list', 'app', '--json']);
    expect(out.code, out.stderr).toBe(0);
    const listed = JSON.parse(out.stdout) as { destinations: { backups: unknown[]; anomalies: { problem: string; detail: string }[] }[] };
    expect(listed.destinations[0]!.backups).toEqual([]);
    expect(listed.destinations[0]!.anomalies).toEqual([expect.objectContaining({ problem: 'unreadable manifest', detail: expect.stringMatching(/component name "\.\.\/\.\.\/\.\.\/victim" is not a name/) })]);
  });
});

describe('a file planted at a slot\'s manifest name', () => {
  it('the run of that slot fails in preflight (MANIFEST_UNVERIFIED, naming the file), is notified, and writes nothing: neither skipped as done nor overwritten', async () => {
    const job = await ownJob();
    const slot = new Date(Date.UTC(2025, 9, 1, 3, 0, 0));
    const l = layout('app', 'full', 'daily', slot, backupWorkflowId(job.deployment, 'app', 'full', slot));
    const root = (job.config.destinations as Record<string, { path: string }>).nas!.path;
    mkdirSync(path.join(root, l.dir), { recursive: true });
    writeFileSync(path.join(root, l.manifestPath), '{}');
    const outcome = await withWorker(env, job, () => runBackup(env.client, { taskQueue: job.taskQueue, slot }));
    const err = failureOf(outcome);
    expect((err.cause as { type?: string }).type).toBe('MANIFEST_UNVERIFIED');
    expect(err.cause?.message).toMatch(new RegExp(`preflight step: .*holds ${l.manifestPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} for this slot, but it is no backup of this deployment`));
    const mail = await env.smtp.waitFor((m) => m.text?.includes(outcome.handle.workflowId) === true);
    expect(mail.subject).toMatch(/FAILED/);
    // The planted file is as it was, and nothing else was written beside it.
    expect(readFileSync(path.join(root, l.manifestPath), 'utf8')).toBe('{}');
    expect(listFiles(root)).toEqual([l.manifestPath]);
  });
});

describe('modes on the destination', () => {
  it('artifacts, manifests and drill reports are stored 0600 and the folders backupctl creates 0700, on SFTP and local destinations', async () => {
    const localRoot = path.join(env.tmp.path, 'modes-local');
    mkdirSync(localRoot);
    const job = await ownJob((c) => {
      c.destinations.usb = { type: 'local', path: localRoot };
      c.jobs.app.destinations = ['nas', 'usb'];
    });
    const r = await withWorker(env, job, () => backupResult(env.client, { taskQueue: job.taskQueue, slot: new Date(Date.UTC(2025, 8, 1, 3, 0, 0)) }));
    expect(r.locations.map((l) => l.destination)).toEqual(['nas', 'usb']);
    const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
    for (const root of [(job.config.destinations as Record<string, { path: string }>).nas!.path, localRoot]) {
      const art = path.join(root, r.locations[0]!.path);
      expect(mode(art), art).toBe('600');
      expect(mode(`${art}.manifest.json`)).toBe('600');
      const reports = readdirSync(path.join(root, 'drills', 'app'));
      expect(reports.filter((f) => f.endsWith('.json'))).toHaveLength(1);
      expect(reports).toHaveLength(2); // the report and its signature
      for (const f of reports) expect(mode(path.join(root, 'drills', 'app', f)), f).toBe('600');
      expect(mode(`${art}.manifest.json.sig`)).toBe('600');
      for (const dir of ['daily', 'daily/2025', 'daily/2025/09', 'daily/2025/09/01', 'daily/2025/09/01/0300', 'drills', 'drills/app']) expect(mode(path.join(root, dir)), `${root} ${dir}`).toBe('700');
    }
  });
});

describe('inputs', () => {
  it('run --slot more than five minutes ahead is refused (exit 2, a clear reason) and starts nothing', async () => {
    const job = await ownJob();
    const out = await backupctl(['--config', job.configFile, 'run', 'app', '--slot', '2099-01-01T03:00:00Z']);
    expect(out.code, out.stdout + out.stderr).toBe(2);
    expect(out.stderr).toMatch(/--slot: slot 2099-01-01T03:00:00Z is in the future \(now is .*; at most 5 minutes ahead are accepted\)/);
    await expect(env.client.workflow.getHandle(backupWorkflowId(job.deployment, 'app', 'full', new Date('2099-01-01T03:00:00Z'))).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });
});
