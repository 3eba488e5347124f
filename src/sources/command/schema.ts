import { z } from 'zod';
import { ByteSize, EnvName, MinSize, Name, SecretRef, pluginType } from '../../config/fields.js';

/** A `command` source: any program whose standard output is the dump. */
export const commandSourceSchema = z.strictObject({
  type: pluginType('command', 'source'),
  name: Name.meta({ description: 'name of the source, unique within its job; names the component in the artifact', examples: ['mongo'] }),
  /** Program and arguments, run without a shell; its stdout is the dump. */
  command: z.array(z.string().min(1)).min(1, { error: 'expected the program and its arguments, e.g. [mongodump, --archive]' })
    .meta({ description: 'program and arguments, run without a shell; its standard output is the dump', examples: [['mongodump', '--archive']] }),
  /** Added to the worker's environment; values are strings or secret references. */
  env: z.record(EnvName, z.union([z.string(), SecretRef])).default({})
    .meta({ description: 'the command\'s environment besides PATH, HOME, LANG, LC_* and TZ (nothing else of the worker\'s is passed); a value may be a secret reference', examples: [{ MONGODB_URI: { env: 'MONGO_URI' }, TZ: 'UTC' }] }),
  cwd: z.string().min(1).optional().meta({ description: 'working directory of the command', examples: ['/srv/app'] }),
  /** Extension of the command's output, e.g. `archive.gz`; `.zst` is appended when compressed. */
  extension: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/, { error: 'expected an extension such as archive or rdb' }).default('bin')
    .meta({ description: 'extension of the output in the artifact; .zst is appended when compressed', examples: ['archive'] }),
  /** Compress the output with zstd; false for output that is already compressed. */
  compress: z.boolean().default(true)
    .meta({ description: 'compress the output with zstd; false for output that is compressed already', examples: [true] }),
  minSize: MinSize.meta({ description: 'smallest acceptable output (before compression); 0 bytes always fails', examples: ['1KB'] }),
  /** Expected size of a dump, for the space check before a run (the command's size cannot be known in advance). */
  estimatedSize: ByteSize.optional()
    .meta({ description: 'expected size of a dump, for the space check before a run', examples: ['2GiB'] }),
  /** Run by `config check`, e.g. `[mongodump, --version]`; the first line of its output is reported. */
  checkCommand: z.array(z.string().min(1)).min(1).optional()
    .meta({ description: 'run by config check; the first line of its output is reported', examples: [['mongodump', '--version']] }),
});
export type CommandSourceConfig = z.infer<typeof commandSourceSchema>;
