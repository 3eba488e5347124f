import { BackupError } from '../errors.js';
import type { DestinationSession } from './types.js';

/**
 * `checkWritable` of every destination: a small probe written under the root, read back and removed. `where` names
 * the destination in the error, `noun` what the probe is there (a file, an object).
 */
export async function probeWritable(d: Pick<DestinationSession, 'writeSmallFile' | 'readSmallFile' | 'remove'>, where: string, noun = 'file'): Promise<void> {
  const probe = `.backupctl-probe-${process.pid}-${Date.now()}`;
  await d.writeSmallFile(probe, Buffer.from('probe'));
  const back = await d.readSmallFile(probe);
  await d.remove(probe);
  if (back?.toString() !== 'probe') throw new BackupError('DESTINATION_IO', `${where}: a probe ${noun} read back differently`);
}
