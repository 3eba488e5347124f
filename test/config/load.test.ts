import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const base = `
destinations:
  nas:
    type: local
    path: /srv/backups
jobs:
  app:
    sources:
      - name: files
        type: files
        paths: [/srv/app]
    destinations: [nas]
`;

function problems(text: string) {
  try {
    parseConfig(text, '/etc/backupctl/backup.yml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('accepts a minimal config and fills in defaults', () => {
    const { config } = parseConfig(base, '/etc/backupctl/backup.yml');
    expect(config.jobs.app!.tier).toBe('daily');
    expect(config.settings.retries).toBe(5);
    expect(config.settings.heartbeatTimeout).toBe(60_000);
    expect(config.stateDir).toBe('/etc/backupctl/.backupctl');
  });

  it('resolves relative paths against the config file', () => {
    const { config } = parseConfig(base.replace('/srv/backups', 'backups').replace('/srv/app', 'data'), '/etc/backupctl/backup.yml');
    expect(config.destinations.nas).toMatchObject({ path: '/etc/backupctl/backups' });
    expect(config.jobs.app!.sources[0]).toMatchObject({ paths: ['/etc/backupctl/data'] });
  });

  it('signing: the key file and trusted key files are resolved against the config file; a trust entry that is no public key is refused with its line', () => {
    const { config } = parseConfig(`signing:\n  key: { file: keys/signing.key }\n  trust:\n    - ed25519:2-TiIoytUd9Qein27nkGfxt4OGlQvS4HEFpjCtaXHk4\n    - { file: old.pub }\n${base}`, '/etc/backupctl/backup.yml');
    expect(config.signing).toEqual({ key: { file: '/etc/backupctl/keys/signing.key' }, trust: ['ed25519:2-TiIoytUd9Qein27nkGfxt4OGlQvS4HEFpjCtaXHk4', { file: '/etc/backupctl/old.pub' }] });
    expect(parseConfig(base, '/etc/backupctl/backup.yml').config.signing).toEqual({ trust: [] });
    expect(problems(`signing:\n  trust:\n    - my-old-key\n${base}`)).toEqual([{ line: 3, field: 'signing.trust[0]', message: expect.stringMatching(/expected a public key/) }]);
    expect(problems(`signing:\n  key: /etc/backupctl/signing.key\n${base}`)[0]).toMatchObject({ line: 2, field: 'signing.key' });
  });

  it('names the line and field of a wrong type', () => {
    const p = problems(base.replace('type: local\n    path: /srv/backups', 'type: local\n    path: 42'));
    expect(p).toEqual([expect.objectContaining({ line: 5, field: 'destinations.nas.path' })]);
    expect(p[0]!.message).toMatch(/string/);
  });

  it('names unknown fields', () => {
    const p = problems(base.replace('    destinations: [nas]', '    destinations: [nas]\n    keepForever: 3'));
    expect(p[0]).toMatchObject({ line: 13, field: 'jobs.app' });
    expect(p[0]!.message).toMatch(/unknown field "keepForever"/);
  });

  it('reports YAML syntax errors with their line', () => {
    const p = problems('jobs:\n  app: [unclosed\n');
    expect(p[0]!.message).toMatch(/YAML syntax/);
    expect(p[0]!.line).toBeGreaterThanOrEqual(2);
  });

  it('refuses an sftp destination without host key checking', () => {
    const text = base.replace('type: local\n    path: /srv/backups', 'type: sftp\n    host: nas\n    user: b\n    privateKey: /k\n    path: /b');
    const p = problems(text);
    expect(p[0]!.field).toBe('destinations.nas.hostKey');
    expect(p[0]!.message).toMatch(/host key checking cannot be turned off/);
  });

  it('refuses a malformed pinned fingerprint', () => {
    const text = base.replace('type: local\n    path: /srv/backups', 'type: sftp\n    host: nas\n    user: b\n    privateKey: /k\n    path: /b\n    hostKey: md5:aa');
    expect(problems(text)[0]!.message).toMatch(/SHA256:/);
  });

  it('checks that jobs name defined destinations and notifiers', () => {
    const p = problems(base.replace('destinations: [nas]', 'destinations: [nsa]\n    notify: [ops]'));
    expect(p.map((x) => x.field)).toEqual(['jobs.app.destinations[0]', 'jobs.app.notify[0]']);
    expect(p[0]!.line).toBe(12);
    expect(p[0]!.message).toMatch(/no destination named "nsa" \(defined: nas\)/);
  });

  it('refuses inline secrets: a password must be a reference', () => {
    const text = `${base}notifiers:\n  ops:\n    type: email\n    host: smtp\n    from: a@b.c\n    to: [x@y.z]\n    password: hunter2\n`;
    const p = problems(text);
    expect(p[0]).toMatchObject({ field: 'notifiers.ops.password', line: 19 });
    expect(p[0]!.message).toMatch(/secret reference/);
  });

  it('parses durations and sizes', () => {
    const { config } = parseConfig(`${base}settings:\n  heartbeatTimeout: 2m\n  notifyTimeout: 90\n`, '/x/backup.yml');
    expect(config.settings.heartbeatTimeout).toBe(120_000);
    expect(config.settings.notifyTimeout).toBe(90_000);
  });
});
