import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalSession } from '../../src/destinations/local/index.js';
import { LIST_MAX } from '../../src/destinations/limits.js';
import { SftpSession } from '../../src/destinations/sftp/index.js';
import { sftpDestinationSchema } from '../../src/destinations/sftp/schema.js';
import type { DestinationSession } from '../../src/destinations/types.js';
import { startSshd, type SshdHandle } from '../helpers/sshd.js';

// A listing is read page by page and counted (src/destinations/limits.ts, LIST_MAX): a folder of more entries than that
// is refused (a permanent DESTINATION_IO naming it) instead of being held in the worker's memory whole; one below it is
// listed whole, across SFTP's pages of about 100 names. The folders are on /dev/shm (hard links to one empty file, so
// that 200,001 entries cost little), which the SFTP account reads by its absolute path; S3 has its own test of the cap.

let root: string;
let sshd: SshdHandle;
const sessions: { name: string; open: () => Promise<DestinationSession & { close(): void }> }[] = [
  { name: 'local', open: () => new LocalSession('nas', { type: 'local', path: root } as never).connect() },
  {
    name: 'sftp',
    open: () => new SftpSession('nas', sftpDestinationSchema.parse({
      type: 'sftp', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyPath, hostKey: sshd.hostKeyFingerprint, path: root,
    })).connect(),
  },
];

beforeAll(async () => {
  root = mkdtempSync('/dev/shm/backupctl-listing-');
  const one = path.join(root, 'one');
  writeFileSync(one, '');
  for (const [dir, n] of [['mid', 1_000], ['big', LIST_MAX + 1]] as const) {
    mkdirSync(path.join(root, dir));
    for (let i = 0; i < n; i++) linkSync(one, path.join(root, dir, `f${i}`));
  }
  sshd = await startSshd();
}, 180_000);
afterAll(async () => {
  await sshd?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.each(sessions)('listing a folder: $name', ({ open }) => {
  it('1,000 entries are listed whole', async () => {
    const d = await open();
    try {
      const names = (await d.list('mid'))!.map((e) => e.name).sort();
      expect(names).toHaveLength(1_000);
      expect(new Set(names).size).toBe(1_000);
      expect(names).toContain('f999');
    } finally {
      d.close();
    }
  });

  it(`more than ${LIST_MAX} entries are refused, naming the folder`, async () => {
    const d = await open();
    try {
      await expect(d.list('big')).rejects.toMatchObject({ code: 'DESTINATION_IO', permanent: true, message: expect.stringMatching(new RegExp(`more than ${LIST_MAX} entries under big; refused`)) });
    } finally {
      d.close();
    }
  }, 120_000);
});
