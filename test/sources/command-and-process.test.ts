import { statSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BackupError } from '../../src/errors.js';
import { dumpCompressed } from '../../src/sources/compress.js';
import { waitFor } from '../helpers/util.js';
import { descendants } from './support.js';
import { sourceSchema } from '../../src/config/schema.js';
import { commandSourceSchema } from '../../src/sources/command/schema.js';
import { childEnv, describeExit, lastLines, redact, runCapture, spawnProc, which } from '../../src/lib/process.js';
import { run } from '../../src/lib/exec.js';
import { pgEnv } from '../../src/sources/postgres/args.js';
import { CommandSource } from '../../src/sources/command/index.js';
import { createSource, sourceSecretRefs } from '../../src/sources/index.js';

describe('command config', () => {
  it('defaults: zstd-compressed .bin, minSize 1 byte, no estimate', () => {
    const c = commandSourceSchema.parse({ type: 'command', name: 'mongo', command: ['mongodump', '--archive'] });
    expect(c).toMatchObject({ extension: 'bin', compress: true, minSize: 1, env: {} });
    expect(new CommandSource(c).extension).toBe('bin.zst');
    expect(new CommandSource({ ...c, compress: false, extension: 'archive.gz' }).extension).toBe('archive.gz');
  });

  it('validates the command, env names and extension', () => {
    expect(() => commandSourceSchema.parse({ type: 'command', name: 'x', command: [] })).toThrow(/program and its arguments/);
    expect(() => commandSourceSchema.parse({ type: 'command', name: 'x', command: ['a'], env: { 'BAD-NAME': 'v' } })).toThrow(/environment variable name/);
    expect(() => commandSourceSchema.parse({ type: 'command', name: 'x', command: ['a'], extension: '../x' })).toThrow(/extension/);
    const c = commandSourceSchema.parse({ type: 'command', name: 'x', command: ['a'], env: { A: 'plain', B: { env: 'SECRET' }, C: { file: '/f' } }, minSize: '10MiB' });
    expect(c.minSize).toBe(10 * 1024 * 1024);
  });

  it('every source type is in the union and has a class', () => {
    const configs = [
      { type: 'files', name: 'f', paths: ['/etc'] },
      { type: 'mysql', name: 'm', host: 'h', user: 'u' },
      { type: 'postgres', name: 'p', host: 'h', user: 'u' },
      { type: 'command', name: 'c', command: ['true'] },
    ];
    expect(configs.map((c) => createSource(sourceSchema.parse(c))).map((s) => `${s.type} ${s.extension}`))
      .toEqual(['files tar.zst', 'mysql sql.zst', 'postgres tar.zst', 'command bin.zst']);
  });
});

describe('process helpers', () => {
  it('redacts secrets of 4+ characters', () => {
    expect(redact('user=a pw=hunter2 again hunter2', ['hunter2', undefined, 'ab'])).toBe('user=a pw=*** again ***');
  });

  it('describes exits and keeps the last lines', () => {
    expect(describeExit({ code: 2, signal: null })).toBe('exited 2');
    expect(describeExit({ code: null, signal: 'SIGKILL' })).toBe('was killed by SIGKILL');
    expect(lastLines('a\n\nb  \nc\n', 2)).toBe('b\nc');
  });

  it('children get PATH, HOME, LANG, LC_*, TZ and the given extras only (spawnProc, runCapture, run, pgEnv)', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { TEMPORAL_API_KEY: 'tmprl-x', JOB_B_SECRET: 'b-secret', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'UTC', PGPASSWORD: 'worker-pg' });
    try {
      const names = (text: string) => text.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('='))).sort();
      const base = ['HOME', 'LANG', 'LC_ALL', 'PATH', 'TZ'].filter((k) => process.env[k] !== undefined);
      expect(Object.keys(childEnv()).sort()).toEqual(base);
      expect(childEnv({ EXTRA: '1', TZ: undefined })).toEqual({ ...Object.fromEntries(base.filter((k) => k !== 'TZ').map((k) => [k, process.env[k]])), EXTRA: '1' });
      expect(names((await runCapture('/usr/bin/env', [])).stdout)).toEqual(base);
      expect(names((await run('/usr/bin/env', [])).stdout)).toEqual(base);
      const p = spawnProc('/usr/bin/env', [], { env: childEnv({ ONLY_THIS: 'y' }) });
      let out = '';
      p.child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      await p.done;
      expect(names(out)).toEqual([...base, 'ONLY_THIS'].sort());
      // The PostgreSQL tools: the minimal base plus the configured connection; the worker's own PGPASSWORD is not inherited.
      const pg = pgEnv({ host: 'db', port: 5432, user: 'u', sslMode: undefined }, undefined);
      expect(Object.keys(pg).filter((k) => !base.includes(k)).sort()).toEqual(['PGAPPNAME', 'PGCONNECT_TIMEOUT', 'PGHOST', 'PGPORT', 'PGUSER']);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('which finds programs on PATH', async () => {
    expect(await which('sh')).toMatch(/\/sh$/);
    expect(await which('backupctl-no-such-program')).toBeUndefined();
    expect(await which('/bin/sh')).toBe('/bin/sh');
  });
});

