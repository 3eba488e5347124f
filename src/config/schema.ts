import { z } from 'zod';
import * as destinationRegistry from '../destinations/registry.js';
import * as notifierRegistry from '../notifiers/registry.js';
import * as sourceRegistry from '../sources/registry.js';
import { ByteSize, DURATION_RE, Duration, Name, Port, SecretRef } from './fields.js';

export { ByteSize, Duration, EVENT_KINDS, EventKind, SecretRef } from './fields.js';

/**
 * A discriminated union on `type` of the schemas of a registry's plugins (src/sources/registry.ts and the like): the
 * config accepts exactly the registered types, and an unknown type is refused with the list of them.
 */
function pluginUnion<R extends Record<string, { type: string; schema: z.core.$ZodTypeDiscriminable }>>(kind: string, registry: R) {
  const types = Object.keys(registry);
  const schemas = Object.values(registry).map((p) => p.schema) as [R[keyof R]['schema'], ...R[keyof R]['schema'][]];
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

export const Job = z.strictObject({
  tier: Name.default('daily'),
  taskQueue: z.string().min(1).optional(),
  sources: z.array(sourceSchema).min(1, { error: 'a job needs at least one source' }),
  destinations: z.array(Name).min(1, { error: 'a job needs at least one destination' }),
  notify: z.array(Name).default([]),
  /** Declarative Temporal Schedules for this job (`backupctl schedules apply`). */
  schedules: z.array(z.lazy(() => ScheduleDef)).default([]),
  /** A second run of this job waits this long for the running one, then is skipped with a notification. */
  lockWait: Duration.default(2 * 3_600_000),
  /** The newest finalized backup of a type older than this is stale (freshness check and `status`). */
  freshness: z.strictObject({ full: Duration.default(25 * 3_600_000), diff: Duration.default(7 * 3_600_000) })
    .default({ full: 25 * 3_600_000, diff: 7 * 3_600_000 }),
  /**
   * Size anomaly detection per component: this run's size against the median of the last `window` runs of the same
   * job, tier and type (read from the manifests on the job's first destination). A drop of more than `dropPercent`
   * marks the run with a warning, or fails it with `action: fail`.
   */
  sizeAnomaly: z.strictObject({
    dropPercent: z.number().int().min(1).max(99).default(50),
    window: z.number().int().min(1).max(50).default(7),
    /** Runs needed before the check applies. */
    minHistory: z.number().int().min(1).max(50).default(3),
    action: z.enum(['warn', 'fail']).default('warn'),
  }).default({ dropPercent: 50, window: 7, minHistory: 3, action: 'warn' }),
  /** Consecutive failed runs after which the job counts as failing. */
  failingAfter: z.number().int().min(1).max(100).default(2),
  /** Retention per tier (see src/retention.ts): a count of newest backups (`daily: 14`) or an age (`daily: 30d`). */
  retention: z.record(Name, RetentionRule).optional(),
  /** Restore drills (README, "Restore drills"). */
  drill: z.lazy(() => DrillDef).default(() => DrillDef.parse({})),
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
  host: z.string().min(1).optional(),
  port: Port.optional(),
  socket: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  password: SecretRef.optional(),
});

export const DrillDef = z.strictObject({
  /** A drill schedule is created for jobs that have backup schedules, unless false. */
  enabled: z.boolean().default(true),
  /** When drills run (cron, in `timezone`): weekly by default, Sunday 05:00. */
  cron: z.string().min(1).default('0 5 * * 0'),
  timezone: z.string().min(1).default('UTC'),
  /** Notify the job's notifiers of passed drills too (failed drills are always notified). */
  notifyOnSuccess: z.boolean().default(false),
  /** Scratch data goes under this directory on the worker (default: `<stateDir>/drills`). */
  scratchDir: z.string().min(1).optional(),
  /**
   * Per database source: the server (and account) for its scratch databases. Default: a throwaway server the drill
   * starts on the worker from the installed server binaries. Keys must name database sources of the job.
   */
  servers: z.record(Name, DrillServer).default({}),
  /**
   * Load into the source's own server (with the source's account) when `servers` names none for it. Off by default:
   * the dump's SQL then runs on the production server.
   */
  allowSourceServer: z.boolean().default(false),
});
export type DrillDef = z.infer<typeof DrillDef>;
export type DrillServer = z.infer<typeof DrillServer>;

const CalendarValue = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative()).min(1), z.literal('*')]);
/** A calendar spec in a time zone (Temporal's CalendarSpec fields), or a cron expression. */
export const ScheduleDef = z.strictObject({
  name: Name.optional(),
  type: z.enum(['full', 'diff']).default('full'),
  calendar: z.strictObject({
    second: CalendarValue.optional(), minute: CalendarValue.optional(), hour: CalendarValue.optional(),
    dayOfMonth: CalendarValue.optional(), month: CalendarValue.optional(),
    dayOfWeek: z.union([CalendarValue, z.array(z.enum(['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY']))]).optional(),
  }).optional(),
  cron: z.string().min(1).optional(),
  timezone: z.string().min(1).default('UTC'),
  paused: z.boolean().optional(),
}).refine((s) => (s.calendar === undefined) !== (s.cron === undefined), { error: 'set exactly one of calendar or cron', path: ['calendar'] });
export type ScheduleDef = z.infer<typeof ScheduleDef>;

