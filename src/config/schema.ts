import { z } from 'zod';
import * as destinationRegistry from '../destinations/registry.js';
import * as notifierRegistry from '../notifiers/registry.js';
import * as sourceRegistry from '../sources/registry.js';
import { AGE_RECIPIENT } from '../lib/age.js';
import { ByteSize, DURATION_RE, Duration, Name, Port, SecretRef } from './fields.js';

/** `host:port` of a listening socket. */
const HOST_PORT_RE = /^[^:\s]+:\d+$/;

export { ByteSize, Duration, EVENT_KINDS, EventKind, SecretRef } from './fields.js';

/**
 * A discriminated union on `type` of the schemas of a registry's plugins (src/sources/registry.ts and the like): the
 * config accepts exactly the registered types, and an unknown type is refused with the list of them.
 */
function pluginUnion<R extends Record<string, { type: string; schema: z.core.$ZodTypeDiscriminable }>>(kind: string, registry: R) {
  // Sorted: a module namespace lists its exports sorted, a bundler's or test runner's object in declaration order,
  // and the JSON Schema (schema/backup.schema.json) must not depend on which one loaded it.
  const types = Object.keys(registry).sort();
  const schemas = types.map((t) => registry[t as keyof R]!.schema) as [R[keyof R]['schema'], ...R[keyof R]['schema'][]];
  return z.discriminatedUnion('type', schemas, {
    error: (iss) => {
      const given = (iss.input as { type?: unknown } | undefined)?.type;
      const list = types.join(', ');
      return given === undefined ? `a ${kind} needs a type: one of ${list}` : `unknown ${kind} type ${JSON.stringify(given)} (types: ${list})`;
    },
  });
}

/** A source of a job: one of the types in src/sources/registry.ts. */
export const sourceSchema = pluginUnion('source', sourceRegistry);
export type SourceConfig = z.infer<typeof sourceSchema>;

/** A destination: one of the types in src/destinations/registry.ts. */
export const destinationSchema = pluginUnion('destination', destinationRegistry);
export type DestinationConfig = z.infer<typeof destinationSchema>;

/** A notifier: one of the types in src/notifiers/registry.ts. */
export const notifierSchema = pluginUnion('notifier', notifierRegistry);
export type NotifierConfig = z.infer<typeof notifierSchema>;

/** A number keeps that many newest backups of the tier; a duration keeps those whose slot is younger. */
export const RetentionRule = z.union([
  z.number().int().min(1, { error: 'keep at least 1 backup (a rule that keeps nothing is refused)' }).transform((count) => ({ count })),
  z.string().regex(DURATION_RE, { error: 'expected a count of backups (14) or an age such as 30d' }).transform((v) => ({ maxAgeMs: Duration.parse(v) })),
], { error: 'expected a count of backups (14) or an age such as 30d' });

