import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** deploy/prometheus/alerts.yml: valid rules, and their unit tests (alerts.test.yml) pass. */
const promtool = (...args: string[]) => spawnSync('promtool', args, { cwd: 'deploy/prometheus', encoding: 'utf8' });

describe('Prometheus alert rules', () => {
  it('promtool check rules', () => {
    const r = promtool('check', 'rules', 'alerts.yml');
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: 6 rules found/);
    expect(r.status).toBe(0);
  });

  it('promtool test rules (backup too old, a destination behind, job failing, drill failed or too old, destination unreadable)', () => {
    const r = promtool('test', 'rules', 'alerts.test.yml');
    expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });
});
