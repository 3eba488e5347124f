import path from 'node:path';
import { isSecretRef } from '../../config/fields.js';
import type { SourcePlugin } from '../types.js';
import { CommandSource } from './index.js';
import { commandSourceSchema } from './schema.js';

export const plugin: SourcePlugin<typeof commandSourceSchema> = {
  type: 'command',
  schema: commandSourceSchema,
  open: (cfg) => new CommandSource(cfg),
  secretRefs: (cfg) => Object.values(cfg.env).filter(isSecretRef),
  resolvePaths(cfg, abs) { if (cfg.cwd) cfg.cwd = abs(cfg.cwd); },
  restore: {
    /** Its output, decompressed when backupctl compressed it. */
    path: (_name, member) => path.join('commands', member.endsWith('.zst') ? member.slice(0, -4) : member),
    unpack: 'file',
  },
};
