import { z } from 'zod';

/** A reference to a secret, read on the worker when needed; the secret itself never sits in the config. */
export const SecretRef = z.union([
  z.strictObject({ env: z.string().min(1).describe('name of an environment variable on the worker') }),
  z.strictObject({ file: z.string().min(1).describe('path of a file on the worker; trailing newline removed') }),
], { error: 'expected a secret reference: { env: NAME } or { file: PATH }' });
export type SecretRef = z.infer<typeof SecretRef>;

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
/** `90`, `90s`, `5m`, `2h`, `1d`, in milliseconds. A bare number is seconds. */
export const Duration = z.union([z.number().positive(), z.string().regex(DURATION_RE, { error: 'expected a duration such as 30s, 5m or 2h' })])
  .transform((v) => {
    if (typeof v === 'number') return Math.round(v * 1000);
    const [, n, unit] = DURATION_RE.exec(v)!;
    const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 'ms' | 's' | 'm' | 'h' | 'd'];
    return Math.round(Number(n) * factor);
  });

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/;
/** `1048576`, `500MB`, `2GiB`, in bytes. */
export const ByteSize = z.union([z.number().int().nonnegative(), z.string().regex(SIZE_RE, { error: 'expected a size such as 500MB or 2GiB' })])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const [, n, unit = 'B'] = SIZE_RE.exec(v)!;
    const factor: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
    return Math.round(Number(n) * factor[unit]!);
  });

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { error: 'expected a name of letters, digits, ".", "_" or "-"' });

export const FilesSource = z.strictObject({
  type: z.literal('files'),
  name: Name,
  paths: z.array(z.string().min(1)).min(1, { error: 'expected at least one path' }),
  exclude: z.array(z.string().min(1)).default([]),
  /** GNU tar exit 1 ("file changed as we read it") is a warning unless this is true. */
  failOnChangedFiles: z.boolean().default(false),
});

/** Smallest acceptable dump, counted before backupctl's compression; 0 bytes is always a failure. */
const MinSize = ByteSize.default(1);
const Port = z.number().int().min(1).max(65535);
/** mariadb-dump arguments that would put a password on the command line, read other option files, or drop the trailer. */
const MYSQL_ARG_FORBIDDEN = /^(-p.*|--password(=.*)?|--defaults-.*|--no-defaults|--print-defaults|--login-path(=.*)?|-r.*|--result-file(=.*)?|-T.*|--tab(=.*)?|--compact|--skip-comments|--comments=(0|false|off)|-X|--xml)$/;
/** pg_dump arguments that backupctl sets itself. */
const PG_ARG_FORBIDDEN = /^(-f.*|--file(=.*)?|-F.*|--format(=.*)?|-Z.*|--compress(=.*)?|-d.*|--dbname(=.*)?|-W|--password)$/;

export const MysqlSource = z.strictObject({
  type: z.literal('mysql'),
  name: Name,
  /** TCP connection (always TCP, also for `localhost`); exactly one of host or socket. */
  host: z.string().min(1).optional(),
  port: Port.default(3306),
  socket: z.string().min(1).optional().describe('path of the server\'s Unix socket'),
  user: z.string().min(1),
  password: SecretRef.optional(),
  /** Databases to dump; omitted: all (`--all-databases`). */
  databases: z.array(z.string().min(1)).min(1, { error: 'list at least one database, or leave databases out to dump all' }).optional(),
  /** Extra `[client]` options for the option file, e.g. `ssl-ca: /etc/mysql/ca.pem`. */
  clientOptions: z.record(z.string().regex(/^[a-z][a-z0-9_-]*$/, { error: 'expected an option name such as ssl-ca' }), z.union([z.string(), z.number(), z.boolean()])).default({}),
  /** Extra arguments for mariadb-dump/mysqldump, e.g. `--ignore-table=app.cache`. */
  extraArgs: z.array(z.string().min(1).refine((a) => !MYSQL_ARG_FORBIDDEN.test(a), {
    error: 'this argument would put a password on the command line, change where options are read from, or remove the trailer that proves the dump complete',
  })).default([]),
  minSize: MinSize,
}).refine((d) => (d.host === undefined) !== (d.socket === undefined), {
  error: 'set exactly one of host (with port) or socket',
  path: ['host'],
});

