import { createReadStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import { describeExit, lastLines, redact, runCapture, spawnProc, which } from '../../lib/process.js';
import { checkTargetName } from '../target-name.js';
import { clientArgs, optionFileText } from './args.js';
import type { MysqlSourceConfig as MysqlSource } from './schema.js';

/** Loading a restored dump into a new database, and dropping a drill's scratch database (the plugin's database hooks). */

async function mysqlClient(): Promise<string> {
  const c = (await which('mariadb')) ?? (await which('mysql'));
  if (!c) throw new BackupError('RESTORE_FAILED', 'neither the mariadb nor the mysql client is installed on the worker', { hint: 'apt-get install mariadb-client' });
  return c;
}

/** Runs `fn` with a 0600 option file holding the connection (and password) in `dir`, then removes it. */
async function withOptionFile<T>(cfg: MysqlSource, dir: string, fn: (file: string, password: string | undefined) => Promise<T>): Promise<T> {
  const password = cfg.password ? await readSecret(cfg.password, `source "${cfg.name}" password`) : undefined;
  const file = path.join(dir, `.restore-${cfg.name}-${process.pid}-${Date.now()}.my.cnf`);
  await writeFile(file, optionFileText(cfg, password), { mode: 0o600, flag: 'wx' });
  try {
    return await fn(file, password);
  } finally {
    await rm(file, { force: true });
  }
}

const mysqlWhere = (cfg: MysqlSource) => `MariaDB/MySQL at ${cfg.socket ?? `${cfg.host}:${cfg.port}`}`;

/**
 * The lines of a mariadb-dump file for one database, its `USE` pointed at `target` and its `CREATE DATABASE` left out:
 * the statements of other databases in the same dump are skipped. Lines are read as latin1 (bytes kept as they are).
 */
async function* rewriteDump(file: string, database: string, target: string): AsyncGenerator<Buffer> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'latin1', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  const useLine = /^USE `((?:[^`]|``)*)`;\s*$/;
  let emitting = true;
  let seenUse = false;
  const batch: string[] = [];
  let batched = 0;
  for await (const line of rl) {
    if (line.startsWith('USE `')) {
      const m = useLine.exec(line);
      if (m) {
        seenUse = true;
        emitting = m[1]!.replace(/``/g, '`') === database;
        if (emitting) batch.push(`USE \`${target}\`;`);
        continue;
      }
    }
    if (line.startsWith('CREATE DATABASE ')) continue;
    if (!emitting) continue;
    batch.push(line);
    batched += line.length;
    if (batched > 1 << 20) {
      yield Buffer.from(`${batch.join('\n')}\n`, 'latin1');
      batch.length = 0;
      batched = 0;
    }
  }
  if (!seenUse) batch.unshift(`USE \`${target}\`;`);
  if (batch.length) yield Buffer.from(`${batch.join('\n')}\n`, 'latin1');
}

/** Creates `target` (refusing one that exists) and loads the dump's `database` into it with the mariadb client. */
export async function loadMysql(cfg: MysqlSource, dumpFile: string, database: string, target: string, scratchDir: string, signal: AbortSignal, created?: () => Promise<void>): Promise<void> {
  checkTargetName(target);
  const client = await mysqlClient();
  await withOptionFile(cfg, scratchDir, async (opt, password) => {
    const q = async (sql: string) => {
      const r = await runCapture(client, clientArgs(opt, sql), { signal });
      if (r.code !== 0) throw new BackupError('RESTORE_FAILED', `${mysqlWhere(cfg)}: ${sql.split(' ').slice(0, 3).join(' ')} failed: ${redact(lastLines(r.stderr, 5), [password])}`, { hint: 'the source\'s user needs CREATE, DROP, INSERT and ALTER on the target database' });
      return r.stdout;
    };
    const exists = await q(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${target}'`);
    if (exists.trim() !== '0') throw new BackupError('RESTORE_TARGET_EXISTS', `${mysqlWhere(cfg)}: database ${target} exists; a restore loads only into a new database`, { hint: 'choose another target name, or drop that database first' });
    await q(`CREATE DATABASE \`${target}\``);
    await created?.();
    const p = spawnProc(client, [`--defaults-file=${opt}`, '--binary-mode', target], { stdin: 'pipe', stdout: 'ignore', signal });
    const fed = pipeline(Readable.from(rewriteDump(dumpFile, database, target)), p.child.stdin as Writable).catch((err: unknown) => err);
    const exit = await p.done;
    const feedErr = await fed;
    if (exit.code !== 0) {
      throw new BackupError('RESTORE_FAILED', `loading database ${database} of source "${cfg.name}" into ${target} on ${mysqlWhere(cfg)}: ${describeExit(exit)}: ${redact(lastLines(p.stderr(), 5), [password])}`);
    }
    if (feedErr) throw feedErr;
  });
}

export async function dropMysql(cfg: MysqlSource, target: string, scratchDir: string): Promise<void> {
  checkTargetName(target);
  const client = await mysqlClient();
  await withOptionFile(cfg, scratchDir, async (opt, password) => {
    const r = await runCapture(client, clientArgs(opt, `DROP DATABASE IF EXISTS \`${target}\``));
    if (r.code !== 0) throw new BackupError('RESTORE_FAILED', `${mysqlWhere(cfg)}: dropping ${target}: ${redact(lastLines(r.stderr, 5), [password])}`, { permanent: false });
  });
}
