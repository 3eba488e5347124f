/**
 * The destination contract: what every destination type must do, run against local, SFTP and S3 alike
 * (contract.<type>.test.ts). A new destination is done when it passes it. Each target opens its sessions through
 * openDestination (the pool and throttle wrappers included) on a real server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { closeDestinations, destinationPlugin, openDestination } from '../../src/destinations/index.js';
import { judgeStaged } from '../../src/destinations/staged-check.js';
import type { DestinationSession, StagedWrite } from '../../src/destinations/types.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';

export interface ContractTarget {
  /** The destination's config (its `type` included), as a config file would give it (parsed by its plugin's schema). */
  config: Record<string, unknown>;
  /** Damages the stored bytes of a pending write (a byte flipped, the size unchanged), as a faulty disk or server would. */
  damage(d: DestinationSession, w: StagedWrite): Promise<void>;
  /** The same destination with credentials it refuses; undefined when the type has none (say why in `why`). */
  badAuth?: Record<string, unknown>;
  /** The same destination at an address where nothing listens. */
  unreachable: Record<string, unknown>;
  /** Fills the destination's disk or quota so that a write fails; undefined when no server here can (say why). */
  full?: { config: Record<string, unknown>; bytes: number };
  /** Why a case cannot be produced here (printed as the test's title). */
  why?: { badAuth?: string; full?: string };
  stop(): Promise<void>;
}

