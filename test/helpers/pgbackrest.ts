import { chown, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startPostgres, type PostgresHandle } from './postgres.js';
import { makeTempDir, runCommand, type RunResult, type TempDir } from './util.js';

/**
 * A PostgreSQL cluster archiving its WAL with pgBackRest into a repository (default: a posix repository in a temp dir),
 * with its stanza created. As root, the cluster and pgbackrest run as `postgres` (the job's `user`). The repository
 * options are a parameter, so that another repository type (S3) can be swapped in.
 */
export interface PgbackrestCluster {
  pg: PostgresHandle;
  stanza: string;
  /** pgBackRest's config file (the job's configFile). */
  configFile: string;
  /** The posix repository's path (when the default repository is used). */
  repoPath: string;
  /** The account pgbackrest runs as (root only). */
  user: string | undefined;
  /** The job's fields for this cluster: kind, stanza, configFile, user. */
  job(): Record<string, unknown>;
  /** Runs pgbackrest with the stanza and config file, as the cluster's account. */
  pgbackrest(args: readonly string[]): Promise<RunResult>;
  /** Sets archive_command (reloads the server). */
  setArchiveCommand(cmd: string): Promise<void>;
  /** The archive_command that pushes to the repository. */
  archiveCommand: string;
  stop(): Promise<void>;
}

export interface PgbackrestClusterOptions {
  stanza?: string;
  /** The repository's options (repo1-*), given the cluster's folder (owned by the cluster's account). */
  repo?: (dir: string) => Record<string, string>;
  /** The config file's mode (default 0640; 0600 when it holds a secret such as S3 keys). */
  configMode?: number;
}

export async function startPgbackrestCluster(opts: PgbackrestClusterOptions = {}): Promise<PgbackrestCluster> {
  const stanza = opts.stanza ?? 'main';
  const isRoot = process.getuid?.() === 0;
  const user = isRoot ? 'postgres' : undefined;
  const tmp: TempDir = await makeTempDir('backupctl-pgbr-');
  const dir = tmp.path;
  if (isRoot) {
    const uid = Number((await runCommand('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await runCommand('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
  }
  const configFile = path.join(dir, 'pgbackrest.conf');
  const repoPath = path.join(dir, 'repo');
  const archiveCommand = `pgbackrest --config=${configFile} --stanza=${stanza} archive-push %p`;
  let pg: PostgresHandle | undefined;
  try {
    // archive_command goes to postgresql.auto.conf (ALTER SYSTEM), not the command line, so that a test can change it.
    pg = await startPostgres({ settings: { archive_mode: 'on', wal_level: 'replica' } });
    const repo = opts.repo?.(dir) ?? { 'repo1-path': repoPath, 'repo1-retention-full': '4' };
    const text = [
      '[global]', ...Object.entries(repo).map(([k, v]) => `${k}=${v}`),
      `log-path=${dir}/log`, `lock-path=${dir}/lock`, `spool-path=${dir}/spool`, 'log-level-file=off', 'start-fast=y',
      // A broken archive_command fails `check` after this long (default 60 s).
      'archive-timeout=5', 'compress-type=gz', 'compress-level=1',
      '', `[${stanza}]`, `pg1-path=${path.join(pg.dir, 'data')}`, `pg1-socket-path=${pg.socketDir}`, `pg1-port=${pg.port}`, `pg1-user=${pg.superuser}`, '',
    ].join('\n');
    await writeFile(configFile, text, { mode: opts.configMode ?? 0o640 });
    if (isRoot) await chown(configFile, Number((await runCommand('id', ['-u', 'postgres'])).stdout.trim()), Number((await runCommand('id', ['-g', 'postgres'])).stdout.trim()));
    const pgbackrest = (args: readonly string[]) => {
      const full = [`--config=${configFile}`, `--stanza=${stanza}`, ...args];
      return user ? runCommand('runuser', ['-u', user, '--', 'pgbackrest', ...full], { timeoutMs: 180_000 }) : runCommand('pgbackrest', full, { timeoutMs: 180_000 });
    };
    await pg.sql(`ALTER SYSTEM SET archive_command = '${archiveCommand}'`);
    await pg.sql('SELECT pg_reload_conf()');
    const created = await pgbackrest(['stanza-create']);
    if (created.code !== 0) throw new Error(`pgbackrest stanza-create failed: ${created.stdout}${created.stderr}`);
    const handle: PgbackrestCluster = {
      pg, stanza, configFile, repoPath, user, archiveCommand, pgbackrest,
      job: () => ({ kind: 'pgbackrest', stanza, configFile, ...(user ? { user } : {}) }),
      async setArchiveCommand(cmd) {
        await pg!.sql(`ALTER SYSTEM SET archive_command = '${cmd.replace(/'/g, "''")}'`);
        await pg!.sql('SELECT pg_reload_conf()');
      },
      async stop() {
        await pg!.stop();
        await tmp.cleanup();
      },
    };
    return handle;
  } catch (err) {
    await pg?.stop();
    await tmp.cleanup();
    throw err;
  }
}
