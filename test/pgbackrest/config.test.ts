import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseConfig } from '../../src/config/load.js';
import { PgbackrestDrill, PgbackrestJob } from '../../src/config/schema.js';
import { desiredSchedules, drillScheduleId, scheduleId } from '../../src/schedules/index.js';
import { PGBACKREST_DRILL_WORKFLOW, PGBACKREST_WORKFLOW } from '../../src/contracts/pgbackrest.js';
import { pgbackrestArgs } from '../../src/pgbackrest/cli.js';
import { minimalConfig, problems } from '../config/support.js';

const pgJob = `
  db:
    kind: pgbackrest
    stanza: main
    configFile: pgbackrest.conf
    repo: 2
    notify: [ops]
    schedules:
      - { name: full, type: full, cron: '0 11 * * *' }
      - { name: diff, type: diff, cron: '0 5,17,23 * * *' }
    drill: { check: { sql: 'SELECT count(*) FROM orders', database: shop } }
`;
const notifiers = `
notifiers:
  ops: { type: webhook, url: 'https://hooks.example.test/x' }
`;

describe('kind: pgbackrest jobs', () => {
  it('are parsed beside backupctl\'s own jobs, scheduled with their own workflow, paths resolved', () => {
    const { config } = parseConfig(`${minimalConfig}${pgJob}${notifiers}`, '/etc/backupctl/backup.yml');
    expect(Object.keys(config.jobs)).toEqual(['app']);
    expect(config.jobs.app).not.toHaveProperty('kind');
    const db = config.pgbackrest.db!;
    expect(db).toMatchObject({ stanza: 'main', configFile: '/etc/backupctl/pgbackrest.conf', repo: 2, pgbackrest: 'pgbackrest', lockWait: 7_200_000 });
    expect(db.freshness).toEqual({ full: 25 * 3_600_000, diff: 7 * 3_600_000, wal: 3_600_000 });
    expect(db.drill).toMatchObject({ target: 'immediate', check: { sql: 'SELECT count(*) FROM orders', database: 'shop' } });
    const schedules = desiredSchedules(config);
    // IDs carry the config's deployment (issue 18): backupctl:<deployment>:<job>:<schedule>.
    expect(scheduleId(config, 'db', db.schedules[0]!, 0)).toMatch(/^backupctl:backup-[0-9a-f]{8}:db:full$/);
    const full = schedules.find((s) => s.id === scheduleId(config, 'db', db.schedules[0]!, 0))!;
    expect(full.options.action).toMatchObject({ workflowType: PGBACKREST_WORKFLOW, args: [{ job: 'db', type: 'full' }], workflowId: `backup:${config.temporal.deployment}:db:full` });
    expect(schedules.find((s) => s.id === scheduleId(config, 'db', db.schedules[1]!, 1))!.options.action).toMatchObject({ workflowType: PGBACKREST_WORKFLOW, args: [{ job: 'db', type: 'diff' }] });
    expect(schedules.find((s) => s.id === drillScheduleId(config, 'db'))!.options.action).toMatchObject({ workflowType: PGBACKREST_DRILL_WORKFLOW });
    // --repo goes to the commands that take it; check looks at every repository.
    expect(pgbackrestArgs(db, 'backup', ['--type=diff'])).toEqual(['--config=/etc/backupctl/pgbackrest.conf', '--stanza=main', '--repo=2', '--log-level-console=warn', '--log-level-stderr=warn', '--type=diff', 'backup']);
    expect(pgbackrestArgs(db, 'check')).not.toContain('--repo=2');
  });

  it('refuses an unknown kind, a missing stanza, an unknown field and an unknown notifier, with lines', () => {
    expect(problems(`${minimalConfig}  db:\n    kind: barman\n`)).toEqual([{ line: 14, field: 'jobs.db.kind', message: expect.stringMatching(/unknown job kind "barman"/) }]);
    expect(problems(`${minimalConfig}  db:\n    kind: pgbackrest\n`)).toEqual([{ line: 14, field: 'jobs.db.stanza', message: expect.stringMatching(/expected string/) }]);
    expect(problems(`${minimalConfig}  db:\n    kind: pgbackrest\n    stanza: main\n    sources: []\n`)[0]).toMatchObject({ line: 16, message: 'unknown field "sources"' });
    expect(problems(`${minimalConfig}${pgJob}`)).toEqual([{ line: 19, field: 'jobs.db.notify[0]', message: expect.stringMatching(/no notifier named "ops"/) }]);
  });

  it('describes every field with an example that parses', () => {
    const walk = (schema: z.ZodObject, prefix: string) => {
      for (const [name, field] of Object.entries(schema.shape) as [string, z.ZodType][]) {
        const meta = field.meta();
        expect(meta?.description, `${prefix}${name}`).toMatch(/\w{3}/);
        const examples = meta?.examples as unknown[] | undefined;
        expect(examples?.length, `${prefix}${name}: examples`).toBeGreaterThan(0);
        for (const e of examples!) expect(field.safeParse(e).success, `${prefix}${name}: ${JSON.stringify(e)}`).toBe(true);
      }
    };
    walk(PgbackrestJob as unknown as z.ZodObject, '');
    walk(PgbackrestDrill as unknown as z.ZodObject, 'drill.');
  });
});
