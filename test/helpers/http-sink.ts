import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  /** The path without the query string, as sent (percent-encoding kept). */
  path: string;
  /** Query parameters (the last value of a repeated one). */
  query: Record<string, string>;
  /** Lowercased header names, as Node parses them. */
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text. */
  body: string;
  /** The body's exact bytes (for signatures). */
  raw: Buffer;
  /** The status the sink answered with. */
  status: number;
  /** Arrival time, ms since the epoch. */
  at: number;
}

export interface RespondOptions {
  /** Answer body. Default: `ok` for 2xx, else `error <status>`. */
  body?: string;
  /** Only for the next `times` requests, then back to 200 `ok`. Default: until changed. */
  times?: number;
  /** Wait this long before answering (for client timeouts). */
  delayMs?: number;
}

export interface HttpSink {
  host: '127.0.0.1';
  port: number;
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  /** Every request, in arrival order, with the status it got. */
  requests: ReceivedRequest[];
  /** Resolve with the first request (already received or arriving later) matching `pred`. Default timeout 10 s. */
  waitFor(pred: (r: ReceivedRequest) => boolean, timeoutMs?: number): Promise<ReceivedRequest>;
  /** Answer with `status` from now on (or for the next `times` requests). `respondWith(200)` restores the default. */
  respondWith(status: number, opts?: RespondOptions): void;
  /** Forget the recorded requests and answer 200 `ok` again. */
  reset(): void;
  /** Close the listener and every open (also keep-alive) connection. */
  stop(): Promise<void>;
}

interface Behaviour {
  status: number;
  body?: string;
  times?: number;
  delayMs?: number;
}

/** Start an in-process HTTP server on a free 127.0.0.1 port that records every request and answers 200 `ok`. */
export async function startHttpSink(): Promise<HttpSink> {
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<(r: ReceivedRequest) => void>();
  let behaviour: Behaviour = { status: 200 };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('error', () => res.destroy());
    req.once('end', () => {
      const current = behaviour;
      if (current.times !== undefined && --current.times <= 0) behaviour = { status: 200 };
      const url = new URL(req.url ?? '/', 'http://sink');
      const raw = Buffer.concat(chunks);
      const record: ReceivedRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body: raw.toString('utf8'),
        raw,
        status: current.status,
        at: Date.now(),
      };
      requests.push(record);
      for (const waiter of [...waiters]) waiter(record);
      const answer = (): void => {
        if (res.destroyed) return;
        const body = current.body ?? (current.status >= 200 && current.status < 300 ? 'ok' : `error ${current.status}`);
        res.writeHead(current.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (current.delayMs) setTimeout(answer, current.delayMs).unref();
      else answer();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy()); // client resets are not test failures

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const waitFor = (pred: (r: ReceivedRequest) => boolean, timeoutMs = 10_000): Promise<ReceivedRequest> => {
    const found = requests.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (r: ReceivedRequest): void => {
        if (!pred(r)) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(r);
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        const seen = requests.map((r) => `${r.method} ${r.path}`).join(', ') || 'none';
        reject(new Error(`no matching request within ${timeoutMs} ms (received ${requests.length}: ${seen})`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  };

  const respondWith = (status: number, opts: RespondOptions = {}): void => {
    behaviour = { status, ...opts };
  };

  const reset = (): void => {
    requests.length = 0;
    behaviour = { status: 200 };
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections(); // idle keep-alive sockets of fetch would keep close() waiting
    });
    return stopping;
  };

  return { host: '127.0.0.1', port, url: `http://127.0.0.1:${port}`, requests, waitFor, respondWith, reset, stop };
}
