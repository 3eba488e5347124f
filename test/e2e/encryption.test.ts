import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { BackupType, DrillReport, Manifest, RestoreResult } from '../../src/contracts/index.js';
import { memberRanges } from '../../src/restore/chain.js';
import type { MariadbHandle } from '../helpers/mariadb.js';
import type { PostgresHandle } from '../helpers/postgres.js';
import { backupResult, runBackup } from '../helpers/run-backup.js';
import { runCommand } from '../helpers/util.js';
import { databaseSources, listFiles, signAsDeployment, startDatabaseEnv, tree, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Issue 15: encryption at rest with age. Workers hold only public keys (recipients); an identity is needed only where
// something is decrypted (restore --identity, drill.identity). Real servers on loopback: Temporal, OpenSSH, MariaDB,
// PostgreSQL, SMTP sink; the real `age` tool.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
const DB_PASSWORD = 'enc-secret-Hy4t';
/** Known to be in the source (a file's name and content, a database row): it must appear nowhere in what is stored. */
const MARKER = 'MARKER-plaintext-7f3a9c-do-not-store';
let env: Env;
let maria: MariadbHandle;
let pg: PostgresHandle;
let identity: string;
let recipient: string;
let wrongIdentity: string;

const backupctl = (args: string[]) => runCommand(process.execPath, [cli, ...args], { timeoutMs: 180_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });
const sh = (script: string) => runCommand('sh', ['-c', script], { timeoutMs: 60_000 });

beforeAll(async () => {
  ({ env, maria, pg } = await startDatabaseEnv('TEST_ENC_DB_PASSWORD', DB_PASSWORD, 'ALL PRIVILEGES'));
  await maria.sql(`
    CREATE DATABASE shop;
    USE shop;
    CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(200)) ENGINE=InnoDB;
    INSERT INTO notes SELECT seq, CONCAT('note ', seq) FROM seq_1_to_3000;
    INSERT INTO notes VALUES (9999, '${MARKER}');`);
  await pg.sql(`CREATE TABLE entries (id serial PRIMARY KEY, memo text);
    INSERT INTO entries (memo) SELECT md5(g::text) FROM generate_series(1, 3000) g;
    INSERT INTO entries (memo) VALUES ('${MARKER}');`, 'ledger');
  // The key pair, made as the README says: `backupctl keys age-generate FILE`.
  identity = path.join(env.tmp.path, 'keys', 'age-identity.txt');
  const gen = await backupctl(['keys', 'age-generate', identity, '--json']);
  expect(gen.code, gen.stderr).toBe(0);
  ({ recipient } = JSON.parse(gen.stdout) as { recipient: string });
  expect(recipient).toMatch(/^age1[a-z0-9]{58}$/);
  expect(readFileSync(identity, 'utf8')).toMatch(/AGE-SECRET-KEY-/);
  const again = await backupctl(['keys', 'age-generate', identity]);
  expect(again.code).not.toBe(0);
  expect(again.stderr).toMatch(/exists; an age identity is never overwritten/);
  wrongIdentity = path.join(env.tmp.path, 'keys', 'other-identity.txt');
  expect((await runCommand('age-keygen', ['-o', wrongIdentity])).code).toBe(0);
}, 240_000);
afterAll(async () => { await Promise.all([env?.close(), maria?.stop(), pg?.stop()]); });

let minute = 0;
const slot = () => new Date(Date.UTC(2025, 9, 1, 3, minute++, 0));

/** The recipients: the key pair's public key from a recipients file, and a second (inline) recipient. */
async function encryptedJob(patch: (c: Record<string, any>) => void = () => undefined): Promise<JobSetup> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const second = (await runCommand('sh', ['-c', 'age-keygen 2>/dev/null | age-keygen -y'])).stdout.trim();
  return writeJob(env, (c) => {
    const recipientsFile = path.join(path.dirname(c.stateDir as string), 'recipients.txt');
    mkdirSync(path.dirname(recipientsFile), { recursive: true });
    writeFileSync(recipientsFile, `# backupctl recipients\n${recipient}\n`);
    c.encryption = { recipients: [{ file: recipientsFile }, second] };
    c.settings.heartbeatTimeout = '30s';
    c.settings.retries = 2;
    patch(c);
  });
}

