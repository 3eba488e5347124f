import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { getJob, loadConfig } from '../config/load.js';
import { closeDestinations } from '../destinations/index.js';
import { overview } from '../monitor/overview.js';
import { renderReport } from '../monitor/report.js';
import { connectClient } from '../runtime/temporal.js';
import { EXIT } from './output.js';

/**
 * `backupctl report [--job J] [--out FILE]`: the HTML report of every job (or one), written to FILE (default
 * report.html; `-`: standard output). One self-contained file: it opens offline and can be mailed or archived.
 */
export async function reportCommand(opts: { config?: string; job?: string; out?: string }): Promise<number> {
  const { config } = loadConfig(opts.config);
  if (opts.job) getJob(config, opts.job);
  const { client } = await connectClient();
  try {
    const html = renderReport(await overview(config, client, opts.job));
    const out = opts.out ?? 'report.html';
    if (out === '-') process.stdout.write(html);
    else {
      writeFileSync(out, html);
      process.stderr.write(`report written to ${path.resolve(out)}\n`);
    }
    return EXIT.OK;
  } finally {
    await client.connection.close();
    await closeDestinations();
  }
}