/** `.meta({ description, examples })`: every field of the config says what it is and shows a value (`backupctl config schema`). */
const about = (description: string, ...examples: unknown[]) => ({ description, examples });
/** An age recipient: an X25519 public key, or a file of them (one per line, `#` comments). */
export const AgeRecipient = z.union([
  z.string().regex(AGE_RECIPIENT, { error: 'expected an age X25519 public key ("age1" and 58 characters, as age-keygen or `backupctl keys age-generate` prints it) or { file: PATH }' }),
  z.strictObject({
    file: z.string().min(1).meta({ description: 'A file of age public keys, one per line (# comments allowed); read on the worker at each run.', examples: ['/etc/backupctl/recipients.txt'] }),
  }),
]).meta({ description: 'An age X25519 public key (age1…), or { file } naming a file of them.', examples: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p', { file: '/etc/backupctl/recipients.txt' }] });

/**
 * Encryption at rest (README, "Encryption"): every component (and GNU tar snapshot) is encrypted with age to these
 * recipients before it is staged. The worker needs only the public keys.
 */
export const Encryption = z.strictObject({
  recipients: z.array(AgeRecipient).min(1, { error: 'encryption needs at least one recipient' })
    .meta({ description: 'Who can decrypt the backups: age public keys (or files of them). Keep each matching identity (private key) off the backing-up workers.', examples: [['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p']] }),
}).meta({ description: 'Encrypt every backup with age to these public keys (a worker that backs up holds no private key).', examples: [{ recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p', { file: '/etc/backupctl/recipients.txt' }] }] });
export type Encryption = z.infer<typeof Encryption>;

/** An age identity (private key) file, read by age on the worker where something is decrypted. */
export const AgeIdentity = z.strictObject({
  file: z.string().min(1).meta({ description: 'An age identity file (age-keygen output); a secret: mode 0600, only on hosts that restore or drill.', examples: ['/etc/backupctl/age-identity.txt'] }),
}).meta({ description: 'The age identity (private key) file that decrypts encrypted backups.', examples: [{ file: '/etc/backupctl/age-identity.txt' }] });

export const Job = z.strictObject({
  tier: Name.default('daily').meta(about('tier of the job\'s backups: the top folder on each destination, and the key of its retention rule', 'daily')),
  taskQueue: z.string().min(1).optional()
    .meta(about('Temporal task queue of the worker that runs this job (the host that can read its sources); default: temporal.taskQueue', 'backupctl-db1')),
  sources: z.array(sourceSchema).min(1, { error: 'a job needs at least one source' })
    .meta(about('what is backed up: each source becomes one component of the artifact', [{ name: 'app-files', type: 'files', paths: ['/srv/app'] }])),
  destinations: z.array(Name).min(1, { error: 'a job needs at least one destination' })
    .meta(about('names of destinations (under `destinations:`) that each receive the artifact', ['nas'])),
  notify: z.array(Name).default([]).meta(about('names of notifiers (under `notifiers:`) told of this job\'s runs and drills', ['ops-mail'])),
  /** Declarative Temporal Schedules for this job (`backupctl schedules apply`). */
  schedules: z.array(z.lazy(() => ScheduleDef)).default([])
    .meta(about('Temporal Schedules that start this job (applied by `backupctl schedules apply`, `up` and `worker`)', [{ name: 'nightly', type: 'full', cron: '0 3 * * *' }])),
  /** A second run of this job waits this long for the running one, then is skipped with a notification. */
  lockWait: Duration.default(2 * 3_600_000)
    .meta(about('how long a second run of the job waits for the running one before it is skipped (default 2h)', '2h')),
  /** The newest finalized backup of a type older than this is stale (freshness check and `status`). */
  freshness: z.strictObject({
    full: Duration.default(25 * 3_600_000).meta(about('the newest full backup older than this is stale (default 25h)', '25h')),
    diff: Duration.default(7 * 3_600_000).meta(about('the newest diff backup older than this is stale (default 7h)', '7h')),
  }).default({ full: 25 * 3_600_000, diff: 7 * 3_600_000 })
    .meta(about('freshness thresholds per backup type, for the freshness check, `status` and the alert rules', { full: '25h', diff: '7h' })),
  /**
   * Size anomaly detection per component: this run's size against the median of the last `window` runs of the same
   * job, tier and type (read from the manifests on the job's first destination). A drop of more than `dropPercent`
   * marks the run with a warning, or fails it with `action: fail`.
   */
  sizeAnomaly: z.strictObject({
    dropPercent: z.number().int().min(1).max(99).default(50)
      .meta(about('a component smaller than the median of the last runs by more than this percentage is an anomaly', 50)),
    window: z.number().int().min(1).max(50).default(7).meta(about('how many earlier runs of the same job, tier and type the median is taken over', 7)),
    /** Runs needed before the check applies. */
    minHistory: z.number().int().min(1).max(50).default(3).meta(about('earlier runs needed before the check applies', 3)),
    action: z.enum(['warn', 'fail']).default('warn').meta(about('warn: the run succeeds with a warning; fail: the run fails', 'warn')),
  }).default({ dropPercent: 50, window: 7, minHistory: 3, action: 'warn' })
    .meta(about('size anomaly detection: a component much smaller than in earlier runs warns or fails the run', { dropPercent: 50, action: 'fail' })),
  /** Consecutive failed runs after which the job counts as failing. */
  failingAfter: z.number().int().min(1).max(100).default(2).meta(about('consecutive failed runs after which the job counts as failing', 2)),
  /** Retention per tier (see src/retention.ts): a count of newest backups (`daily: 14`) or an age (`daily: 30d`). */
  retention: z.record(Name, RetentionRule).optional()
    .meta(about('retention per tier: a count of newest backups to keep, or an age; pruned after each successful run', { daily: 14 }, { daily: '30d' })),
  /** Restore drills (README, "Restore drills"). */
  drill: z.lazy(() => DrillDef).default(() => DrillDef.parse({}))
    .meta(about('restore drills: the newest backup restored into scratch space on a schedule, checked and timed', { cron: '0 5 * * 0', notifyOnSuccess: true })),
  /** Encryption at rest for this job; default: the config's top-level `encryption`, if any. */
  encryption: Encryption.optional(),
}).superRefine((job, ctx) => {
  // A drill.servers key that names no database source of the job is a typo: it must not leave that source's drill
  // without the server it was meant to get.
  const databaseSources = job.sources.filter((s) => (sourceRegistry as Record<string, { database?: unknown }>)[s.type]?.database !== undefined).map((s) => s.name);
  for (const key of Object.keys(job.drill.servers)) {
    if (databaseSources.includes(key)) continue;
    ctx.addIssue({
      code: 'custom', path: ['drill', 'servers', key],
      message: `"${key}" is not a database source of this job (${databaseSources.length ? `database sources: ${databaseSources.join(', ')}` : 'it has none'})`,
    });
  }
});
export type Job = z.infer<typeof Job>;

/** A database server for a drill's scratch databases, overriding fields of the source's own connection. */
export const DrillServer = z.strictObject({
  host: z.string().min(1).optional().meta(about('server host name (or a PostgreSQL socket directory); default: the source\'s', 'drill-db.internal')),
  port: Port.optional().meta(about('server port; default: the source\'s', 5433)),
  socket: z.string().min(1).optional().meta(about('a MariaDB/MySQL server\'s Unix socket', '/run/mysqld/mysqld.sock')),
  user: z.string().min(1).optional().meta(about('account that creates, loads and drops the scratch databases; default: the source\'s', 'drill')),
  password: SecretRef.optional().meta(about('that account\'s password, as a secret reference', { env: 'DRILL_DB_PASSWORD' })),
});

export const DrillDef = z.strictObject({
  /** A drill schedule is created for jobs that have backup schedules, unless false. */
  enabled: z.boolean().default(true).meta(about('create a drill schedule for a job that has backup schedules', true)),
  /** When drills run (cron, in `timezone`): weekly by default, Sunday 05:00. */
  cron: z.string().min(1).default('0 5 * * 0').meta(about('when drills run (cron, in timezone); default weekly, Sunday 05:00', '0 5 * * 0')),
  timezone: z.string().min(1).default('UTC').meta(about('IANA time zone of cron', 'Europe/Berlin')),
  /** Notify the job's notifiers of passed drills too (failed drills are always notified). */
  notifyOnSuccess: z.boolean().default(false).meta(about('notify passed drills too (failed drills are always notified)', false)),
  /** Scratch data goes under this directory on the worker (default: `<stateDir>/drills`). */
  scratchDir: z.string().min(1).optional().meta(about('scratch space on the worker for the restored files; default <stateDir>/drills', '/var/tmp/backupctl-drills')),
  /**
   * Per database source: the server (and account) for its scratch databases. Default: a throwaway server the drill
   * starts on the worker from the installed server binaries. Keys must name database sources of the job.
   */
  servers: z.record(Name, DrillServer).default({})
    .meta(about('per database source (by name): the server for its scratch databases; default: a throwaway server started on the worker', { 'shop-db': { host: 'drill-db.internal', user: 'drill' } })),
  /**
   * Load into the source's own server (with the source's account) when `servers` names none for it. Off by default:
   * the dump's SQL then runs on the production server.
   */
  allowSourceServer: z.boolean().default(false)
    .meta(about('load into the source\'s own server when servers names none for it (the dump\'s SQL then runs on production)', false)),
  /**
   * The age identity that decrypts the job's encrypted backups for drills (and lets a diff read an encrypted snapshot
   * member when the worker lost its plaintext copy). Without it, a drill of an encrypted backup fails.
   */
  identity: AgeIdentity.optional(),
});
export type DrillDef = z.infer<typeof DrillDef>;
export type DrillServer = z.infer<typeof DrillServer>;

const CalendarValue = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative()).min(1), z.literal('*')]);
const calendarField = (unit: string, ...examples: unknown[]) => CalendarValue.optional().meta(about(`${unit}: a number, a list of numbers, or *`, ...examples));
/** A calendar spec in a time zone (Temporal's CalendarSpec fields), or a cron expression. */
export const ScheduleDef = z.strictObject({
  name: Name.optional().meta(about('name of the schedule (part of its ID); default: its position', 'nightly')),
  type: z.enum(['full', 'diff']).default('full').meta(about('type of the backups it starts', 'diff')),
  calendar: z.strictObject({
    second: calendarField('second', 0), minute: calendarField('minute', 0, [0, 30]), hour: calendarField('hour', 3, [3, 11, 19]),
    dayOfMonth: calendarField('day of the month', 1), month: calendarField('month (1-12)', '*'),
    dayOfWeek: z.union([CalendarValue, z.array(z.enum(['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY']))]).optional()
      .meta(about('day of the week: 0-6 (Sunday 0), a list, *, or a list of names', ['MONDAY', 'THURSDAY'])),
  }).optional().meta(about('a calendar spec (Temporal\'s CalendarSpec fields) in timezone; exactly one of calendar or cron', { hour: [3, 11, 19], minute: 0 })),
  cron: z.string().min(1).optional().meta(about('a cron expression in timezone; exactly one of calendar or cron', '0 */6 * * *')),
  timezone: z.string().min(1).default('UTC').meta(about('IANA time zone of the calendar or cron', 'Europe/Berlin')),
  paused: z.boolean().optional().meta(about('create or keep the schedule paused', false)),
}).refine((s) => (s.calendar === undefined) !== (s.cron === undefined), { error: 'set exactly one of calendar or cron', path: ['calendar'] });
export type ScheduleDef = z.infer<typeof ScheduleDef>;

export const Settings = z.strictObject({
  /** Attempts for each step against transient faults (network, SSH disconnects). */
  retries: z.number().int().min(1).max(100).default(5).meta(about('attempts of each step against transient faults (network, SSH disconnects)', 5)),
  /** A long step that reports no progress for this long is considered stalled and retried. */
  heartbeatTimeout: Duration.default(60_000).meta(about('a long step that reports no progress for this long is stalled and retried (default 60s)', '60s')),
  /** Uploads tried when verification finds a mismatch, before the run fails. */
  verifyAttempts: z.number().int().min(1).max(10).default(2).meta(about('uploads tried when verification finds a mismatch, before the run fails', 2)),
  /** The first destination's upload starts beside the dump and follows the staged artifact (README, "How a backup overlaps its steps"). */
  uploadWhileDumping: z.boolean().default(true).meta(about('start the upload to the first destination (SFTP or local; an S3 one waits) beside the dump, following the staged artifact as it grows: faster where the upload is bound by a link, about even where it competes with compression for the CPU (false: upload once the artifact is sealed)', false)),
  /** Extra room required beyond the estimated size, in percent. */
  spaceMargin: z.number().int().min(0).max(1000).default(20).meta(about('free space required beyond the estimated size, in percent', 20)),
  /** How long a notification is retried (with backoff) before it is given up and logged. */
  notifyTimeout: Duration.default(30 * 60_000).meta(about('how long a notification is retried before it is given up and logged (default 30m)', '30m')),
  /** zstd compression level. */
  compressionLevel: z.number().int().min(1).max(19).default(3).meta(about('zstd compression level (1-19)', 3)),
  /** A destination's temporary file (or a staging folder) of no running workflow is removed once this old. */
  orphanGrace: Duration.default(3_600_000).meta(about('a temporary file or staging folder of no running run is removed once this old (default 1h)', '1h')),
});

/** A trusted public key: PEM, the one-line form `ed25519:<base64url>`, or a file holding either. */
export const TrustedKey = z.union([
  z.string().min(1).refine((v) => /^ed25519:[A-Za-z0-9_-]{43}$/.test(v.trim()) || v.includes('-----BEGIN PUBLIC KEY-----'), { error: 'expected a public key: "ed25519:<43 base64url characters>" (as `backupctl keys init` prints it), a PEM public key, or { file: PATH }' }),
  z.strictObject({ file: z.string().min(1).meta(about('a file holding a public key (PEM or ed25519:…)', '/etc/backupctl/keys/old.pub')) }),
]);

/** Signed manifests (README, "Signed manifests"). */
export const Signing = z.strictObject({
  /** The worker's Ed25519 private key (PEM); its public key is `<file>.pub`. Default `<stateDir>/keys/signing.key`, created on the worker's first start. */
  key: z.strictObject({ file: z.string().min(1).meta(about('path of the private key (PEM); its public key is <file>.pub', '/etc/backupctl/keys/signing.key')) }).optional()
    .meta(about('the worker\'s Ed25519 signing key; default <stateDir>/keys/signing.key, created on the first start', { file: '/etc/backupctl/keys/signing.key' })),
  /** Public keys trusted besides this host's own: older keys after a rotation, other workers' keys. */
  trust: z.array(TrustedKey).default([])
    .meta(about('public keys trusted besides this host\'s own: older keys after a rotation, other workers\' keys', ['ed25519:8J2yXq9c0mZ3rW1vL5tN7kB4hD6fG0aS2eU9iO3pQxY', { file: '/etc/backupctl/keys/old.pub' }])),
});
export type Signing = z.infer<typeof Signing>;

/**
 * A `kind: pgbackrest` job (README, "pgBackRest jobs"): backupctl schedules, locks, verifies, watches and drills an
 * existing pgBackRest stanza; pgBackRest makes the physical backups and archives the WAL. Every field described.
 */
export const PgbackrestDrill = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'create a drill schedule (when the job has backup schedules)', examples: [true] }),
  cron: z.string().min(1).default('0 5 * * 0').meta({ description: 'when drills run (cron, in timezone)', examples: ['0 5 * * 0'] }),
  timezone: z.string().min(1).default('UTC').meta({ description: 'time zone of cron', examples: ['Europe/Berlin'] }),
  notifyOnSuccess: z.boolean().default(false).meta({ description: 'notify passed drills too (failed drills are always notified)', examples: [false] }),
  scratchDir: z.string().min(1).optional().meta({ description: 'where the restored data directory goes on the worker (default: a private directory under the system temporary directory); the account the server runs as must reach it', examples: ['/var/tmp/backupctl-drills'] }),
  target: z.enum(['immediate', 'latest']).default('immediate').meta({
    description: 'recovery target: immediate (the end of the newest backup, --type=immediate --target-action=promote) or latest (replay every archived WAL segment)',
    examples: ['immediate'],
  }),
  check: z.strictObject({
    sql: z.string().min(1).meta({ description: 'a query whose result the restored copy must reproduce; recorded on the primary just after each backup', examples: ['SELECT count(*) FROM orders'] }),
    database: z.string().min(1).default('postgres').meta({ description: 'the database the query runs in', examples: ['shop'] }),
  }).optional().meta({ description: 'the data check of drills', examples: [{ sql: 'SELECT count(*) FROM orders', database: 'shop' }] }),
}).meta({ description: 'restore drills of the stanza', examples: [{ cron: '0 5 * * 0', target: 'immediate' }] });
export type PgbackrestDrill = z.infer<typeof PgbackrestDrill>;

