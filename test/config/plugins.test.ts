import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { z } from 'zod';
import { parseConfig } from '../../src/config/load.js';
import { minimalConfig, problems } from './support.js';
import { destinationSchema, notifierSchema, sourceSchema } from '../../src/config/schema.js';
import * as destinationRegistry from '../../src/destinations/registry.js';
import * as notifierRegistry from '../../src/notifiers/registry.js';
import { DATABASE_LISTS } from '../../src/sources/databases.js';
import * as sourceRegistry from '../../src/sources/registry.js';
import type { SourcePlugin } from '../../src/sources/types.js';

/**
 * The registries drive the config: every registered plugin's schema is in the config's union on `type`, describes
 * every field with an example, and parses an example config made of those examples; an unknown type is refused with
 * the registered types listed.
 */

type Plugin = { type: string; schema: z.ZodType };
const kinds = [
  { kind: 'source', registry: sourceRegistry as Record<string, Plugin>, union: sourceSchema as z.ZodType },
  { kind: 'destination', registry: destinationRegistry as Record<string, Plugin>, union: destinationSchema as z.ZodType },
  { kind: 'notifier', registry: notifierRegistry as Record<string, Plugin>, union: notifierSchema as z.ZodType },
];
const plugins = kinds.flatMap(({ kind, registry, union }) => Object.entries(registry).map(([key, plugin]) => ({ kind, key, plugin, union })));

const shapeOf = (schema: z.ZodType): Record<string, z.ZodType> => (schema as z.ZodObject).shape;
const firstExample = (field: z.ZodType): unknown => (field.meta()?.examples as unknown[] | undefined)?.[0];
const issueCount = (schema: z.ZodType, value: unknown) => schema.safeParse(value).error?.issues.length ?? 0;

/** Optional, default and nullable wrappers removed: the schema a field's value is checked against. */
function unwrap(field: z.ZodType): z.ZodType {
  const inner = (field as { _zod: { def: { innerType?: z.ZodType } } })._zod.def.innerType;
  return inner ? unwrap(inner) : field;
}

/** Every field of an object schema, nested objects included, as [path, schema]. */
function fields(schema: z.ZodType, prefix = ''): [string, z.ZodType][] {
  return Object.entries(shapeOf(schema)).flatMap(([name, field]) => {
    const inner = unwrap(field);
    return [[`${prefix}${name}`, field] as [string, z.ZodType], ...(inner instanceof z.ZodObject ? fields(inner, `${prefix}${name}.`) : [])];
  });
}

/**
 * A plugin's example config, from its fields' first examples: the required fields, then each optional field unless it
 * makes the config worse (one of two exclusive fields, e.g. an sftp destination's knownHosts and hostKey).
 */
function exampleConfig(schema: z.ZodType): Record<string, unknown> {
  const entries = Object.entries(shapeOf(schema));
  const config: Record<string, unknown> = {};
  for (const [name, field] of entries) if (!field.safeParse(undefined).success) config[name] = firstExample(field);
  for (const [name, field] of entries) {
    if (name in config) continue;
    const candidate = { ...config, [name]: firstExample(field) };
    if (issueCount(schema, candidate) <= issueCount(schema, config)) config[name] = candidate[name];
  }
  return config;
}


