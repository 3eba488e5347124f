import type { EmailNotifierConfig as EmailConfig } from './schema.js';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import type { BackupEvent } from '../../contracts/events.js';
import type { Notifier, RenderedMessage } from '../types.js';

/** Mail through SMTP (nodemailer); one message per event, with a Message-ID stable across resends. */
export class EmailNotifier implements Notifier {
  readonly type = 'email';
  constructor(readonly name: string, private readonly cfg: EmailConfig) {}

  wants(event: BackupEvent): boolean {
    if (event.kind === 'start') return false;
    return event.kind !== 'success' || this.cfg.onSuccess;
  }

  private async transport() {
    const pass = this.cfg.password ? await readSecret(this.cfg.password, `notifier "${this.name}" SMTP password`) : undefined;
    // Loaded when the first mail is sent: a worker that never mails does not hold nodemailer.
    const { default: nodemailer } = await import('nodemailer');
    return nodemailer.createTransport({
      host: this.cfg.host, port: this.cfg.port, secure: this.cfg.secure, requireTLS: this.requireTLS,
      auth: this.cfg.user ? { user: this.cfg.user, pass } : undefined,
      connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000,
    });
  }

  /** STARTTLS is required whenever a password is set, unless the config turns it off explicitly. */
  private get requireTLS(): boolean {
    return this.cfg.requireTLS ?? this.cfg.password !== undefined;
  }

  private mapError(err: unknown): BackupError {
    const e = err as Error & { code?: string; responseCode?: number; command?: string };
    const where = `notifier "${this.name}" (smtp ${this.cfg.host}:${this.cfg.port})`;
    if (e.code === 'ETLS' && e.command === 'STARTTLS' && !this.cfg.secure && this.requireTLS) {
      return new BackupError('NOTIFY_FAILED', `${where}: the server did not accept STARTTLS, so nothing was sent and the login was not attempted (requireTLS): ${e.message}`, {
        cause: err, permanent: true,
        hint: 'enable STARTTLS on the server, or use secure: true on port 465; requireTLS: false sends the password in plain text',
      });
    }
    if (e.code === 'EAUTH') return new BackupError('NOTIFY_FAILED', `${where}: authentication failed: ${e.message}`, { cause: err, permanent: true, hint: 'check user and password' });
    // 5xx are permanent rejections (bad address, relay denied); network errors and 4xx are worth retrying.
    const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500;
    return new BackupError('NOTIFY_FAILED', `${where}: ${e.message}`, { cause: err, permanent });
  }

  async send(_event: BackupEvent, message: RenderedMessage): Promise<void> {
    const t = await this.transport();
    try {
      await t.sendMail({
        from: this.cfg.from, to: this.cfg.to, subject: message.subject, text: message.text,
        messageId: `<${message.id}@backupctl>`,
      });
    } catch (err) {
      throw this.mapError(err);
    } finally {
      t.close();
    }
  }

  async check(): Promise<string> {
    const t = await this.transport();
    try {
      await t.verify();
    } catch (err) {
      throw this.mapError(err);
    } finally {
      t.close();
    }
    return `smtp ${this.cfg.host}:${this.cfg.port} accepts connections${this.cfg.user ? ` and the login for ${this.cfg.user}` : ''}`;
  }
}
