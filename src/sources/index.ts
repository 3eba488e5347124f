import type { Source as SourceConfig } from '../config/schema.js';
import { CommandSource } from './command/index.js';
import { FilesSource } from './files/index.js';
import { MysqlSource } from './mysql/index.js';
import { PostgresSource } from './postgres/index.js';
import type { Source } from './types.js';

export type { Source, DumpContext, DumpOutcome } from './types.js';

export function createSource(cfg: SourceConfig): Source {
  switch (cfg.type) {
    case 'files':
      return new FilesSource(cfg);
    case 'mysql':
      return new MysqlSource(cfg);
    case 'postgres':
      return new PostgresSource(cfg);
    case 'command':
      return new CommandSource(cfg);
  }
}
