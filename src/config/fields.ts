import { z } from 'zod';
import { NAME_RULE, isName } from '../contracts/names.js';

/**
 * Field types shared by the config schema and the plugins' schemas (src/sources, src/destinations, src/notifiers).
 * zod only, no Node built-ins: a plugin's schema module imports this, and nothing of a plugin imports back.
 */

/** A reference to a secret, read on the worker when needed; the secret itself never sits in the config. */
export const SecretRef = z.union([
  z.strictObject({ env: z.string().min(1).meta({ description: 'name of an environment variable on the worker', examples: ['BACKUP_SECRET'] }) }),
  z.strictObject({ file: z.string().min(1).meta({ description: 'path of a file on the worker; trailing newline removed', examples: ['/etc/backupctl/secret'] }) }),
], { error: 'expected a secret reference: { env: NAME } or { file: PATH }' });
export type SecretRef = z.infer<typeof SecretRef>;

/** A value that is a secret reference (for plugins' `secretRefs`). */
export const isSecretRef = (v: unknown): v is SecretRef => typeof v === 'object' && v !== null;

export const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
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

/** The name of a job, source, destination, notifier or tier: the name grammar (src/contracts/names.ts), a path segment. */
export const Name = z.string().refine(isName, { error: `expected a name of ${NAME_RULE}` });

export const Port = z.number().int().min(1).max(65535);

/** Smallest acceptable dump, counted before backupctl's compression; 0 bytes is always a failure. */
export const MinSize = ByteSize.default(1);

export const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name' });

/** The kinds of `BackupEvent` (src/shared.ts), for notifiers' `events` filters. */
export const EVENT_KINDS = ['start', 'success', 'failure', 'cancelled', 'skipped', 'alert', 'drill'] as const;
export const EventKind = z.enum(EVENT_KINDS, { error: `expected one of ${EVENT_KINDS.join(', ')}` });
export type EventKind = z.infer<typeof EventKind>;

/** An http:// or https:// URL; `what` completes the message. */
export const httpUrl = (what: string) => z.url({ protocol: /^https?$/, error: `expected an http:// or https:// URL (${what})` });

/**
 * A plugin's `type` field: the literal that selects the plugin (the key of the registry). Described like every other
 * field of a plugin's schema.
 */
export const pluginType = <T extends string>(type: T, kind: 'source' | 'destination' | 'notifier') =>
  z.literal(type).meta({ description: `selects the ${type} ${kind}`, examples: [type] });