export const PostgresSource = z.strictObject({
  type: z.literal('postgres'),
  name: Name,
  /** Host name, or the directory of the server's Unix socket (e.g. /var/run/postgresql). */
  host: z.string().min(1),
  port: Port.default(5432),
  user: z.string().min(1),
  password: SecretRef.optional(),
  /** Databases to dump; omitted: every database that accepts connections and is not a template. */
  databases: z.array(z.string().min(1)).min(1, { error: 'list at least one database, or leave databases out to dump all' }).optional(),
  /** Database used to list databases and to dump globals. */
  connectDatabase: z.string().min(1).default('postgres'),
  /** Add `pg_dumpall --globals-only` (roles, tablespaces) as globals.sql. Needs a superuser unless rolePasswords is false. */
  globals: z.boolean().default(true),
  /** false: `--no-role-passwords`, so that a non-superuser can dump the roles (without their passwords). */
  rolePasswords: z.boolean().default(true),
  sslMode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
  /** Directory of pg_dump, pg_dumpall, pg_restore and psql (e.g. /usr/lib/postgresql/16/bin); default: PATH. */
  binDir: z.string().min(1).optional(),
  /** How each dump is checked before it enters the component: `list` reads its table of contents, `full` reads all of it. */
  restoreCheck: z.enum(['list', 'full']).default('list'),
  /** Extra arguments for pg_dump, e.g. `--exclude-table-data=audit_log`. */
  extraArgs: z.array(z.string().min(1).refine((a) => !PG_ARG_FORBIDDEN.test(a), {
    error: 'backupctl sets the output file, format, compression and database of pg_dump itself',
  })).default([]),
  minSize: MinSize,
});

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name' });

export const CommandSource = z.strictObject({
  type: z.literal('command'),
  name: Name,
  /** Program and arguments, run without a shell; its stdout is the dump. */
  command: z.array(z.string().min(1)).min(1, { error: 'expected the program and its arguments, e.g. [mongodump, --archive]' }),
  /** Added to the worker's environment; values are strings or secret references. */
  env: z.record(EnvName, z.union([z.string(), SecretRef])).default({}),
  cwd: z.string().min(1).optional(),
  /** Extension of the command's output, e.g. `archive.gz`; `.zst` is appended when compressed. */
  extension: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/, { error: 'expected an extension such as archive or rdb' }).default('bin'),
  /** Compress the output with zstd; false for output that is already compressed. */
  compress: z.boolean().default(true),
  minSize: MinSize,
  /** Expected size of a dump, for the space check before a run (the command's size cannot be known in advance). */
  estimatedSize: ByteSize.optional(),
  /** Run by `config check`, e.g. `[mongodump, --version]`; the first line of its output is reported. */
  checkCommand: z.array(z.string().min(1)).min(1).optional(),
});

export const Source = z.discriminatedUnion('type', [FilesSource, MysqlSource, PostgresSource, CommandSource]);
export type Source = z.infer<typeof Source>;
export type MysqlSource = z.infer<typeof MysqlSource>;
export type PostgresSource = z.infer<typeof PostgresSource>;
export type CommandSource = z.infer<typeof CommandSource>;

/**
 * Every secret reference of a source (for resolving relative `file` paths against the config file). Other paths of
 * sources that are relative to the config file: files `paths`, mysql `socket`, postgres `binDir`, command `cwd`.
 */
export function sourceSecretRefs(s: Source): SecretRef[] {
  switch (s.type) {
    case 'files':
      return [];
    case 'mysql':
    case 'postgres':
      return s.password ? [s.password] : [];
    case 'command':
      return Object.values(s.env).filter((v): v is SecretRef => typeof v === 'object');
  }
}

