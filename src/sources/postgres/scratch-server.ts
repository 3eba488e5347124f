import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { BackupError } from '../../errors.js';
import { lastLines, runCapture } from '../../lib/process.js';
import { scratchHome } from '../../lib/scratch-server.js';
import type { ScratchServer } from '../types.js';
import type { PostgresSourceConfig as PostgresSource } from './schema.js';

/** The directory of the installed server binaries (initdb, pg_ctl): binDir, pg_config --bindir, or the newest under /usr/lib/postgresql. */
async function serverBindir(cfg: PostgresSource): Promise<string | undefined> {
  if (cfg.binDir && existsSync(path.join(cfg.binDir, 'initdb'))) return cfg.binDir;
  const r = await runCapture('pg_config', ['--bindir']).catch(() => undefined);
  const dir = r?.code === 0 ? r.stdout.trim() : '';
  if (dir && existsSync(path.join(dir, 'initdb'))) return dir;
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[])).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

/**
 * A throwaway PostgreSQL server for a drill, from the server binaries installed on the worker (`initdb` + `pg_ctl`):
 * its data in a fresh private directory, reachable only through a Unix socket there (`listen_addresses` empty: no TCP
 * port), superuser `postgres` with trust authentication. `stop()` stops it and removes everything.
 */
export async function startScratchPostgres(cfg: PostgresSource, signal: AbortSignal): Promise<ScratchServer<PostgresSource>> {
  const bindir = await serverBindir(cfg);
  if (!bindir) {
    throw new BackupError('RESTORE_FAILED', 'a drill loads PostgreSQL dumps into a throwaway server, but the server binaries (initdb, pg_ctl) are not installed on the worker', {
      hint: 'apt-get install postgresql on the worker (the service need not run), or set drill.servers.<source> (see README, "Restore drills")',
    });
  }
  const home = await scratchHome('drill-postgres', 'postgres');
  const data = path.join(home.dir, 'data');
  const log = path.join(home.dir, 'server.log');
  const port = 5432; // names the socket file only: no TCP
  let started = false;
  const pidOf = async () => Number((await readFile(path.join(data, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]) || 0;
  let pid = 0;
  const killNow = () => { if (pid) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } };
  const stop = async () => {
    if (started) {
      await home.run(path.join(bindir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '20', 'stop']).catch(() => undefined);
      killNow();
    }
    process.removeListener('exit', killNow);
    await home.remove();
  };
  try {
    const init = await home.run(path.join(bindir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { signal });
    if (init.code !== 0) throw new BackupError('RESTORE_FAILED', `the drill's scratch PostgreSQL server: initdb failed: ${lastLines(init.stderr || init.stdout, 5)}`);
    const options = [`-k ${home.dir}`, `-p ${port}`, "-c listen_addresses=''", '-c fsync=off', '-c full_page_writes=off', '-c synchronous_commit=off'].join(' ');
    started = true;
    const start = await home.run(path.join(bindir, 'pg_ctl'), ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start'], { signal });
    pid = await pidOf();
    process.once('exit', killNow);
    if (start.code !== 0) {
      const text = await readFile(log, 'utf8').catch(() => '');
      throw new BackupError('RESTORE_FAILED', `the drill's scratch PostgreSQL server did not start: ${lastLines(`${start.stderr}\n${text}`, 5)}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    connection: { ...cfg, host: home.dir, port, user: 'postgres', password: undefined, sslMode: undefined, connectDatabase: 'postgres' },
    where: 'a throwaway PostgreSQL server on the worker',
    stop,
  };
}
