import type { BackupType } from '../contracts/backup.js';
import { BackupError } from '../errors.js';
import { artifactName, checkName, manifestName, temporaryName } from './names.js';

const pad = (n: number) => String(n).padStart(2, '0');

/** The slot folder `<tier>/YYYY/MM/DD/HHMM` of a slot, in UTC (src/repository/walk.ts walks these). */
export function slotDir(tier: string, slot: Date): string {
  return `${tier}/${slot.getUTCFullYear()}/${pad(slot.getUTCMonth() + 1)}/${pad(slot.getUTCDate())}/${pad(slot.getUTCHours())}${pad(slot.getUTCMinutes())}`;
}

/** Remote layout: `<tier>/YYYY/MM/DD/HHMM/<job>-<type>-<YYYYMMDDTHHMMSSZ>.tar`, in UTC. */
export function layout(job: string, type: BackupType, tier: string, slot: Date, workflowId: string) {
  // Every part becomes a path segment on the destination: names of the grammar only (tier `../../etc` never leaves it).
  checkName('job', job);
  checkName('tier', tier);
  if (type !== 'full' && type !== 'diff') throw new BackupError('CONFIG_INVALID', `unknown backup type ${JSON.stringify(type)}: use "full" or "diff"`);
  if (Number.isNaN(slot.getTime())) throw new BackupError('CONFIG_INVALID', 'the slot is not a valid time');
  const dir = slotDir(tier, slot);
  const artifact = artifactName(job, type, slot);
  return {
    dir,
    artifactName: artifact,
    finalPath: `${dir}/${artifact}`,
    tempPath: `${dir}/${temporaryName(artifact, workflowId)}`,
    manifestPath: `${dir}/${manifestName(artifact)}`,
  };
}
