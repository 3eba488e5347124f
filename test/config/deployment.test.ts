import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { defaultDeployment, parseConfig, workerQueues } from '../../src/config/load.js';

const config = (extra: Record<string, unknown> = {}, file = '/etc/backupctl/backup.yml') => parseConfig(stringify({
  destinations: { nas: { type: 'local', path: '/tmp' } },
  jobs: {
    db: { taskQueue: 'backupctl-db01', sources: [{ name: 'f', type: 'files', paths: ['/tmp'] }], destinations: ['nas'] },
    web: { taskQueue: 'backupctl-web01', sources: [{ name: 'f', type: 'files', paths: ['/tmp'] }], destinations: ['nas'] },
    misc: { sources: [{ name: 'f', type: 'files', paths: ['/tmp'] }], destinations: ['nas'] },
  },
  ...extra,
}), file).config;

describe('deployment name', () => {
  it('defaults to the config file\'s name and a hash of its absolute path: stable for one path, different for another', () => {
    expect(config().temporal.deployment).toMatch(/^backup-[0-9a-f]{8}$/);
    expect(config().temporal.deployment).toBe(defaultDeployment('/etc/backupctl/backup.yml'));
    expect(config({}, '/srv/other/backup.yml').temporal.deployment).not.toBe(config().temporal.deployment);
  });

  it('is taken from temporal.deployment when set, and must be a name', () => {
    expect(config({ temporal: { deployment: 'prod-eu' } }).temporal.deployment).toBe('prod-eu');
    expect(() => config({ temporal: { deployment: 'a:b' } })).toThrow(/temporal\.deployment/);
  });
});

describe('the queues a worker polls', () => {
  it('default: every job\'s queue; worker.queues limits them; --queue overrides both', () => {
    expect(workerQueues(config()).sort()).toEqual(['backupctl', 'backupctl-db01', 'backupctl-web01']);
    expect(workerQueues(config({ worker: { queues: ['backupctl-db01'] } }))).toEqual(['backupctl-db01']);
    expect(workerQueues(config({ worker: { queues: ['backupctl-db01'] } }), ['backupctl-web01', 'backupctl-web01'])).toEqual(['backupctl-web01']);
  });

  it('refuses a queue the config does not use', () => {
    expect(() => workerQueues(config(), ['backupctl-db02'])).toThrow(/task queue "backupctl-db02" is not used by this config/);
    expect(() => workerQueues(config({ worker: { queues: ['nope'] } }))).toThrow(/"nope"/);
  });
});
