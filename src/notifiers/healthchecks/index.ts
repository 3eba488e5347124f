import { createHash } from 'node:crypto';
import type { HealthchecksNotifierConfig as HealthchecksConfig } from './schema.js';
import { readSecret } from '../../config/secrets.js';
import { eventWorkflowId, type BackupEvent } from '../../contracts/events.js';
import { postOnce, redactUrl, truncateUtf8, urlSecrets } from '../http.js';
import type { Notifier, RenderedMessage } from '../types.js';

/** healthchecks.io keeps the first 100 kB of a ping's body (self-hosted: PING_BODY_LIMIT, 10 kB by default). */
export const PING_BODY_LIMIT = 100_000;

/**
 * The run ID (`?rid=`) of a workflow's pings: the first 16 bytes of SHA-256(workflow ID), formatted as a UUID
 * (RFC 9562 version 8, "custom", so that any UUID parser accepts it). The same for start and finish of one run, also
 * across retries and worker restarts, and different for concurrent runs of one check, which healthchecks pairs by it.
 */
export function pingRunId(workflowId: string): string {
  const b = createHash('sha256').update(workflowId, 'utf8').digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80; // version 8
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10xx
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The ping endpoint for an event: start → `/start`, success → `` (success), every other kind → `/fail`. */
export function pingSuffix(kind: BackupEvent['kind']): '' | '/start' | '/fail' {
  if (kind === 'start') return '/start';
  if (kind === 'success') return '';
  return '/fail'; // failure, cancelled, skipped (no backup for the slot), alert (monitoring found a problem)
}

/** `<base>/<target><suffix>[?rid=<rid>]`; `target` is `<uuid>` or `<ping key>/<slug>`, already URL-safe. */
export function pingUrl(baseUrl: string, target: string, suffix: string, rid?: string): URL {
  const url = new URL(`${baseUrl.replace(/\/+$/, '')}/${target}${suffix}`);
  if (rid !== undefined) url.searchParams.set('rid', rid);
  return url;
}

/**
 * healthchecks.io-style pings (also self-hosted Healthchecks, via `baseUrl`): the dead-man's switch. `/start` when a
 * run begins, success when it stored a verified backup, `/fail` with the message (the log tail) otherwise; when the
 * check hears nothing within its period and grace time, healthchecks alerts on its own — that is what notices a
 * schedule that never runs. One check per job: every ping of a notifier goes to the same check.
 */
export class HealthchecksNotifier implements Notifier {
  readonly type = 'healthchecks';
  constructor(readonly name: string, private readonly cfg: HealthchecksConfig) {}

  /** Every kind: the start ping enables "started but never finished" alerts and run-time measurement. */
  wants(event: BackupEvent): boolean {
    // Not restore drills: the check is the backups' dead-man's switch.
    return event.kind !== 'drill';
  }

  /** `<uuid>` or `<ping key>/<slug>`, and the secret parts (never shown). */
  private async target(): Promise<{ path: string; secrets: string[] }> {
    const { uuid, pingKey, slug } = this.cfg;
    if (uuid !== undefined) {
      const value = (typeof uuid === 'string' ? uuid : await readSecret(uuid, `notifier "${this.name}" check UUID`)).trim().toLowerCase();
      return { path: encodeURIComponent(value), secrets: [value] };
    }
    // The schema guarantees pingKey and slug here.
    const key = (await readSecret(pingKey!, `notifier "${this.name}" ping key`)).trim();
    return { path: `${encodeURIComponent(key)}/${encodeURIComponent(slug!)}`, secrets: [key] };
  }

  private async ping(suffix: string, rid: string | undefined, body: string): Promise<{ url: URL; answer: string }> {
    const target = await this.target();
    const url = pingUrl(this.cfg.baseUrl, target.path, suffix, rid);
    const answer = await postOnce({
      url, body: truncateUtf8(body, PING_BODY_LIMIT), timeoutMs: this.cfg.timeout,
      headers: { 'Content-Type': 'text/plain; charset=utf-8', 'User-Agent': 'backupctl' },
      where: `notifier "${this.name}" (healthchecks ${redactUrl(url)})`,
      secrets: [...target.secrets, ...urlSecrets(url)],
    });
    return { url, answer };
  }

  async send(event: BackupEvent, message: RenderedMessage): Promise<void> {
    const workflowId = eventWorkflowId(event);
    const rid = workflowId === undefined ? undefined : pingRunId(workflowId); // an alert belongs to no run
    const suffix = pingSuffix(event.kind);
    const body = suffix === '/fail' ? message.text : `${message.subject}\n\n${message.text}`;
    await this.ping(suffix, rid, body);
  }

  /**
   * A `/log` ping: healthchecks records it in the check's event log without changing the check's status, and answers
   * 404 for an unknown UUID or slug, so this checks reachability, TLS, the secret references and the check's existence
   * at once. (A `/start` or success ping would change the status; a bare TCP probe would not notice a wrong UUID.)
   */
  async check(): Promise<string> {
    const { url } = await this.ping('/log', undefined, `backupctl config check (notifier "${this.name}"): a log entry only, the check's status is unchanged`);
    return `healthchecks ${redactUrl(url)} knows the check (a "log" event was recorded; status unchanged)`;
  }
}
