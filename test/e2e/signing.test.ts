import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupWorkflowId, type BackupResult, type BackupType, type DrillReport, type Manifest, type PruneReport, type RestoreResult } from '../../src/contracts/index.js';
import { layout } from '../../src/repository/layout.js';
import { backupResult } from '../helpers/run-backup.js';
import { runCommand } from '../helpers/util.js';
import { historyText, listFiles, startEnv, tree, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Issue 14, signed manifests: a manifest on the destination altered after signing, or planted by someone without the
// key, is no backup of this deployment: `list` shows it apart, `restore` refuses it (unless --trust-unsigned, said
// loudly), `prune` never deletes it, a diff never takes it as its base, `status` and `drill` ignore it. Key rotation:
// an old key in signing.trust keeps its backups verified. Real servers: Temporal, OpenSSH, SMTP sink.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
let env: Env;
beforeAll(async () => { env = await startEnv(); });
afterAll(async () => { await env?.close(); });

const backupctl = (job: JobSetup, args: string[]) =>
  runCommand(process.execPath, [cli, '--config', job.configFile, ...args], { timeoutMs: 180_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

function runBackup(job: JobSetup, type: BackupType, slot: Date): Promise<BackupResult> {
  return backupResult(env.client, { taskQueue: job.taskQueue, type, slot, workflowId: backupWorkflowId(job.deployment, 'app', type, slot) });
}

interface Listed { destinations: { backups: { path: string; keyId?: string }[]; unverified: { path: string; reason: string; workflowId: string }[] }[] }

describe('signed manifests', () => {
  it('a tampered and a planted manifest: listed as unverified, never restored (but with --trust-unsigned, loudly), pruned, a diff base, the newest backup or drilled', async () => {
    const root = path.join(env.sshd.root, 'tamper');
    mkdirSync(root);
    const job = await writeJob(env, (c) => { c.destinations.nas.path = root; });
    const at = (minute: number) => new Date(Date.UTC(2026, 0, 10, 3, minute, 0));
    const [a, b] = await withWorker(env, job, async () => [await runBackup(job, 'full', at(0)), await runBackup(job, 'full', at(1))]);
    const aPath = a!.locations[0]!.path;
    const bPath = b!.locations[0]!.path;
    expect(existsSync(path.join(root, `${aPath}.manifest.json.sig`))).toBe(true);
    // The private key is read on the worker: no part of it is in the run's history.
    const pem = readFileSync((job.config.signing as { key: { file: string } }).key.file, 'utf8');
    const secret = pem.split('\n')[1]!;
    expect(secret).toMatch(/^[A-Za-z0-9+/=]{40,}$/);
    expect(await historyText(env.client.workflow.getHandle(b!.workflowId))).not.toContain(secret);

    // Tampered: one byte of B's manifest changed after signing; its artifact and the hashes in the manifest still agree.
    const bManifest = path.join(root, `${bPath}.manifest.json`);
    const text = readFileSync(bManifest, 'utf8');
    const i = text.indexOf('"runId": "') + '"runId": "'.length;
    writeFileSync(bManifest, `${text.slice(0, i)}${text[i] === 'x' ? 'y' : 'x'}${text.slice(i + 1)}`);
    // Planted: A's artifact under a newer slot, with a manifest written by someone without the key (or before signing).
    const planted = layout('app', 'full', 'daily', at(2), 'planted-run');
    mkdirSync(path.join(root, planted.dir), { recursive: true });
    copyFileSync(path.join(root, aPath), path.join(root, planted.finalPath));
    const aManifest = JSON.parse(readFileSync(path.join(root, `${aPath}.manifest.json`), 'utf8')) as Manifest;
    writeFileSync(path.join(root, planted.manifestPath), JSON.stringify({
      ...aManifest, slot: at(2).toISOString().replace('.000', ''), workflowId: 'planted-run', createdAt: new Date().toISOString(), artifact: { ...aManifest.artifact, name: planted.artifactName },
    }, null, 2));

    // list: A is the only backup; B and the planted one are listed apart, with the reason.
    const listed = await backupctl(job, ['list', 'app', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const nas = (JSON.parse(listed.stdout) as Listed).destinations[0]!;
    expect(nas.backups.map((x) => x.path)).toEqual([aPath]);
    expect(nas.backups[0]!.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(nas.unverified.map((u) => [u.path, u.reason])).toEqual([
      [planted.finalPath, expect.stringMatching(/^no signature/)],
      [bPath, expect.stringMatching(/does not match the manifest \(altered after signing\)/)],
    ]);
    const listedText = await backupctl(job, ['list', 'app']);
    expect(listedText.stdout).toMatch(/^ {2}UNVERIFIED, not a backup of this deployment/m);
    expect(listedText.stdout).toContain(`${planted.finalPath}: no signature`);

    // status (the freshness check's view): the newest full is A, not the newer planted or tampered one.
    const status = await backupctl(job, ['status', 'app', '--json']);
    expect((JSON.parse(status.stdout) as { jobs: { newest: { full?: { path: string } } }[] }).jobs[0]!.newest.full?.path).toBe(aPath);

    // restore refuses them, before anything is written.
    for (const wid of ['planted-run', b!.workflowId]) {
      const to = path.join(env.tmp.path, `refused-${wid}`);
      const r = await backupctl(job, ['restore', 'app', '--backup', wid, '--to', to, '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ status: 'failed', code: 'MANIFEST_UNVERIFIED', error: expect.stringMatching(/signature does not verify[\s\S]*HINT: .*--trust-unsigned/) });
      expect(existsSync(to)).toBe(false);
    }
    // With --trust-unsigned it is restored, and the output and the result say so.
    const to = path.join(env.tmp.path, 'trusted-anyway');
    const forced = await backupctl(job, ['restore', 'app', '--backup', 'planted-run', '--to', to, '--trust-unsigned', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    const result = JSON.parse(forced.stdout) as RestoreResult;
    expect(result).toMatchObject({ status: 'restored', backup: { workflowId: 'planted-run' }, unverified: [{ path: planted.finalPath, reason: expect.stringMatching(/^no signature/) }] });
    expect(result.warning).toMatch(/^RESTORED WITHOUT A VERIFIED SIGNATURE \(--trust-unsigned\)/);
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));
    const loud = await backupctl(job, ['restore', 'app', '--backup', b!.workflowId, '--to', path.join(env.tmp.path, 'trusted-b'), '--trust-unsigned']);
    expect(loud.code, loud.stderr).toBe(0);
    expect(loud.stdout).toMatch(/^WARNING: RESTORED WITHOUT A VERIFIED SIGNATURE .*altered after signing/m);
    expect(loud.stderr).toMatch(/^WARNING: RESTORED WITHOUT A VERIFIED SIGNATURE/m);
    // A verified backup restores without the flag and without a warning.
    const plain = await backupctl(job, ['restore', 'app', '--backup', a!.workflowId, '--to', path.join(env.tmp.path, 'plain'), '--json']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout)).not.toHaveProperty('warning');

    // A diff takes the newest verified full (A) as its base: neither the newer planted nor the tampered one.
    const diff = await withWorker(env, job, () => runBackup(job, 'diff', at(3)));
    expect(diff.status).toBe('succeeded');
    const diffManifest = JSON.parse(readFileSync(path.join(root, `${diff.locations[0]!.path}.manifest.json`), 'utf8')) as Manifest;
    expect(diffManifest.base).toMatchObject({ workflowId: a!.workflowId, path: aPath });

    // prune (daily: 1) keeps the diff and its base, and never deletes the unverified ones: it leaves them alone.
    const pruner = await writeJob(env, (c) => { c.destinations.nas.path = root; c.jobs.app.retention = { daily: 1 }; });
    const before = listFiles(root);
    const pruned = await withWorker(env, pruner, () => backupctl(pruner, ['prune', 'app', '--json']));
    expect(pruned.code, pruned.stderr).toBe(0);
    const report = JSON.parse(pruned.stdout) as PruneReport;
    expect(report.destinations[0]!.removed).toEqual([]);
    expect(report.destinations[0]!.leftAlone).toEqual(expect.arrayContaining([
      { path: planted.finalPath, reason: expect.stringMatching(/^unverified manifest: no signature/) },
      { path: bPath, reason: expect.stringMatching(/^unverified manifest: .*altered after signing/) },
    ]));
    expect(listFiles(root)).toEqual(before);

    // The drill restores the newest verified backup (the diff on A); a planted newer drill report is not its result.
    const drill = await backupctl(job, ['drill', 'app', '--json']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const drillReport = JSON.parse(drill.stdout) as DrillReport;
    expect(drillReport.backup?.workflowId).toBe(diff.workflowId);
    writeFileSync(path.join(root, 'drills', 'app', '20991231T000000Z.json'), JSON.stringify({ job: 'app', ok: true, finishedAt: '2099-12-31T00:00:00.000Z', workflowId: 'planted-drill', problems: [] }));
    const after = await backupctl(job, ['status', 'app', '--json']);
    expect((JSON.parse(after.stdout) as { jobs: { drill?: { workflowId: string } }[] }).jobs[0]!.drill?.workflowId).toBe(drillReport.workflowId);
  });

  it('keys init and rotation: a backup signed with the old key verifies while its public key is trusted; a worker without a configured key makes its own', async () => {
    const root = path.join(env.sshd.root, 'rotation');
    mkdirSync(root);
    const old = await writeJob(env, (c) => { c.destinations.nas.path = root; });
    const r1 = await withWorker(env, old, () => runBackup(old, 'full', new Date(Date.UTC(2026, 0, 11, 3, 0, 0))));
    const oldKey = (old.config.signing as { key: { file: string } }).key.file;

    // The new key, made by `keys init` where the config says; the old public key stays trusted.
    const newKey = path.join(env.tmp.path, 'rotated', 'signing.key');
    const rotated = await writeJob(env, (c) => { c.destinations.nas.path = root; c.signing = { key: { file: newKey }, trust: [{ file: `${oldKey}.pub` }] }; });
    const init = await backupctl(rotated, ['keys', 'init']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`private key: ${newKey} (mode 0600)`);
    expect(init.stdout).toMatch(/public key for signing.trust on other hosts: ed25519:[A-Za-z0-9_-]{43}/);
    expect(init.stdout).toMatch(/offline .* never on a backup destination/);
    expect([statSync(newKey).mode & 0o777, statSync(`${newKey}.pub`).mode & 0o777]).toEqual([0o600, 0o644]);
    const again = await backupctl(rotated, ['keys', 'init']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; it was not overwritten/);

    const r2 = await withWorker(env, rotated, () => runBackup(rotated, 'full', new Date(Date.UTC(2026, 0, 11, 3, 1, 0))));
    const listed = (JSON.parse((await backupctl(rotated, ['list', 'app', '--json'])).stdout) as Listed).destinations[0]!;
    expect(listed.backups.map((x) => x.path)).toEqual([r2.locations[0]!.path, r1.locations[0]!.path]);
    expect(new Set(listed.backups.map((x) => x.keyId)).size).toBe(2);
    expect(listed.unverified).toEqual([]);
    const restored = await backupctl(rotated, ['restore', 'app', '--backup', r1.workflowId, '--to', path.join(env.tmp.path, 'rotated-restore'), '--json']);
    expect(restored.code, restored.stderr).toBe(0);

    // Without the old key in the trust list its backup is unverified.
    const forgetful = await writeJob(env, (c) => { c.destinations.nas.path = root; c.signing = { key: { file: newKey } }; });
    const narrow = (JSON.parse((await backupctl(forgetful, ['list', 'app', '--json'])).stdout) as Listed).destinations[0]!;
    expect(narrow.backups.map((x) => x.path)).toEqual([r2.locations[0]!.path]);
    expect(narrow.unverified.map((u) => [u.path, u.reason])).toEqual([[r1.locations[0]!.path, expect.stringMatching(/which is not trusted/)]]);

    // No signing key configured (the quick start): the worker creates <stateDir>/keys/signing.key on its first start.
    const fresh = await writeJob(env, (c) => { c.destinations.nas.path = path.join(root, 'fresh'); delete c.signing; });
    mkdirSync(path.join(root, 'fresh'));
    const r3 = await withWorker(env, fresh, () => runBackup(fresh, 'full', new Date(Date.UTC(2026, 0, 11, 3, 2, 0))));
    expect(statSync(path.join(fresh.stateDir, 'keys', 'signing.key')).mode & 0o777).toBe(0o600);
    const own = (JSON.parse((await backupctl(fresh, ['list', 'app', '--json'])).stdout) as Listed).destinations[0]!;
    expect(own.backups.map((x) => x.path)).toEqual([r3.locations[0]!.path]);
  });
});