export const LocalDestination = z.strictObject({
  type: z.literal('local'),
  path: z.string().min(1).describe('a directory, for example a mounted NAS share'),
});

export const SftpDestination = z.strictObject({
  type: z.literal('sftp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1),
  privateKey: z.string().min(1).describe('path of the private key file on the worker'),
  passphrase: SecretRef.optional(),
  knownHosts: z.string().min(1).optional(),
  hostKey: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, { error: 'expected a fingerprint as ssh-keygen -lf prints it: SHA256: and 43 base64 characters' }).optional(),
  path: z.string().min(1).describe('remote directory under which tier/slot folders are made'),
  /** Requests kept in flight while uploading. */
  parallelWrites: z.number().int().min(1).max(256).default(32),
  bandwidthLimit: ByteSize.optional().describe('bytes per second'),
}).refine((d) => (d.knownHosts === undefined) !== (d.hostKey === undefined), {
  error: 'set exactly one of knownHosts (a known_hosts file) or hostKey (a pinned SHA256: fingerprint); host key checking cannot be turned off',
  path: ['hostKey'],
});
export const Destination = z.discriminatedUnion('type', [LocalDestination, SftpDestination]);
export type Destination = z.infer<typeof Destination>;
export type SftpDestination = z.infer<typeof SftpDestination>;
export type LocalDestination = z.infer<typeof LocalDestination>;

export const EmailNotifier = z.strictObject({
  type: z.literal('email'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(587),
  /** true: TLS from the first byte (port 465); false: STARTTLS when offered (required when `requireTLS`). */
  secure: z.boolean().default(false),
  requireTLS: z.boolean().default(false),
  user: z.string().optional(),
  password: SecretRef.optional(),
  from: z.string().min(3),
  to: z.array(z.string().min(3)).min(1),
  onSuccess: z.boolean().default(true),
});

/** The kinds of `BackupEvent` (src/shared.ts), for notifiers' `events` filters. */
export const EVENT_KINDS = ['start', 'success', 'failure', 'cancelled', 'skipped', 'alert', 'drill'] as const;
export const EventKind = z.enum(EVENT_KINDS, { error: `expected one of ${EVENT_KINDS.join(', ')}` });
export type EventKind = z.infer<typeof EventKind>;

const httpUrl = (what: string) => z.url({ protocol: /^https?$/, error: `expected an http:// or https:// URL (${what})` });
/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers that the webhook notifier sets itself. */
const RESERVED_HEADER_RE = /^(x-backupctl-.*|content-type|content-length|host|transfer-encoding|connection)$/i;

export const WebhookNotifier = z.strictObject({
  type: z.literal('webhook'),
  /** Usually carries a token (Slack incoming webhooks do), so it may be a secret reference. */
  url: z.union([httpUrl('or a secret reference { env: NAME } / { file: PATH } holding one'), SecretRef]),
  /** `slack`: `{"text": …}` (Slack incoming webhooks and compatibles); `json`: backupctl's event, see src/notifiers/webhook. */
  format: z.enum(['slack', 'json'], { error: 'expected slack or json' }).default('json'),
  /** HMAC-SHA256 key: adds `X-Backupctl-Signature` and `X-Backupctl-Timestamp`. */
  secret: SecretRef.optional(),
  /** Events to send; failures and cancellations are always sent. */
  events: z.array(EventKind).min(1).default(['success', 'failure', 'cancelled', 'skipped', 'alert'])
    .refine((e) => e.includes('failure') && e.includes('cancelled'), {
      error: 'failure and cancelled are always sent: list them too (or leave events out: every kind but start)',
    }),
  timeout: Duration.default(10_000),
  /** Extra request headers; a value may be a secret reference (e.g. `Authorization: { env: HOOK_TOKEN }`). */
  headers: z.record(z.string(), z.union([z.string(), SecretRef])).superRefine((headers, ctx) => {
    for (const name of Object.keys(headers)) {
      if (!HEADER_NAME_RE.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'expected an HTTP header name (letters, digits, "-")' });
      else if (RESERVED_HEADER_RE.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'this header is set by backupctl' });
    }
  }).default({}),
});

