import { describe, expect, it } from 'vitest';
import type { Job } from '../../src/config/schema.js';
import type { RestoreArtifact } from '../../src/contracts/restore.js';
import { checkChainComponents } from '../../src/restore/components.js';

// The restore plan checks a chain's components against the job's configured sources before anything is fetched.

const job = {
  sources: [
    { name: 'app-files', type: 'files', paths: ['/srv/app'] },
    { name: 'shop-db', type: 'mysql', host: '127.0.0.1', port: 3306, user: 'backup', databases: ['shop'] },
    { name: 'mongo', type: 'command', command: ['mongodump', '--archive'], env: {}, extension: 'archive', compress: true },
  ],
} as unknown as Job;

function artifact(spoil: (c: RestoreArtifact['components']) => void = () => undefined): RestoreArtifact {
  const components: RestoreArtifact['components'] = [
    { name: 'app-files', type: 'files', member: 'app-files.tar.zst', size: 100, sha256: 'b'.repeat(64), stats: {}, snapshot: { member: 'app-files.snar', offset: 1024, size: 10, sha256: 'c'.repeat(64) } },
    { name: 'shop-db', type: 'mysql', member: 'shop-db.sql.zst', size: 100, sha256: 'd'.repeat(64), stats: { databases: 'shop' } },
    { name: 'mongo', type: 'command', member: 'mongo.archive.zst', size: 3, sha256: 'e'.repeat(64), stats: {} },
  ];
  spoil(components);
  return { path: 'daily/2025/11/04/0300/app-full-20251104T030000Z.tar', workflowId: 'w', type: 'full', slot: '2025-11-04T03:00:00Z', size: 10_240, sha256: 'a'.repeat(64), components };
}

describe('a restore chain\'s components against the job\'s sources', () => {
  it('accepts the components the job\'s sources write, and a backup of fewer sources than the job has now', () => {
    expect(() => checkChainComponents('app', job, [artifact()])).not.toThrow();
    expect(() => checkChainComponents('app', job, [artifact((c) => c.splice(1, 1))])).not.toThrow();
  });

  const cases: [string, (c: RestoreArtifact['components']) => void, RegExp][] = [
    ['a component name that climbs out', (c) => { c[0]!.name = '../../victim'; c[0]!.member = '../../victim.tar.zst'; }, /names a component "\.\.\/\.\.\/victim", which is not a name/],
    ['an absolute component name', (c) => { c[0]!.name = '/etc'; }, /names a component "\/etc"/],
    ['a component that is no source of the job', (c) => { c[0]!.name = 'victim'; c[0]!.member = 'victim.tar.zst'; }, /names a component "victim", which is no source of job app \(its sources: app-files, shop-db, mongo\)/],
    ['a type other than the source\'s', (c) => { c[1]!.type = 'files'; }, /says component "shop-db" is of type "files", but source "shop-db" of job app is of type mysql/],
    ['a member with a climb', (c) => { c[2]!.member = 'mongo.archive/../../../x'; }, /names the member "mongo\.archive\/\.\.\/\.\.\/\.\.\/x" for component "mongo", where source "mongo" writes mongo\.archive\.zst/],
    ['a member the source does not write', (c) => { c[1]!.member = 'shop-db.tar.zst'; }, /where source "shop-db" writes shop-db\.sql\.zst/],
    ['an absolute member', (c) => { c[2]!.member = '/etc/passwd'; }, /names the member "\/etc\/passwd"/],
    ['a snapshot member of another name', (c) => { c[0]!.snapshot!.member = '../x.snar'; }, /snapshot member "\.\.\/x\.snar"/],
    ['members beyond the artifact', (c) => { c[2]!.size = 1e9; }, /places members up to byte \d+, beyond the artifact's 10240 bytes/],
    ['a size that is no whole number', (c) => { c[2]!.size = 1.5; }, /not a whole number of bytes/],
  ];
  it.each(cases)('refuses %s, permanently, before anything is fetched', (_what, spoil, message) => {
    expect(() => checkChainComponents('app', job, [artifact(), artifact(spoil)])).toThrow(expect.objectContaining({
      code: 'RESTORE_FAILED', permanent: true, message: expect.stringMatching(message),
    }));
  });
});
