import { createReadStream } from 'node:fs';
import { open, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PostgresSourceConfig as Config } from './schema.js';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import { describeExit, lastLines, redact, runCapture } from '../../lib/process.js';
import { END_OF_ARCHIVE, padding, tarHeader } from '../../lib/tar.js';
import type { DumpContext, DumpOutcome, Source } from '../types.js';
import {
  FACTS_SQL, GLOBALS_FILE, SIZES_SQL, classifyPgFailure, dumpFileName, hasGlobalsTrailer, majorVersion,
  parsePgToolVersion, parseTocListing, pgDumpArgs, pgDumpallArgs, pgEnv, pgRestoreCheckArgs, psqlArgs,
} from './args.js';

interface ServerFacts {
  version: string;
  versionNum: number;
  superuser: boolean;
  databases: string[];
}

/** One file of the component, spooled and checked. */
interface Spooled {
  member: string;
  file: string;
  size: number;
}

/** While spooling and checking: how often progress is reported (the caller throttles heartbeats to one a second). */
export const SPOOL_HEARTBEAT = { intervalMs: 1000 };

/**
 * PostgreSQL: `pg_dump -Fc` of each database (listed, or all that accept connections and are not templates) and
 * `pg_dumpall --globals-only` (roles, tablespaces). Each dump is spooled uncompressed (`-Z0`) into the staging folder,
 * checked with `pg_restore --list` (or read completely with `restoreCheck: full`), then appended to the component,
 * a tar (compressed by the dump's compress stage, zstd -T0): `globals.sql` first, then `<database>.dump` per database. The password is in
 * PGPASSWORD in the children's environment only.
 */
export class PostgresSource implements Source {
  readonly type = 'postgres';
  readonly extension = 'tar.zst';
  readonly compress = true;
  constructor(private readonly cfg: Config) {}
  get name(): string { return this.cfg.name; }

  private get where(): string {
    return this.cfg.host.startsWith('/') ? `PostgreSQL at socket ${this.cfg.host}/.s.PGSQL.${this.cfg.port}` : `PostgreSQL at ${this.cfg.host}:${this.cfg.port}`;
  }

  private tool(name: 'pg_dump' | 'pg_dumpall' | 'pg_restore' | 'psql'): string {
    return this.cfg.binDir ? path.join(this.cfg.binDir, name) : name;
  }

  private async connection(): Promise<{ env: NodeJS.ProcessEnv; password: string | undefined }> {
    const password = this.cfg.password ? await readSecret(this.cfg.password, `source "${this.name}" password`) : undefined;
    return { env: pgEnv(this.cfg, password), password };
  }

  private notInstalled(tool: string, err: unknown): BackupError | undefined {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EACCES') return undefined;
    return new BackupError('SOURCE_UNREADABLE', `source "${this.name}": cannot run ${this.tool(tool as 'psql')}: ${code === 'ENOENT' ? 'not found' : 'permission denied'}`, {
      hint: this.cfg.binDir ? 'check binDir of the source' : 'install the PostgreSQL client tools on the worker (apt-get install postgresql-client), or set binDir',
    });
  }

  /** Runs a PostgreSQL tool to completion; a spawn failure becomes a clear error. */
  private async exec(tool: 'pg_dump' | 'pg_dumpall' | 'pg_restore' | 'psql', args: string[], env: NodeJS.ProcessEnv, signal?: AbortSignal, maxStdout?: number) {
    try {
      return await runCapture(this.tool(tool), args, { env, signal, maxStdout });
    } catch (err) {
      throw this.notInstalled(tool, err) ?? err;
    }
  }