export const HealthchecksNotifier = z.strictObject({
  type: z.literal('healthchecks'),
  /** The ping endpoint: https://hc-ping.com, or a self-hosted instance's, e.g. https://hc.example.org/ping. */
  baseUrl: httpUrl('the ping endpoint, e.g. https://hc-ping.com').default('https://hc-ping.com'),
  /** The check's UUID (anyone who knows it can ping the check: a secret reference is allowed). */
  uuid: z.union([
    z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, { error: 'expected the check\'s UUID or a secret reference { env: NAME } / { file: PATH }' }),
    SecretRef,
  ]).optional(),
  /** The project's ping key, with `slug`: pings go to `<baseUrl>/<pingKey>/<slug>`. */
  pingKey: SecretRef.optional(),
  slug: z.string().regex(/^[a-z0-9_-]+$/, { error: 'expected a check slug: lowercase letters, digits, "-" or "_"' }).optional(),
  timeout: Duration.default(10_000),
}).refine((h) => (h.uuid !== undefined) !== (h.pingKey !== undefined || h.slug !== undefined), {
  error: 'set exactly one of uuid, or pingKey and slug', path: ['uuid'],
}).refine((h) => (h.pingKey === undefined) === (h.slug === undefined), {
  error: 'pingKey and slug go together', path: ['slug'],
});

export const Notifier = z.discriminatedUnion('type', [EmailNotifier, WebhookNotifier, HealthchecksNotifier]);
export type Notifier = z.infer<typeof Notifier>;
export type EmailNotifier = z.infer<typeof EmailNotifier>;
export type WebhookNotifier = z.infer<typeof WebhookNotifier>;
export type HealthchecksNotifier = z.infer<typeof HealthchecksNotifier>;

/** Every secret reference of a notifier (for resolving relative `file` paths against the config file). */
export function notifierSecretRefs(n: Notifier): SecretRef[] {
  const isRef = (v: unknown): v is SecretRef => typeof v === 'object' && v !== null;
  switch (n.type) {
    case 'email':
      return n.password ? [n.password] : [];
    case 'webhook':
      return [n.url, n.secret, ...Object.values(n.headers)].filter(isRef);
    case 'healthchecks':
      return [n.uuid, n.pingKey].filter(isRef);
  }
}

/** A number keeps that many newest backups of the tier; a duration keeps those whose slot is younger. */
export const RetentionRule = z.union([
  z.number().int().min(1, { error: 'keep at least 1 backup (a rule that keeps nothing is refused)' }).transform((count) => ({ count })),
  z.string().regex(DURATION_RE, { error: 'expected a count of backups (14) or an age such as 30d' }).transform((v) => ({ maxAgeMs: Duration.parse(v) })),
], { error: 'expected a count of backups (14) or an age such as 30d' });

export const Job = z.strictObject({
  tier: Name.default('daily'),
  taskQueue: z.string().min(1).optional(),
  sources: z.array(Source).min(1, { error: 'a job needs at least one source' }),
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
});
export type Job = z.infer<typeof Job>;

/** A database server for a drill's scratch databases, overriding fields of the source's own connection. */
const DrillServer = z.strictObject({
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
  /** Per database source: the server (and account) for its scratch databases; default: the source's own connection. */
  servers: z.record(Name, DrillServer).default({}),
});
export type DrillDef = z.infer<typeof DrillDef>;

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

export const Config = z.strictObject({
  stateDir: z.string().min(1).default('.backupctl'),
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
  destinations: z.record(Name, Destination),
  notifiers: z.record(Name, Notifier).default({}),
  jobs: z.record(Name, Job).refine((j) => Object.keys(j).length > 0, { error: 'define at least one job' }),
});
export type Config = z.infer<typeof Config>;
export type Settings = z.infer<typeof Settings>;
