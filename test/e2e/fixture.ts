import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { defaultDeployment } from '../../src/config/load.js';
import { signatureFor, signatureName, type SignedKind } from '../../src/repository/signatures.js';
import { createWorkers, type WorkerOptions } from '../../src/runtime/worker.js';
import { createSigningKey, loadSigningKey } from '../../src/state/keys.js';
import { startMariadb, type MariadbHandle } from '../helpers/mariadb.js';
import { startPostgres, type PostgresHandle } from '../helpers/postgres.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startSshd, type SshdHandle, type SshdOptions } from '../helpers/sshd.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';

let runtimeInstalled = false;

/** Real servers for one test file: Temporal (shared dev server), OpenSSH on loopback, an SMTP sink. */
export interface Env {
  tmp: TempDir;
  sshd: SshdHandle;
  smtp: SmtpSink;
  client: Client;
  native: NativeConnection;
  address: string;
  close(): Promise<void>;
}

export async function startEnv(sshdOpts: SshdOptions = {}): Promise<Env> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
    runtimeInstalled = true;
  }
  const address = inject('temporalAddress');
  process.env.TEMPORAL_ADDRESS = address;
  const [tmp, sshd, smtp] = await Promise.all([makeTempDir(), startSshd(sshdOpts), startSmtpSink({ auth: { user: 'mailer', pass: 'smtp-secret-Zq7' } })]);
  const connection = await Connection.connect({ address });
  const native = await NativeConnection.connect({ address });
  return {
    tmp, sshd, smtp, address, native, client: new Client({ connection }),
    async close() {
      await connection.close();
      await native.close();
      await Promise.all([sshd.stop(), smtp.stop(), tmp.cleanup()]);
    },
  };
}

/**
 * `startEnv()` plus a MariaDB and a PostgreSQL server, each with a `backup` account whose password is also in
 * `process.env[passwordVar]` (the jobs' `passwordEnv`), and an empty PostgreSQL database `ledger`.
 */
export async function startDatabaseEnv(passwordVar: string, password: string, mariaGrants?: string): Promise<{ env: Env; maria: MariadbHandle; pg: PostgresHandle }> {
  const [env, maria, pg] = await Promise.all([startEnv(), startMariadb(), startPostgres()]);
  process.env[passwordVar] = password;
  await Promise.all([
    maria.createUser('backup', password, mariaGrants),
    (async () => {
      await pg.createRole('backup', password, 'SUPERUSER');
      await pg.createDatabase('ledger');
    })(),
  ]);
  return { env, maria, pg };
}

let counter = 0;

/**
 * The jobs of one test file are one deployment: they share destinations, so they share the manifest signing key
 * (`signing.key.file`), created with the first job. A test that patches `signing` away gets the default key in its
 * own state directory instead.
 */
export function deploymentKeyFile(env: Env): string {
  const file = path.join(env.tmp.path, 'keys', 'signing.key');
  if (!existsSync(file)) createSigningKey({ stateDir: env.tmp.path, signing: { key: { file }, trust: [] } });
  return file;
}

/** Signs a file on a local or test destination with the deployment's key, as a worker would: for files a test writes by hand. */
export function signAsDeployment(env: Env, file: string, kind: SignedKind = 'manifest'): void {
  const key = loadSigningKey({ stateDir: env.tmp.path, signing: { key: { file: deploymentKeyFile(env) }, trust: [] } });
  writeFileSync(signatureName(file), signatureFor(kind, readFileSync(file), key));
}

export interface JobSetup {
  configFile: string;
  taskQueue: string;
  dataDir: string;
  stateDir: string;
  config: Record<string, unknown>;
  /** The config's deployment (`temporal.deployment`, else the default its file's path gives): it is in run IDs. */
  deployment: string;
}

