import type { Source as SourceConfig } from '../config/schema.js';
import { FilesSource } from './files/index.js';
import type { Source } from './types.js';

export type { Source, DumpContext, DumpOutcome } from './types.js';

export function createSource(cfg: SourceConfig): Source {
  switch (cfg.type) {
    case 'files':
      return new FilesSource(cfg);
  }
}
