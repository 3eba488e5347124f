import { z } from 'zod';
import { Duration, SecretRef, httpUrl, pluginType } from '../../config/fields.js';

/** A `healthchecks` notifier: healthchecks.io-style pings, the dead-man's switch of a job. */
export const healthchecksNotifierSchema = z.strictObject({
  type: pluginType('healthchecks', 'notifier'),
  /** The ping endpoint: https://hc-ping.com, or a self-hosted instance's, e.g. https://hc.example.org/ping. */
  baseUrl: httpUrl('the ping endpoint, e.g. https://hc-ping.com').default('https://hc-ping.com')
    .meta({ description: 'the ping endpoint: https://hc-ping.com, or a self-hosted instance\'s', examples: ['https://hc.example.org/ping'] }),
  /** The check's UUID (anyone who knows it can ping the check: a secret reference is allowed). */
  uuid: z.union([
    z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, { error: 'expected the check\'s UUID or a secret reference { env: NAME } / { file: PATH }' }),
    SecretRef,
  ]).optional()
    .meta({ description: 'the check\'s UUID, or a secret reference holding it; exactly one of uuid, or pingKey and slug', examples: ['5f3c8e9a-1b2d-4c6e-8f0a-9b7d6e5c4a3b', { env: 'HC_UUID' }] }),
  /** The project's ping key, with `slug`: pings go to `<baseUrl>/<pingKey>/<slug>`. */
  pingKey: SecretRef.optional()
    .meta({ description: 'the project\'s ping key, as a secret reference; with slug, pings go to <baseUrl>/<pingKey>/<slug>', examples: [{ env: 'HC_PING_KEY' }] }),
  slug: z.string().regex(/^[a-z0-9_-]+$/, { error: 'expected a check slug: lowercase letters, digits, "-" or "_"' }).optional()
    .meta({ description: 'the check\'s slug, with pingKey', examples: ['nightly-backup'] }),
  timeout: Duration.default(10_000).meta({ description: 'timeout of one ping', examples: ['10s'] }),
}).refine((h) => (h.uuid !== undefined) !== (h.pingKey !== undefined || h.slug !== undefined), {
  error: 'set exactly one of uuid, or pingKey and slug', path: ['uuid'],
}).refine((h) => (h.pingKey === undefined) === (h.slug === undefined), {
  error: 'pingKey and slug go together', path: ['slug'],
});
export type HealthchecksNotifierConfig = z.infer<typeof healthchecksNotifierSchema>;