function addMarkerFiles(job: JobSetup): void {
  writeFileSync(path.join(job.dataDir, `${MARKER}.txt`), `the plan: ${MARKER}\n`);
  writeFileSync(path.join(job.dataDir, 'sub', 'notes.md'), `${'lorem ipsum '.repeat(5000)}\n${MARKER}\n`);
}

const run = (job: JobSetup, type: BackupType = 'full', s = slot()) => backupResult(env.client, { taskQueue: job.taskQueue, type, slot: s });
const manifestOf = (p: string) => JSON.parse(readFileSync(path.join(env.sshd.root, `${p}.manifest.json`), 'utf8')) as Manifest;
const mariaState = (db: string) => maria.sql(`SELECT COUNT(*), SHA2(GROUP_CONCAT(CONCAT_WS('|', id, body) ORDER BY id SEPARATOR ','), 256) FROM ${db}.notes`);
const pgState = (db: string) => pg.sql("SELECT count(*) || '|' || md5(string_agg(id || ':' || memo, ',' ORDER BY id)) FROM entries", db);
const dirEntries = (d: string) => (existsSync(d) ? readdirSync(d) : []);

describe('encryption at rest (age)', () => {
  let job: JobSetup;
  let full: { path: string; workflowId: string; sha256: string };

  it('an encrypted full over SFTP: the marker appears nowhere in the stored bytes; every member is its own age file; restore --identity gives the identical tree and databases', async () => {
    job = await encryptedJob((c) => { c.jobs.app.sources.push(...Object.values(databaseSources(maria, pg, 'TEST_ENC_DB_PASSWORD'))); });
    addMarkerFiles(job);
    const r = await withWorker(env, job, () => run(job));
    expect(r.status).toBe('succeeded');
    full = { path: r.locations[0]!.path, workflowId: r.workflowId, sha256: r.sha256 };
    const stored = readFileSync(path.join(env.sshd.root, full.path));
    // The raw bytes: not the marker, nor its name in a tar header or the GNU tar snapshot.
    expect(stored.includes(Buffer.from(MARKER))).toBe(false);
    expect(stored.includes(Buffer.from('lorem ipsum'))).toBe(false);
    // Size and SHA-256 are of the stored (encrypted) bytes.
    expect(stored.length).toBe(r.size);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(r.sha256);

    const m = manifestOf(full.path);
    expect(m.encryption).toEqual({ type: 'age', recipients: [recipient, expect.stringMatching(/^age1/)] });
    expect(m.components.map((c) => c.member)).toEqual(['app-files.tar.zst', 'shop-db.sql.zst', 'ledger-db.tar.zst']);
    for (const c of m.components) {
      expect(c.plaintextSize).toBeGreaterThan(0);
      expect(c.size).toBeGreaterThan(c.plaintextSize!);
    }
    expect(m.components[0]!.snapshot).toMatchObject({ member: 'app-files.snar', plaintextSize: expect.any(Number) });

    // By hand, as the README says: split the artifact's members with tar, then age -d -i each one.
    const hand = path.join(env.tmp.path, 'by-hand');
    mkdirSync(path.join(hand, 'members'), { recursive: true });
    mkdirSync(path.join(hand, 'tree'));
    const q = (s: string) => `'${s}'`;
    const byHand = await sh([
      `tar -xf ${q(path.join(env.sshd.root, full.path))} -C ${q(path.join(hand, 'members'))}`,
      `for f in ${q(path.join(hand, 'members'))}/*; do head -c 22 "$f" | grep -q '^age-encryption.org/v1' || { echo "not an age file: $f"; exit 1; }; done`,
      `age -d -i ${q(identity)} ${q(path.join(hand, 'members', 'app-files.tar.zst'))} | zstd -d | tar --listed-incremental=/dev/null -x -C ${q(path.join(hand, 'tree'))}`,
      `age -d -i ${q(identity)} ${q(path.join(hand, 'members', 'shop-db.sql.zst'))} | zstd -d | grep -c ${q(MARKER)}`,
    ].join(' && '));
    expect(byHand.code, byHand.stdout + byHand.stderr).toBe(0);
    expect(readdirSync(path.join(hand, 'members')).sort()).toEqual(['app-files.snar', 'app-files.tar.zst', 'ledger-db.tar.zst', 'shop-db.sql.zst']);
    expect(tree(path.join(hand, 'tree', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));

    // config check: the recipients (files read on the worker) and the age tool.
    const checked = await backupctl(['--config', job.configFile, 'config', 'check']);
    expect(checked.stdout).toMatch(new RegExp(`ok {4}job app encryption: age v?1\\.\\S+, to 2 recipient\\(s\\): ${recipient}, age1`));

    // list --json: which recipients each backup can be opened with.
    const list = await backupctl(['--config', job.configFile, 'list', 'app', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as { destinations: { backups: { path: string; encryption?: { recipients: string[] } }[] }[] };
    expect(listed.destinations[0]!.backups.find((b) => b.path === full.path)?.encryption?.recipients).toEqual(m.encryption!.recipients);

    const to = path.join(env.tmp.path, 'restore-ok', 'target');
    const out = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--identity', identity, '--into-databases', 'shop-db=shop_dec,ledger-db.ledger=ledger_dec', '--json']);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    const result = JSON.parse(out.stdout) as RestoreResult;
    expect(result).toMatchObject({ status: 'restored', backup: { workflowId: r.workflowId } });
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', job.dataDir)))).toEqual(tree(job.dataDir));
    expect(readFileSync(path.join(to, 'databases', 'shop-db.sql'), 'utf8')).toContain(MARKER);
    expect(await mariaState('shop_dec')).toBe(await mariaState('shop'));
    expect(await pgState('ledger_dec')).toBe(await pgState('ledger'));
    // No plaintext left in staging.
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
  });

  it('restore without an identity, and with a wrong one: a clear ENCRYPTION_IDENTITY naming the recipients; nothing at --to', async () => {
    const parent = path.join(env.tmp.path, 'restore-no-identity');
    const to = path.join(parent, 'target');
    const none = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--json']);
    expect(none.code).toBe(1);
    const f1 = JSON.parse(none.stdout) as { code: string; error: string };
    expect(f1.code).toBe('ENCRYPTION_IDENTITY');
    expect(f1.error).toContain(`is encrypted with age to ${recipient}`);
    expect(f1.error).toMatch(/no identity was given; nothing was unpacked/);
    expect(dirEntries(parent)).toEqual([]);

    const wrong = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--identity', wrongIdentity, '--json']);
    expect(wrong.code).toBe(1);
    const f2 = JSON.parse(wrong.stdout) as { code: string; error: string };
    expect(f2.code).toBe('ENCRYPTION_IDENTITY');
    expect(f2.error).toContain(`is encrypted with age to ${recipient}`);
    expect(f2.error).toMatch(/the identity \S+other-identity.txt opens none of them/);
    // The secret key itself is in no message.
    expect(f2.error).not.toMatch(/AGE-SECRET-KEY/);
    expect(dirEntries(parent)).toEqual([]);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
  });

  it('a drill with drill.identity passes: every component decrypted and authenticated, files counted, dumps loaded; its RTO reported', async () => {
    (job.config as { jobs: { app: Record<string, unknown> } }).jobs.app.drill = { identity: { file: identity }, notifyOnSuccess: true };
    writeFileSync(job.configFile, stringify(job.config));
    const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const report = JSON.parse(drill.stdout) as DrillReport;
    expect(report).toMatchObject({ ok: true, problems: [] });
    expect(report.restoreMs).toBeGreaterThan(0);
    const checks = report.checks.join('\n');
    expect(checks).toMatch(/its 3 components decrypted with drill.identity and authenticated by age/);
    expect(checks).toMatch(/files app-files: 4 files and \d+ bytes, as recorded/);
    expect(checks).toMatch(/MariaDB\/MySQL shop-db.shop: loaded into a scratch database/);
    expect(checks).toMatch(/PostgreSQL ledger-db.ledger: loaded into a scratch database/);
    const mail = await env.smtp.waitFor((mm) => mm.subject?.includes('DRILL OK: app') === true && mm.text?.includes(report.workflowId) === true);
    expect(mail.text).toMatch(/Restore time \(measured RTO\): \d+ s/);
  });

  it('one flipped byte in the stored ciphertext, the manifest\'s hashes adjusted and re-signed: restore refused after decryption fails, nothing at --to; the drill fails and is mailed', async () => {
    const artifact = path.join(env.sshd.root, full.path);
    const manifestFile = `${artifact}.manifest.json`;
    const m = manifestOf(full.path);
    const bytes = readFileSync(artifact);
    // Deep inside the files component's ciphertext (past age's header): age notices only when it authenticates that chunk.
    const range = memberRanges(m.components)[0]!;
    const at = range.start + Math.floor(range.size / 2);
    bytes[at] = bytes[at]! ^ 0x01;
    writeFileSync(artifact, bytes);
    m.artifact.sha256 = createHash('sha256').update(bytes).digest('hex');
    m.components[0]!.sha256 = createHash('sha256').update(bytes.subarray(range.start, range.start + range.size)).digest('hex');
    writeFileSync(manifestFile, JSON.stringify(m));
    signAsDeployment(env, manifestFile);

    const parent = path.join(env.tmp.path, 'restore-flipped');
    const to = path.join(parent, 'target');
    const res = await backupctl(['--config', job.configFile, 'restore', 'app', '--to', to, '--identity', identity, '--into-databases', 'shop-db=shop_never', '--json']);
    expect(res.code).toBe(1);
    const failed = JSON.parse(res.stdout) as { code: string; error: string };
    expect(failed.code).toBe('ENCRYPTION_CORRUPT');
    expect(failed.error).toMatch(/failed in the unpack step: restore refused: component app-files.tar.zst of \S+ failed decryption: age exited 1: .*failed to decrypt and authenticate/s);
    expect(dirEntries(parent)).toEqual([]);
    expect((await maria.sql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop_never'")).trim()).toBe('0');
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);

    const drill = await backupctl(['--config', job.configFile, 'drill', 'app', '--json']);
    expect(drill.code).toBe(1);
    const report = JSON.parse(drill.stdout) as DrillReport;
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatch(/component app-files.tar.zst of \S+ failed decryption.*\(ENCRYPTION_CORRUPT\)/s);
    const mail = await env.smtp.waitFor((mm) => mm.subject?.includes('DRILL FAILED: app') === true && mm.text?.includes(report.workflowId) === true);
    expect(mail.text).toContain('ENCRYPTION_CORRUPT');
  });

  it('a worker with only recipients (no identity) makes diffs against its own full; restore of the chain gives the later tree; without its plaintext snapshot a diff becomes a full and says why, unless the worker holds an identity (drill.identity) to read the encrypted snapshot member', async () => {
    const j = await encryptedJob();
    addMarkerFiles(j);
    expect(JSON.stringify(j.config)).not.toMatch(/identity/);
    const fullSlot = new Date('2025-10-02T03:00:00Z');
    const diffSlot = new Date('2025-10-02T09:00:00Z');
    const { f, d } = await withWorker(env, j, async () => {
      const f = await run(j, 'full', fullSlot);
      writeFileSync(path.join(j.dataDir, 'added.txt'), `added after the full ${MARKER}\n`);
      rmSync(path.join(j.dataDir, 'sub', 'numbers.csv'));
      const d = await run(j, 'diff', diffSlot);
      return { f, d };
    });
    expect(d.type).toBe('diff');
    expect(d.base?.workflowId).toBe(f.workflowId);
    const dm = manifestOf(d.locations[0]!.path);
    expect(dm.encryption?.recipients[0]).toBe(recipient);
    expect(readFileSync(path.join(env.sshd.root, d.locations[0]!.path)).includes(Buffer.from(MARKER))).toBe(false);

    const to = path.join(env.tmp.path, 'restore-diff', 'target');
    const out = await backupctl(['--config', j.configFile, 'restore', 'app', '--to', to, '--identity', identity, '--json']);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    const result = JSON.parse(out.stdout) as RestoreResult;
    expect(result.chain.map((a) => a.workflowId)).toEqual([f.workflowId, d.workflowId]);
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', j.dataDir)))).toEqual(tree(j.dataDir));

    // The worker's plaintext snapshot copy is lost: the snapshot member is encrypted and the worker holds no identity.
    rmSync(path.join(j.stateDir, 'snapshots'), { recursive: true, force: true });
    const again = await withWorker(env, j, () => run(j, 'diff', new Date('2025-10-02T10:00:00Z')));
    expect(again.type).toBe('full');
    expect(again.warnings.join('\n')).toMatch(/the full is encrypted \(age, to age1[^)]+\) and this worker holds no identity to read its snapshot members/);

    // A worker that does hold an identity (drill.identity) reads the encrypted snapshot member from the full's artifact.
    (j.config as { jobs: { app: Record<string, unknown> } }).jobs.app.drill = { identity: { file: identity } };
    writeFileSync(j.configFile, stringify(j.config));
    rmSync(path.join(j.stateDir, 'snapshots'), { recursive: true, force: true });
    const recovered = await withWorker(env, j, () => run(j, 'diff', new Date('2025-10-02T11:00:00Z')));
    expect(recovered.type).toBe('diff');
    expect(recovered.base?.workflowId).toBe(again.workflowId);
    expect(readdirSync(path.join(j.stateDir, 'snapshots', 'app'))).toContain(again.workflowId);
  });

  it('a recipients file that cannot be read, or holds a private key: the run fails (CONFIG_INVALID) before anything is stored, never as a plaintext backup; the failure is mailed', async () => {
    const j = await encryptedJob();
    const file = path.join(path.dirname(j.stateDir), 'recipients.txt');
    rmSync(file);
    const gone = await withWorker(env, j, () => runBackup(env.client, { taskQueue: j.taskQueue, slot: new Date('2025-10-04T03:00:00Z') }));
    expect(gone.status).toBe('failed');
    if (gone.status !== 'failed') return;
    expect(gone.failure.code).toBe('CONFIG_INVALID');
    expect(gone.failure.message).toMatch(/failed in the dump step: encryption: cannot read the recipients file \S+recipients.txt/);
    const mail = await env.smtp.waitFor((mm) => mm.subject?.includes('FAILED') === true && mm.text?.includes(gone.handle.workflowId) === true);
    expect(mail.text).toContain('CONFIG_INVALID');
    const secret = readFileSync(identity, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
    writeFileSync(file, `${recipient}\n${secret}\n`);
    const planted = await withWorker(env, j, () => runBackup(env.client, { taskQueue: j.taskQueue, slot: new Date('2025-10-04T04:00:00Z') }));
    expect(planted.status).toBe('failed');
    if (planted.status !== 'failed') return;
    expect(planted.failure.message).toMatch(/holds 1 line\(s\) that are no age X25519 public key, among them a PRIVATE key/);
    expect(planted.failure.message).not.toContain(secret);
    // Nothing stored for either run: no artifact, no temporary file.
    expect(listFiles(env.sshd.root).filter((f) => f.includes('2025/10/04'))).toEqual([]);
  });

  it('backups made before encryption was turned on still restore without an identity', async () => {
    const j = await writeJob(env, (c) => { c.settings.heartbeatTimeout = '30s'; });
    const plainSlot = new Date('2025-10-03T03:00:00Z');
    const plain = await withWorker(env, j, () => run(j, 'full', plainSlot));
    expect(manifestOf(plain.locations[0]!.path).encryption).toBeUndefined();
    const earlier = tree(j.dataDir);
    j.config.encryption = { recipients: [recipient] };
    writeFileSync(j.configFile, stringify(j.config));
    writeFileSync(path.join(j.dataDir, 'later.txt'), 'after encryption was turned on\n');
    const enc = await withWorker(env, j, () => run(j, 'full', new Date('2025-10-03T09:00:00Z')));
    expect(manifestOf(enc.locations[0]!.path).encryption?.recipients).toEqual([recipient]);

    const to = path.join(env.tmp.path, 'restore-old-plain', 'target');
    const out = await backupctl(['--config', j.configFile, 'restore', 'app', '--to', to, '--at', plainSlot.toISOString(), '--json']);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    expect(tree(path.join(to, 'files', 'app-files', path.relative('/', j.dataDir)))).toEqual(earlier);
  });
});
