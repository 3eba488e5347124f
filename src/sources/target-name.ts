import { BackupError } from '../errors.js';

/** Target database names backupctl creates: plain identifiers only, so that they need no quoting rules. */
export const TARGET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function checkTargetName(target: string): void {
  if (!TARGET_NAME.test(target)) throw new BackupError('CONFIG_INVALID', `target database "${target}": use letters, digits and "_" (at most 63, not starting with a digit)`);
}
