import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The CLI loads only what a verb needs (src/cli/index.ts imports each command's module in its action): `--help` or a
// usage error must not load the Temporal worker (webpack, the native core), the SSH, S3 or mail clients. Runs the
// compiled CLI (`npm test` builds dist/ first) and lists the CommonJS packages it loaded.

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

function loadedPackages(args: string[]): { loaded: string[]; stderr: string } {
  const script = `
    import { createRequire } from 'node:module';
    const cache = createRequire(import.meta.url).cache;
    process.on('exit', () => {
      const names = new Set(Object.keys(cache).map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean));
      process.stderr.write('\\nLOADED ' + JSON.stringify([...names]) + '\\n');
    });
    process.argv = [process.argv[0], 'backupctl', ...${JSON.stringify(args)}];
    await import(${JSON.stringify(cli)});`;
  const { stderr } = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const found = stderr.split('\n').find((l) => l.startsWith('LOADED '))?.slice('LOADED '.length);
  if (!found) throw new Error(`the CLI printed no list of loaded packages: ${stderr}`);
  return { loaded: JSON.parse(found) as string[], stderr };
}

describe('CLI start-up', () => {
  it('--help and an unknown command load no worker, SSH, S3 or mail client', () => {
    for (const args of [['--help'], ['no-such-verb']]) {
      const { loaded } = loadedPackages(args);
      expect(loaded, args.join(' ')).toContain('commander');
      for (const heavy of ['@temporalio/worker', 'webpack', 'ssh2', 'nodemailer', '@aws-sdk/client-s3']) expect(loaded, `${args.join(' ')} loaded ${heavy}`).not.toContain(heavy);
    }
  });

  it('run, restore and drill load no worker before they need one: an unknown job fails with only the client loaded', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'backupctl-lazy-'));
    try {
      const config = path.join(dir, 'backup.yml');
      writeFileSync(config, `stateDir: ${dir}/state\ndestinations:\n  nas: { type: local, path: ${dir}/backups }\njobs:\n  app:\n    sources: [{ name: files, type: files, paths: [${dir}] }]\n    destinations: [nas]\n`);
      const to = path.join(dir, 'to');
      for (const args of [['run', 'nosuch'], ['restore', 'nosuch', '--to', to], ['restore', 'nosuch', '--to', to, '--no-worker'], ['drill', 'nosuch']]) {
        const { loaded, stderr } = loadedPackages(['--config', config, ...args]);
        expect(stderr, args.join(' ')).toContain('no job named "nosuch"');
        expect(loaded, args.join(' ')).toContain('@temporalio/client');
        for (const heavy of ['@temporalio/worker', 'webpack', 'ssh2']) expect(loaded, `${args.join(' ')} loaded ${heavy}`).not.toContain(heavy);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