export const PgbackrestJob = z.strictObject({
  kind: z.literal('pgbackrest').meta({ description: 'selects the pgBackRest job kind', examples: ['pgbackrest'] }),
  stanza: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected a pgBackRest stanza name' }).meta({ description: 'the pgBackRest stanza', examples: ['main'] }),
  configFile: z.string().min(1).default('/etc/pgbackrest/pgbackrest.conf').meta({ description: "pgBackRest's configuration file (--config)", examples: ['/etc/pgbackrest/pgbackrest.conf'] }),
  repo: z.number().int().min(1).max(256).optional().meta({ description: 'the repository to back up to and check (--repo), when the stanza has several', examples: [1] }),
  pgbackrest: z.string().min(1).default('pgbackrest').meta({ description: 'the pgbackrest program (a path, or a name on PATH)', examples: ['/usr/bin/pgbackrest'] }),
  user: z.string().min(1).optional().meta({ description: 'run pgbackrest and the drill server as this account (through runuser; the worker must run as root)', examples: ['postgres'] }),
  walSegmentSize: ByteSize.optional().meta({ description: "the cluster's WAL segment size (default: found from the backups' start LSNs, else 16MiB)", examples: ['16MiB'] }),
  taskQueue: z.string().min(1).optional().meta({ description: 'the task queue of the worker on the database host', examples: ['db1'] }),
  notify: z.array(Name).default([]).meta({ description: 'notifiers of this job', examples: [['ops']] }),
  schedules: z.array(z.lazy(() => ScheduleDef)).default([]).meta({ description: 'backup schedules (full, diff)', examples: [[{ type: 'full', cron: '0 11 * * *' }, { type: 'diff', cron: '0 5,17,23 * * *' }]] }),
  lockWait: Duration.default(2 * 3_600_000).meta({ description: 'how long a run waits for the stanza lock before it is skipped', examples: ['2h'] }),
  freshness: z.strictObject({
    full: Duration.default(25 * 3_600_000).meta({ description: 'the newest full backup may be this old', examples: ['25h'] }),
    diff: Duration.default(7 * 3_600_000).meta({ description: 'the newest diff backup may be this old (checked when the job schedules diffs)', examples: ['7h'] }),
    wal: Duration.default(3_600_000).meta({ description: 'the newest archived WAL segment may be this old (set archive_timeout lower)', examples: ['30m'] }),
  }).default({ full: 25 * 3_600_000, diff: 7 * 3_600_000, wal: 3_600_000 }).meta({ description: 'freshness thresholds (freshness check and status)', examples: [{ full: '25h', diff: '7h', wal: '30m' }] }),
  failingAfter: z.number().int().min(1).max(100).default(2).meta({ description: 'consecutive failed runs after which the job counts as failing', examples: [2] }),
  drill: PgbackrestDrill.default(() => PgbackrestDrill.parse({})).meta({ description: 'restore drills of the stanza', examples: [{ cron: '0 5 * * 0', target: 'immediate' }] }),
});
export type PgbackrestJob = z.infer<typeof PgbackrestJob>;

