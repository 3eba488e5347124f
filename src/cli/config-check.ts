import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { jobEncryption, resolveRecipients } from '../config/encryption.js';
import { loadConfig } from '../config/load.js';
import { closeDestinations, withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { runCapture } from '../lib/process.js';
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
    const enc = jobEncryption(config, job);
    if (enc) {
      await check(`job ${name} encryption`, async () => {
        const recipients = resolveRecipients(enc);
        const v = await runCapture('age', ['--version']).catch((err: unknown) => { throw new Error(`the age tool cannot be started (${errorMessage(err)}): install age (Debian: apt-get install age)`); });
        return `age ${v.stdout.trim()}, to ${recipients.length} recipient(s): ${recipients.join(', ')}`;
      });
    }
    if (job.drill.identity) {
      const file = job.drill.identity.file;
      await check(`job ${name} drill.identity`, async () => {
        await access(file, constants.R_OK);
        return `${file} readable (used by drills only)`;
      });
    }
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
