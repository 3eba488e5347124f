import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { SshdHandle } from '../test/helpers/sshd.js';

/** Writes a bench config: one job whose only destination is the loopback sshd (host key pinned). */
export async function writeSftpJobConfig(dir: string, name: string, sshd: SshdHandle, jobs: Record<string, unknown>): Promise<{ configFile: string; stateDir: string; taskQueue: string }> {
  const stateDir = path.join(dir, `${name}-state`);
  const taskQueue = `${name}-${process.pid}`;
  const configFile = path.join(dir, `${name}.yml`);
  await writeFile(configFile, stringify({
    stateDir,
    temporal: { taskQueue, uiUrl: 'http://localhost:8233' },
    settings: { heartbeatTimeout: '60s' },
    destinations: {
      nas: {
        type: 'sftp', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyPath,
        hostKey: sshd.hostKeyFingerprint, path: sshd.root,
      },
    },
    jobs,
  }));
  return { configFile, stateDir, taskQueue };
}