describe('plugin registries', () => {
  it('list each plugin under its own type, and the config accepts exactly those types', () => {
    expect(Object.keys(sourceRegistry).sort()).toEqual(['command', 'files', 'mysql', 'postgres']);
    expect(Object.keys(destinationRegistry).sort()).toEqual(['local', 's3', 'sftp']);
    expect(Object.keys(notifierRegistry).sort()).toEqual(['email', 'healthchecks', 'webhook']);
    for (const { key, plugin } of plugins) {
      expect(plugin.type).toBe(key);
      expect(shapeOf(plugin.schema).type!.safeParse(key).success).toBe(true);
    }
  });

  it.each(plugins.map((p) => [`${p.kind} ${p.key}`, p] as const))('%s: every field has a description and valid examples', (_name, { plugin }) => {
    const all = fields(plugin.schema);
    expect(all.length).toBeGreaterThan(1);
    for (const [name, field] of all) {
      const meta = field.meta();
      expect(meta?.description, `${name}: description`).toMatch(/\w{3}/);
      expect(meta?.examples, `${name}: examples`).toEqual(expect.any(Array));
      const examples = meta!.examples as unknown[];
      expect(examples.length, `${name}: examples`).toBeGreaterThan(0);
      for (const example of examples) expect(field.safeParse(example).error?.issues, `${name}: example ${JSON.stringify(example)}`).toBeUndefined();
    }
  });

  it.each(plugins.map((p) => [`${p.kind} ${p.key}`, p] as const))('%s: parses its example config, alone and in the config union', (_name, { key, plugin, union }) => {
    const example = exampleConfig(plugin.schema);
    expect(example.type).toBe(key);
    expect(plugin.schema.safeParse(example).error?.issues).toBeUndefined();
    expect(union.safeParse(example).error?.issues).toBeUndefined();
  });

  it('a config file with one of every registered type loads', () => {
    const example = (registry: Record<string, Plugin>) => Object.values(registry).map((p) => exampleConfig(p.schema));
    const destinations = Object.fromEntries(example(destinationRegistry as Record<string, Plugin>).map((d) => [`to-${String(d.type)}`, d]));
    const notifiers = Object.fromEntries(example(notifierRegistry as Record<string, Plugin>).map((n) => [`via-${String(n.type)}`, n]));
    const sources = example(sourceRegistry as Record<string, Plugin>).map((s) => ({ ...s, name: `from-${String(s.type)}` }));
    const text = stringify({ destinations, notifiers, jobs: { app: { sources, destinations: Object.keys(destinations), notify: Object.keys(notifiers) } } });
    const { config } = parseConfig(text, '/etc/backupctl/backup.yml');
    expect(config.jobs.app!.sources.map((s) => s.type)).toEqual(Object.values(sourceRegistry).map((p) => p.type));
    expect(Object.values(config.destinations).map((d) => d.type)).toEqual(Object.keys(destinationRegistry));
    expect(Object.values(config.notifiers).map((n) => n.type)).toEqual(Object.keys(notifierRegistry));
  });


  it('refuses an unknown source type, naming the line and listing the registered types', () => {
    const p = problems(minimalConfig.replace('type: files', 'type: s3'));
    expect(p).toEqual([expect.objectContaining({ line: 10, field: 'jobs.app.sources[0].type' })]);
    expect(p[0]!.message).toBe('unknown source type "s3" (types: command, files, mysql, postgres)');
  });

  it('refuses an unknown destination or notifier type, and a missing type, listing the registered types', () => {
    const d = problems(minimalConfig.replace('type: local', 'type: tape'));
    expect(d).toEqual([expect.objectContaining({ line: 4, field: 'destinations.nas.type' })]);
    expect(d[0]!.message).toBe('unknown destination type "tape" (types: local, s3, sftp)');
    const n = problems(`${minimalConfig}notifiers:\n  ops:\n    type: pager\n`);
    expect(n).toEqual([expect.objectContaining({ line: 15, field: 'notifiers.ops.type' })]);
    expect(n[0]!.message).toBe('unknown notifier type "pager" (types: email, healthchecks, webhook)');
    const missing = problems(minimalConfig.replace('        type: files\n', ''));
    expect(missing[0]).toMatchObject({ field: 'jobs.app.sources[0].type', message: 'a source needs a type: one of command, files, mysql, postgres' });
  });

  it('a plugin\'s own messages still come through the union', () => {
    const p = problems(minimalConfig.replace('type: local\n    path: /srv/backups', 'type: sftp\n    host: nas\n    user: b\n    privateKey: /k\n    path: /b'));
    expect(p[0]).toMatchObject({ field: 'destinations.nas.hostKey' });
    expect(p[0]!.message).toMatch(/host key checking cannot be turned off/);
  });

  it('the drill workflow\'s database lists are the database plugins\' own hooks', () => {
    const plugins: readonly SourcePlugin[] = Object.values(sourceRegistry) as SourcePlugin[];
    const withDatabases = plugins.filter((p) => p.database !== undefined);
    expect(Object.keys(DATABASE_LISTS).sort()).toEqual(withDatabases.map((p) => p.type).sort());
    for (const p of withDatabases) expect(DATABASE_LISTS[p.type as keyof typeof DATABASE_LISTS]).toBe(p.database!.list);
  });

  it('what the drill workflow imports of the sources stays free of Node built-ins and plugins', () => {
    // src/workflows/drill.ts picks its scratch databases in the workflow sandbox with src/sources/databases.ts: follow
    // its relative imports (eslint also bans Node built-ins in these files).
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const [, spec] of text.matchAll(/^import (?!type )[^;]*? from '([^']+)';/gm)) {
        expect(spec, `${path.relative(process.cwd(), file)} imports ${spec}`).toMatch(/^\.\.?\//);
        visit(path.resolve(path.dirname(file), spec!.replace(/\.js$/, '.ts')));
      }
    };
    visit(path.resolve('src/sources/databases.ts'));
    expect([...seen].map((f) => path.relative('src', f)).sort()).toEqual([
      'sources/databases.ts', 'sources/mysql/component.ts', 'sources/postgres/component.ts',
    ]);
  });
});
