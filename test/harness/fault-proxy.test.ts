import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { sleep, waitFor } from '../helpers/util.js';

// The fault proxy's own behaviour, against a plain TCP sink that counts what arrives.
let sink: net.Server;
let received = new Map<number, number>();
let proxy: FaultProxy;
let n = 0;

beforeAll(async () => {
  sink = net.createServer((s) => {
    const id = ++n;
    received.set(id, 0);
    s.on('data', (d: Buffer) => { received.set(id, received.get(id)! + d.length); s.write('ok'); });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  proxy = await startFaultProxy({ host: '127.0.0.1', port: (sink.address() as AddressInfo).port });
});
afterAll(async () => {
  await proxy?.stop();
  await new Promise((r) => sink.close(r));
});

function connect() {
  const s = net.connect(proxy.port, '127.0.0.1');
  let back = 0;
  let closed = false;
  s.on('data', (d: Buffer) => { back += d.length; });
  s.on('error', () => undefined);
  s.on('close', () => { closed = true; });
  return { s, back: () => back, closed: () => closed };
}

describe('fault proxy', () => {
  it('cut: forwards exactly N bytes, then resets the connection; the next connection is clean', async () => {
    received = new Map();
    proxy.arm({ kind: 'cut', afterBytes: 10_000 });
    const c = connect();
    c.s.write(Buffer.alloc(50_000));
    await waitFor(() => c.closed(), 5_000);
    await sleep(100);
    expect([...received.values()].reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(proxy.events.at(-1)).toMatchObject({ kind: 'cut', atBytes: 10_000 });
    const d = connect();
    d.s.write(Buffer.alloc(50_000));
    await waitFor(() => [...received.values()].some((v) => v === 50_000), 5_000);
    d.s.destroy();
  });

  it('stall: forwards N bytes, then nothing either way while the connection stays open', async () => {
    received = new Map();
    proxy.arm({ kind: 'stall', afterBytes: 1_000 });
    const c = connect();
    c.s.write(Buffer.alloc(5_000));
    await sleep(500);
    const backBefore = c.back();
    c.s.write(Buffer.alloc(5_000));
    await sleep(500);
    expect([...received.values()].reduce((a, b) => a + b, 0)).toBe(1_000);
    expect(c.back()).toBe(backBefore);
    expect(c.closed()).toBe(false);
    proxy.release();
    await waitFor(() => c.closed(), 5_000);
  });

  it('throttle: client → server at the given rate', async () => {
    received = new Map();
    proxy.arm({ kind: 'throttle', bytesPerSecond: 200_000 });
    const c = connect();
    const started = Date.now();
    c.s.write(Buffer.alloc(300_000));
    await waitFor(() => [...received.values()].some((v) => v === 300_000), 10_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_300);
    proxy.disarm();
    c.s.destroy();
  });

  it('down: connections are refused (reset) until it is up again', async () => {
    proxy.setDown(true);
    const c = connect();
    await waitFor(() => c.closed(), 5_000);
    proxy.setDown(false);
    const d = connect();
    d.s.write('x');
    await waitFor(() => d.back() > 0, 5_000);
    d.s.destroy();
  });
});
