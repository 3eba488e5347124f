import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { MysqlSourceConfig as Config } from './schema.js';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import { describeExit, lastLines, pipeCommand, redact, runCapture, which } from '../../lib/process.js';
import type { DumpContext, DumpOutcome, Source } from '../types.js';
import {
  SYSTEM_SCHEMAS, TRAILER, classifyMysqlFailure, clientArgs, dumpArgs, hasDumpTrailer, optionFileText, parseToolVersion,
  serverLabel,
} from './args.js';

interface Tools {
  dump: string;
  client: string;
  /** e.g. `mariadb-dump 10.11.19-MariaDB` */
  dumpVersion: string;
}

let toolsCache: Promise<Tools> | undefined;

/** mariadb-dump and mariadb (MariaDB 10.5+), else mysqldump and mysql; whichever is installed. */
async function findTools(): Promise<Tools> {
  toolsCache ??= (async () => {
    const dump = (await which('mariadb-dump')) ? 'mariadb-dump' : (await which('mysqldump')) ? 'mysqldump' : undefined;
    const client = (await which('mariadb')) ? 'mariadb' : (await which('mysql')) ? 'mysql' : undefined;
    if (!dump || !client) {
      const missing = !dump ? 'neither mariadb-dump nor mysqldump' : 'neither the mariadb nor the mysql client';
      throw new BackupError('SOURCE_UNREADABLE', `${missing} is installed on the worker`, {
        hint: 'install the client tools: apt-get install mariadb-client (or mysql-client)',
      });
    }
    const v = await runCapture(dump, ['--version']);
    return { dump, client, dumpVersion: `${dump} ${parseToolVersion(v.stdout || v.stderr)}` };
  })();
  toolsCache.catch(() => { toolsCache = undefined; });
  return toolsCache;
}

/** Result of the query run before each dump: proves the login and lists what the user can see. */
interface ServerFacts {
  version: string;
  databases: string[];
}

/**
 * MariaDB or MySQL, dumped with mariadb-dump (or mysqldump) into one SQL stream (compressed by the dump's compress stage).
 * Accepted only when the tool exits 0 and the stream ends with the `-- Dump completed` trailer, checked on the last
 * 4 KiB as they pass. The password travels in a 0600 option file in the staging folder, never on a command line.
 */
export class MysqlSource implements Source {
  readonly type = 'mysql';
  readonly extension = 'sql.zst';
  readonly compress = true;
  constructor(private readonly cfg: Config) {}
  get name(): string { return this.cfg.name; }

  private get where(): string { return `MariaDB/MySQL at ${serverLabel(this.cfg)}`; }

  private password(): Promise<string | undefined> {
    return this.cfg.password ? readSecret(this.cfg.password, `source "${this.name}" password`) : Promise.resolve(undefined);
  }