/** A job of the config: backupctl's own (sources → destinations), or a pgBackRest stanza (`kind: pgbackrest`). */
const JobEntry = z.discriminatedUnion('kind', [Job.safeExtend({ kind: z.literal('backup').optional().meta(about('backupctl\'s own job (the default): sources dumped, archived and stored on destinations', 'backup')) }), PgbackrestJob], {
  error: (iss) => `unknown job kind ${JSON.stringify((iss.input as { kind?: unknown } | undefined)?.kind)} (kinds: backup, the default, and pgbackrest)`,
});

/** Splits the parsed jobs: `jobs` keeps backupctl's own, `pgbackrest` gets the pgBackRest jobs. */
function splitJobs<T extends { jobs: Record<string, z.infer<typeof JobEntry>> }>(c: T): T {
  const jobs: Record<string, Job> = {};
  const pgbackrest: Record<string, PgbackrestJob> = {};
  for (const [name, j] of Object.entries(c.jobs)) {
    if (j.kind === 'pgbackrest') pgbackrest[name] = j;
    else {
      const job = { ...j };
      delete job.kind;
      jobs[name] = job;
    }
  }
  return { ...c, jobs, pgbackrest } as unknown as T;
}

export const Config = z.strictObject({
  stateDir: z.string().min(1).default('.backupctl').meta(about('the worker\'s state: staging, snapshots, keys, the dev server\'s data (relative: to the config file)', '/var/lib/backupctl')),
  signing: Signing.default({ trust: [] }).meta(about('signed manifests and drill reports', { trust: [{ file: '/etc/backupctl/keys/old.pub' }] })),
  temporal: z.strictObject({
    taskQueue: z.string().min(1).default('backupctl').meta(about('default task queue of the jobs', 'backupctl')),
    uiUrl: z.string().url().default('http://localhost:8233').meta(about('the Temporal Web UI, for links in output and notifications', 'https://temporal.example.org')),
    /** Names this config's schedules, job locks and ownership on the namespace; default derived from the config file's path (`deploymentOf`). */
    deployment: Name.optional().meta({
      description: 'the name of this deployment on the Temporal namespace: it scopes schedule IDs, run IDs (backup, drill, restore), job lock IDs and which schedules `schedules apply` owns, so that two configs with the same job names never touch each other\'s. Default: the config file\'s name and a hash of its absolute path (e.g. "backup-1a2b3c4d"); set it when hosts share one config under different paths, or before moving the file',
      examples: ['prod-eu'],
    }),
  }).default({ taskQueue: 'backupctl', uiUrl: 'http://localhost:8233' })
    .meta(about('the Temporal side (the server itself is reached like the temporal CLI: TEMPORAL_ADDRESS, ...)', { taskQueue: 'backupctl' })),
  /** What `backupctl worker` serves. */
  worker: z.strictObject({
    queues: z.array(z.string().min(1)).min(1).optional().meta({
      description: 'the task queues this host\'s worker polls (jobs\' `taskQueue`s or `temporal.taskQueue`); `backupctl worker --queue` overrides it. Default: every queue of the config, right for a single host',
      examples: [['backupctl-db01']],
    }),
  }).default({}).meta({ description: 'the worker of this host', examples: [{ queues: ['backupctl-db01'] }] }),
  settings: Settings.default(Settings.parse({})).meta(about('settings of every run', { retries: 5, heartbeatTimeout: '60s' })),
  /** Schedules and monitoring. */
  monitoring: z.strictObject({
    /** `backupctl up` and `backupctl worker` reconcile the schedules with the config when they start. */
    applyOnStart: z.boolean().default(true).meta(about('backupctl up and worker reconcile the schedules with the config when they start', true)),
    /** How often the freshness check runs (itself a Temporal Schedule). */
    freshnessEvery: Duration.default(3_600_000).meta(about('how often the freshness check runs (a Temporal Schedule; default 1h)', '1h')),
    /** Notifiers for problems that belong to no job (none by default: each job's own notifiers are used). */
    notify: z.array(Name).default([]).meta(about('notifiers for problems that belong to no job (default: each job\'s own)', ['ops-mail'])),
  }).default({ applyOnStart: true, freshnessEvery: 3_600_000, notify: [] }).meta(about('schedules and monitoring', { freshnessEvery: '30m' })),
  /** Metrics for Prometheus on the worker (README, "Metrics"). */
  metrics: z.strictObject({
    /** The Temporal SDK's Prometheus endpoint on the worker, e.g. 127.0.0.1:9464. */
    prometheus: z.string().regex(HOST_PORT_RE, { error: 'expected host:port' })
      .meta(about('host:port of the Temporal SDK\'s worker metrics (its own Prometheus endpoint)', '127.0.0.1:9464')),
    /** backupctl's backup metrics (/metrics) and the live report (/report); default: the SDK's port + 1. */
    backups: z.string().regex(HOST_PORT_RE, { error: 'expected host:port' }).optional()
      .meta(about('host:port of backupctl\'s backup metrics (/metrics) and live report (/report); default: the same host, the SDK\'s port + 1', '127.0.0.1:9465')),
  }).optional().meta(about('Prometheus endpoints of the worker', { prometheus: '127.0.0.1:9464' })),
  /** Encryption at rest for every job that sets none of its own (README, "Encryption"). */
  encryption: Encryption.optional(),
  destinations: z.record(Name, destinationSchema).meta(about('where backups are stored, by name', { nas: { type: 'local', path: '/mnt/nas/backups' } })),
  notifiers: z.record(Name, notifierSchema).default({})
    .meta(about('who is told of runs, drills and alerts, by name', { 'ops-mail': { type: 'email', host: 'smtp.example.org', from: 'backupctl@example.org', to: ['ops@example.org'] } })),
  jobs: z.record(Name, JobEntry).refine((j) => Object.keys(j).length > 0, { error: 'define at least one job' })
    .meta(about('backup jobs, by name: backupctl\'s own (sources to destinations) or kind: pgbackrest', { app: { sources: [{ name: 'app-files', type: 'files', paths: ['/srv/app'] }], destinations: ['nas'] } })),
}).overwrite(splitJobs);
/** The parsed config: `jobs` holds backupctl's own jobs, `pgbackrest` the `kind: pgbackrest` jobs (by name). */
export type Config = Omit<z.infer<typeof Config>, 'jobs'> & { jobs: Record<string, Job>; pgbackrest: Record<string, PgbackrestJob> };
export type Settings = z.infer<typeof Settings>;
