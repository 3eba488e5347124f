import net, { type AddressInfo, type Socket } from 'node:net';

/**
 * A fault to inject into the next connection that reaches it (client → server bytes are counted per connection):
 * - `cut`: forward `afterBytes` bytes, then reset both sides (a dropped link, a crashed middlebox);
 * - `stall`: forward `afterBytes` bytes, then forward nothing more in either direction while keeping both sockets
 *   open (a hung NAT entry, a frozen server) until `release()` or `stop()`;
 * - `throttle`: forward client → server at most `bytesPerSecond`;
 * - `flip`: forward everything, but with the client → server byte at `afterBytes` inverted (a bad NIC, RAM or
 *   middlebox that corrupts data in transit without breaking the connection).
 * A cut or stall fires once (the first connection to reach it); later connections pass through untouched.
 */
export type Fault =
  | { kind: 'cut'; afterBytes: number }
  | { kind: 'stall'; afterBytes: number }
  | { kind: 'throttle'; bytesPerSecond: number }
  | { kind: 'flip'; afterBytes: number };

export interface FaultEvent {
  kind: Fault['kind'];
  connection: number;
  /** Client → server bytes forwarded on that connection when the fault struck. */
  atBytes: number;
  at: number;
}

export interface FaultProxy {
  host: '127.0.0.1';
  port: number;
  /** Arms a fault for the next connection that reaches it (replaces an armed one). */
  arm(fault: Fault): void;
  disarm(): void;
  /** Resolves when the armed fault has struck. */
  struck(): Promise<FaultEvent>;
  /** Faults that struck so far. */
  events: FaultEvent[];
  /** Connections accepted so far. */
  connections(): number;
  /** Ends every stalled connection (with a reset), e.g. at the end of a test. */
  release(): void;
  /** Refuse new connections (the port stays bound and resets them) and reset open ones, or accept again. */
  setDown(down: boolean): void;
  stop(): Promise<void>;
}

interface Conn {
  id: number;
  client: Socket;
  server: Socket;
  up: number;
  stalled: boolean;
}

/** A TCP proxy on 127.0.0.1 in front of `target` (sshd, SMTP, HTTP) that injects cuts, stalls and throttling. */
export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let armed: Fault | undefined;
  let down = false;
  let count = 0;
  const open = new Set<Conn>();
  const events: FaultEvent[] = [];
  const waiters: ((e: FaultEvent) => void)[] = [];

  const fire = (c: Conn, kind: Fault['kind']) => {
    armed = undefined;
    const e: FaultEvent = { kind, connection: c.id, atBytes: c.up, at: Date.now() };
    events.push(e);
    for (const w of waiters.splice(0)) w(e);
  };
  const reset = (c: Conn) => {
    open.delete(c);
    c.client.resetAndDestroy();
    c.server.resetAndDestroy();
  };

  const server = net.createServer((client) => {
    const c: Conn = { id: ++count, client, server: net.connect(target.port, target.host), up: 0, stalled: false };
    if (down) {
      c.server.destroy();
      client.resetAndDestroy();
      return;
    }
    open.add(c);
    client.setNoDelay(true);
    c.server.setNoDelay(true);
    const end = () => { open.delete(c); client.destroy(); c.server.destroy(); };
    client.on('error', end);
    c.server.on('error', end);
    client.on('close', end);
    c.server.on('close', end);
    // Server → client: straight through, unless stalled.
    c.server.on('data', (chunk: Buffer) => {
      if (c.stalled) return;
      if (!client.write(chunk)) { c.server.pause(); client.once('drain', () => { if (!c.stalled) c.server.resume(); }); }
    });
    // Client → server: counted; the armed fault strikes at its byte.
    let throttleQueue = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      if (c.stalled) return;
      const f = armed;
      if (f && f.kind !== 'throttle' && (c.up + chunk.length > f.afterBytes || (f.kind !== 'flip' && c.up + chunk.length === f.afterBytes))) {
        const part = chunk.subarray(0, Math.max(0, f.afterBytes - c.up));
        c.up += part.length;
        if (f.kind === 'flip') {
          const copy = Buffer.from(chunk);
          copy[part.length] = copy[part.length]! ^ 0xff;
          c.up += chunk.length - part.length;
          fire(c, 'flip');
          if (!c.server.write(copy)) { client.pause(); c.server.once('drain', () => { if (!c.stalled) client.resume(); }); }
        } else if (f.kind === 'cut') {
          fire(c, 'cut');
          if (part.length > 0) c.server.write(part, () => reset(c));
          else reset(c);
        } else {
          c.server.write(part);
          c.stalled = true;
          client.pause();
          c.server.pause();
          fire(c, 'stall');
        }
        return;
      }
      if (f?.kind === 'throttle') {
        // A throttle stays armed: every connection is slowed, each recorded once.
        if (events.every((e) => e.connection !== c.id)) { fire(c, 'throttle'); armed = f; }
        client.pause();
        throttleQueue = throttleQueue.then(async () => {
          for (let off = 0; off < chunk.length; off += 16 * 1024) {
            const part = chunk.subarray(off, off + 16 * 1024);
            await new Promise((r) => setTimeout(r, (part.length / f.bytesPerSecond) * 1000));
            if (c.server.destroyed) return;
            c.up += part.length;
            c.server.write(part);
          }
          if (!c.stalled) client.resume();
        });
        return;
      }
      c.up += chunk.length;
      if (!c.server.write(chunk)) { client.pause(); c.server.once('drain', () => { if (!c.stalled) client.resume(); }); }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;

  return {
    host: '127.0.0.1',
    port,
    arm(fault) { armed = fault; },
    disarm() { armed = undefined; },
    struck() {
      return new Promise((resolve) => waiters.push(resolve));
    },
    events,
    connections: () => count,
    release() {
      for (const c of [...open]) if (c.stalled) reset(c);
    },
    setDown(d) {
      down = d;
      if (d) for (const c of [...open]) reset(c);
    },
    async stop() {
      for (const c of [...open]) reset(c);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
