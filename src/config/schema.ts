import { z } from 'zod';
import * as destinationRegistry from '../destinations/registry.js';
import * as notifierRegistry from '../notifiers/registry.js';
import * as sourceRegistry from '../sources/registry.js';
import { DURATION_RE, Duration, Name, Port, SecretRef } from './fields.js';

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

export const Config = z.strictObject({
  stateDir: z.string().min(1).default('.backupctl'),
  signing: Signing.default({ trust: [] }),
  temporal: z.strictObject({
    taskQueue: z.string().min(1).default('backupctl'),
    uiUrl: z.string().url().default('http://localhost:8233'),
    /** Names this config's schedules, job locks and ownership on the namespace; default derived from the config file's path (`deploymentOf`). */
    deployment: Name.optional().meta({
      description: 'the name of this deployment on the Temporal namespace: it scopes schedule IDs, job lock IDs and which schedules `schedules apply` owns, so that two configs with the same job names never touch each other\'s. Default: the config file\'s name and a hash of its absolute path (e.g. "backup-1a2b3c4d"); set it when hosts share one config under different paths, or before moving the file',
      examples: ['prod-eu'],
    }),
  }).default({ taskQueue: 'backupctl', uiUrl: 'http://localhost:8233' }),
  /** What `backupctl worker` serves. */
  worker: z.strictObject({
    queues: z.array(z.string().min(1)).min(1).optional().meta({
      description: 'the task queues this host\'s worker polls (jobs\' `taskQueue`s or `temporal.taskQueue`); `backupctl worker --queue` overrides it. Default: every queue of the config, right for a single host',
      examples: [['backupctl-db01']],
    }),
  }).default({}).meta({ description: 'the worker of this host', examples: [{ queues: ['backupctl-db01'] }] }),
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
  jobs: z.record(Name, Job).refine((j) => Object.keys(j).length > 0, { error: 'define at least one job' }),
});
export type Config = z.infer<typeof Config>;
export type Settings = z.infer<typeof Settings>;
