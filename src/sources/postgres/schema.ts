import { z } from 'zod';
import { MinSize, Name, Port, SecretRef, pluginType } from '../../config/fields.js';

/** pg_dump arguments that backupctl sets itself. */
const PG_ARG_FORBIDDEN = /^(-f.*|--file(=.*)?|-F.*|--format(=.*)?|-Z.*|--compress(=.*)?|-d.*|--dbname(=.*)?|-W|--password)$/;

/** A `postgres` source: PostgreSQL, dumped with pg_dump -Fc per database and pg_dumpall --globals-only. */
export const postgresSourceSchema = z.strictObject({
  type: pluginType('postgres', 'source'),
  name: Name.meta({ description: 'name of the source, unique within its job; names the component in the artifact', examples: ['crm-db'] }),
  /** Host name, or the directory of the server's Unix socket (e.g. /var/run/postgresql). */
  host: z.string().min(1).meta({ description: 'server host name, or the directory of its Unix socket', examples: ['db.internal', '/var/run/postgresql'] }),
  port: Port.default(5432).meta({ description: 'TCP port of the server (also names the socket file)', examples: [5432] }),
  user: z.string().min(1).meta({ description: 'role that dumps (a superuser, or rolePasswords: false)', examples: ['backup'] }),
  password: SecretRef.optional().meta({ description: 'the role\'s password, as a secret reference', examples: [{ file: '/etc/backupctl/pg-password' }] }),
  /** Databases to dump; omitted: every database that accepts connections and is not a template. */
  databases: z.array(z.string().min(1)).min(1, { error: 'list at least one database, or leave databases out to dump all' }).optional()
    .meta({ description: 'databases to dump; left out: every database that accepts connections and is not a template', examples: [['crm', 'billing']] }),
  /** Database used to list databases and to dump globals. */
  connectDatabase: z.string().min(1).default('postgres')
    .meta({ description: 'database connected to for listing databases and dumping globals', examples: ['postgres'] }),
  /** Add `pg_dumpall --globals-only` (roles, tablespaces) as globals.sql. Needs a superuser unless rolePasswords is false. */
  globals: z.boolean().default(true)
    .meta({ description: 'add pg_dumpall --globals-only (roles, tablespaces) as globals.sql', examples: [true] }),
  /** false: `--no-role-passwords`, so that a non-superuser can dump the roles (without their passwords). */
  rolePasswords: z.boolean().default(true)
    .meta({ description: 'false: dump roles without their passwords (--no-role-passwords), which a non-superuser can', examples: [false] }),
  sslMode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional()
    .meta({ description: 'libpq sslmode of the connections', examples: ['verify-full'] }),
  /** Directory of pg_dump, pg_dumpall, pg_restore and psql (e.g. /usr/lib/postgresql/16/bin); default: PATH. */
  binDir: z.string().min(1).optional()
    .meta({ description: 'directory of pg_dump, pg_dumpall, pg_restore and psql; left out: PATH', examples: ['/usr/lib/postgresql/16/bin'] }),
  /** How each dump is checked before it enters the component: `list` reads its table of contents, `full` reads all of it. */
  restoreCheck: z.enum(['list', 'full']).default('list')
    .meta({ description: 'how each dump is checked before it enters the component: list reads its table of contents, full reads all of it', examples: ['list'] }),
  /** Extra arguments for pg_dump, e.g. `--exclude-table-data=audit_log`. */
  extraArgs: z.array(z.string().min(1).refine((a) => !PG_ARG_FORBIDDEN.test(a), {
    error: 'backupctl sets the output file, format, compression and database of pg_dump itself',
  })).default([]).meta({ description: 'extra arguments for pg_dump', examples: [['--exclude-table-data=audit_log']] }),
  minSize: MinSize.meta({ description: 'smallest acceptable total of the dumps before compression; 0 bytes always fails', examples: ['10MB'] }),
});
export type PostgresSourceConfig = z.infer<typeof postgresSourceSchema>;
