import { simpleParser, type ParsedMail } from 'mailparser';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';

export type { ParsedMail };

export interface SmtpSinkOptions {
  /** Require AUTH (PLAIN/LOGIN, over plain TCP) with exactly these credentials. Default: auth optional. */
  auth?: { user: string; pass: string };
  /** Answer every DATA with this error, e.g. `{ code: 550, message: 'mailbox unavailable' }`. */
  reject?: { code: number; message: string };
  /** Listen on this port (e.g. the port of a sink that was stopped: the server is back). Default: a free one. */
  port?: number;
}

export interface ReceivedMail {
  mail: ParsedMail;
  /** The raw RFC 5322 message. */
  raw: Buffer;
  /** SMTP envelope (MAIL FROM / RCPT TO). */
  envelope: { from: string | false; to: string[] };
  /** The authenticated user name, if the client authenticated. */
  user?: string;
}

export interface AuthAttempt {
  method: string;
  username?: string;
  ok: boolean;
}

export interface SmtpSink {
  host: '127.0.0.1';
  port: number;
  /** Parsed messages, in arrival order. */
  messages: ParsedMail[];
  /** The same messages with raw bytes, envelope and authenticated user. */
  received: ReceivedMail[];
  /** Every AUTH attempt, in order. */
  authAttempts: AuthAttempt[];
  /** Resolve with the first message (already received or arriving later) matching `pred`. Default timeout 10 s. */
  waitFor(pred: (m: ParsedMail) => boolean, timeoutMs?: number): Promise<ParsedMail>;
  stop(): Promise<void>;
}

/** Start an in-process SMTP server on a free 127.0.0.1 port that keeps every message it receives. */
export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const messages: ParsedMail[] = [];
  const received: ReceivedMail[] = [];
  const authAttempts: AuthAttempt[] = [];
  const waiters = new Set<(m: ParsedMail) => void>();
  const required = opts.auth;

  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['STARTTLS'],
    authOptional: required === undefined,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    closeTimeout: 1_000,
    onAuth(auth: SMTPServerAuthentication, _session: SMTPServerSession, callback) {
      const ok = required === undefined || (auth.username === required.user && auth.password === required.pass);
      authAttempts.push({ method: auth.method, username: auth.username, ok });
      if (ok) callback(null, { user: auth.username });
      else callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.once('error', (err) => callback(err));
      stream.once('end', () => {
        if (opts.reject) {
          callback(Object.assign(new Error(opts.reject.message), { responseCode: opts.reject.code }));
          return;
        }
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (mail) => {
            messages.push(mail);
            received.push({
              mail,
              raw,
              envelope: {
                from: session.envelope.mailFrom === false ? false : session.envelope.mailFrom.address,
                to: session.envelope.rcptTo.map((r) => r.address),
              },
              user: session.user,
            });
            for (const waiter of [...waiters]) waiter(mail);
            callback();
          },
          (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
        );
      });
    },
  });
  server.on('error', () => undefined); // per-connection errors (client resets) are not test failures

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.server.removeListener('error', reject);
      resolve();
    });
  });
  const { port } = server.server.address() as AddressInfo;

  const waitFor = (pred: (m: ParsedMail) => boolean, timeoutMs = 10_000): Promise<ParsedMail> => {
    const found = messages.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (m: ParsedMail): void => {
        if (!pred(m)) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(m);
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        const subjects = messages.map((m) => JSON.stringify(m.subject ?? '')).join(', ') || 'none';
        reject(new Error(`no matching mail within ${timeoutMs} ms (received ${messages.length}: ${subjects})`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= new Promise<void>((resolve) => server.close(() => resolve()));
    return stopping;
  };

  return { host: '127.0.0.1', port, messages, received, authAttempts, waitFor, stop };
}