  /** A failed tool run as a BackupError naming the source and the server, never the password. */
  private failure(tool: string, what: string, stderr: string, password: string | undefined): BackupError {
    const text = redact(lastLines(stderr), [password]);
    const { code, kind } = classifyPgFailure(text);
    switch (kind) {
      case 'auth':
        return new BackupError(code, `source "${this.name}": ${this.where} refused the login of user "${this.cfg.user}": ${text}`, {
          hint: `check the user and the password reference of source "${this.name}" (and pg_hba.conf)`,
        });
      case 'unknown-database':
        return new BackupError(code, `source "${this.name}": a database does not exist on ${this.where}: ${text}`, { hint: 'check the databases and connectDatabase of the source' });
      case 'privileges':
        return new BackupError(code, `source "${this.name}": user "${this.cfg.user}" lacks a privilege on ${this.where}: ${text}`, {
          hint: 'the user needs CONNECT and SELECT on everything it dumps (pg_read_all_data), and superuser for globals unless rolePasswords is false (see README)',
        });
      case 'version':
        return new BackupError(code, `source "${this.name}": ${tool} is older than the server at ${this.where}: ${text}`, {
          hint: 'install the client tools of the server\'s major version and point binDir at them',
        });
      default:
        return new BackupError(code, `source "${this.name}": ${tool} ${what} (${this.where}): ${text || 'no error output'}`);
    }
  }

  private async serverFacts(env: NodeJS.ProcessEnv, password: string | undefined, signal?: AbortSignal): Promise<ServerFacts> {
    const r = await this.exec('psql', psqlArgs(this.cfg.connectDatabase, FACTS_SQL), env, signal);
    signal?.throwIfAborted();
    if (r.code !== 0) throw this.failure('psql', describeExit(r), r.stderr, password);
    try {
      return JSON.parse(r.stdout) as ServerFacts;
    } catch {
      throw new BackupError('DUMP_FAILED', `source "${this.name}": unexpected answer from psql: ${r.stdout.slice(0, 200)}`);
    }
  }

  private selectDatabases(facts: ServerFacts): string[] {
    if (!this.cfg.databases) return facts.databases;
    const missing = this.cfg.databases.filter((d) => !facts.databases.includes(d));
    if (missing.length > 0) {
      throw new BackupError('SOURCE_UNREADABLE', `source "${this.name}": ${this.where} has no database ${missing.map((d) => `"${d}"`).join(', ')} that accepts connections`, {
        hint: 'check the databases list of the source',
      });
    }
    return this.cfg.databases;
  }

  private async toolVersion(tool: 'pg_dump', env: NodeJS.ProcessEnv): Promise<string> {
    const r = await this.exec(tool, ['--version'], env);
    return parsePgToolVersion(r.stdout);
  }

  /** pg_dump must not be older than the server (it refuses); said before dumping, with the way out. */
  private checkVersions(dumpVersion: string, facts: ServerFacts): void {
    if (dumpVersion !== 'unknown' && majorVersion(dumpVersion) < majorVersion(facts.version)) {
      throw new BackupError('SOURCE_UNREADABLE', `source "${this.name}": pg_dump ${dumpVersion} cannot dump the server ${facts.version} at ${this.where}`, {
        hint: 'install the client tools of the server\'s major version and point binDir at them',
      });
    }
  }

  /** pg_dumpall --globals-only reads pg_authid (role passwords), which only a superuser may. */
  private checkGlobalsAllowed(facts: ServerFacts): void {
    if (this.cfg.globals && this.cfg.rolePasswords && !facts.superuser) {
      throw new BackupError('SOURCE_UNREADABLE', `source "${this.name}": user "${this.cfg.user}" is not a superuser on ${this.where}, so pg_dumpall cannot read the role passwords`, {
        hint: 'set rolePasswords: false (roles without passwords) or globals: false, or dump as a superuser',
      });
    }
  }

