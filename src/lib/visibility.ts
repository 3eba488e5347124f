/** A value inside the double quotes of a Temporal visibility query (`BackupJob="…"`). */
export function escapeQuery(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}
