import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FreshnessReport } from '../../src/activities/monitor.js';
import { FRESHNESS_WORKFLOW, backupWorkflowId, type BackupResult, type BackupType, type Manifest, type PruneReport } from '../../src/contracts/index.js';
import { layout } from '../../src/repository/layout.js';
import { backupResult, startBackup } from '../helpers/run-backup.js';
import { runCommand } from '../helpers/util.js';
import { listFiles, signAsDeployment, startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// The backup lifecycle against real servers: differential runs (GNU tar --listed-incremental), `list`, retention
// (`prune`) and the orphan sweep.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
let env: Env;
beforeAll(async () => { env = await startEnv(); });
afterAll(async () => { await env?.close(); });

const backupctl = (job: JobSetup, args: string[]) =>
  runCommand(process.execPath, [cli, '--config', job.configFile, ...args], { timeoutMs: 120_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

let minute = 0;
/** A distinct slot per run (workflow IDs must not collide between tests). */
const nextSlot = () => new Date(Date.UTC(2025, 11, 1, 2, minute++, 0));

function runBackup(job: JobSetup, type: BackupType, slot = nextSlot()): Promise<BackupResult> {
  return backupResult(env.client, { taskQueue: job.taskQueue, type, slot, workflowId: backupWorkflowId(job.deployment, 'app', type, slot) });
}

const manifestOf = (r: BackupResult) => JSON.parse(readFileSync(path.join(env.sshd.root, `${r.locations[0]!.path}.manifest.json`), 'utf8')) as Manifest;

/** Unpacks the files component of each artifact in order, as the README says a person restores by hand. */
function unpackChain(results: BackupResult[]): string {
  const out = mkdtempSync(path.join(tmpdir(), 'chain-'));
  for (const r of results) {
    const scratch = mkdtempSync(path.join(tmpdir(), 'artifact-'));
    execFileSync('tar', ['-xf', path.join(env.sshd.root, r.locations[0]!.path), '-C', scratch]);
    execFileSync('sh', ['-c', `zstd -dc '${scratch}/app-files.tar.zst' | tar --listed-incremental=/dev/null -x -C '${out}'`]);
    rmSync(scratch, { recursive: true, force: true });
  }
  return out;
}

/** Every file under `dir` with its content. */
function tree(dir: string): Record<string, string> {
  return Object.fromEntries(listFiles(dir).map((f) => [f, readFileSync(path.join(dir, f), 'utf8')]));
}

describe('differential backups of files sources', () => {
  it('no full yet: a diff becomes a full and says so; then a diff holds only the changes, and full + diff unpack to exactly the new tree', async () => {
    const job = await writeJob(env);
    const { first, diff, nothing } = await withWorker(env, job, async () => {
      const first = await runBackup(job, 'diff');
      writeFileSync(path.join(job.dataDir, 'hello.txt'), 'hello again\n');
      writeFileSync(path.join(job.dataDir, 'added.txt'), 'new file\n');
      mkdirSync(path.join(job.dataDir, 'newdir'));
      writeFileSync(path.join(job.dataDir, 'newdir', 'deep.txt'), 'deep\n');
      rmSync(path.join(job.dataDir, 'sub', 'numbers.csv'));
      const diff = await runBackup(job, 'diff');
      const nothing = await runBackup(job, 'diff');
      return { first, diff, nothing };
    });
    // No full existed: the diff run stored a full (named and typed so) and warned.
    expect(first.type).toBe('full');
    expect(first.status).toBe('succeeded_with_warnings');
    expect(first.warnings.join('\n')).toMatch(/no usable full backup .* this diff run stored a full backup/);
    // It keeps the name of the run (a full run of the same slot has its own), the manifest says what it holds.
    expect(first.locations[0]!.path).toMatch(/app-diff-\d{8}T\d{6}Z\.tar$/);
    const fullManifest = manifestOf(first);
    expect(fullManifest.type).toBe('full');
    expect(fullManifest.base).toBeUndefined();
    // The full carries its GNU tar snapshot as a member, recorded in the manifest.
    expect(fullManifest.components[0]!.snapshot).toMatchObject({ member: 'app-files.snar', size: expect.any(Number) });
    expect(execFileSync('tar', ['-tf', path.join(env.sshd.root, first.locations[0]!.path)], { encoding: 'utf8' }).trim().split('\n')).toEqual(['app-files.tar.zst', 'app-files.snar']);

    expect(diff.status).toBe('succeeded');
    expect(diff.type).toBe('diff');
    const diffManifest = manifestOf(diff);
    expect(diffManifest.base).toEqual({ workflowId: fullManifest.workflowId, slot: fullManifest.slot, path: first.locations[0]!.path, size: fullManifest.artifact.size, sha256: fullManifest.artifact.sha256 });
    // Only the changes are stored: the unchanged big file is not in the diff.
    expect(diffManifest.components[0]!.stats.files).toBe(3);
    const listing = execFileSync('sh', ['-c', `tar -xOf '${path.join(env.sshd.root, diff.locations[0]!.path)}' app-files.tar.zst | zstd -dc | tar -t`], { encoding: 'utf8' });
    expect(listing).not.toContain('numbers.csv');
    expect(listing).toContain('added.txt');

    // full then diff, unpacked with GNU tar by hand, is exactly the current tree (the deleted file is gone).
    const restored = unpackChain([first, diff]);
    expect(tree(path.join(restored, job.dataDir))).toEqual(tree(job.dataDir));
    expect(listFiles(path.join(restored, job.dataDir))).not.toContain('sub/numbers.csv');
    // The full alone is the earlier state.
    const earlier = unpackChain([first]);
    expect(readFileSync(path.join(earlier, job.dataDir, 'hello.txt'), 'utf8')).toBe('hello backup\n');
    expect(listFiles(path.join(earlier, job.dataDir))).toContain('sub/numbers.csv');

    // A diff with nothing changed since the full is still against the full (differential): it holds the same changes.
    expect(nothing.status).toBe('succeeded');
    expect(manifestOf(nothing).base?.workflowId).toBe(fullManifest.workflowId);
    expect(tree(path.join(unpackChain([first, nothing]), job.dataDir))).toEqual(tree(job.dataDir));

    // `list` shows the finalized backups only: a temporary file and an artifact without manifest are not backups.
    const dir = path.dirname(path.join(env.sshd.root, diff.locations[0]!.path));
    const stray = layout('app', 'full', 'daily', new Date('2025-12-01T02:59:00Z'), 'backup-app-full-x');
    mkdirSync(path.join(env.sshd.root, stray.dir), { recursive: true });
    writeFileSync(path.join(env.sshd.root, stray.finalPath), 'no manifest');
    writeFileSync(path.join(dir, `.${path.basename(diff.locations[0]!.path)}.backup-app-diff-y.tmp`), 'partial');
    const r = await backupctl(job, ['list', 'app', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout) as { destinations: { destination: string; backups: { type: string; path: string; sha256: string; size: number; base?: { path: string } }[]; anomalies: { path: string; problem: string }[]; temporary: unknown[] }[] };
    const nas = listed.destinations[0]!;
    expect(nas.backups.map((b) => [b.type, b.path, b.base?.path])).toEqual([
      ['diff', nothing.locations[0]!.path, first.locations[0]!.path],
      ['diff', diff.locations[0]!.path, first.locations[0]!.path],
      ['full', first.locations[0]!.path, undefined],
    ].filter((x) => x[1]!.startsWith('daily/2025/12/01')));
    expect(nas.backups.find((b) => b.type === 'full')).toMatchObject({ sha256: fullManifest.artifact.sha256, size: fullManifest.artifact.size });
    expect(nas.anomalies).toContainEqual(expect.objectContaining({ path: stray.finalPath, problem: 'no manifest' }));
    expect(nas.temporary).toHaveLength(1);
    const text = await backupctl(job, ['list', 'app']);
    expect(text.stdout).toContain(`(base: ${first.locations[0]!.path})`);
    rmSync(path.join(env.sshd.root, stray.finalPath));
    rmSync(path.join(dir, `.${path.basename(diff.locations[0]!.path)}.backup-app-diff-y.tmp`));
  });

  it('issue 6 #2: a diff run that fails after its dump leaves the baseline alone; the next diff still holds every change since the full', async () => {
    // A non-files source (like a database) is dumped whole in a diff run.
    const job = await writeJob(env, (c) => { c.jobs.app.sources.push({ name: 'app-cmd', type: 'command', command: ['echo', 'dumped whole'], extension: 'txt' }); });
    let failNextUpload = false;
    const { full, failed, next, atNext, recovered } = await withWorker(env, job, async () => {
      const full = await runBackup(job, 'full');
      writeFileSync(path.join(job.dataDir, 'first-change.txt'), 'made before the failed diff\n');
      rmSync(path.join(job.dataDir, 'hello.txt'));
      failNextUpload = true;
      const failed = await runBackup(job, 'diff').then(() => undefined, (e: unknown) => e);
      writeFileSync(path.join(job.dataDir, 'second-change.txt'), 'made after the failed diff\n');
      const next = await runBackup(job, 'diff');
      const atNext = tree(job.dataDir);
      // The worker's state is lost: the next diff takes the full's snapshot from the full's artifact.
      rmSync(path.join(job.stateDir, 'snapshots'), { recursive: true });
      writeFileSync(path.join(job.dataDir, 'third-change.txt'), 'made after the state was lost\n');
      const recovered = await runBackup(job, 'diff');
      return { full, failed, next, atNext, recovered };
    }, (a) => ({
      ...a,
      upload: async (i) => {
        if (failNextUpload) {
          failNextUpload = false;
          throw ApplicationFailure.create({ type: 'UPLOAD_CORRUPTED', message: 'injected: the upload broke after the dump', nonRetryable: true });
        }
        return a.upload(i);
      },
    }));
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    expect(next.type).toBe('diff');
    expect(manifestOf(next).base?.workflowId).toBe(manifestOf(full).workflowId);
    const listing = execFileSync('sh', ['-c', `tar -xOf '${path.join(env.sshd.root, next.locations[0]!.path)}' app-files.tar.zst | zstd -dc | tar -t`], { encoding: 'utf8' });
    expect(listing).toContain('first-change.txt');
    expect(listing).toContain('second-change.txt');
    const restored = unpackChain([full, next]);
    expect(tree(path.join(restored, job.dataDir))).toEqual(atNext);
    expect(listFiles(path.join(restored, job.dataDir))).not.toContain('hello.txt');
    expect(manifestOf(next).components.map((c) => c.name)).toEqual(['app-files', 'app-cmd']);
    expect(execFileSync('sh', ['-c', `tar -xOf '${path.join(env.sshd.root, next.locations[0]!.path)}' app-cmd.txt.zst | zstd -dc`], { encoding: 'utf8' })).toBe('dumped whole\n');
    expect(recovered).toMatchObject({ type: 'diff', status: 'succeeded' });
    expect(manifestOf(recovered).base?.workflowId).toBe(manifestOf(full).workflowId);
    expect(manifestOf(recovered).components[0]!.stats.files).toBe(3);
    expect(tree(path.join(unpackChain([full, recovered]), job.dataDir))).toEqual(tree(job.dataDir));
  });
});

/** Writes a finalized-looking backup (artifact + manifest, signed with the deployment's key) straight onto the destination. */
function craft(root: string, slot: Date, tier: string, type: BackupType, base?: { slot: Date; tier: string }): string {
  const workflowId = backupWorkflowId('crafted', 'app', type, slot);
  const p = layout('app', type, tier, slot, workflowId);
  mkdirSync(path.join(root, p.dir), { recursive: true });
  const data = `artifact ${workflowId}`;
  writeFileSync(path.join(root, p.finalPath), data);
  const manifest: Partial<Manifest> = {
    format: 'backupctl-manifest/1', job: 'app', type, tier, slot: slot.toISOString().replace('.000', ''), workflowId, runId: 'r', createdAt: slot.toISOString(),
    artifact: { name: p.artifactName, size: data.length, sha256: '0'.repeat(64), format: 'tar' }, components: [], warnings: [], tools: {},
  };
  if (base) {
    const b = layout('app', 'full', base.tier, base.slot, backupWorkflowId('crafted', 'app', 'full', base.slot));
    manifest.base = { workflowId: backupWorkflowId('crafted', 'app', 'full', base.slot), slot: base.slot.toISOString(), path: b.finalPath, size: 1, sha256: '0'.repeat(64) };
  }
  writeFileSync(path.join(root, p.manifestPath), JSON.stringify(manifest));
  signAsDeployment(env, path.join(root, p.manifestPath));
  return p.finalPath;
}

describe('retention (prune) and the orphan sweep', () => {
  it('issue 6 #5: 40 backups across tiers: prune keeps exactly what the policy says, the fulls kept diffs need, the newest verified; --dry-run deletes nothing', async () => {
    const root = path.join(env.tmp.path, 'retention-dest');
    mkdirSync(root);
    const job = await writeJob(env, (c) => {
      c.destinations.nas = { type: 'local', path: root };
      c.jobs.app.retention = { daily: 5, weekly: 3, monthly: '120d' };
    });
    const day = 86_400_000;
    const now = Date.now();
    const at = (daysAgo: number) => new Date(Math.floor((now - daysAgo * day) / 60_000) * 60_000);
    // daily: 20 backups, one a day, a full every 7th day and diffs against it in between (days 0..19 ago).
    const daily: string[] = [];
    let lastFull = 19;
    for (let i = 19; i >= 0; i--) {
      if (i % 7 === 5) {
        lastFull = i;
        daily.push(craft(root, at(i), 'daily', 'full'));
      } else {
        daily.push(craft(root, at(i), 'daily', 'diff', { slot: at(lastFull), tier: 'daily' }));
      }
    }
    daily.reverse(); // newest first: daily[0] is today
    // weekly: 12 fulls, one a week; monthly: 8 fulls, one every 30 days (10 days ago .. 220 days ago).
    const weekly = Array.from({ length: 12 }, (_, i) => craft(root, at(3 + 7 * i), 'weekly', 'full'));
    const monthly = Array.from({ length: 8 }, (_, i) => craft(root, at(10 + 30 * i), 'monthly', 'full'));
    expect(daily.length + weekly.length + monthly.length).toBe(40);
    // Not backups: left alone and reported, never deleted.
    const noManifest = layout('app', 'full', 'daily', at(30), 'x');
    mkdirSync(path.join(root, noManifest.dir), { recursive: true });
    writeFileSync(path.join(root, noManifest.finalPath), 'artifact without manifest');
    const unreadable = craft(root, at(31), 'daily', 'full');
    writeFileSync(path.join(root, `${unreadable}.manifest.json`), '{ not json');

    // The policy, by hand: daily 5 newest = days 0..4 (diffs of the full of day 5, which is kept for them);
    // weekly 3 newest; monthly younger than 120 days = 10, 40, 70, 100 days ago.
    const expectedKept = [...daily.slice(0, 6), ...weekly.slice(0, 3), ...monthly.slice(0, 4), noManifest.finalPath, unreadable].sort();
    const before = listFiles(root);

    const dry = await withWorker(env, job, () => backupctl(job, ['prune', 'app', '--dry-run', '--json']));
    expect(dry.code, dry.stderr).toBe(0);
    expect(listFiles(root)).toEqual(before);
    const dryReport = JSON.parse(dry.stdout) as PruneReport;
    expect(dryReport.dryRun).toBe(true);
    expect(dryReport.destinations[0]!.removed).toHaveLength(40 - 13);
    expect(dryReport.destinations[0]!.kept.find((k) => k.path === daily[5])!.reasons.join(' ')).toMatch(/base of the kept diff/);
    expect(dryReport.destinations[0]!.kept.find((k) => k.path === daily[0])!.reasons.join(' ')).toMatch(/newest verified backup/);
    expect(dryReport.destinations[0]!.leftAlone.map((l) => [l.path, l.reason.split(':')[0]])).toEqual(expect.arrayContaining([
      [noManifest.finalPath, 'no manifest'], [unreadable, 'unreadable manifest'],
    ]));

    const real = await withWorker(env, job, () => backupctl(job, ['prune', 'app']));
    expect(real.code, real.stderr + real.stdout).toBe(0);
    expect(real.stdout).toMatch(/27 removed/);
    const artifacts = listFiles(root).filter((f) => f.endsWith('.tar')).sort();
    expect(artifacts).toEqual(expectedKept);
    // Every kept backup still has its manifest; no manifest was left without its artifact.
    expect(listFiles(root).filter((f) => f.endsWith('.manifest.json')).map((f) => f.replace(/\.manifest\.json$/, '')).sort()).toEqual(expectedKept.filter((p) => p !== noManifest.finalPath));

    // A rule that would delete every backup of a tier is refused: nothing is deleted.
    const job2 = await writeJob(env, (c) => {
      c.destinations.nas = { type: 'local', path: root };
      c.jobs.app.retention = { daily: 5, weekly: 3, monthly: '5d' };
    });
    const refused = await withWorker(env, job2, () => backupctl(job2, ['prune', 'app']));
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/REFUSED: the rule "monthly: 120 h" would delete all 4 backups of tier monthly/);
    expect(listFiles(root).filter((f) => f.endsWith('.tar')).sort()).toEqual(expectedKept);
  });

  it('retention is applied after each successful run: the run that makes a third backup removes the oldest (daily: 2)', async () => {
    const root = path.join(env.sshd.root, 'own-destination');
    mkdirSync(root);
    const job = await writeJob(env, (c) => {
      c.destinations.nas.path = root;
      c.jobs.app.retention = { daily: 2 };
    });
    const [a, b, c] = await withWorker(env, job, async () => [await runBackup(job, 'full'), await runBackup(job, 'full'), await runBackup(job, 'full')]);
    expect(a!.pruned).toEqual([]);
    expect(b!.pruned).toEqual([]);
    expect(c).toMatchObject({ status: 'succeeded', pruned: [`nas:${a!.locations[0]!.path}`] });
    const remote = listFiles(root);
    expect(remote).toHaveLength(6);
    expect(remote).not.toContain(a!.locations[0]!.path);
    expect(remote).not.toContain(`${a!.locations[0]!.path}.manifest.json`);
    expect(remote).not.toContain(`${a!.locations[0]!.path}.manifest.json.sig`);
    for (const r of [b!, c!]) expect(remote).toEqual(expect.arrayContaining([r.locations[0]!.path, `${r.locations[0]!.path}.manifest.json`, `${r.locations[0]!.path}.manifest.json.sig`]));
  });

  it('issue 6 #6: a stale temporary file of a finished workflow is removed; one of a running workflow is left alone (prune and the freshness check)', async () => {
    const job = await writeJob(env);
    const stale = Date.now() / 1000 - 3 * 3600;
    const { done, running } = await withWorker(env, job, async () => {
      const done = await runBackup(job, 'full');
      // A run that stays running: its task queue has no worker.
      const slot = nextSlot();
      const running = await startBackup(env.client, { taskQueue: `${job.taskQueue}-nobody`, slot, workflowId: `${backupWorkflowId(job.deployment, 'app', 'full', slot)}-running` });
      return { done, running };
    });
    try {
      const dir = path.dirname(path.join(env.sshd.root, done.locations[0]!.path));
      const name = path.basename(done.locations[0]!.path);
      const orphan = path.join(dir, `.${name}.${done.workflowId}.tmp`);
      const live = path.join(dir, `.${name}.${running.workflowId}.tmp`);
      const young = path.join(dir, `.${name}.backup-app-full-young.tmp`);
      for (const f of [orphan, live, young]) writeFileSync(f, 'partial upload');
      utimesSync(orphan, stale, stale);
      utimesSync(live, stale, stale);
      // Local staging of the worker: a stale folder of the finished run goes, the running run's stays.
      const staleStaging = path.join(job.stateDir, 'staging', done.workflowId);
      const liveStaging = path.join(job.stateDir, 'staging', running.workflowId);
      for (const d of [staleStaging, liveStaging]) {
        mkdirSync(d, { recursive: true });
        writeFileSync(path.join(d, 'artifact.tar'), 'partial');
        utimesSync(d, stale, stale);
      }
      const r = await withWorker(env, job, () => backupctl(job, ['prune', 'app', '--json']));
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as PruneReport;
      const rel = (f: string) => path.relative(env.sshd.root, f);
      expect(report.orphans).toEqual(expect.arrayContaining([
        expect.objectContaining({ path: rel(orphan), action: 'removed', workflowId: done.workflowId }),
        expect.objectContaining({ path: rel(live), action: 'kept', reason: 'its workflow is running' }),
        expect.objectContaining({ path: rel(young), action: 'kept' }),
      ]));
      expect(report.staging).toEqual(expect.arrayContaining([
        expect.objectContaining({ path: staleStaging, action: 'removed' }), expect.objectContaining({ path: liveStaging, action: 'kept' }),
      ]));
      expect(existsSync(staleStaging)).toBe(false);
      expect(existsSync(path.join(liveStaging, 'artifact.tar'))).toBe(true);
      const remaining = listFiles(dir);
      expect(remaining).not.toContain(path.basename(orphan));
      expect(remaining).toContain(path.basename(live));
      // The freshness check sweeps too.
      const again = path.join(dir, `.${name}.backup-app-full-ended-long-ago.tmp`);
      writeFileSync(again, 'partial upload');
      utimesSync(again, stale, stale);
      const fresh = await withWorker(env, job, () => env.client.workflow.execute(FRESHNESS_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `freshness-${job.taskQueue}` })) as FreshnessReport;
      expect(fresh.orphans).toEqual(expect.arrayContaining([expect.objectContaining({ path: rel(again), action: 'removed' }), expect.objectContaining({ path: rel(live), action: 'kept' })]));
      expect(listFiles(dir)).toEqual(expect.arrayContaining([path.basename(live)]));
      expect(listFiles(dir)).not.toContain(path.basename(again));
    } finally {
      await running.terminate('test done');
    }
  });
});
