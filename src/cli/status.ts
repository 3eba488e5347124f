import { loadConfig } from '../config/load.js';
import { closeDestinations } from '../destinations/index.js';
import { anyJobStatus } from '../monitor/pgbackrest.js';
import { renderStatus } from '../monitor/status.js';
import { connectClient } from '../runtime/temporal.js';
import { EXIT } from './output.js';

/** `backupctl status [--json]`: per job newest backups, running run, schedules and health. Exit 1 unless all ok. */
export async function statusCommand(opts: { config?: string; json?: boolean; job?: string }): Promise<number> {
  const { config } = loadConfig(opts.config);
  const { client } = await connectClient();
  try {
    const names = opts.job ? [opts.job] : [...Object.keys(config.jobs), ...Object.keys(config.pgbackrest)];
    const all = [];
    for (const name of names) all.push(await anyJobStatus(config, client, name));
    if (opts.json) process.stdout.write(`${JSON.stringify({ checkedAt: new Date().toISOString(), jobs: all }, null, 2)}\n`);
    else process.stdout.write(`${all.map(renderStatus).join('\n\n')}\n`);
    return all.every((s) => s.health === 'ok') ? EXIT.OK : all.some((s) => s.health === 'stale' || s.health === 'failing') ? EXIT.FAILED : EXIT.WARNINGS;
  } finally {
    await client.connection.close();
    await closeDestinations();
  }
}
