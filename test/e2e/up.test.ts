import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFreePort, isPortOpen } from '../helpers/free-port.js';
import { makeTempDir, runCommand, waitFor, type TempDir } from '../helpers/util.js';
import { startS3Proxy } from '../helpers/s3proxy.js';
import { listFiles, sha256File } from './fixture.js';

const repo = path.resolve(import.meta.dirname, '../..');
const cli = path.join(repo, 'bin', 'backupctl.js');

let tmp: TempDir;
beforeAll(async () => {
  tmp = await makeTempDir();
  // The quick start's example, copied so that the test writes nothing into the repository.
  cpSync(path.join(repo, 'examples'), path.join(tmp.path, 'examples'), { recursive: true, filter: (p) => !p.includes(`${path.sep}backups${path.sep}`) });
});
afterAll(async () => { await tmp?.cleanup(); });

function envWithoutTemporal() {
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_CLI_PATH: inject('temporalCliPath') };
  delete env.TEMPORAL_ADDRESS;
  return env;
}

describe('backupctl up (the quick start) on the embedded dev server', () => {
  it('up --run app --exit: starts the dev server and the worker, backs up the example, stops both', async () => {
    const [port, uiPort] = [await getFreePort(), await getFreePort()];
    const config = path.join(tmp.path, 'examples', 'backup.yml');
    const r = await runCommand(process.execPath, [cli, '--config', config, 'up', '--run', 'app', '--exit', '--port', String(port), '--ui-port', String(uiPort)], { timeoutMs: 180_000, env: envWithoutTemporal() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^succeeded: .* sha256 [0-9a-f]{64}$/m);
    // Quiet by default: what an operator needs, and none of the SDK's or the workflows' INFO lines.
    expect(r.stderr).toMatch(new RegExp(`^Temporal dev server at 127\\.0\\.0\\.1:${port}, Web UI http://localhost:${uiPort} `, 'm'));
    expect(r.stderr).toMatch(/^schedule created: backupctl:backup-[0-9a-f]{8}:app:full \(full backup of app, minute 0 hour 3,11,19 Europe\/Berlin\)$/m);
    expect(r.stderr).toMatch(/^worker polling task queue\(s\) backupctl; Ctrl-C to stop$/m);
    expect(r.stdout).toMatch(/^started backup:backup-[0-9a-f]{8}:app:full-\S+\nhttp:\/\/localhost:8233\/namespaces\/default\/workflows\/backup%3Abackup-[0-9a-f]{8}%3Aapp%3Afull-/m);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/\[(INFO|DEBUG|TRACE)\]|Worker state changed|lock granted/);
    const stored = listFiles(path.join(tmp.path, 'examples', 'backups')).filter((f) => f.endsWith('.tar'));
    expect(stored).toHaveLength(1);
    const manifest = JSON.parse(readFileSync(path.join(tmp.path, 'examples', 'backups', `${stored[0]}.manifest.json`), 'utf8')) as { artifact: { sha256: string } };
    expect(sha256File(path.join(tmp.path, 'examples', 'backups', stored[0]!))).toBe(manifest.artifact.sha256);
    expect(existsSync(path.join(tmp.path, '.backupctl', 'temporal.db'))).toBe(true);
    expect(await isPortOpen(port)).toBe(false);
  });

  it('the S3 quick start (examples/backup-s3.yml): up --run app --exit backs the example up into the bucket of a local s3proxy', async () => {
    const s3 = await startS3Proxy();
    try {
      const [port, uiPort] = [await getFreePort(), await getFreePort()];
      const config = path.join(tmp.path, 'examples', 'backup-s3.yml');
      // The example as shipped, pointed at this test's s3proxy instead of 127.0.0.1:9000.
      writeFileSync(config, readFileSync(config, 'utf8').replace('endpoint: http://127.0.0.1:9000', `endpoint: ${s3.endpoint}`));
      const env = { ...envWithoutTemporal(), S3_ACCESS_KEY_ID: s3.accessKeyId, S3_SECRET_ACCESS_KEY: s3.secretAccessKey };
      const r = await runCommand(process.execPath, [cli, '--config', config, 'up', '--run', 'app', '--exit', '--port', String(port), '--ui-port', String(uiPort)], { timeoutMs: 180_000, env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^succeeded: .* sha256 [0-9a-f]{64}$/m);
      expect(r.stdout).toMatch(/^ {2}bucket: daily\/\d{4}\/\d\d\/\d\d\/\d{4}\/app-full-\d{8}T\d{6}Z\.tar$/m);
      // filesystem-nio2 keeps each object as a file of the bucket's folder.
      const stored = listFiles(path.join(s3.baseDir, s3.bucket)).filter((f) => f.endsWith('.tar'));
      expect(stored).toHaveLength(1);
      expect(stored[0]).toMatch(/^backupctl\/daily\//);
      const manifest = JSON.parse(readFileSync(path.join(s3.baseDir, s3.bucket, `${stored[0]}.manifest.json`), 'utf8')) as { artifact: { sha256: string } };
      expect(sha256File(path.join(s3.baseDir, s3.bucket, stored[0]!))).toBe(manifest.artifact.sha256);
    } finally {
      await s3.stop();
    }
  });

  it('--log-level info (or BACKUPCTL_LOG_LEVEL) turns the SDK\'s and the workflows\' logs back on; an unknown level is a usage error', async () => {
    const [port, uiPort] = [await getFreePort(), await getFreePort()];
    const config = path.join(tmp.path, 'examples', 'backup.yml');
    const r = await runCommand(process.execPath, [cli, '--config', config, '--log-level', 'info', 'up', '--run', 'app', '--exit', '--port', String(port), '--ui-port', String(uiPort)], { timeoutMs: 180_000, env: envWithoutTemporal() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\[INFO\] Worker state changed/);
    expect(r.stderr).toMatch(/\[INFO\] lock granted/);
    const bad = await runCommand(process.execPath, [cli, '--config', config, 'up'], { timeoutMs: 30_000, env: { ...envWithoutTemporal(), BACKUPCTL_LOG_LEVEL: 'chatty' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/log level "chatty" .* is not one of debug, info, warn/);
  });

  it('a port already in use is refused with a clear error before anything starts', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const config = path.join(tmp.path, 'examples', 'backup.yml');
      const r = await runCommand(process.execPath, [cli, '--config', config, 'up', '--port', String(port), '--ui-port', String(await getFreePort())], { timeoutMs: 60_000, env: envWithoutTemporal() });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`its gRPC port 127.0.0.1:${port} is already in use`);
      expect(r.stderr).not.toMatch(/worker polling/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('Ctrl-C stops the worker, then the server', async () => {
    const [port, uiPort] = [await getFreePort(), await getFreePort()];
    const config = path.join(tmp.path, 'examples', 'backup.yml');
    writeFileSync(config, readFileSync(config, 'utf8'));
    const child = spawn(process.execPath, [cli, '--config', config, 'up', '--port', String(port), '--ui-port', String(uiPort)], { env: envWithoutTemporal(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(() => stderr.includes('worker polling'), { timeoutMs: 120_000, description: 'the worker to start' });
    expect(await isPortOpen(uiPort)).toBe(true); // the Web UI
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/stopping the worker[\s\S]*stopping the Temporal dev server/);
    expect(await isPortOpen(port)).toBe(false);
    const health = await runCommand(inject('temporalCliPath'), ['operator', 'cluster', 'health', '--address', `127.0.0.1:${port}`], { timeoutMs: 20_000 });
    expect(health.code).not.toBe(0);
  });
});
