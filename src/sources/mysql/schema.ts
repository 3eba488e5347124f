import { z } from 'zod';
import { MinSize, Name, Port, SecretRef, pluginType } from '../../config/fields.js';

/** mariadb-dump arguments that would put a password on the command line, read other option files, or drop the trailer. */
const MYSQL_ARG_FORBIDDEN = /^(-p.*|--password(=.*)?|--defaults-.*|--no-defaults|--print-defaults|--login-path(=.*)?|-r.*|--result-file(=.*)?|-T.*|--tab(=.*)?|--compact|--skip-comments|--comments=(0|false|off)|-X|--xml)$/;

/** A `mysql` source: MariaDB or MySQL, dumped with mariadb-dump (or mysqldump). */
export const mysqlSourceSchema = z.strictObject({
  type: pluginType('mysql', 'source'),
  name: Name.meta({ description: 'name of the source, unique within its job; names the component in the artifact', examples: ['shop-db'] }),
  /** TCP connection (always TCP, also for `localhost`); exactly one of host or socket. */
  host: z.string().min(1).optional()
    .meta({ description: 'server host name or address, reached over TCP (also for localhost); exactly one of host or socket', examples: ['db.internal', '127.0.0.1'] }),
  port: Port.default(3306).meta({ description: 'TCP port of the server', examples: [3306] }),
  socket: z.string().min(1).optional()
    .meta({ description: 'path of the server\'s Unix socket; exactly one of host or socket', examples: ['/run/mysqld/mysqld.sock'] }),
  user: z.string().min(1).meta({ description: 'account that dumps (needs SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES)', examples: ['backup'] }),
  password: SecretRef.optional().meta({ description: 'the account\'s password, as a secret reference', examples: [{ env: 'MYSQL_BACKUP_PASSWORD' }] }),
  /** Databases to dump; omitted: all (`--all-databases`). */
  databases: z.array(z.string().min(1)).min(1, { error: 'list at least one database, or leave databases out to dump all' }).optional()
    .meta({ description: 'databases to dump; left out: all of them (--all-databases)', examples: [['shop', 'crm']] }),
  /** Extra `[client]` options for the option file, e.g. `ssl-ca: /etc/mysql/ca.pem`. */
  clientOptions: z.record(z.string().regex(/^[a-z][a-z0-9_-]*$/, { error: 'expected an option name such as ssl-ca' }), z.union([z.string(), z.number(), z.boolean()])).default({})
    .meta({ description: 'extra [client] options for the option file the tools read', examples: [{ 'ssl-ca': '/etc/mysql/ca.pem' }] }),
  /** Extra arguments for mariadb-dump/mysqldump, e.g. `--ignore-table=app.cache`. */
  extraArgs: z.array(z.string().min(1).refine((a) => !MYSQL_ARG_FORBIDDEN.test(a), {
    error: 'this argument would put a password on the command line, change where options are read from, or remove the trailer that proves the dump complete',
  })).default([]).meta({ description: 'extra arguments for mariadb-dump/mysqldump', examples: [['--ignore-table=shop.sessions']] }),
  minSize: MinSize.meta({ description: 'smallest acceptable dump before compression (e.g. 1MB); 0 bytes always fails', examples: ['1MB'] }),
}).refine((d) => (d.host === undefined) !== (d.socket === undefined), {
  error: 'set exactly one of host (with port) or socket',
  path: ['host'],
});
export type MysqlSourceConfig = z.infer<typeof mysqlSourceSchema>;
