/**
 * Path containment: the one check that a path built from untrusted data (a destination's manifest, a config name)
 * stays inside its root. By `path.relative`, never by a string prefix (which takes `/mnt/nas/backups-other` for a
 * folder inside `/mnt/nas/backups`).
 */
import path from 'node:path';
import { BackupError } from '../errors.js';

/** Whether `target` is `root` itself or lies below it (both resolved; no file system access). */
export function isInside(root: string, target: string, p: typeof path.posix | typeof path = path): boolean {
  const rel = p.relative(p.resolve(root), p.resolve(root, target));
  return rel === '' || (!p.isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${p.sep}`));
}

/**
 * `root` joined with the relative path `rel`, refused (a permanent RESTORE_FAILED, or `code`) unless `rel` is
 * relative, has no `..` segment and the result lies inside `root`. `what` names the path in the message.
 */
export function insideRoot(root: string, rel: string, what = 'path', p: typeof path.posix | typeof path = path): string {
  if (typeof rel !== 'string' || rel === '' || rel.includes('\0') || p.isAbsolute(rel) || rel.split(/[\\/]+/).includes('..') || !isInside(root, rel, p)) {
    throw new BackupError('RESTORE_FAILED', `${what} ${JSON.stringify(rel)} would leave ${root}; refused before anything was written`, {
      permanent: true, hint: 'the backup\'s manifest names a path outside its place: it was altered, do not restore it',
    });
  }
  return p.join(root, rel);
}