  /** Writes the option file (mode 0600) into `dir`, runs `fn`, removes the file. */
  private async withOptionFile<T>(dir: string, fn: (file: string, password: string | undefined) => Promise<T>): Promise<T> {
    const password = await this.password();
    const file = path.join(dir, `.${this.name}.my.cnf`);
    await rm(file, { force: true });
    await writeFile(file, optionFileText(this.cfg, password), { mode: 0o600, flag: 'wx' });
    try {
      return await fn(file, password);
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Turns a failed client or dump run into a BackupError that names the source and the server, never the password. */
  private failure(tool: string, what: string, stderr: string, password: string | undefined): BackupError {
    const text = redact(lastLines(stderr), [password]);
    const { code, kind } = classifyMysqlFailure(text);
    switch (kind) {
      case 'auth':
        return new BackupError(code, `source "${this.name}": ${this.where} refused the login of user "${this.cfg.user}": ${text}`, {
          hint: `check the user and the password reference of source "${this.name}"`,
        });
      case 'unknown-database':
        return new BackupError(code, `source "${this.name}": a database to dump does not exist on ${this.where}: ${text}`, {
          hint: 'check the databases list of the source',
        });
      case 'privileges':
        return new BackupError(code, `source "${this.name}": user "${this.cfg.user}" lacks a privilege on ${this.where}: ${text}`, {
          hint: 'the user needs SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES on the databases it dumps (see README)',
        });
      default:
        return new BackupError(code, `source "${this.name}": ${tool} ${what} (${this.where}): ${text || 'no error output'}`);
    }
  }

  private async serverFacts(tools: Tools, optionFile: string, password: string | undefined, signal?: AbortSignal): Promise<ServerFacts> {
    const r = await runCapture(tools.client, clientArgs(optionFile, 'SELECT VERSION(); SHOW DATABASES'), { signal });
    signal?.throwIfAborted();
    if (r.code !== 0) throw this.failure(tools.client, describeExit(r), r.stderr, password);
    const [version = 'unknown', ...rest] = r.stdout.split('\n').filter((l) => l !== '');
    const databases = rest.map((l) => l.replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t', '0': '\0' })[c] ?? c));
    return { version, databases };
  }

  /** The databases a dump covers, checked against what the server shows the user. */
  private selectDatabases(facts: ServerFacts): string[] {
    if (!this.cfg.databases) return facts.databases.filter((d) => !SYSTEM_SCHEMAS.has(d.toLowerCase()));
    const missing = this.cfg.databases.filter((d) => !facts.databases.includes(d));
    if (missing.length > 0) {
      throw new BackupError('SOURCE_UNREADABLE', `source "${this.name}": ${this.where} has no database ${missing.map((d) => `"${d}"`).join(', ')} visible to user "${this.cfg.user}"`, {
        hint: 'check the databases list of the source and the user\'s privileges',
      });
    }
    return this.cfg.databases;
  }

  async dump(out: Writable, ctx: DumpContext): Promise<DumpOutcome> {
    const tools = await findTools();
    return this.withOptionFile(ctx.stagingDir, async (optionFile, password) => {
      const facts = await this.serverFacts(tools, optionFile, password, ctx.signal);
      const databases = this.selectDatabases(facts);
      let r;
      try {
        r = await pipeCommand({
          cmd: tools.dump, args: dumpArgs(this.cfg, optionFile), tailBytes: 4096, signal: ctx.signal,
        }, out);
      } catch (err) {
        ctx.signal.throwIfAborted();
        throw err;
      }
      ctx.signal.throwIfAborted();
      if (r.exit.code !== 0) throw this.failure(tools.dump, `${describeExit(r.exit)} after ${r.bytes} bytes; the dump is incomplete`, r.stderr, password);
      if (r.bytes === 0) throw new BackupError('SOURCE_EMPTY', `source "${this.name}": ${tools.dump} exited 0 but wrote nothing (${this.where})`);
      if (!hasDumpTrailer(r.tail)) {
        throw new BackupError('DUMP_INCOMPLETE', `source "${this.name}": the dump of ${this.where} does not end with "${TRAILER}" although ${tools.dump} exited 0 (${r.bytes} bytes); it is treated as truncated`, {
          hint: 'do not pass --compact or --skip-comments: the trailer is how a complete dump is recognised',
        });
      }
      if (r.bytes < this.cfg.minSize) {
        throw new BackupError('DUMP_INCOMPLETE', `source "${this.name}": the dump of ${this.where} is ${r.bytes} bytes, below the minimum of ${this.cfg.minSize} bytes`, {
          hint: 'a database that shrank this much is suspicious; lower minSize if it is expected',
        });
      }
      const warnings: string[] = [];
      const stderr = redact(lastLines(r.stderr, 20), [password]);
      if (stderr) warnings.push(`source "${this.name}": ${tools.dump} succeeded with messages: ${stderr}`);
      return {
        warnings,
        stats: {
          bytes: r.bytes,
          tool: tools.dumpVersion,
          server: facts.version,
          databases: databases.join(','),
          databaseCount: databases.length,
          check: `exit 0 and trailer "${TRAILER}"`,
        },
      };
    });
  }

  async estimate(): Promise<number> {
    const tools = await findTools();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'backupctl-mysql-'));
    try {
      return await this.withOptionFile(dir, async (optionFile, password) => {
        const where = this.cfg.databases
          ? `table_schema IN (${this.cfg.databases.map((d) => `'${d.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`).join(',')})`
          : `table_schema NOT IN (${[...SYSTEM_SCHEMAS].map((s) => `'${s}'`).join(',')})`;
        const sql = `SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE ${where}`;
        const r = await runCapture(tools.client, clientArgs(optionFile, sql));
        if (r.code !== 0) throw this.failure(tools.client, describeExit(r), r.stderr, password);
        const n = Number(r.stdout.trim());
        return Number.isSafeInteger(n) ? n : 0;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async check(): Promise<string> {
    const tools = await findTools();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'backupctl-mysql-'));
    try {
      return await this.withOptionFile(dir, async (optionFile, password) => {
        const facts = await this.serverFacts(tools, optionFile, password);
        const dbs = this.selectDatabases(facts);
        const list = dbs.length <= 5 ? ` (${dbs.join(', ')})` : '';
        return `${tools.dumpVersion}, server ${facts.version} at ${serverLabel(this.cfg)}, ${dbs.length} database${dbs.length === 1 ? '' : 's'}${list}`;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
