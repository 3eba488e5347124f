import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandSourceSchema, type CommandSourceConfig } from '../../src/sources/command/schema.js';
import { CommandSource } from '../../src/sources/command/index.js';
import { makeTempDir, waitFor, type TempDir } from '../helpers/util.js';
import { descendants, dumpContext, dumpInto, dumpToFile, expectDumpError, fileSink, fullDisk, watchChildren, zstdDecompress } from './support.js';

let tmp: TempDir;
let n = 0;

function config(command: string[], patch: Record<string, unknown> = {}): CommandSourceConfig {
  return commandSourceSchema.parse({ type: 'command', name: 'stub', command, ...patch });
}

async function staging(): Promise<string> {
  const dir = path.join(tmp.path, `staging${++n}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

const sh = (script: string) => ['sh', '-c', script];

beforeAll(async () => {
  tmp = await makeTempDir('backupctl-cmd-src-');
});

afterAll(async () => {
  await tmp?.cleanup();
});

describe('command source', () => {
  it('compresses the command\'s stdout with zstd; the component decompresses to exactly that output', async () => {
    const source = new CommandSource(config(['seq', '1', '200000'], { extension: 'txt' }));
    expect(source.extension).toBe('txt.zst');
    const file = path.join(tmp.path, 'seq.txt.zst');
    const { outcome, size } = await dumpToFile(source, file, dumpContext(await staging()));
    await zstdDecompress(file, path.join(tmp.path, 'seq.txt'));
    const expected = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join('');
    expect(readFileSync(path.join(tmp.path, 'seq.txt'), 'utf8')).toBe(expected);
    expect(outcome.stats).toMatchObject({ bytes: expected.length, command: 'seq' });
    expect(size).toBe(statSync(file).size);
    expect(size).toBeLessThan(expected.length);
    expect(outcome.warnings).toEqual([]);
  });

  it('passes output through as it is with compress: false', async () => {
    const source = new CommandSource(config(sh('head -c 300000 /dev/urandom'), { compress: false, extension: 'archive.gz' }));
    expect(source.extension).toBe('archive.gz');
    const file = path.join(tmp.path, 'raw.bin');
    const { outcome, size } = await dumpToFile(source, file, dumpContext(await staging()));
    expect(size).toBe(300000);
    expect(outcome.stats.bytes).toBe(300000);
  });

  it('keeps up with a slow destination (backpressure, nothing lost)', async () => {
    const source = new CommandSource(config(sh('head -c 4000000 /dev/zero | tr "\\0" "a"'), { compress: false }));
    const file = path.join(tmp.path, 'slow.bin');
    const { size } = await dumpToFile(source, file, dumpContext(await staging()), { throttleAfter: 0, delayMs: 1 });
    expect(size).toBe(4_000_000);
  });

  it('partial output and exit 1 is a failure, with the end of stderr in the message', async () => {
    const source = new CommandSource(config(sh('head -c 100000 /dev/urandom; echo "connection reset by peer" >&2; exit 1')));
    const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'partial.zst')).out, dumpContext(await staging())), 'DUMP_FAILED');
    expect(err.message).toBe('source "stub": sh exited 1 after writing 100000 bytes; the output is not used: connection reset by peer');
    expect(err.permanent).toBe(false);
  });

  it('a command killed by a signal is a failure', async () => {
    const source = new CommandSource(config(sh('echo partial; kill -9 $$')));
    const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'killed.zst')).out, dumpContext(await staging())), 'DUMP_FAILED');
    expect(err.message).toMatch(/sh was killed by SIGKILL after writing 8 bytes/);
  });

  it('exit 0 with empty output is a failure', async () => {
    const source = new CommandSource(config(sh('echo "nothing to dump" >&2; exit 0')));
    const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'empty.zst')).out, dumpContext(await staging())), 'SOURCE_EMPTY');
    expect(err.message).toContain('source "stub"');
    expect(err.message).toContain('nothing to dump');
    expect(err.permanent).toBe(true);
  });

  it('output below minSize is a failure; at minSize it passes', async () => {
    const small = new CommandSource(config(sh('head -c 999 /dev/zero'), { minSize: '1KB' }));
    const err = await expectDumpError(dumpInto(small, fileSink(path.join(tmp.path, 'small.zst')).out, dumpContext(await staging())), 'DUMP_INCOMPLETE');
    expect(err.message).toMatch(/wrote 999 bytes, below the minimum of 1000 bytes/);
    const enough = new CommandSource(config(sh('head -c 1000 /dev/zero'), { minSize: '1KB' }));
    const { outcome } = await dumpToFile(enough, path.join(tmp.path, 'enough.zst'), dumpContext(await staging()));
    expect(outcome.stats.bytes).toBe(1000);
  });

  it('passes environment variables, reading secret references, and keeps secrets out of messages', async () => {
    const secretFile = path.join(tmp.path, 'token');
    await writeFile(secretFile, 'file-secret-0815\n', { mode: 0o600 });
    process.env.BACKUPCTL_TEST_CMD_SECRET = 'env-secret-4711';
    try {
      const env = { PLAIN: 'hello', FROM_ENV: { env: 'BACKUPCTL_TEST_CMD_SECRET' }, FROM_FILE: { file: secretFile } };
      const ok = new CommandSource(config(sh('printf "%s|%s|%s" "$PLAIN" "$FROM_ENV" "$FROM_FILE"'), { env, compress: false }));
      const file = path.join(tmp.path, 'env.out');
      await dumpToFile(ok, file, dumpContext(await staging()));
      expect(readFileSync(file, 'utf8')).toBe('hello|env-secret-4711|file-secret-0815');

      const leaky = new CommandSource(config(sh('echo "login failed with $FROM_ENV and $FROM_FILE" >&2; exit 3'), { env }));
      const err = await expectDumpError(dumpInto(leaky, fileSink(path.join(tmp.path, 'leaky.zst')).out, dumpContext(await staging())), 'DUMP_FAILED');
      expect(err.message).toContain('login failed with *** and ***');
      expect(err.message).not.toContain('secret');
    } finally {
      delete process.env.BACKUPCTL_TEST_CMD_SECRET;
    }
  });

  it('the command (and zstd, and checkCommand) sees only PATH, HOME, LANG, LC_*, TZ and its own env, nothing else of the worker', async () => {
    // What a worker's environment holds: the Temporal API key, another job's secret, this job's secret under its worker name.
    const worker = { TEMPORAL_API_KEY: 'tmprl-key-9f8e7d', OTHER_JOB_DB_PASSWORD: 'other-job-pw-31337', BACKUPCTL_TEST_MONGO_URI: 'mongodb://u:pw-5150@db' };
    Object.assign(process.env, worker, { LC_TIME: 'C', TZ: 'Europe/Vienna' });
    const allowed = /^(PATH|HOME|LANG|LC_[A-Z_]+|TZ)$/;
    const names = (text: string) => text.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('='))).sort();
    try {
      const env = { MONGODB_URI: { env: 'BACKUPCTL_TEST_MONGO_URI' }, PLAIN: 'x' };
      const file = path.join(tmp.path, 'env.txt');
      await dumpToFile(new CommandSource(config(['/usr/bin/env'], { env, compress: false })), file, dumpContext(await staging()));
      const out = readFileSync(file, 'utf8');
      expect(names(out).filter((k) => !allowed.test(k))).toEqual(['MONGODB_URI', 'PLAIN']);
      expect(names(out)).toEqual(expect.arrayContaining(['PATH', 'LC_TIME', 'TZ']));
      expect(out).toContain('MONGODB_URI=mongodb://u:pw-5150@db\n');
      for (const v of ['tmprl-key-9f8e7d', 'other-job-pw-31337']) expect(out).not.toContain(v);

      // zstd, compressing the command's output, gets the minimal environment only.
      const slow = new CommandSource(config(sh('/usr/bin/env; sleep 1'), { env }));
      const { result, envs } = await watchChildren(dumpToFile(slow, path.join(tmp.path, 'env.zst'), dumpContext(await staging())), /^zstd\b/);
      if (result.status === 'rejected') throw result.reason;
      expect(envs.length).toBeGreaterThan(0);
      for (const e of envs) expect(e.map((kv) => kv.slice(0, kv.indexOf('='))).filter((k) => !allowed.test(k))).toEqual([]);

      const report = await new CommandSource(config(['true'], { env, checkCommand: sh('echo "$(env | cut -d= -f1 | sort | tr "\\n" " ")"') })).check();
      expect(report).toContain('MONGODB_URI');
      expect(report).not.toMatch(/TEMPORAL_API_KEY|OTHER_JOB_DB_PASSWORD|BACKUPCTL_TEST_MONGO_URI/);
    } finally {
      for (const k of [...Object.keys(worker), 'LC_TIME', 'TZ']) delete process.env[k];
    }
  });

  it('an unset secret is SECRET_UNAVAILABLE and the command does not run', async () => {
    const marker = path.join(tmp.path, 'ran');
    const source = new CommandSource(config(['touch', marker], { env: { X: { env: 'BACKUPCTL_TEST_NOT_SET' } } }));
    await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'unset.zst')).out, dumpContext(await staging())), 'SECRET_UNAVAILABLE');
    expect(() => statSync(marker)).toThrow();
  });

  it('a program that does not exist is SOURCE_UNREADABLE', async () => {
    const source = new CommandSource(config(['backupctl-no-such-dumper', '--archive']));
    const err = await expectDumpError(dumpInto(source, fileSink(path.join(tmp.path, 'missing.zst')).out, dumpContext(await staging())), 'SOURCE_UNREADABLE');
    expect(err.message).toContain('backupctl-no-such-dumper');
    await expectDumpError(source.check(), 'SOURCE_UNREADABLE');
  });

  it('is killed when the activity is cancelled', async () => {
    const ac = new AbortController();
    const marker = `backupctl-test-sleep-${process.pid}`;
    const source = new CommandSource(config(['sh', '-c', 'echo started; exec sleep 30', marker]));
    const sink = fileSink(path.join(tmp.path, 'cancelled.zst'));
    const dumping = dumpInto(source, sink.out, dumpContext(await staging(), { signal: ac.signal }));
    await waitFor(() => descendants().some((p) => p.argv.includes(marker) || p.argv[0] === 'sleep'), { timeoutMs: 5000, description: 'the command to start' });
    const started = Date.now();
    ac.abort(new Error('activity cancelled'));
    const err = await dumping.then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).toBe('activity cancelled');
    expect(Date.now() - started).toBeLessThan(3000);
    await waitFor(() => !descendants().some((p) => p.argv[0] === 'sleep' || p.argv[0] === 'zstd'), { timeoutMs: 5000, description: 'sleep and zstd to be gone' });
  });

  it('a destination that fails (disk full) fails the dump with that error and stops the command', async () => {
    const source = new CommandSource(config(['cat', '/dev/urandom']));
    const err = await dumpInto(source, fullDisk(256 * 1024), dumpContext(await staging())).then(() => undefined, (e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    await waitFor(() => !descendants().some((p) => p.argv[0] === 'cat' || p.argv[0] === 'zstd'), { timeoutMs: 5000, description: 'cat and zstd to be gone' });
  });

  it('runs in cwd', async () => {
    const dir = path.join(tmp.path, 'workdir');
    await mkdir(dir);
    await writeFile(path.join(dir, 'data.txt'), 'in the work dir\n');
    const file = path.join(tmp.path, 'cwd.out');
    await dumpToFile(new CommandSource(config(['cat', 'data.txt'], { cwd: dir, compress: false })), file, dumpContext(await staging()));
    expect(readFileSync(file, 'utf8')).toBe('in the work dir\n');
  });

  it('check() finds the program and runs checkCommand', async () => {
    expect(await new CommandSource(config(['seq', '1'])).check()).toMatch(/^command \/\S+\/seq \(not run/);
    const report = await new CommandSource(config(['seq', '1'], { checkCommand: ['seq', '--version'] })).check();
    expect(report).toMatch(/^command \/\S+\/seq: seq \(GNU coreutils\) \d+/);
    await expectDumpError(new CommandSource(config(['seq', '1'], { checkCommand: ['false'] })).check(), 'SOURCE_UNREADABLE');
  });

  it('estimate() is the configured estimatedSize', async () => {
    expect(await new CommandSource(config(['true'], { estimatedSize: '2GiB' })).estimate()).toBe(2 * 1024 ** 3);
    expect(await new CommandSource(config(['true'])).estimate()).toBe(0);
  });

  it('the same command gives the same component (deterministic zstd)', async () => {
    const a = path.join(tmp.path, 'a.zst');
    const b = path.join(tmp.path, 'b.zst');
    await dumpToFile(new CommandSource(config(['seq', '50000'])), a, dumpContext(await staging()));
    await dumpToFile(new CommandSource(config(['seq', '50000'])), b, dumpContext(await staging()));
    const hash = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(hash(a)).toBe(hash(b));
  });
});
