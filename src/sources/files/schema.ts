import { z } from 'zod';
import { Name, pluginType } from '../../config/fields.js';

/** A `files` source: directories and files on the worker, archived with GNU tar. */
export const filesSourceSchema = z.strictObject({
  type: pluginType('files', 'source'),
  name: Name.meta({ description: 'name of the source, unique within its job; names the component in the artifact', examples: ['app-data'] }),
  paths: z.array(z.string().min(1)).min(1, { error: 'expected at least one path' })
    .meta({ description: 'files and directories to back up (relative paths: to the config file)', examples: [['/srv/app/uploads', '/etc/app']] }),
  exclude: z.array(z.string().min(1)).default([])
    .meta({ description: 'GNU tar --exclude patterns: an absolute one (/srv/app/cache) matches from the root only, any other (*.tmp) at any depth', examples: [['*.tmp', '/srv/app/uploads/cache']] }),
  /** GNU tar exit 1 ("file changed as we read it") is a warning unless this is true. */
  failOnChangedFiles: z.boolean().default(false)
    .meta({ description: 'fail the run when a file changed while it was read (tar exit 1), instead of a warning', examples: [false] }),
});
export type FilesSourceConfig = z.infer<typeof filesSourceSchema>;
