import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SftpSession } from '../../src/destinations/sftp/index.js';
import { sftpDestinationSchema } from '../../src/destinations/sftp/schema.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startSshd, startSshdSftpOnly, type SshdHandle } from '../helpers/sshd.js';

// No request of the SFTP destination outlives its connection (src/destinations/sftp/index.ts, `call` and `close`).
// ssh2 never answers a request issued after the connection dropped, and its destroy() does nothing once end() ran: a
// step waiting on either would hang until SSH keepalives gave up, or for good. The network fault scenarios
// (test/faults/network.test.ts) meet these only when their timing falls so; here each is made to happen.

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => Promise.race([
  p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms).unref()),
]);

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** This process's open TCP sockets (descriptors) whose remote port is `port`, per /proc/net/tcp and /proc/self/fd. */
function socketsTo(port: number): number {
  const inodes = new Set(readFileSync('/proc/self/net/tcp', 'utf8').split('\n').slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 9 && Number.parseInt(f[2]!.split(':')[1]!, 16) === port)
    .map((f) => f[9]!));
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m && inodes.has(m[1]!)) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

describe('sftp requests and a lost connection', () => {
  let sshd: SshdHandle;
  let proxy: FaultProxy;
  beforeAll(async () => {
    sshd = await startSshd();
    proxy = await startFaultProxy({ host: sshd.host, port: sshd.port });
  });
  afterAll(async () => {
    await proxy?.stop();
    await sshd?.stop();
  });

  const session = () => new SftpSession('nas', sftpDestinationSchema.parse({
    type: 'sftp', host: proxy.host, port: proxy.port, user: sshd.user, privateKey: sshd.clientKeyPath, hostKey: sshd.hostKeyFingerprint, path: sshd.root,
  }));

  it('a request made after the connection dropped fails at once, as unreachable', async () => {
    const s = await session().connect();
    try {
      expect(await s.list('.')).toBeDefined();
      proxy.setDown(true);
      await until(() => s.closed, 10_000, 'the session noticing the reset');
      const err = await within(s.list('.').then(() => undefined, (e: unknown) => e as Error & { code?: string }), 5_000, 'list on a dropped connection');
      expect(err?.code).toBe('DESTINATION_UNREACHABLE');
      expect(err?.message).toMatch(/connection closed/);
    } finally {
      proxy.setDown(false);
      s.close();
    }
  });

  it('closing a stalled connection fails its waiting requests at once and ends the connection within seconds', async () => {
    const s = await session().connect();
    try {
      expect(await s.list('.')).toBeDefined();
      expect(socketsTo(proxy.port)).toBe(1);
      // From the next byte on, the server is silent and reads nothing (alive for TCP).
      proxy.arm({ kind: 'stall', afterBytes: 0 });
      const waiting = s.list('.').then(() => undefined, (e: unknown) => e as Error & { code?: string });
      await proxy.struck();
      s.close();
      const err = await within(waiting, 1_000, 'a list waiting on the closed session');
      expect(err?.code).toBe('DESTINATION_UNREACHABLE');
      // The socket itself is closed: ssh2's end() alone would keep it open for a server that never reads again, until
      // keepalives gave up (45 s).
      await until(() => socketsTo(proxy.port) === 0, 5_000, 'the stalled connection\'s socket closing');
    } finally {
      proxy.disarm();
      proxy.release();
      s.close();
    }
  });

  it('a read-back hash whose connection closes with reads in flight fails as unreachable, and none of its reads goes unhandled', async () => {
    // An SFTP-only account: no hash command, so the stored file is hashed by reading it back, 32 reads in flight.
    const only = await startSshdSftpOnly();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => { unhandled.push(reason); };
    process.on('unhandledRejection', onUnhandled);
    const s = new SftpSession('nas', sftpDestinationSchema.parse({
      type: 'sftp', host: only.host, port: only.port, user: only.user, privateKey: only.clientKeyPath, hostKey: only.hostKeyFingerprint, path: only.root,
    }));
    try {
      writeFileSync(path.join(only.root, 'big.bin'), Buffer.alloc(8 << 20, 1));
      await s.connect();
      // The connection goes (a stalled upload beside it dropped it, say) once the first bytes have been hashed.
      const err = await within(s.sha256('big.bin', { onProgress: () => s.close() }).then(() => undefined, (e: unknown) => e as Error & { code?: string }), 5_000, 'the read-back hash');
      expect(err?.code).toBe('DESTINATION_UNREACHABLE');
      expect(err?.message).toMatch(/reading .*big\.bin/);
      await new Promise((r) => setTimeout(r, 200));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      s.close();
      await only.stop();
    }
  });
});
