import { loadConfig } from '../config/load.js';
import { closeDestinations, withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { createNotifier } from '../notifiers/index.js';
import { createSource } from '../sources/index.js';
import { EXIT } from './output.js';

/**
 * Validates the config, then checks everything a run will touch, without backing up: sources readable,
 * each destination reachable (host key checked), writable, with its free space, and each notifier's server.
 */
export async function configCheckCommand(opts: { config?: string }): Promise<number> {
  const { file, config } = loadConfig(opts.config);
  process.stdout.write(`config ${file}: valid (${Object.keys(config.jobs).length} job(s))\n`);
  let failures = 0;
  const check = async (what: string, fn: () => Promise<string>) => {
    try {
      process.stdout.write(`ok    ${what}: ${await fn()}\n`);
    } catch (err) {
      failures++;
      process.stdout.write(`FAIL  ${what}: ${errorMessage(err).replace(/\n/g, '\n      ')}\n`);
    }
  };
  for (const [name, job] of Object.entries(config.jobs)) {
    for (const s of job.sources) await check(`job ${name} source ${s.name}`, () => createSource(s).check());
  }
  for (const name of Object.keys(config.destinations)) {
    await check(`destination ${name}`, () => withDestination(config, name, async (d) => {
      await d.checkWritable();
      const free = await d.freeBytes();
      return `${d.location} reachable, writable, ${free === undefined ? 'free space unknown' : `${formatBytes(free)} free`}`;
    }));
  }
  for (const name of Object.keys(config.notifiers)) await check(`notifier ${name}`, () => createNotifier(config, name).check());
  await closeDestinations();
  return failures > 0 ? EXIT.FAILED : EXIT.OK;
}
