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
export const Source = z.discriminatedUnion('type', [FilesSource]);
export type Source = z.infer<typeof Source>;

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
export const Notifier = z.discriminatedUnion('type', [EmailNotifier]);
export type Notifier = z.infer<typeof Notifier>;
export type EmailNotifier = z.infer<typeof EmailNotifier>;

export const Job = z.strictObject({
  tier: Name.default('daily'),
  taskQueue: z.string().min(1).optional(),
  sources: z.array(Source).min(1, { error: 'a job needs at least one source' }),
  destinations: z.array(Name).min(1, { error: 'a job needs at least one destination' }),
  notify: z.array(Name).default([]),
});
export type Job = z.infer<typeof Job>;

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
});

export const Config = z.strictObject({
  stateDir: z.string().min(1).default('.backupctl'),
  temporal: z.strictObject({
    taskQueue: z.string().min(1).default('backupctl'),
    uiUrl: z.string().url().default('http://localhost:8233'),
  }).default({ taskQueue: 'backupctl', uiUrl: 'http://localhost:8233' }),
  settings: Settings.default(Settings.parse({})),
  destinations: z.record(Name, Destination),
  notifiers: z.record(Name, Notifier).default({}),
  jobs: z.record(Name, Job).refine((j) => Object.keys(j).length > 0, { error: 'define at least one job' }),
});
export type Config = z.infer<typeof Config>;
export type Settings = z.infer<typeof Settings>;
