/**
 * The name grammar: what a name that becomes a path segment may be (job, source, destination, notifier and tier
 * names; component names and types read back from a manifest). Letters, digits, `.`, `_` and `-`, starting with a
 * letter or digit, at most 63 characters, and never `..` (so never `.`, `..`, a slash or an absolute path). Defined
 * once here, Node-free, because the workflow checks its input with it too; the config schema (src/config/fields.ts)
 * and src/repository/names.ts use it.
 */

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The grammar in words, for error messages. */
export const NAME_RULE = 'letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63 characters, without ".."';

/** Whether `v` is a name of the grammar. */
export function isName(v: unknown): v is string {
  return typeof v === 'string' && NAME_PATTERN.test(v) && !v.includes('..');
}
