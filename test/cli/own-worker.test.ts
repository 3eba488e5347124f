import { describe, expect, it } from 'vitest';
import { startOwnWorker, type CreateOwnWorkers } from '../../src/cli/restore.js';

// The in-process worker of `restore` and `drill` (src/cli/restore.ts): a worker that ends on its own (a fatal error of
// the SDK or the server) fails `failed` with NO_WORKER at once, so that the command stops waiting for a workflow that
// nothing runs any more, and its rejection is never left unhandled (which would end the command without its cleanup).
// A fake worker stands in for the SDK's: this is the lifecycle logic alone (the e2e tests run the real one).

type State = 'RUNNING' | 'STOPPING' | 'STOPPED';

function fakeWorker() {
  let state: State = 'RUNNING';
  let end!: () => void;
  let die!: (err: Error) => void;
  const running = new Promise<void>((resolve, reject) => { end = () => { state = 'STOPPED'; resolve(); }; die = (err) => { state = 'STOPPED'; reject(err); }; });
  let closed = false;
  const create: CreateOwnWorkers = () => Promise.resolve({
    workers: [{ run: () => running, shutdown: () => { state = 'STOPPING'; end(); }, getState: () => state } as never],
    close: () => { closed = true; return Promise.resolve(); },
  });
  return { create, end, die, closed: () => closed };
}

async function settledWithin<T>(p: Promise<T>, ms: number): Promise<{ value?: T; error?: Error & { code?: string } } | 'pending'> {
  return Promise.race([
    p.then((value) => ({ value }), (error: unknown) => ({ error: error as Error & { code?: string } })),
    new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms)),
  ]);
}

describe('the in-process worker of restore and drill', () => {
  it('a worker that fails while it runs: failed rejects with NO_WORKER naming the error; nothing goes unhandled; stop still closes it', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => { unhandled.push(reason); };
    process.on('unhandledRejection', onUnhandled);
    try {
      const fake = fakeWorker();
      const own = startOwnWorker({}, 'unused.yml', 'q', fake.create);
      await own.ready;
      fake.die(new Error('fatal: the namespace is gone'));
      const r = await settledWithin(own.failed, 1_000);
      expect(r).not.toBe('pending');
      expect(r !== 'pending' && r.error?.code).toBe('NO_WORKER');
      expect(r !== 'pending' && r.error?.message).toMatch(/in-process worker failed: fatal: the namespace is gone/);
      await own.stop();
      expect(fake.closed()).toBe(true);
      await new Promise((r2) => setTimeout(r2, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a worker that ends on its own before stop: failed rejects with NO_WORKER', async () => {
    const fake = fakeWorker();
    const own = startOwnWorker({}, 'unused.yml', 'q', fake.create);
    await own.ready;
    fake.end();
    const r = await settledWithin(own.failed, 1_000);
    expect(r !== 'pending' && r.error?.message).toMatch(/stopped before its workflow ended/);
    await own.stop();
  });

  it('a worker stopped by the command: failed never settles', async () => {
    const fake = fakeWorker();
    const own = startOwnWorker({}, 'unused.yml', 'q', fake.create);
    await own.ready;
    await own.stop();
    expect(fake.closed()).toBe(true);
    expect(await settledWithin(own.failed, 100)).toBe('pending');
  });
});
