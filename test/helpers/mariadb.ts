import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { getFreePort } from './free-port.js';
import { LogBuffer, makeTempDir, runCommand, waitFor, type RunResult } from './util.js';

/**
 * A throwaway MariaDB server: `mariadb-install-db` + `mariadbd` in a temp dir, TCP on a free 127.0.0.1 port and a
 * Unix socket in the dir. As root the server runs as the `mysql` user (created by the mariadb-server package).
 * Tuned for tests: no durability (flush at commit off, no doublewrite), a 256 MiB buffer pool, names not resolved
 * (accounts are 'user'@'%' or 'user'@'127.0.0.1').
 */
export interface MariadbHandle {
  host: '127.0.0.1';
  port: number;
  /** Unix socket path. */
  socket: string;
  /** Temp dir holding the data dir, socket and pid file; removed by stop(). */
  dir: string;
  /** PID of mariadbd. */
  pid: number;
  /** Server version, e.g. `10.11.19-MariaDB-0+deb12u1`. */
  version: string;
  /** Runs SQL as root over the socket; returns stdout (tab-separated, no column names). Rejects on an error. */
  sql(sql: string, database?: string): Promise<string>;
  /** Feeds an SQL file to the `mariadb` client as root (how a dump is restored by hand: `mariadb < dump.sql`). */
  sqlFile(file: string, database?: string): Promise<RunResult>;
  /** Creates an account `'name'@'%'` with the password and grants (default: what a backup needs, on *.*). */
  createUser(name: string, password: string, grants?: string): Promise<void>;
  /** mariadbd's log so far. */
  log(): string;
  /** Sends a signal to mariadbd (SIGKILL: crash; SIGTERM: shutdown) and waits until it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Shuts the server down (SIGKILL after 10 s), then removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

export const BACKUP_GRANTS = 'SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES';

export interface MariadbOptions {
  /** Extra mariadbd arguments. */
  extraArgs?: readonly string[];
}

/** mariadbd lives in /usr/sbin, which is not on every PATH. */
function mariadbdPath(): string {
  return existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd';
}

async function ids(user: string): Promise<{ uid: number; gid: number }> {
  const u = await runCommand('id', ['-u', user]);
  const g = await runCommand('id', ['-g', user]);
  if (u.code !== 0) throw new Error(`no user ${user}: ${u.stderr}`);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  const r = await runCommand('chown', ['-R', `${uid}:${gid}`, dir]);
  if (r.code !== 0) throw new Error(`chown -R ${dir}: ${r.stderr}`);
}

export async function startMariadb(opts: MariadbOptions = {}): Promise<MariadbHandle> {
  const tmp = await makeTempDir('backupctl-mariadb-');
  const dir = tmp.path;
  const dataDir = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  const pidFile = path.join(dir, 'mysqld.pid');
  const isRoot = process.getuid?.() === 0;
  const userArgs = isRoot ? ['--user=mysql'] : [];
  try {
    await mkdir(dataDir);
    await mkdir(path.join(dir, 'tmp'));
    if (isRoot) {
      const { uid, gid } = await ids('mysql');
      await chown(dir, uid, gid);
      await chownTree(dir, uid, gid);
    }
    const install = await runCommand('mariadb-install-db', [
      '--no-defaults', `--datadir=${dataDir}`, ...userArgs, '--auth-root-authentication-method=normal', '--skip-test-db',
      '--skip-name-resolve',
    ], { timeoutMs: 60_000 });
    if (install.code !== 0) throw new Error(`mariadb-install-db failed (${install.code}):\n${install.stdout}${install.stderr}`);

    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const port = await getFreePort();
      const logs = new LogBuffer();
      const child = spawn(mariadbdPath(), [
        '--no-defaults', `--datadir=${dataDir}`, `--socket=${socket}`, `--pid-file=${pidFile}`, `--port=${port}`,
        '--bind-address=127.0.0.1', '--skip-name-resolve', `--tmpdir=${path.join(dir, 'tmp')}`, ...userArgs,
        '--innodb-buffer-pool-size=256M', '--innodb-log-file-size=256M', '--innodb-flush-log-at-trx-commit=0',
        '--innodb-doublewrite=0', '--skip-log-bin', '--max-allowed-packet=64M', '--log-warnings=1',
        ...(opts.extraArgs ?? []),
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => logs.append(d));
      child.stderr.on('data', (d: Buffer) => logs.append(d));
      let exited = false;
      const exit = new Promise<void>((resolve) => {
        child.once('exit', () => { exited = true; resolve(); });
        child.once('error', (e) => { logs.append(`spawn error: ${e.message}\n`); exited = true; resolve(); });
      });
      const killNow = () => { if (!exited) child.kill('SIGKILL'); };
      process.once('exit', killNow);
      const client = (args: string[], input?: string) => runCommand('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', ...args], { input, timeoutMs: 120_000 });
      try {
        await waitFor(async () => {
          if (exited) throw new Error('exited');
          const r = await runCommand('mariadb-admin', ['--no-defaults', `--socket=${socket}`, '-uroot', 'ping'], { timeoutMs: 5_000 });
          return r.code === 0;
        }, { timeoutMs: 30_000, intervalMs: 100, description: 'mariadbd to accept connections' });
      } catch (err) {
        killNow();
        await exit;
        process.removeListener('exit', killNow);
        const text = logs.toString();
        lastError = new Error(`mariadbd did not start (port ${port}): ${(err as Error).message}\n${text}`);
        if (/Address already in use|Can't start server: Bind/i.test(text)) continue;
        throw lastError;
      }

      const sql = async (text: string, database?: string) => {
        const r = await client(['--batch', '--skip-column-names', ...(database ? [database] : [])], text);
        if (r.code !== 0) throw new Error(`SQL failed (${r.code}): ${r.stderr}\n${text.slice(0, 500)}`);
        return r.stdout;
      };
      const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
        if (!exited) child.kill(signal);
        const timer = setTimeout(killNow, 20_000);
        await exit;
        clearTimeout(timer);
      };
      let stopping: Promise<void> | undefined;
      const stop = () => {
        stopping ??= (async () => {
          if (!exited) {
            await client(['-e', 'SHUTDOWN']).catch(() => undefined);
            const timer = setTimeout(killNow, 10_000);
            await exit;
            clearTimeout(timer);
          }
          process.removeListener('exit', killNow);
          await tmp.cleanup();
        })();
        return stopping;
      };
      const version = (await sql('SELECT VERSION()')).trim();
      return {
        host: '127.0.0.1', port, socket, dir, pid: child.pid as number, version,
        sql,
        sqlFile: (file: string, database?: string) => new Promise<RunResult>((resolve, reject) => {
          const fd = openSync(file, 'r');
          const p = spawn('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', ...(database ? [database] : [])], { stdio: [fd, 'pipe', 'pipe'] });
          closeSync(fd);
          let stdout = '';
          let stderr = '';
          p.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
          p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
          p.once('error', reject);
          p.once('close', (code, sig) => resolve({ code, signal: sig, stdout, stderr }));
        }),
        createUser: async (name, password, grants = BACKUP_GRANTS) => {
          const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
          await sql(`CREATE USER ${q(name)}@'%' IDENTIFIED BY ${q(password)}; GRANT ${grants} ON *.* TO ${q(name)}@'%';`);
        },
        log: () => logs.toString(),
        kill,
        stop,
      };
    }
    throw lastError ?? new Error('could not start mariadbd');
  } catch (err) {
    await tmp.cleanup();
    throw err;
  }
}
