import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { minimalConfig, problems } from './support.js';

// Issue 14: a typo in a drill.servers key used to be accepted silently, and the drill then loaded into production.

/** The minimal config with a MariaDB source `shop-db` beside its files source, and `drill` appended to the job. */
const config = (drill: string) => `${minimalConfig.replace('    destinations: [nas]\n', `      - name: shop-db
        type: mysql
        host: db.internal
        user: backup
    destinations: [nas]
`)}${drill}`;

describe('drill servers', () => {
  it('defaults: no servers, and the source\'s own server is not allowed', () => {
    const { config: c } = parseConfig(config(''), '/etc/backupctl/backup.yml');
    expect(c.jobs.app!.drill).toMatchObject({ servers: {}, allowSourceServer: false });
    const { config: own } = parseConfig(config('    drill:\n      allowSourceServer: true\n'), '/etc/backupctl/backup.yml');
    expect(own.jobs.app!.drill.allowSourceServer).toBe(true);
  });

  it('a key naming a database source of the job is accepted', () => {
    const { config: c } = parseConfig(config('    drill:\n      servers:\n        shop-db: { host: 127.0.0.1, port: 3307, user: drill }\n'), '/etc/backupctl/backup.yml');
    expect(c.jobs.app!.drill.servers['shop-db']).toMatchObject({ host: '127.0.0.1', port: 3307, user: 'drill' });
  });

  it('a key that is a typo, or names a source without databases, is a config error naming the field', () => {
    const typo = problems(config('    drill:\n      servers:\n        shopdb: { host: 127.0.0.1, port: 3307 }\n'));
    expect(typo).toEqual([expect.objectContaining({ field: 'jobs.app.drill.servers.shopdb' })]);
    expect(typo[0]!.message).toBe('"shopdb" is not a database source of this job (database sources: shop-db)');
    const files = problems(config('    drill:\n      servers:\n        files: { host: 127.0.0.1 }\n'));
    expect(files[0]!.message).toMatch(/"files" is not a database source of this job/);
  });
});