describe('sourceSecretRefs', () => {
  it('lists the secret references of each source type', () => {
    expect(sourceSecretRefs(sourceSchema.parse({ type: 'files', name: 'f', paths: ['/etc'] }))).toEqual([]);
    expect(sourceSecretRefs(sourceSchema.parse({ type: 'mysql', name: 'm', host: 'h', user: 'u', password: { file: 'pw' } }))).toEqual([{ file: 'pw' }]);
    expect(sourceSecretRefs(sourceSchema.parse({ type: 'postgres', name: 'p', host: 'h', user: 'u' }))).toEqual([]);
    expect(sourceSecretRefs(sourceSchema.parse({ type: 'command', name: 'c', command: ['x'], env: { A: 'a', B: { env: 'B' }, C: { file: 'c' } } })))
      .toEqual([{ env: 'B' }, { file: 'c' }]);
  });
});

describe('compress stage (dumpCompressed)', () => {
  const cfg = (command: string[], extra: Record<string, unknown> = {}) => commandSourceSchema.parse({ type: 'command', name: 'c', command, ...extra });
  const ctx = () => ({ signal: new AbortController().signal, stagingDir: os.tmpdir(), compressionLevel: 3 });

  it('zstd writes the target\'s descriptor; the source\'s stats count the raw bytes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stage-'));
    try {
      const file = path.join(dir, 'seq.zst');
      const fh = await open(file, 'w');
      const out = fh.createWriteStream({ autoClose: false });
      let outcome;
      try {
        outcome = await dumpCompressed(new CommandSource(cfg(['seq', '100000'])), { out, fd: fh.fd }, ctx());
      } finally {
        out.destroy();
        await fh.close();
      }
      const seq = (await run('seq', ['100000'])).stdout;
      expect(outcome.stats.bytes).toBe(Buffer.byteLength(seq));
      expect(statSync(file).size).toBeLessThan(Buffer.byteLength(seq) / 2);
      expect((await run('zstd', ['-dc', file])).stdout).toBe(seq);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('compress: false: the source\'s output reaches the target as it is', async () => {
    const chunks: Buffer[] = [];
    const out = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } });
    await dumpCompressed(new CommandSource(cfg(['echo', 'plain'], { compress: false })), { out }, ctx());
    expect(Buffer.concat(chunks).toString()).toBe('plain\n');
  });

  it('zstd failing (a full disk under it) is DUMP_FAILED with its exit and stderr, and stops the source', async () => {
    const fh = await open('/dev/full', 'w');
    const out = fh.createWriteStream({ autoClose: false });
    let err: unknown;
    const started = Date.now();
    try {
      err = await dumpCompressed(new CommandSource(cfg(['cat', '/dev/urandom'])), { out, fd: fh.fd }, ctx()).then(() => undefined, (e: unknown) => e);
    } finally {
      out.destroy();
      await fh.close();
    }
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).code).toBe('DUMP_FAILED');
    expect((err as BackupError).message).toMatch(/^source "c": zstd exited \d+: .*No space left on device/s);
    expect(Date.now() - started).toBeLessThan(5000);
    await waitFor(() => !descendants().some((p) => p.argv[0] === 'cat' || p.argv[0] === 'zstd'), { timeoutMs: 5000, description: 'cat and zstd to be gone' });
  });
});
