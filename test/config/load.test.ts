import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { minimalConfig, problems } from './support.js';



describe('config', () => {
  it('accepts a minimal config and fills in defaults', () => {
    const { config } = parseConfig(minimalConfig, '/etc/backupctl/backup.yml');
    expect(config.jobs.app!.tier).toBe('daily');
    expect(config.settings.retries).toBe(5);
    expect(config.settings.heartbeatTimeout).toBe(60_000);
    expect(config.stateDir).toBe('/etc/backupctl/.backupctl');
  });

  it('resolves relative paths against the config file', () => {
    const { config } = parseConfig(minimalConfig.replace('/srv/backups', 'backups').replace('/srv/app', 'data'), '/etc/backupctl/backup.yml');
    expect(config.destinations.nas).toMatchObject({ path: '/etc/backupctl/backups' });
    expect(config.jobs.app!.sources[0]).toMatchObject({ paths: ['/etc/backupctl/data'] });
  });

  it('signing: the key file and trusted key files are resolved against the config file; a trust entry that is no public key is refused with its line', () => {
    const { config } = parseConfig(`signing:\n  key: { file: keys/signing.key }\n  trust:\n    - ed25519:2-TiIoytUd9Qein27nkGfxt4OGlQvS4HEFpjCtaXHk4\n    - { file: old.pub }\n${minimalConfig}`, '/etc/backupctl/backup.yml');
    expect(config.signing).toEqual({ key: { file: '/etc/backupctl/keys/signing.key' }, trust: ['ed25519:2-TiIoytUd9Qein27nkGfxt4OGlQvS4HEFpjCtaXHk4', { file: '/etc/backupctl/old.pub' }] });
    expect(parseConfig(minimalConfig, '/etc/backupctl/backup.yml').config.signing).toEqual({ trust: [] });
    expect(problems(`signing:\n  trust:\n    - my-old-key\n${minimalConfig}`)).toEqual([{ line: 3, field: 'signing.trust[0]', message: expect.stringMatching(/expected a public key/) }]);
    expect(problems(`signing:\n  key: /etc/backupctl/signing.key\n${minimalConfig}`)[0]).toMatchObject({ line: 2, field: 'signing.key' });
  });

  it('names the line and field of a wrong type', () => {
    const p = problems(minimalConfig.replace('type: local\n    path: /srv/backups', 'type: local\n    path: 42'));
    expect(p).toEqual([expect.objectContaining({ line: 5, field: 'destinations.nas.path' })]);
    expect(p[0]!.message).toMatch(/string/);
  });

  it('takes every name that becomes a path segment (tier, job, source, destination) only of the name grammar', () => {
    const grammar = /expected a name of letters, digits.*without "\.\."/;
    // A record's key (a job or destination name) is reported as an invalid key of the record.
    const cases: [string, string, string, RegExp][] = [
      ['    destinations: [nas]', '    destinations: [nas]\n    tier: ../../../etc/cron.d', 'jobs.app.tier', grammar],
      ['    destinations: [nas]', '    destinations: [nas]\n    tier: a..b', 'jobs.app.tier', grammar],
      ['      - name: files', '      - name: ../x', 'jobs.app.sources[0].name', grammar],
      ['  app:', '  /abs:', 'jobs./abs', /Invalid key/],
      ['  nas:\n    type: local', '  ..:\n    type: local', 'destinations...', /Invalid key/],
    ];
    for (const [from, to, field, message] of cases) {
      const p = problems(minimalConfig.replace(from, to));
      expect(p, to).toContainEqual(expect.objectContaining({ field, message: expect.stringMatching(message) }));
    }
    expect(parseConfig(minimalConfig.replace('    destinations: [nas]', '    destinations: [nas]\n    tier: weekly.2', ), '/x/backup.yml').config.jobs.app!.tier).toBe('weekly.2');
  });

  it('names unknown fields', () => {
    const p = problems(minimalConfig.replace('    destinations: [nas]', '    destinations: [nas]\n    keepForever: 3'));
    expect(p[0]).toMatchObject({ line: 13, field: 'jobs.app' });
    expect(p[0]!.message).toMatch(/unknown field "keepForever"/);
  });

  it('reports YAML syntax errors with their line', () => {
    const p = problems('jobs:\n  app: [unclosed\n');
    expect(p[0]!.message).toMatch(/YAML syntax/);
    expect(p[0]!.line).toBeGreaterThanOrEqual(2);
  });

  it('refuses an sftp destination without host key checking', () => {
    const text = minimalConfig.replace('type: local\n    path: /srv/backups', 'type: sftp\n    host: nas\n    user: b\n    privateKey: /k\n    path: /b');
    const p = problems(text);
    expect(p[0]!.field).toBe('destinations.nas.hostKey');
    expect(p[0]!.message).toMatch(/host key checking cannot be turned off/);
  });

  it('refuses a malformed pinned fingerprint', () => {
    const text = minimalConfig.replace('type: local\n    path: /srv/backups', 'type: sftp\n    host: nas\n    user: b\n    privateKey: /k\n    path: /b\n    hostKey: md5:aa');
    expect(problems(text)[0]!.message).toMatch(/SHA256:/);
  });

  it('checks that jobs name defined destinations and notifiers', () => {
    const p = problems(minimalConfig.replace('destinations: [nas]', 'destinations: [nsa]\n    notify: [ops]'));
    expect(p.map((x) => x.field)).toEqual(['jobs.app.destinations[0]', 'jobs.app.notify[0]']);
    expect(p[0]!.line).toBe(12);
    expect(p[0]!.message).toMatch(/no destination named "nsa" \(defined: nas\)/);
  });

  it('refuses inline secrets: a password must be a reference', () => {
    const text = `${minimalConfig}notifiers:\n  ops:\n    type: email\n    host: smtp\n    from: a@b.c\n    to: [x@y.z]\n    password: hunter2\n`;
    const p = problems(text);
    expect(p[0]).toMatchObject({ field: 'notifiers.ops.password', line: 19 });
    expect(p[0]!.message).toMatch(/secret reference/);
  });

  it('parses durations and sizes', () => {
    const { config } = parseConfig(`${minimalConfig}settings:\n  heartbeatTimeout: 2m\n  notifyTimeout: 90\n`, '/x/backup.yml');
    expect(config.settings.heartbeatTimeout).toBe(120_000);
    expect(config.settings.notifyTimeout).toBe(90_000);
  });
});