const configOf = (name: string, raw: Record<string, unknown>): Config => {
  const cfg = destinationPlugin(String(raw.type)).schema.parse(raw);
  return { destinations: { [name]: cfg } } as unknown as Config;
};

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function destinationContract(type: string, start: () => Promise<ContractTarget>): void {
  describe(`destination contract: ${type}`, () => {
    let target: ContractTarget;
    let tmp: TempDir;
    let config: Config;
    let n = 0;
    const open = () => openDestination(config, 'd');
    /** A fresh slot folder and the staged write of an artifact in it, named as layout() names them. */
    const slot = (): { dir: string; w: StagedWrite } => {
      const dir = `daily/2025/11/04/${String(1000 + n++).padStart(4, '0')}`;
      const artifact = 'app-full-20251104T030000Z.tar';
      return { dir, w: { pending: `${dir}/.${artifact}.backup-app-${n}.tmp`, final: `${dir}/${artifact}` } };
    };
    const file = (bytes: Buffer): string => {
      const f = path.join(tmp.path, `src-${n}-${Math.random().toString(36).slice(2)}`);
      writeFileSync(f, bytes);
      return f;
    };
    const readAll = async (d: DestinationSession, p: string): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      const r = await d.download(p, { sink: { take: (k) => Buffer.alloc(k), update: async (b, len) => { chunks.push(Buffer.from(b.subarray(0, len))); } } });
      const all = Buffer.concat(chunks);
      expect(r.bytes).toBe(all.length);
      return all;
    };
    /** stage → inspect (judged like the verify step) → commit. */
    const store = async (d: DestinationSession, w: StagedWrite, bytes: Buffer) => {
      const sent = await d.stage(file(bytes), w);
      expect(sent).toMatchObject({ bytes: bytes.length, sha256: sha(bytes) });
      const expected = { size: sent.bytes, sha256: sent.sha256, ...(sent.receipt ? { receipt: sent.receipt } : {}) };
      judgeStaged(await d.inspectStaged(w), expected, d.capabilities, w.pending);
      await d.commit(w, expected);
      return expected;
    };

    beforeAll(async () => {
      tmp = await makeTempDir('backupctl-contract-');
      target = await start();
      config = configOf('d', target.config);
    }, 180_000);
    afterAll(async () => {
      await closeDestinations();
      await target?.stop();
      await tmp?.cleanup();
    });

    it('reports its capabilities', async () => {
      const d = await open();
      try {
        expect(d.capabilities).toEqual({ atomicRename: expect.any(Boolean), serverSideHash: expect.any(Boolean), durableSync: expect.any(Boolean), conditionalCreate: true });
      } finally {
        d.release();
      }
    });

    it('writes, stats and reads back a file, whole and by range (several parts)', async () => {
      const d = await open();
      try {
        const { w } = slot();
        const bytes = randomBytes(12 * 1024 * 1024 + 12345);
        const { receipt } = await store(d, w, bytes);
        expect(await d.stat(w.final)).toEqual({ size: bytes.length });
        expect(await d.stat(w.pending)).toBeUndefined();
        expect(sha(await readAll(d, w.final))).toBe(sha(bytes));
        expect((await d.readRange(w.final, 5 * 1024 * 1024 - 3, 7)).equals(bytes.subarray(5 * 1024 * 1024 - 3, 5 * 1024 * 1024 + 4))).toBe(true);
        expect((await d.readRange(w.final, 0, 0)).length).toBe(0);
        // Committing again (a retried finalize) accepts its own final file.
        await d.commit(w, { size: bytes.length, sha256: sha(bytes), ...(receipt ? { receipt } : {}) });
        expect(sha(await readAll(d, w.final))).toBe(sha(bytes));
      } finally {
        d.release();
      }
    });

    it('a pending write, aborted or discarded, is never visible under the final name', async () => {
      const d = await open();
      try {
        const { dir, w } = slot();
        const bytes = randomBytes(11 * 1024 * 1024);
        await d.stage(file(bytes), w);
        expect(await d.stat(w.final)).toBeUndefined();
        expect(((await d.list(dir)) ?? []).map((e) => e.name)).not.toContain(path.posix.basename(w.final));
        expect(await d.discard(w)).toBe(true);
        expect(await d.discard(w)).toBe(false);
        expect(await d.inspectStaged(w)).toBeUndefined();
        // Aborted mid-way: nothing under the final name, and a commit finds nothing to commit.
        const ac = new AbortController();
        await expect(d.stage(file(bytes), w, { signal: ac.signal, onProgress: (b) => { if (b > 0) ac.abort(new Error('cut')); } })).rejects.toThrow();
        expect(await d.stat(w.final)).toBeUndefined();
        await d.discard(w);
        await expect(d.commit(w, { size: bytes.length, sha256: sha(bytes), receipt: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=-3' })).rejects.toThrow(expect.objectContaining({ code: 'FINALIZE_FAILED' }));
        expect(await d.stat(w.final)).toBeUndefined();
      } finally {
        d.release();
      }
    });

    it('two writers of one final name: exactly one wins, the other is refused and changes nothing', async () => {
      const [d1, d2] = [await open(), await open()];
      try {
        const { dir, w } = slot();
        const w2 = { ...w, pending: `${dir}/.${path.posix.basename(w.final)}.backup-other.tmp` };
        const [a, b] = [randomBytes(6 * 1024 * 1024), randomBytes(6 * 1024 * 1024)];
        const [sa, sb] = await Promise.all([d1.stage(file(a), w), d2.stage(file(b), w2)]);
        const exp = (s: typeof sa) => ({ size: s.bytes, sha256: s.sha256, ...(s.receipt ? { receipt: s.receipt } : {}) });
        const results = await Promise.allSettled([d1.commit(w, exp(sa)), d2.commit(w2, exp(sb))]);
        const won = results.map((r) => r.status === 'fulfilled');
        expect(won.filter(Boolean)).toHaveLength(1);
        const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(lost.reason).toMatchObject({ code: 'DESTINATION_EXISTS' });
        expect(sha(await readAll(d1, w.final))).toBe(sha(won[0] ? a : b));
        // The loser's pending write is still its own to discard; the winner's final file stays.
        await (won[0] ? d2.discard(w2) : d1.discard(w));
        expect(sha(await readAll(d1, w.final))).toBe(sha(won[0] ? a : b));
        // A small file created exclusively: the second writer is refused, the first one's bytes stay.
        const m = `${dir}/${path.posix.basename(w.final)}.manifest.json`;
        const r = await Promise.allSettled([d1.writeSmallFile(m, Buffer.from('one'), { exclusive: true }), d2.writeSmallFile(m, Buffer.from('two'), { exclusive: true })]);
        expect(r.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
        expect((r.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ code: 'DESTINATION_EXISTS' });
        expect(['one', 'two']).toContain((await d1.readSmallFile(m))?.toString());
      } finally {
        d1.release();
        d2.release();
      }
    });

    it('lists by prefix: files and folders one level down; nothing for a folder that does not exist', async () => {
      const d = await open();
      try {
        await d.writeSmallFile('lists/a/x.json', Buffer.from('x'));
        await d.writeSmallFile('lists/a/y.json', Buffer.from('yy'));
        await d.writeSmallFile('lists/b/deep/z.json', Buffer.from('z'));
        await d.writeSmallFile('lists-other/q.json', Buffer.from('q'));
        const top = ((await d.list('lists')) ?? []).map((e) => `${e.type}:${e.name}`).sort();
        expect(top).toEqual(['dir:a', 'dir:b']);
        const a = ((await d.list('lists/a')) ?? []).map((e) => [e.name, e.type, e.size]).sort();
        expect(a).toEqual([['x.json', 'file', 1], ['y.json', 'file', 2]]);
        expect(await d.list('lists/none')).toBeUndefined();
        expect(((await d.list('')) ?? []).filter((e) => e.type === 'dir').map((e) => e.name)).toEqual(expect.arrayContaining(['lists', 'lists-other']));
      } finally {
        d.release();
      }
    });

    it('removes idempotently, and refuses a path that leaves its root', async () => {
      const d = await open();
      try {
        await d.writeSmallFile('rm/one.json', Buffer.from('1'));
        expect(await d.remove('rm/one.json')).toBe(true);
        expect(await d.remove('rm/one.json')).toBe(false);
        expect(await d.stat('rm/one.json')).toBeUndefined();
        await expect(d.readSmallFile('../outside')).rejects.toThrow(expect.objectContaining({ code: 'DESTINATION_IO', permanent: true }));
      } finally {
        d.release();
      }
    });

    it('detects a hash mismatch: damaged stored bytes never become a final file that passes', async () => {
      const d = await open();
      try {
        const { w } = slot();
        const bytes = randomBytes(6 * 1024 * 1024 + 99);
        const sent = await d.stage(file(bytes), w);
        const expected = { size: sent.bytes, sha256: sent.sha256, ...(sent.receipt ? { receipt: sent.receipt } : {}) };
        await target.damage(d, w);
        let detected: unknown;
        try {
          judgeStaged(await d.inspectStaged(w), expected, d.capabilities, w.pending);
          await d.commit(w, expected);
        } catch (err) {
          detected = err;
        }
        expect(detected, 'the damage went unnoticed').toMatchObject({ code: expect.stringMatching(/^(VERIFY_MISMATCH|FINALIZE_FAILED)$/) });
        // Whatever stands under the final name (nothing, or the damaged object removed again) is not a pass.
        const st = await d.stat(w.final);
        if (st) expect(sha(await readAll(d, w.final))).toBe(sha(bytes));
        await d.discard(w);
      } finally {
        d.release();
      }
    });

    it('not found: a missing file is undefined to stat and small reads, RESTORE_NOT_FOUND to a download', async () => {
      const d = await open();
      try {
        expect(await d.stat('missing/x.tar')).toBeUndefined();
        expect(await d.readSmallFile('missing/x.json')).toBeUndefined();
        await expect(d.download('missing/x.tar', { sink: { take: (k) => Buffer.alloc(k), update: async () => undefined } })).rejects.toThrow(expect.objectContaining({ code: 'RESTORE_NOT_FOUND' }));
        expect(await d.remove('missing/x.json')).toBe(false);
      } finally {
        d.release();
      }
    });

    it('network: nothing listening is DESTINATION_UNREACHABLE (retried)', async () => {
      const err = await (async () => {
        const d = await openDestination(configOf('gone', target.unreachable), 'gone');
        try {
          await d.checkWritable();
        } finally {
          d.release();
        }
      })().then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'DESTINATION_UNREACHABLE', permanent: false });
    });

    it('auth: refused credentials are DESTINATION_AUTH (permanent)', async (ctx) => {
      if (!target.badAuth) {
        await ctx.annotate(target.why?.badAuth ?? 'no credentials');
        expect(target.why?.badAuth).toEqual(expect.any(String));
        return;
      }
      const err = await (async () => {
        const d = await openDestination(configOf('bad', target.badAuth!), 'bad');
        try {
          await d.checkWritable();
        } finally {
          d.release();
        }
      })().then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'DESTINATION_AUTH', permanent: true });
    });

    it('no space or quota: a write that does not fit is DESTINATION_SPACE, and leaves nothing under the final name', async (ctx) => {
      if (!target.full) {
        await ctx.annotate(target.why?.full ?? 'cannot be produced here');
        expect(target.why?.full).toEqual(expect.any(String));
        return;
      }
      const d = await openDestination(configOf('full', target.full.config), 'full');
      try {
        const { w } = slot();
        const bytes = randomBytes(target.full.bytes);
        const err = await d.stage(file(bytes), w).then(() => undefined, (e: unknown) => e);
        expect(err).toMatchObject({ code: 'DESTINATION_SPACE' });
        expect(await d.stat(w.final)).toBeUndefined();
        await d.discard(w);
      } finally {
        d.release();
      }
    });
  });
}
