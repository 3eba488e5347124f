import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalSession } from '../../src/destinations/local/index.js';
import { BLOCK, END_OF_ARCHIVE, padding, tarHeader } from '../../src/lib/tar.js';
import { ArtifactFollower, journalComponent, journalSealed, writeJournal } from '../../src/state/follow.js';

// The follower against a simulated dump that writes the staged artifact exactly as the dump and archive steps do (a
// reserved header filled in at the end, a retry that truncates back to the header, a snapshot member written through
// a hole), while a local destination writes the pieces at their offsets.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let remote: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'follow-staging-'));
  remote = mkdtempSync(path.join(tmpdir(), 'follow-remote-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(remote, { recursive: true, force: true });
});

const artifact = () => path.join(dir, 'artifact.tar');

/** Appends `bytes` in small chunks with pauses, as a compressor's output lands. */
async function land(bytes: Buffer, chunk = 64 * 1024): Promise<void> {
  const fh = await open(artifact(), 'a');
  try {
    for (let off = 0; off < bytes.length; off += chunk) {
      await fh.write(bytes.subarray(off, off + chunk));
      await sleep(1);
    }
  } finally {
    await fh.close();
  }
}

/** One attempt of a component's dump at `offset`; `abandon` stops after that many bytes, as a dump that fails. */
async function dumpAttempt(offset: number, attempt: string, data: Buffer, opts: { abandon?: number; snapshot?: Buffer } = {}): Promise<number> {
  journalComponent(dir, offset, attempt, { begin: true });
  const fh = await open(artifact(), 'a+').then(async (h) => { await h.close(); return open(artifact(), 'r+'); });
  await fh.truncate(offset);
  await fh.write(Buffer.alloc(BLOCK), 0, BLOCK, offset);
  await fh.close();
  journalComponent(dir, offset, attempt, { stream: true });
  if (opts.abandon !== undefined) {
    await land(data.subarray(0, opts.abandon));
    return -1;
  }
  await land(data);
  const dataEnd = offset + BLOCK + data.length;
  journalComponent(dir, offset, attempt, { dataEnd });
  await sleep(5);
  let end = dataEnd + padding(data.length);
  const h = await open(artifact(), 'r+');
  await h.write(tarHeader('c.tar.zst', data.length, new Date(0)), 0, BLOCK, offset);
  if (padding(data.length)) await h.write(Buffer.alloc(padding(data.length)), 0, padding(data.length), dataEnd);
  if (opts.snapshot) {
    // As appendMember: header, the padding at the far end (a hole in between that reads as zeros), then the data.
    const s = opts.snapshot;
    await h.write(tarHeader('c.snar', s.length, new Date(0)), 0, BLOCK, end);
    await h.truncate(end + BLOCK + s.length + padding(s.length));
    await sleep(5);
    await h.write(s, 0, s.length, end + BLOCK);
    end += BLOCK + s.length + padding(s.length);
  }
  await h.close();
  journalComponent(dir, offset, attempt, { dataEnd, end });
  return end;
}

async function seal(end: number): Promise<number> {
  const fh = await open(artifact(), 'r+');
  await fh.truncate(end);
  await fh.write(END_OF_ARCHIVE, 0, END_OF_ARCHIVE.length, end);
  await fh.close();
  const size = end + END_OF_ARCHIVE.length;
  journalSealed(dir, size);
  return size;
}

