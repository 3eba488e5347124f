import path from 'node:path';
import { insideRoot } from '../../lib/paths.js';
import type { SourcePlugin } from '../types.js';
import { postgresDatabases } from './component.js';
import { PostgresSource } from './index.js';
import { dropPostgres, loadPostgres, pgDumpFileFor } from './restore.js';
import { startScratchPostgres } from './scratch-server.js';
import { postgresSourceSchema, type PostgresSourceConfig } from './schema.js';

/** postgres source: a directory with globals.sql and `<database>.dump` (custom format). */
const restorePath = (name: string) => path.join('databases', name);

export const plugin: SourcePlugin<typeof postgresSourceSchema> = {
  type: 'postgres',
  schema: postgresSourceSchema,
  open: (cfg) => new PostgresSource(cfg),
  secretRefs: (cfg) => (cfg.password ? [cfg.password] : []),
  resolvePaths(cfg, abs) { if (cfg.binDir) cfg.binDir = abs(cfg.binDir); },
  // A database component is whole in every backup: a later one in the chain replaces the earlier one.
  restore: { path: restorePath, unpack: 'whole-tree' },
  database: {
    server: 'PostgreSQL',
    list: postgresDatabases,
    // A drill server's socket is a directory, which PostgreSQL takes as its host.
    connection: (cfg, server) => ({
      ...cfg, ...Object.fromEntries(Object.entries(server).filter(([k, v]) => v !== undefined && k !== 'socket')), ...(server.socket ? { host: server.socket } : {}),
    }) as PostgresSourceConfig,
    load: (cfg, l) => loadPostgres(cfg, insideRoot(l.dir, path.join(restorePath(cfg.name), pgDumpFileFor(l.database)), `the dump of ${cfg.name}.${l.database}`), l.target, { signal: l.signal, withoutOwners: l.drill, created: l.created }),
    scratchServer: (cfg, signal) => startScratchPostgres(cfg, signal),
    drop: (cfg, target) => dropPostgres(cfg, target),
  },
};
