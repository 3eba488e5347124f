import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// bin/backupctl.js is a shell script and the Node.js entry point at once: run as `backupctl`, sh gives `worker` and
// `up` the start-up settings of README "Memory and start-up" (unless the environment sets them), then execs node.
// A stand-in `node` first on PATH prints what it was started with; the real node runs the file as JavaScript.

const bin = fileURLToPath(new URL('../../bin/backupctl.js', import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), 'backupctl-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fakeNode = path.join(dir, 'node');
writeFileSync(fakeNode, '#!/bin/sh\nprintf "%s\\n" "ARGS $*" "MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX-unset}" "NODE_OPTIONS=${NODE_OPTIONS-unset}"\n');
chmodSync(fakeNode, 0o755);

function launch(args: string[], env: Record<string, string> = {}) {
  const base: NodeJS.ProcessEnv = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` };
  delete base.MALLOC_ARENA_MAX;
  delete base.NODE_OPTIONS;
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...base, ...env } });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return { args: lines[0]!.slice('ARGS '.length), arenas: lines[1]!.split('=')[1], nodeOptions: lines[2]!.slice('NODE_OPTIONS='.length) };
}

describe('bin/backupctl.js', () => {
  it('starts worker and up with gc exposed, a 2 MiB semi-space and two malloc arenas, after any global options', () => {
    for (const args of [['worker'], ['--config', 'x.yml', 'worker', '--queue', 'q'], ['-c', 'up', 'up', '--run', 'app'], ['--log-level', 'info', 'up']]) {
      const r = launch(args);
      expect(r.args).toBe(`--expose-gc --max-semi-space-size=2 ${bin} ${args.join(' ')}`);
      expect(r.arenas).toBe('2');
    }
  });

  it('exposes gc to restore and drill, which may run a worker of their own, and changes nothing else for them', () => {
    for (const args of [['restore', 'app', '--to', '/tmp/x'], ['-c', 'x.yml', 'drill', 'app']]) {
      const r = launch(args);
      expect(r.args).toBe(`--expose-gc ${bin} ${args.join(' ')}`);
      expect(r.arenas).toBe('unset');
    }
  });

  it('leaves the other verbs, and a job or config file named like a verb, to Node.js defaults', () => {
    for (const args of [['status'], ['run', 'worker'], ['run', 'restore'], ['-c', 'worker', 'run', 'up'], ['--version']]) {
      const r = launch(args);
      expect(r.args).toBe(`${bin} ${args.join(' ')}`);
      expect(r.arenas).toBe('unset');
    }
  });

  it('keeps settings the environment already has', () => {
    const r = launch(['worker'], { MALLOC_ARENA_MAX: '8', NODE_OPTIONS: '--max-semi-space-size=16' });
    expect(r.args).toBe(`--expose-gc ${bin} worker`);
    expect(r.arenas).toBe('8');
    expect(r.nodeOptions).toBe('--max-semi-space-size=16');
    const only = launch(['worker'], { NODE_OPTIONS: '--max-old-space-size=512' });
    expect(only.args).toBe(`--expose-gc --max-semi-space-size=2 ${bin} worker`);
  });

  it('runs as JavaScript under node, directly and through its shebang', () => {
    const { version } = JSON.parse(readFileSync(path.join(path.dirname(bin), '..', 'package.json'), 'utf8')) as { version: string };
    expect(spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).stdout.trim()).toBe(version);
    expect(spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim()).toBe(version);
  });
});
