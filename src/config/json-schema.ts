/**
 * The config's JSON Schema, for editors (`# yaml-language-server: $schema=…` in backup.yml) and other tools: generated
 * from the zod schema (src/config/schema.ts) with zod's `z.toJSONSchema`, as the input side (what a person writes:
 * `30s`, `2GiB`), with each field's description and examples. Checks zod expresses in code (exactly one of two
 * fields, names of the name grammar, references between sections) are left out: `backupctl config check` makes them.
 * `backupctl config schema` prints it; schema/backup.schema.json is this output, kept up to date by a test.
 */
import { z } from 'zod';
import { Config } from './schema.js';

/** Where the committed copy lives, relative to the repository (and the installed package). */
export const CONFIG_SCHEMA_PATH = 'schema/backup.schema.json';

export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(Config, {
    io: 'input',
    // refinements and transforms have no JSON Schema form: the input's shape is what remains
    unrepresentable: 'any',
    override: (ctx) => {
      // zod leaves examples out where the field's input differs from its output (a duration, a size): they are written
      // as input here, so they belong in the input's schema.
      const meta = z.globalRegistry.get(ctx.zodSchema);
      if (meta?.examples !== undefined && ctx.jsonSchema.examples === undefined) ctx.jsonSchema.examples = meta.examples as unknown[];
    },
  }) as Record<string, unknown>;
  const { $schema, ...rest } = schema;
  return { $schema, title: 'backupctl configuration (backup.yml)', ...rest };
}

/** The schema file's text: what `backupctl config schema` prints. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