async function follow(signal?: AbortSignal): Promise<{ bytes: number; sha256: string; early: number }> {
  const d = await new LocalSession('nas', { type: 'local', path: remote } as never).connect();
  const follower = new ArtifactFollower(dir, { pollMs: 2, ...(signal ? { signal } : {}) });
  let early = 0;
  try {
    const r = await d.stageFollowing(follower, { pending: 'a/.x.tar.tmp', final: 'a/x.tar' }, {
      ...(signal ? { signal } : {}),
      onProgress: (n) => { if (!readFileSync(path.join(dir, 'artifact.follow'), 'utf8').includes('"size"')) early = n; },
    });
    return { ...r, early };
  } finally {
    await follower.close();
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ArtifactFollower (the upload that follows the dump)', () => {
  it('sends every byte of a two-component artifact while it is written, headers last, and hashes it in order', async () => {
    const a = randomBytes(3 * 1024 * 1024 + 77);
    const b = randomBytes(1024 * 1024 + 5);
    const sent = follow();
    const endA = await dumpAttempt(0, '1-a', a, { snapshot: randomBytes(9000) });
    const size = await seal(await dumpAttempt(endA, '1-b', b));
    const r = await sent;
    const staged = readFileSync(artifact());
    expect(staged.length).toBe(size);
    expect(r.bytes).toBe(size);
    expect(readFileSync(path.join(remote, 'a/.x.tar.tmp')).equals(staged)).toBe(true);
    expect(r.sha256).toBe(sha(staged));
    // It really followed: most of the bytes went before archive sealed the artifact.
    expect(r.early).toBeGreaterThan(a.length / 2);
  });

  it('sends again what a retried dump replaced: the stored copy is the retry\'s, never a mix', async () => {
    const first = randomBytes(2 * 1024 * 1024);
    const retry = randomBytes(1024 * 1024 + 300);
    const sent = follow();
    await dumpAttempt(0, '1-a', first, { abandon: 1536 * 1024 });
    await sleep(30);
    const size = await seal(await dumpAttempt(0, '2-b', retry, { snapshot: randomBytes(700) }));
    const r = await sent;
    const staged = readFileSync(artifact());
    expect(readFileSync(path.join(remote, 'a/.x.tar.tmp')).equals(staged)).toBe(true);
    expect(r).toMatchObject({ bytes: size, sha256: sha(staged) });
  });

  it('an artifact sealed before the upload starts is sent in order', async () => {
    const size = await seal(await dumpAttempt(0, '1-a', randomBytes(500_000)));
    const r = await follow();
    const staged = readFileSync(artifact());
    expect(readFileSync(path.join(remote, 'a/.x.tar.tmp')).equals(staged)).toBe(true);
    expect(r).toMatchObject({ bytes: size, sha256: sha(staged) });
  });

  it('a journal that goes back (a finished component dumped again) fails the upload so that it starts again', async () => {
    const sent = follow();
    const end = await dumpAttempt(0, '1-a', randomBytes(200_000));
    await sleep(30);
    writeJournal(dir, { done: [], final: 0, open: { attempt: '2-x', streaming: false } });
    await expect(sent).rejects.toMatchObject({ code: 'ARCHIVE_FAILED', message: expect.stringMatching(/was rewritten from 0 bytes on/) });
    expect(end).toBeGreaterThan(0);
  });

  it('waits for a dump that has not begun, and stops when cancelled', async () => {
    const ac = new AbortController();
    const sent = follow(ac.signal);
    await sleep(50);
    ac.abort(new Error('cancelled by the test'));
    await expect(sent).rejects.toThrow(/cancelled by the test/);
  });

  it('a journal that cannot be written is a BackupError naming it', () => {
    expect(() => writeJournal(path.join(dir, 'gone'), { done: [], final: 0 })).toThrow(expect.objectContaining({ code: 'ARCHIVE_FAILED', message: expect.stringMatching(/cannot write the staging journal .*gone/) }));
  });

  it('refuses a staging journal written before the machine restarted', async () => {
    writeJournal(dir, { done: [], final: 0 });
    const j = JSON.parse(readFileSync(path.join(dir, 'artifact.follow'), 'utf8')) as Record<string, unknown>;
    writeFileSync(path.join(dir, 'artifact.follow'), JSON.stringify({ ...j, boot: 'another-boot' }));
    await expect(follow()).rejects.toMatchObject({ code: 'STAGING_LOST' });
  });
});
