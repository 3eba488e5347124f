import { existsSync } from 'node:fs';
import path from 'node:path';
import { BackupError } from '../../errors.js';
import { lastLines, runCapture, spawnProc, which } from '../../lib/process.js';
import { scratchHome } from '../../lib/scratch-server.js';
import type { ScratchServer } from '../types.js';
import type { MysqlSourceConfig as MysqlSource } from './schema.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function findProgram(names: string[], dirs: string[] = ['/usr/sbin', '/usr/bin']): Promise<string | undefined> {
  for (const n of names) {
    const onPath = await which(n);
    if (onPath) return onPath;
    for (const d of dirs) if (existsSync(path.join(d, n))) return path.join(d, n);
  }
  return undefined;
}

/**
 * A throwaway MariaDB/MySQL server for a drill, from the server binaries installed on the worker
 * (`mariadb-install-db` + `mariadbd`): its data in a fresh private directory, reachable only through a Unix socket
 * there (no TCP port), root without a password. `stop()` shuts it down and removes everything.
 */
export async function startScratchMariadb(cfg: MysqlSource, signal: AbortSignal): Promise<ScratchServer<MysqlSource>> {
  const installDb = await findProgram(['mariadb-install-db', 'mysql_install_db']);
  const daemon = await findProgram(['mariadbd', 'mysqld']);
  const client = await findProgram(['mariadb-admin', 'mysqladmin']);
  if (!installDb || !daemon || !client) {
    throw new BackupError('RESTORE_FAILED', 'a drill loads MariaDB/MySQL dumps into a throwaway server, but the server is not installed on the worker (mariadb-install-db, mariadbd, mariadb-admin)', {
      hint: 'apt-get install mariadb-server on the worker (the service need not run), or set drill.servers.<source> (see README, "Restore drills")',
    });
  }
  const home = await scratchHome('drill-mariadb', 'mysql');
  const data = path.join(home.dir, 'data');
  const socket = path.join(home.dir, 'mysqld.sock');
  const user = home.account ? [`--user=${home.account}`] : [];
  let proc: ReturnType<typeof spawnProc> | undefined;
  const killNow = () => proc?.kill();
  const stop = async () => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
      await runCapture(client, ['--no-defaults', `--socket=${socket}`, '-uroot', 'shutdown']).catch(() => undefined);
      const timer = setTimeout(killNow, 15_000);
      await proc.done.catch(() => undefined);
      clearTimeout(timer);
    }
    process.removeListener('exit', killNow);
    await home.remove();
  };
  try {
    const install = await runCapture(installDb, ['--no-defaults', `--datadir=${data}`, ...user, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'], { signal });
    if (install.code !== 0) throw new BackupError('RESTORE_FAILED', `the drill's scratch MariaDB server: ${path.basename(installDb)} failed: ${lastLines(install.stderr || install.stdout, 5)}`);
    proc = spawnProc(daemon, [
      '--no-defaults', `--datadir=${data}`, `--socket=${socket}`, `--pid-file=${path.join(home.dir, 'mysqld.pid')}`, '--skip-networking',
      `--tmpdir=${home.dir}`, ...user, '--skip-log-bin', '--innodb-buffer-pool-size=128M', '--innodb-flush-log-at-trx-commit=0',
      '--innodb-doublewrite=0', '--max-allowed-packet=1G', '--event-scheduler=OFF',
    ], { stdout: 'ignore' });
    process.once('exit', killNow);
    const deadline = Date.now() + 60_000;
    for (;;) {
      signal.throwIfAborted();
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new BackupError('RESTORE_FAILED', `the drill's scratch MariaDB server exited at start: ${lastLines(proc.stderr(), 5)}`);
      }
      const ping = await runCapture(client, ['--no-defaults', `--socket=${socket}`, '-uroot', 'ping']).catch(() => undefined);
      if (ping?.code === 0) break;
      if (Date.now() > deadline) throw new BackupError('RESTORE_FAILED', `the drill's scratch MariaDB server did not accept connections within 60 s: ${lastLines(proc.stderr(), 5)}`);
      await sleep(200);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    connection: { ...cfg, host: undefined, socket, user: 'root', password: undefined, clientOptions: {} },
    where: 'a throwaway MariaDB server on the worker',
    stop,
  };
}
