import path from 'node:path';
import { insideRoot } from '../../lib/paths.js';
import type { SourcePlugin } from '../types.js';
import { mysqlDatabases } from './component.js';
import { MysqlSource } from './index.js';
import { dropMysql, loadMysql } from './restore.js';
import { startScratchMariadb } from './scratch-server.js';
import { mysqlSourceSchema, type MysqlSourceConfig } from './schema.js';

/** mysql source: one SQL file. */
const restorePath = (name: string) => path.join('databases', `${name}.sql`);

export const plugin: SourcePlugin<typeof mysqlSourceSchema> = {
  type: 'mysql',
  schema: mysqlSourceSchema,
  open: (cfg) => new MysqlSource(cfg),
  secretRefs: (cfg) => (cfg.password ? [cfg.password] : []),
  resolvePaths(cfg, abs) { if (cfg.socket) cfg.socket = abs(cfg.socket); },
  restore: { path: restorePath, unpack: 'file' },
  database: {
    server: 'MariaDB/MySQL',
    list: mysqlDatabases,
    connection(cfg, server) {
      const merged = { ...cfg, ...Object.fromEntries(Object.entries(server).filter(([, v]) => v !== undefined)) } as MysqlSourceConfig;
      if (server.socket) merged.host = undefined;
      else if (server.host) merged.socket = undefined;
      return merged;
    },
    load: (cfg, l) => loadMysql(cfg, insideRoot(l.dir, restorePath(cfg.name), `the dump of source ${cfg.name}`), l.database, l.target, l.scratch, l.signal, l.created),
    scratchServer: (cfg, signal) => startScratchMariadb(cfg, signal),
    drop: (cfg, target, scratch) => dropMysql(cfg, target, scratch),
  },
};
