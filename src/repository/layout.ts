import type { BackupType } from '../contracts/backup.js';
import { artifactName, manifestName, temporaryName } from './names.js';

const pad = (n: number) => String(n).padStart(2, '0');

/** The slot folder `<tier>/YYYY/MM/DD/HHMM` of a slot, in UTC (src/repository/walk.ts walks these). */
export function slotDir(tier: string, slot: Date): string {
  return `${tier}/${slot.getUTCFullYear()}/${pad(slot.getUTCMonth() + 1)}/${pad(slot.getUTCDate())}/${pad(slot.getUTCHours())}${pad(slot.getUTCMinutes())}`;
}

/** Remote layout: `<tier>/YYYY/MM/DD/HHMM/<job>-<type>-<YYYYMMDDTHHMMSSZ>.tar`, in UTC. */
export function layout(job: string, type: BackupType, tier: string, slot: Date, workflowId: string) {
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
