import { createHmac } from 'node:crypto';

/**
 * Webhook signatures (when the notifier has a `secret`).
 *
 * Every request carries
 *   X-Backupctl-Event-Id:  <message ID>      the same for every resend of one event: deduplicate on it
 *   X-Backupctl-Timestamp: <unix seconds>     when this attempt was sent
 *   X-Backupctl-Signature: sha256=<hex>       HMAC-SHA256 with the secret (its UTF-8 bytes) as key
 *                                             over the bytes `${timestamp}.${body}`, hex in lowercase
 * where body is the exact request body as sent (UTF-8 JSON). The signature and timestamp headers are only sent with a
 * secret; the event ID always.
 *
 * A receiver: reads the raw body before parsing it; recomputes the HMAC over `${X-Backupctl-Timestamp}.${raw body}`
 * and compares it with the header in constant time; rejects a timestamp more than a few minutes from its clock (a
 * replayed request); then deduplicates on X-Backupctl-Event-Id (Temporal retries a failed notification, each attempt
 * with a new timestamp and signature, the same event ID).
 */
export const SIGNATURE_HEADER = 'X-Backupctl-Signature';
export const TIMESTAMP_HEADER = 'X-Backupctl-Timestamp';
export const EVENT_ID_HEADER = 'X-Backupctl-Event-Id';

/** `sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>`. */
export function computeSignature(key: string, timestamp: string, body: Uint8Array | string): string {
  const hmac = createHmac('sha256', Buffer.from(key, 'utf8'));
  hmac.update(`${timestamp}.`, 'utf8');
  hmac.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return `sha256=${hmac.digest('hex')}`;
}

/** The timestamp and signature headers for one request. `nowMs` for tests. */
export function signatureHeaders(key: string, body: Uint8Array | string, nowMs = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: computeSignature(key, timestamp, body) };
}