/** Writes a config with one files job `app` → sftp destination `nas` → email notifier `ops`, on its own task queue. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests patch the config freely, like a person editing YAML
type LooseConfig = Record<string, any>;

export async function writeJob(env: Env, patch: (cfg: LooseConfig) => void = () => undefined): Promise<JobSetup> {
  const n = ++counter;
  const base = path.join(env.tmp.path, `job${n}`);
  const dataDir = path.join(base, 'data');
  await mkdir(path.join(dataDir, 'sub'), { recursive: true });
  await writeFile(path.join(dataDir, 'hello.txt'), 'hello backup\n');
  await writeFile(path.join(dataDir, 'sub', 'numbers.csv'), Array.from({ length: 2000 }, (_, i) => `${i},${i * i}`).join('\n'));
  const taskQueue = `test-${process.pid}-${n}-${Date.now()}`;
  const config: LooseConfig = {
    stateDir: path.join(base, 'state'),
    signing: { key: { file: deploymentKeyFile(env) } },
    temporal: { taskQueue, uiUrl: 'http://localhost:8233' },
    settings: { retries: 3, heartbeatTimeout: '5s', notifyTimeout: '1m' },
    destinations: {
      nas: {
        type: 'sftp', host: env.sshd.host, port: env.sshd.port, user: env.sshd.user, privateKey: env.sshd.clientKeyPath,
        hostKey: env.sshd.hostKeyFingerprint, path: env.sshd.root,
      },
    },
    notifiers: {
      // The test SMTP sink has no TLS: plain-text login must be opted into explicitly (requireTLS defaults to on with a password).
      ops: { type: 'email', host: env.smtp.host, port: env.smtp.port, requireTLS: false, user: 'mailer', password: { env: 'TEST_SMTP_PASSWORD' }, from: 'backupctl@example.test', to: ['ops@example.test'] },
    },
    jobs: { app: { sources: [{ name: 'app-files', type: 'files', paths: [dataDir] }], destinations: ['nas'], notify: ['ops'] } },
  };
  process.env.TEST_SMTP_PASSWORD = 'smtp-secret-Zq7';
  patch(config);
  const configFile = path.join(base, 'backup.yml');
  await writeFile(configFile, stringify(config));
  const deployment = (config.temporal as { deployment?: string }).deployment ?? defaultDeployment(configFile);
  return { configFile, taskQueue, dataDir, stateDir: config.stateDir as string, config, deployment };
}

/** Runs an in-process worker for `fn`'s duration. */
export async function withWorker<T>(env: Env, job: JobSetup, fn: () => Promise<T>, activities?: WorkerOptions['activities']): Promise<T> {
  const w = await createWorkers({ configFile: job.configFile, connection: env.native, namespace: 'default', activities });
  try {
    return await w.workers[0]!.runUntil(fn);
  } finally {
    await w.close();
  }
}

/**
 * The database sources the e2e and fault tests back up: `shop-db` (MariaDB, database `shop`) and `ledger-db`
 * (PostgreSQL, database `ledger`) on the test servers, as account `backup` with the password in `passwordEnv`.
 */
export function databaseSources(maria: { port: number }, pg: { port: number }, passwordEnv = 'TEST_DB_PASSWORD') {
  const account = { host: '127.0.0.1', user: 'backup', password: { env: passwordEnv } };
  return {
    mysql: { name: 'shop-db', type: 'mysql', ...account, port: maria.port, databases: ['shop'] },
    postgres: { name: 'ledger-db', type: 'postgres', ...account, port: pg.port, databases: ['ledger'] },
  };
}

/** Every file under a directory, relative to it. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Every entry under a directory: type, mode, size, mtime (seconds, as tar keeps it), content hash or link target. */
export function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      const rel = path.relative(dir, p);
      if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)}`;
      else if (st.isDirectory()) { out[rel] = `dir ${(st.mode & 0o7777).toString(8)}`; walk(p); }
      else out[rel] = `file ${(st.mode & 0o7777).toString(8)} ${st.size} ${Math.floor(st.mtimeMs / 1000)} ${sha256File(p)}`;
    }
  };
  walk(dir);
  return out;
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export function fileSize(file: string): number {
  return statSync(file).size;
}

/**
 * The run's history as text with every payload decoded: what the Web UI shows. Searching the raw history would
 * miss a secret hidden in base64.
 */
export async function historyText(handle: { fetchHistory(): Promise<unknown> }): Promise<string> {
  const raw = JSON.stringify(await handle.fetchHistory());
  const decoded = [...raw.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('utf8'));
  return `${raw}\n${decoded.join('\n')}`;
}
