import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { desiredSchedules } from '../../src/schedules/index.js';
import { DRILL_WORKFLOW } from '../../src/contracts/index.js';

const config = (drill?: Record<string, unknown>, schedules: unknown[] = [{ type: 'full', cron: '0 3 * * *' }]) => parseConfig(stringify({
  destinations: { nas: { type: 'local', path: '/tmp' } },
  jobs: { app: { sources: [{ name: 'f', type: 'files', paths: ['/tmp'] }], destinations: ['nas'], schedules, ...(drill ? { drill } : {}) } },
}), '/etc/backup.yml').config;

// Schedule IDs carry the config's deployment (default: the file's name and a hash of its path).
const DRILL_ID = `backupctl:${config().temporal.deployment}:app:drill`;

describe('restore drill schedule', () => {
  it('is weekly by default for a job with backup schedules, starting drillWorkflow on the job\'s queue', () => {
    const d = desiredSchedules(config()).find((s) => s.id === DRILL_ID);
    expect(d?.options.spec).toEqual({ cronExpressions: ['0 5 * * 0'], timezone: 'UTC' });
    expect(d?.options.action).toMatchObject({ workflowType: DRILL_WORKFLOW, workflowId: `drill:${config().temporal.deployment}:app`, args: [{ job: 'app' }], taskQueue: 'backupctl' });
  });

  it('follows drill.cron, and is absent with drill.enabled: false or without backup schedules', () => {
    expect(desiredSchedules(config({ cron: '30 4 * * 6', timezone: 'Europe/Berlin' })).find((s) => s.id === DRILL_ID)?.options.spec)
      .toEqual({ cronExpressions: ['30 4 * * 6'], timezone: 'Europe/Berlin' });
    expect(desiredSchedules(config({ enabled: false })).map((s) => s.id)).not.toContain(DRILL_ID);
    expect(desiredSchedules(config(undefined, [])).map((s) => s.id)).not.toContain(DRILL_ID);
  });
});