  async dump(out: Writable, ctx: DumpContext): Promise<DumpOutcome> {
    const { env, password } = await this.connection();
    const dumpVersion = await this.toolVersion('pg_dump', env);
    const facts = await this.serverFacts(env, password, ctx.signal);
    this.checkVersions(dumpVersion, facts);
    const databases = this.selectDatabases(facts);
    this.checkGlobalsAllowed(facts);

    const local = new AbortController();
    const abort = () => local.abort();
    ctx.signal.addEventListener('abort', abort, { once: true });
    if (ctx.signal.aborted) abort();
    const spools = new Set<string>();
    const stats: Record<string, number | string> = {};
    const warnings: string[] = [];
    let payload = 0;
    // Spooling and checking write nothing to `out` for a while: keep the activity's heartbeat going.
    const keepAlive = setInterval(() => {
      if (ctx.heartbeat) ctx.heartbeat();
      else if (!out.writableEnded && !out.destroyed) out.write(Buffer.alloc(0));
    }, SPOOL_HEARTBEAT.intervalMs);

    /** A fresh spool file, created empty with mode 0600 first so that the dump written into it is private. */
    const spoolFile = async (member: string) => {
      const file = path.join(ctx.stagingDir, `.${this.name}.${member}.spool`);
      spools.add(file);
      await rm(file, { force: true });
      await writeFile(file, '', { mode: 0o600, flag: 'wx' });
      return file;
    };

    const run = async (tool: 'pg_dump' | 'pg_dumpall' | 'pg_restore', args: string[], maxStdout?: number) => {
      const r = await this.exec(tool, args, env, local.signal, maxStdout);
      local.signal.throwIfAborted();
      return r;
    };

    const dumpGlobals = async (): Promise<Spooled> => {
      const file = await spoolFile(GLOBALS_FILE);
      const r = await run('pg_dumpall', pgDumpallArgs(this.cfg, file));
      if (r.code !== 0) throw this.failure('pg_dumpall', `${describeExit(r)}; the globals dump is incomplete`, r.stderr, password);
      const size = (await stat(file)).size;
      if (!hasGlobalsTrailer(await readTail(file, size, 4096))) {
        throw new BackupError('DUMP_INCOMPLETE', `source "${this.name}": the globals dump of ${this.where} does not end with "PostgreSQL database cluster dump complete" although pg_dumpall exited 0`);
      }
      if (r.stderr.trim()) warnings.push(`source "${this.name}": pg_dumpall succeeded with messages: ${redact(lastLines(r.stderr), [password])}`);
      stats['globals.bytes'] = size;
      return { member: GLOBALS_FILE, file, size };
    };

    const dumpDatabase = async (db: string): Promise<Spooled> => {
      const member = dumpFileName(db);
      const file = await spoolFile(member);
      const r = await run('pg_dump', pgDumpArgs(this.cfg, db, file));
      if (r.code !== 0) throw this.failure('pg_dump', `${describeExit(r)} dumping database "${db}"; the dump is incomplete`, r.stderr, password);
      if (r.stderr.trim()) warnings.push(`source "${this.name}": pg_dump of "${db}" succeeded with messages: ${redact(lastLines(r.stderr), [password])}`);
      const size = (await stat(file)).size;
      // Checked before it enters the component: the table of contents must be readable (restoreCheck: full reads it all).
      const list = await run('pg_restore', pgRestoreCheckArgs(this.cfg.restoreCheck, file), 64 << 20);
      if (list.code !== 0) {
        throw new BackupError('DUMP_INCOMPLETE', `source "${this.name}": the dump of database "${db}" (${size} bytes) does not pass pg_restore ${this.cfg.restoreCheck === 'full' ? 'reading it' : '--list'}: ${lastLines(list.stderr)}`);
      }
      const key = `database.${db}`;
      stats[`${key}.bytes`] = size;
      if (member !== `${db}.dump`) stats[`${key}.file`] = member;
      if (this.cfg.restoreCheck === 'list') {
        const toc = parseTocListing(list.stdout);
        if (toc.format !== 'CUSTOM' || (toc.dbname !== db && !/[\r\n]/.test(db)) || toc.tocEntries === undefined) {
          throw new BackupError('DUMP_INCOMPLETE', `source "${this.name}": pg_restore --list does not show a custom-format dump of database "${db}" (format ${toc.format ?? 'unknown'}, database ${toc.dbname ?? 'unknown'})`);
        }
        stats[`${key}.tocEntries`] = toc.tocEntries;
        stats[`${key}.tables`] = toc.tableData;
      }
      return { member, file, size };
    };

    const parts: (() => Promise<Spooled>)[] = [];
    if (this.cfg.globals) parts.push(dumpGlobals);
    for (const db of databases) parts.push(() => dumpDatabase(db));
    const name = this.name;
    /** The component's tar stream: each part is dumped and checked when the stream reaches it. */
    async function* tar(): AsyncGenerator<Buffer> {
      const mtime = new Date();
      for (const part of parts) {
        const s = await part();
        yield tarHeader(s.member, s.size, mtime);
        let sent = 0;
        for await (const chunk of createReadStream(s.file, { highWaterMark: 1 << 20 })) {
          sent += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        if (sent !== s.size) throw new BackupError('DUMP_FAILED', `source "${name}": the spool file of ${s.member} changed size while being archived`);
        const pad = padding(s.size);
        if (pad) yield Buffer.alloc(pad);
        payload += s.size;
        await rm(s.file, { force: true });
        spools.delete(s.file);
      }
      yield END_OF_ARCHIVE;
    }

    // `out` failing (the compress stage gone, a full disk) stops the dump and check that are running.
    const onError = () => abort();
    out.once('error', onError);
    try {
      await pipeline(Readable.from(tar(), { objectMode: false }), out, { signal: local.signal });
    } catch (err) {
      abort();
      ctx.signal.throwIfAborted();
      throw err;
    } finally {
      out.off('error', onError);
      clearInterval(keepAlive);
      ctx.signal.removeEventListener('abort', abort);
      await Promise.all([...spools].map((f) => rm(f, { force: true })));
    }
    if (payload === 0) throw new BackupError('SOURCE_EMPTY', `source "${this.name}": nothing was dumped from ${this.where}`);
    if (payload < this.cfg.minSize) {
      throw new BackupError('DUMP_INCOMPLETE', `source "${this.name}": the dumps of ${this.where} total ${payload} bytes, below the minimum of ${this.cfg.minSize} bytes`, {
        hint: 'a database that shrank this much is suspicious; lower minSize if it is expected',
      });
    }
    return {
      warnings,
      stats: {
        bytes: payload,
        tool: `pg_dump ${dumpVersion}`,
        server: facts.version,
        databases: databases.join(','),
        databaseCount: databases.length,
        globals: this.cfg.globals ? (this.cfg.rolePasswords ? 'roles and tablespaces' : 'roles (without passwords) and tablespaces') : 'not dumped',
        check: `exit 0 and pg_restore ${this.cfg.restoreCheck === 'full' ? 'read every dump' : '--list read every dump\'s table of contents'}`,
        ...stats,
      },
    };
  }

  async estimate(): Promise<number> {
    const { env, password } = await this.connection();
    const r = await this.exec('psql', psqlArgs(this.cfg.connectDatabase, SIZES_SQL), env);
    if (r.code !== 0) throw this.failure('psql', describeExit(r), r.stderr, password);
    const sizes = JSON.parse(r.stdout) as Record<string, number>;
    const names = this.cfg.databases ?? Object.keys(sizes);
    return names.reduce((sum, db) => sum + (sizes[db] ?? 0), 0);
  }

  async check(): Promise<string> {
    const { env, password } = await this.connection();
    const dumpVersion = await this.toolVersion('pg_dump', env);
    const facts = await this.serverFacts(env, password);
    this.checkVersions(dumpVersion, facts);
    const dbs = this.selectDatabases(facts);
    this.checkGlobalsAllowed(facts);
    const list = dbs.length <= 5 ? ` (${dbs.join(', ')})` : '';
    return `pg_dump ${dumpVersion}, server ${facts.version} at ${this.where.replace(/^PostgreSQL at /, '')}, ${dbs.length} database${dbs.length === 1 ? '' : 's'}${list}`;
  }
}

/** The last `n` bytes of a small spool file, as text. */
async function readTail(file: string, size: number, n: number): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const len = Math.min(size, n);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}
