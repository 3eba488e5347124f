import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { getFreePort } from './free-port.js';
import { isProcessAlive, killAll, makeTempDir, runCommand, type RunResult } from './util.js';

/**
 * A throwaway PostgreSQL cluster: `initdb` + `pg_ctl` in a temp dir, TCP on a free 127.0.0.1 port and the socket in
 * the dir. initdb refuses root, so as root the cluster runs as the `postgres` user (runuser). Local (socket)
 * connections are trusted; TCP connections need a password (scram-sha-256), so that a wrong one is refused.
 * No durability (fsync off).
 */
export interface PostgresHandle {
  host: '127.0.0.1';
  port: number;
  /** Directory of the Unix socket (a `host` for libpq). */
  socketDir: string;
  /** Temp dir holding the cluster, socket and log; removed by stop(). */
  dir: string;
  /** Directory of the server and client binaries (`pg_config --bindir`). */
  bindir: string;
  /** Server version, e.g. `15.18 (Debian 15.18-0+deb12u1)`. */
  version: string;
  /** Superuser name and its password for TCP logins. */
  superuser: string;
  superuserPassword: string;
  /** Runs SQL as the superuser over the socket (psql -X -At, ON_ERROR_STOP); returns stdout. Rejects on an error. */
  sql(sql: string, database?: string): Promise<string>;
  /** Runs a client tool of `bindir` (psql, pg_restore, createdb, …) as the superuser over the socket. */
  tool(name: string, args: readonly string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  /** Creates a login role with a password (and e.g. `SUPERUSER` or `IN ROLE pg_read_all_data`). */
  createRole(name: string, password: string, options?: string): Promise<void>;
  createDatabase(name: string, owner?: string): Promise<void>;
  log(): string;
  /** Stops the cluster (immediate), then removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

/** Double-quoted SQL identifier. */
export const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
/** SQL string literal. */
export const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin. */
export async function postgresBindir(): Promise<string> {
  const r = await runCommand('pg_config', ['--bindir']).catch(() => undefined);
  const dir = r?.code === 0 ? r.stdout.trim() : '';
  if (dir && existsSync(path.join(dir, 'initdb'))) return dir;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
  return path.join(root, versions[0], 'bin');
}

/** `settings`: extra server settings (`-c name=value`), e.g. archiving for pgBackRest (test/helpers/pgbackrest.ts). */
export async function startPostgres(opts: { settings?: Record<string, string> } = {}): Promise<PostgresHandle> {
  const bindir = await postgresBindir();
  const isRoot = process.getuid?.() === 0;
  const asOwner = (cmd: string, args: readonly string[], timeoutMs = 60_000) => (isRoot
    ? runCommand('runuser', ['-u', 'postgres', '--', cmd, ...args], { timeoutMs })
    : runCommand(cmd, args, { timeoutMs }));
  const tmp = await makeTempDir('backupctl-postgres-');
  const dir = tmp.path;
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const pwFile = path.join(dir, 'pwfile');
  const superuser = 'postgres';
  const superuserPassword = 'pg-super-secret';
  try {
    await writeFile(pwFile, `${superuserPassword}\n`, { mode: 0o600 });
    if (isRoot) {
      const uid = Number((await runCommand('id', ['-u', 'postgres'])).stdout.trim());
      const gid = Number((await runCommand('id', ['-g', 'postgres'])).stdout.trim());
      await chown(dir, uid, gid);
      await chown(pwFile, uid, gid);
    }
    const init = await asOwner(path.join(bindir, 'initdb'), [
      '-D', data, '-U', superuser, `--pwfile=${pwFile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync',
      '-E', 'UTF8', '--locale=C',
    ]);
    if (init.code !== 0) throw new Error(`initdb failed (${init.code}):\n${init.stdout}${init.stderr}`);

    const readLog = () => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };
    const postmasterPid = () => {
      try { return Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]); } catch { return 0; }
    };
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const port = await getFreePort();
      const options = [
        `-k ${dir}`, `-p ${port}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c full_page_writes=off',
        '-c synchronous_commit=off', '-c max_wal_size=4GB', '-c checkpoint_timeout=30min', '-c shared_buffers=256MB',
        ...Object.entries(opts.settings ?? {}).map(([k, v]) => `-c ${k}='${v}'`),
      ].join(' ');
      const start = await asOwner(path.join(bindir, 'pg_ctl'), ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', options, 'start']);
      if (start.code !== 0) {
        const text = readLog();
        lastError = new Error(`pg_ctl start failed (${start.code}):\n${start.stdout}${start.stderr}\n${text}`);
        if (/Address already in use|could not create any TCP\/IP sockets/.test(text)) continue;
        throw lastError;
      }
      const pid = postmasterPid();
      const killNow = () => { if (pid) killAll([pid], 'SIGQUIT'); };
      process.once('exit', killNow);

      const env: NodeJS.ProcessEnv = { ...process.env, PGHOST: dir, PGPORT: String(port), PGUSER: superuser };
      delete env.PGPASSWORD;
      delete env.PGDATABASE;
      const tool = (name: string, args: readonly string[], opts: { timeoutMs?: number } = {}) =>
        runCommand(path.join(bindir, name), args, { env, timeoutMs: opts.timeoutMs ?? 120_000 });
      const sql = async (text: string, database = 'postgres') => {
        const r = await tool('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', text]);
        if (r.code !== 0) throw new Error(`SQL failed (${r.code}): ${r.stderr}\n${text.slice(0, 500)}`);
        return r.stdout;
      };
      let stopping: Promise<void> | undefined;
      const stop = () => {
        stopping ??= (async () => {
          await asOwner(path.join(bindir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '20', 'stop'], 30_000).catch(() => undefined);
          if (pid && isProcessAlive(pid)) killAll([pid], 'SIGKILL');
          process.removeListener('exit', killNow);
          await tmp.cleanup();
        })();
        return stopping;
      };
      const version = (await sql('SHOW server_version')).trim();
      return {
        host: '127.0.0.1', port, socketDir: dir, dir, bindir, version, superuser, superuserPassword,
        sql, tool,
        createRole: async (name, password, options = '') => {
          await sql(`CREATE ROLE ${ident(name)} LOGIN PASSWORD ${literal(password)} ${options}`);
        },
        createDatabase: async (name, owner) => {
          await sql(`CREATE DATABASE ${ident(name)}${owner ? ` OWNER ${ident(owner)}` : ''}`);
        },
        log: readLog,
        stop,
      };
    }
    throw lastError ?? new Error('could not start PostgreSQL');
  } catch (err) {
    await tmp.cleanup();
    throw err;
  }
}