export const Settings = z.strictObject({
  /** Attempts for each step against transient faults (network, SSH disconnects). */
  retries: z.number().int().min(1).max(100).default(5),
  /** A long step that reports no progress for this long is considered stalled and retried. */
  heartbeatTimeout: Duration.default(60_000),
  /** Uploads tried when verification finds a mismatch, before the run fails. */
  verifyAttempts: z.number().int().min(1).max(10).default(2),
  /** Extra room required beyond the estimated size, in percent. */
  spaceMargin: z.number().int().min(0).max(1000).default(20),
  /** How long a notification is retried (with backoff) before it is given up and logged. */
  notifyTimeout: Duration.default(30 * 60_000),
  /** zstd compression level. */
  compressionLevel: z.number().int().min(1).max(19).default(3),
  /** A destination's temporary file (or a staging folder) of no running workflow is removed once this old. */
  orphanGrace: Duration.default(3_600_000),
});

/** A trusted public key: PEM, the one-line form `ed25519:<base64url>`, or a file holding either. */
export const TrustedKey = z.union([
  z.string().min(1).refine((v) => /^ed25519:[A-Za-z0-9_-]{43}$/.test(v.trim()) || v.includes('-----BEGIN PUBLIC KEY-----'), { error: 'expected a public key: "ed25519:<43 base64url characters>" (as `backupctl keys init` prints it), a PEM public key, or { file: PATH }' }),
  z.strictObject({ file: z.string().min(1) }),
]);

/** Signed manifests (README, "Signed manifests"). */
export const Signing = z.strictObject({
  /** The worker's Ed25519 private key (PEM); its public key is `<file>.pub`. Default `<stateDir>/keys/signing.key`, created on the worker's first start. */
  key: z.strictObject({ file: z.string().min(1) }).optional(),
  /** Public keys trusted besides this host's own: older keys after a rotation, other workers' keys. */
  trust: z.array(TrustedKey).default([]),
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
const JobEntry = z.discriminatedUnion('kind', [Job.safeExtend({ kind: z.literal('backup').optional() }), PgbackrestJob], {
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
  stateDir: z.string().min(1).default('.backupctl'),
  signing: Signing.default({ trust: [] }),
  temporal: z.strictObject({
    taskQueue: z.string().min(1).default('backupctl'),
    uiUrl: z.string().url().default('http://localhost:8233'),
  }).default({ taskQueue: 'backupctl', uiUrl: 'http://localhost:8233' }),
  settings: Settings.default(Settings.parse({})),
  /** Schedules and monitoring. */
  monitoring: z.strictObject({
    /** `backupctl up` and `backupctl worker` reconcile the schedules with the config when they start. */
    applyOnStart: z.boolean().default(true),
    /** How often the freshness check runs (itself a Temporal Schedule). */
    freshnessEvery: Duration.default(3_600_000),
    /** Notifiers for problems that belong to no job (none by default: each job's own notifiers are used). */
    notify: z.array(Name).default([]),
  }).default({ applyOnStart: true, freshnessEvery: 3_600_000, notify: [] }),
  /** The Temporal SDK's Prometheus endpoint on the worker, e.g. 127.0.0.1:9464. */
  metrics: z.strictObject({ prometheus: z.string().regex(/^[^:\s]+:\d+$/, { error: 'expected host:port' }) }).optional(),
  destinations: z.record(Name, destinationSchema),
  notifiers: z.record(Name, notifierSchema).default({}),
  jobs: z.record(Name, JobEntry).refine((j) => Object.keys(j).length > 0, { error: 'define at least one job' }),
}).overwrite(splitJobs);
/** The parsed config: `jobs` holds backupctl's own jobs, `pgbackrest` the `kind: pgbackrest` jobs (by name). */
export type Config = Omit<z.infer<typeof Config>, 'jobs'> & { jobs: Record<string, Job>; pgbackrest: Record<string, PgbackrestJob> };
export type Settings = z.infer<typeof Settings>;
