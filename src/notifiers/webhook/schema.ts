import { z } from 'zod';
import { Duration, EventKind, SecretRef, httpUrl, pluginType } from '../../config/fields.js';

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers that the webhook notifier sets itself. */
const RESERVED_HEADER_RE = /^(x-backupctl-.*|content-type|content-length|host|transfer-encoding|connection)$/i;

/** A `webhook` notifier: POSTs each event as JSON (Slack's format, or backupctl's). */
export const webhookNotifierSchema = z.strictObject({
  type: pluginType('webhook', 'notifier'),
  /** Usually carries a token (Slack incoming webhooks do), so it may be a secret reference. */
  url: z.union([httpUrl('or a secret reference { env: NAME } / { file: PATH } holding one'), SecretRef])
    .meta({ description: 'the URL to POST to; usually carries a token, so it may be a secret reference', examples: [{ env: 'SLACK_WEBHOOK_URL' }, 'https://hooks.example.org/backupctl'] }),
  /** `slack`: `{"text": …}` (Slack incoming webhooks and compatibles); `json`: backupctl's event, see src/notifiers/webhook. */
  format: z.enum(['slack', 'json'], { error: 'expected slack or json' }).default('json')
    .meta({ description: 'slack: {"text": …} for Slack incoming webhooks and compatibles; json: backupctl\'s event', examples: ['slack'] }),
  /** HMAC-SHA256 key: adds `X-Backupctl-Signature` and `X-Backupctl-Timestamp`. */
  secret: SecretRef.optional()
    .meta({ description: 'HMAC-SHA256 key: adds X-Backupctl-Signature and X-Backupctl-Timestamp', examples: [{ file: '/etc/backupctl/webhook-secret' }] }),
  /** Events to send; failures and cancellations are always sent. */
  events: z.array(EventKind).min(1).default(['success', 'failure', 'cancelled', 'skipped', 'alert'])
    .refine((e) => e.includes('failure') && e.includes('cancelled'), {
      error: 'failure and cancelled are always sent: list them too (or leave events out: every kind but start)',
    })
    .meta({ description: 'events to send; failure and cancelled are always sent and must be listed', examples: [['start', 'success', 'failure', 'cancelled']] }),
  timeout: Duration.default(10_000).meta({ description: 'timeout of one request', examples: ['10s'] }),
  /** Extra request headers; a value may be a secret reference (e.g. `Authorization: { env: HOOK_TOKEN }`). */
  headers: z.record(z.string(), z.union([z.string(), SecretRef])).superRefine((headers, ctx) => {
    for (const name of Object.keys(headers)) {
      if (!HEADER_NAME_RE.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'expected an HTTP header name (letters, digits, "-")' });
      else if (RESERVED_HEADER_RE.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'this header is set by backupctl' });
    }
  }).default({}).meta({ description: 'extra request headers; a value may be a secret reference', examples: [{ Authorization: { env: 'HOOK_TOKEN' } }] }),
});
export type WebhookNotifierConfig = z.infer<typeof webhookNotifierSchema>;
