import { z } from 'zod';
import { pluginType } from '../../config/fields.js';

/** A `local` destination: a directory on the worker (a local disk, a mounted NAS share). */
export const localDestinationSchema = z.strictObject({
  type: pluginType('local', 'destination'),
  path: z.string().min(1).meta({ description: 'a directory, for example a mounted NAS share (relative paths: to the config file)', examples: ['/mnt/nas/backups'] }),
});
export type LocalDestinationConfig = z.infer<typeof localDestinationSchema>;
