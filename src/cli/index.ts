import { Command, Option } from 'commander';
import type { LogLevel } from '@temporalio/worker';
import { BACKUPCTL_VERSION } from '../lib/exec.js';
import { BackupError } from '../errors.js';
import { EXIT, fail } from './output.js';

const LOG_LEVELS = ['debug', 'info', 'warn'] as const;
type CliLogLevel = (typeof LOG_LEVELS)[number];

/**
 * The level of the Temporal SDK's and the workflows' and activities' own logs. Default `warn`: a command prints only
 * what an operator needs (server, schedules, runs, outcome); `--log-level` or BACKUPCTL_LOG_LEVEL turns the rest on.
 */
function logLevel(): CliLogLevel {
  const given = program.opts<{ logLevel?: string }>().logLevel ?? process.env.BACKUPCTL_LOG_LEVEL ?? 'warn';
  const level = given.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new BackupError('CONFIG_INVALID', `log level "${given}" (--log-level or BACKUPCTL_LOG_LEVEL) is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return level as CliLogLevel;
}

/** Installs the Temporal SDK's runtime (logger, metrics) for the commands that run a worker. */
async function installRuntime(configFile?: string): Promise<void> {
  const { Runtime, DefaultLogger, makeTelemetryFilterString } = await import('@temporalio/worker');
  const { loadConfig } = await import('../config/load.js');
  const metrics = configFile ? loadConfig(configFile).config.metrics : undefined;
  const level = logLevel().toUpperCase() as LogLevel;
  // Ctrl-C is handled by the commands (worker first, then the dev server).
  Runtime.install({
    logger: new DefaultLogger(level),
    shutdownSignals: [],
    telemetryOptions: {
      // The SDK core's own logs go through the same logger, at the same level.
      logging: { filter: makeTelemetryFilterString({ core: level, other: level }), forward: {} },
      // The Temporal SDK's worker metrics (task slots, poll latency, activity execution latency, ...) for Prometheus.
      ...(metrics ? { metrics: { prometheus: { bindAddress: metrics.prometheus } } } : {}),
    },
  });
}

const program = new Command('backupctl')
  .description('Durable, verified backups orchestrated by Temporal')
  .version(BACKUPCTL_VERSION)
  .option('-c, --config <file>', 'config file (default: $BACKUPCTL_CONFIG or ./backup.yml)')
  .addOption(new Option('--log-level <level>', 'SDK, workflow and activity logs at this level and above (default: $BACKUPCTL_LOG_LEVEL or warn)').choices(LOG_LEVELS));

const action = <A extends unknown[]>(fn: (...args: A) => Promise<number>) => async (...args: A) => {
  try {
    process.exitCode = await fn(...args);
  } catch (err) {
    fail(err);
  }
};
const cfg = () => program.opts<{ config?: string }>().config;

program.command('up')
  .description('start the embedded Temporal dev server (unless TEMPORAL_ADDRESS is set) and the worker')
  .option('--run <job>', 'start this job once the worker is ready')
  .option('--exit', 'with --run: stop when the run is done (exit code as for run --wait)')
  .option('--port <port>', 'dev server gRPC port', '7233')
  .option('--ui-port <port>', 'Web UI port', '8233')
  .action(action(async (opts: { run?: string; exit?: boolean; port?: string; uiPort?: string }) => {
    const { upCommand } = await import('./up.js');
    return upCommand({ config: cfg(), ...opts, installRuntime: () => installRuntime(cfg()) });
  }));

/** `--worker-wait <seconds>`: the bounded wait for a worker of the job's queue (prune, restore, drill). */
const workerWaitOption = () => new Option('--worker-wait <seconds>', 'give up (exit 1, naming the queue) when no worker picks the workflow up within this many seconds').default('60');
const waitMs = (v: string | undefined): number => {
  const n = Number(v ?? '60');
  if (!Number.isFinite(n) || n <= 0) throw new BackupError('CONFIG_INVALID', `--worker-wait "${v}" is not a positive number of seconds`);
  return n * 1000;
};

program.command('worker')
  .description('run the worker for the jobs in the config (connects like the temporal CLI: TEMPORAL_ADDRESS, ...)')
  .option('--queue <queue>', 'poll only this task queue (repeatable; default: worker.queues, else every queue of the config\'s jobs)', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .action(action(async (opts: { queue: string[] }) => {
    await installRuntime(cfg());
    const [{ loadConfig }, { connectConfig }, { runWorkers }] = await Promise.all([import('../config/load.js'), import('../runtime/temporal.js'), import('../runtime/worker.js')]);
    const { file, config } = loadConfig(cfg());
    const { connectionOptions, namespace } = connectConfig();
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await runWorkers({ configFile: file, queues: opts.queue, signal: controller.signal, applySchedules: true, onReady: (q) => process.stderr.write(`worker polling task queue(s) ${q.join(', ')} on ${connectionOptions.address} (namespace ${namespace}); Web UI ${config.temporal.uiUrl}\n`) });
    return EXIT.OK;
  }));

program.command('run <job>')
  .description('start a backup run of a job; prints the workflow ID and Web UI link')
  .addOption(new Option('--type <type>', 'backup type').choices(['full', 'diff']).default('full'))
  .option('--slot <time>', 'ISO time of the slot (default: now)')
  .option('--wait', 'wait for the result: exit 0 ok, 1 failed, 3 ok with warnings')
  .option('--json', 'print the result as JSON')
  .action(action(async (job: string, opts: { type: 'full' | 'diff'; slot?: string; wait?: boolean; json?: boolean }) => (await import('./run.js')).runCommand(job, { config: cfg(), ...opts })));

program.command('cancel <workflowIdOrJob>')
  .description('cancel a run (or every running run of a job): temporary files and staging are removed and a "cancelled" notification is sent')
  .option('--wait', 'wait until the cleanup is done')
  .action(action(async (id: string, opts: { wait?: boolean }) => (await import('./run.js')).cancelCommand(id, { ...opts, config: cfg() })));

const schedulesCmd = program.command('schedules').description('Temporal Schedules declared in the config');
schedulesCmd.command('apply')
  .description('create missing schedules, update changed ones, delete the ones the config no longer has (only backupctl\'s)')
  .action(action(async () => (await import('./schedules.js')).schedulesApplyCommand({ config: cfg() })));
schedulesCmd.command('list')
  .description('each schedule with its next runs, its last run and result, and whether it is paused')
  .option('--json', 'print JSON')
  .action(action(async (opts: { json?: boolean }) => (await import('./schedules.js')).schedulesListCommand({ config: cfg(), ...opts })));

program.command('status [job]')
  .description('per job: newest backup per type (age, size, location), running run, schedules, health; exit 0 ok, 3 warning, 1 failing or stale')
  .option('--json', 'print JSON')
  .action(action(async (job: string | undefined, opts: { json?: boolean }) => (await import('./status.js')).statusCommand({ config: cfg(), job, ...opts })));

program.command('report')
  .description('an HTML report (one self-contained file): per job backup sizes, step durations, freshness, drills and RTO, destinations')
  .option('--job <job>', 'only this job')
  .option('--out <file>', 'where to write it (- for standard output)', 'report.html')
  .action(action(async (opts: { job?: string; out: string }) => (await import('./report.js')).reportCommand({ config: cfg(), ...opts })));

program.command('list <job>')
  .description('the finalized backups (with manifest) on each destination: type, slot, size, SHA-256, and a diff\'s base full')
  .option('--json', 'print JSON')
  .action(action(async (job: string, opts: { json?: boolean }) => (await import('./list.js')).listCommand(job, { config: cfg(), ...opts })));

program.command('prune <job>')
  .description('apply the job\'s retention policy, remove orphaned temporary files and stale staging; exit 1 if refused')
  .option('--dry-run', 'report what would be removed, remove nothing')
  .option('--json', 'print JSON')
  .addOption(workerWaitOption())
  .action(action(async (job: string, opts: { dryRun?: boolean; json?: boolean; workerWait?: string }) => (await import('./prune.js')).pruneCommand(job, { config: cfg(), dryRun: opts.dryRun, json: opts.json, workerWaitMs: waitMs(opts.workerWait) })));
program.command('restore <job>')
  .description('restore a backup (default: the newest) into a new directory: download, check every SHA-256, then unpack; exit 0 restored, 1 failed')
  .requiredOption('--to <dir>', 'target directory (must not exist, or be empty)')
  .option('--backup <workflowId>', 'the backup run to restore')
  .option('--at <time>', 'the newest backup at or before this ISO time')
  .option('--destination <name>', 'read from this destination (default: the first of the job\'s that has the backup)')
  .option('--into-databases <mapping...>', 'also load dumps into new databases: source=target or source.database=target (comma-separated or repeated)')
  .option('--trust-unsigned', 'disaster recovery: also restore a backup whose manifest signature does not verify (signing key lost, made before signing existed); said loudly in the output')
  .option('--identity <file>', 'an encrypted backup: the age identity (private key) file that decrypts it, read by age on the worker')
  .option('--no-worker', 'never run an in-process worker: the restore goes to the job\'s task queue, whose worker must pick it up within --worker-wait')
  .addOption(workerWaitOption())
  .option('--json', 'print the result as JSON')
  .action(action(async (job: string, opts: { to: string; backup?: string; at?: string; destination?: string; intoDatabases?: string[]; trustUnsigned?: boolean; identity?: string; worker: boolean; workerWait?: string; json?: boolean }) => {
    const { restoreCommand } = await import('./restore.js');
    const { workerWait, ...rest } = opts;
    return restoreCommand(job, { config: cfg(), ...rest, workerWaitMs: waitMs(workerWait), installRuntime: () => installRuntime(cfg()) });
  }));

program.command('drill <job>')
  .description('run a restore drill now: restore the newest backup into scratch space, check it, remove it; exit 0 passed, 1 failed')
  .option('--no-worker', 'never run an in-process worker: the drill goes to the job\'s task queue, whose worker must pick it up within --worker-wait')
  .addOption(workerWaitOption())
  .option('--json', 'print the report as JSON')
  .action(action(async (job: string, opts: { worker: boolean; workerWait?: string; json?: boolean }) => {
    const { drillCommand } = await import('./drill.js');
    return drillCommand(job, { config: cfg(), worker: opts.worker, json: opts.json, workerWaitMs: waitMs(opts.workerWait), installRuntime: () => installRuntime(cfg()) });
  }));

const keysCmd = program.command('keys').description('the key that signs manifests and drill reports; age keys for encryption');
keysCmd.command('init')
  .description('create the signing key pair (signing.key.file, default <stateDir>/keys/signing.key); never overwrites one')
  .option('--json', 'print JSON')
  .action(action(async (opts: { json?: boolean }) => (await import('./keys.js')).keysInitCommand({ config: cfg(), ...opts })));
keysCmd.command('age-generate <file>')
  .description('create an age key pair for encryption at rest: the identity (private key) in FILE (mode 0600, never overwritten), the public key printed for encryption.recipients')
  .option('--json', 'print JSON')
  .action(action(async (file: string, opts: { json?: boolean }) => (await import('./keys.js')).keysAgeGenerateCommand(file, opts)));

const configCmd = program.command('config').description('config file commands');
configCmd.command('check')
  .description('validate the config, then check sources, destinations (SSH login, host key, write access, free space) and notifiers')
  .action(action(async () => (await import('./config-check.js')).configCheckCommand({ config: cfg() })));
configCmd.command('schema')
  .description('print the config file\'s JSON Schema (for editors: # yaml-language-server: $schema=<file>)')
  .action(action(async () => {
    const { configJsonSchemaText } = await import('../config/json-schema.js');
    process.stdout.write(configJsonSchemaText());
    return EXIT.OK;
  }));

program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? 0 : EXIT.USAGE);
});

await program.parseAsync(process.argv);
