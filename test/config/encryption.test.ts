import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobEncryption, resolveRecipients } from '../../src/config/encryption.js';
import { parseConfig } from '../../src/config/load.js';
import { BackupError } from '../../src/errors.js';
import { minimalConfig, problems } from './support.js';

const R1 = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
let dir: string;
let R2: string;
let secretLine: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'backupctl-enc-config-'));
  const key = execFileSync('age-keygen', { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  secretLine = key.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
  R2 = execFileSync('age-keygen', ['-y'], { input: key }).toString().trim();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('encryption config', () => {
  it('a top-level default, a job\'s own encryption, recipients files resolved against the config file; drill.identity likewise', () => {
    const { config } = parseConfig(`encryption:\n  recipients: [${R1}, { file: keys/recipients.txt }]\n${minimalConfig}    drill:\n      identity: { file: keys/age.txt }\n  other:\n    sources: [{ name: f, type: files, paths: [/srv/x] }]\n    destinations: [nas]\n    encryption: { recipients: [${R1}] }\n`, '/etc/backupctl/backup.yml');
    expect(config.encryption).toEqual({ recipients: [R1, { file: '/etc/backupctl/keys/recipients.txt' }] });
    expect(jobEncryption(config, config.jobs.app!)).toBe(config.encryption);
    expect(jobEncryption(config, config.jobs.other!)).toEqual({ recipients: [R1] });
    expect(config.jobs.app!.drill.identity).toEqual({ file: '/etc/backupctl/keys/age.txt' });
    expect(jobEncryption({}, config.jobs.other!)).toEqual({ recipients: [R1] });
  });

  it('refuses a recipient that is no age public key (a private key above all), and an empty list, naming the line', () => {
    expect(problems(`encryption:\n  recipients: [${secretLine}]\n${minimalConfig}`)).toEqual([{ line: 2, field: 'encryption.recipients[0]', message: expect.stringMatching(/expected an age X25519 public key/) }]);
    expect(problems(`encryption:\n  recipients: []\n${minimalConfig}`)[0]).toMatchObject({ field: 'encryption.recipients', message: expect.stringMatching(/at least one recipient/) });
  });

  it('reads recipients files on the worker: comments skipped, duplicates dropped; a file with a private key in it is refused without quoting the key', () => {
    const good = path.join(dir, 'recipients.txt');
    writeFileSync(good, `# ops team\n${R2}\n\n${R1}\n`);
    expect(resolveRecipients({ recipients: [R1, { file: good }] })).toEqual([R1, R2]);
    const bad = path.join(dir, 'bad.txt');
    writeFileSync(bad, `${R1}\n${secretLine}\n`);
    let err: unknown;
    try { resolveRecipients({ recipients: [{ file: bad }] }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).code).toBe('CONFIG_INVALID');
    expect((err as BackupError).message).toMatch(/1 line\(s\) that are no age X25519 public key, among them a PRIVATE key/);
    expect((err as BackupError).message).not.toContain(secretLine.slice(15, 25));
    const empty = path.join(dir, 'empty.txt');
    writeFileSync(empty, '# nobody yet\n');
    expect(() => resolveRecipients({ recipients: [{ file: empty }] })).toThrow(/holds no public key/);
    expect(() => resolveRecipients({ recipients: [{ file: path.join(dir, 'missing.txt') }] })).toThrow(/cannot read the recipients file/);
  });
});
