import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { CONFIG_SCHEMA_PATH, configJsonSchema, configJsonSchemaText } from '../../src/config/json-schema.js';
import { minimalConfig } from './support.js';

/**
 * The config's JSON Schema (`backupctl config schema`): every field described with an example that the schema itself
 * accepts, the committed copy current, and an independent validator (ajv) agreeing with backupctl's own verdict.
 */

type Node = Record<string, unknown>;
const schema = configJsonSchema();
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('uri', (v: string) => URL.canParse(v));
const validate = ajv.compile(schema);

/** Every property of every object in the schema, with its path. */
function properties(node: unknown, at = '$'): [string, Node][] {
  if (Array.isArray(node)) return node.flatMap((n, i) => properties(n, `${at}[${i}]`));
  if (typeof node !== 'object' || node === null) return [];
  const own = Object.entries((node as Node).properties ?? {}).map(([k, v]) => [`${at}.${k}`, v as Node] as [string, Node]);
  return [...own, ...Object.entries(node).flatMap(([k, v]) => properties(v, k === 'properties' ? at : `${at}/${k}`))];
}

/** backupctl's verdict: accepted, or refused with a ConfigError. */
function backupctlAccepts(text: string): boolean {
  try {
    parseConfig(text, '/etc/backupctl/backup.yml');
    return true;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return false;
  }
}

describe('config JSON Schema', () => {
  it('describes every property, with examples the property\'s own schema accepts', () => {
    const all = properties(schema);
    expect(all.length).toBeGreaterThan(100);
    const undocumented = all.filter(([, p]) => typeof p.description !== 'string' || !/\w{3}/.test(p.description) || !Array.isArray(p.examples) || p.examples.length === 0);
    expect(undocumented.map(([at]) => at)).toEqual([]);
    for (const [at, p] of all) {
      const check = ajv.compile({ ...p, $schema: undefined });
      for (const example of p.examples as unknown[]) expect(check(example), `${at}: example ${JSON.stringify(example)} ${ajv.errorsText(check.errors)}`).toBe(true);
    }
  });

  it('the committed schema file is the generated one (regenerate: backupctl config schema > schema/backup.schema.json)', () => {
    expect(readFileSync(CONFIG_SCHEMA_PATH, 'utf8')).toBe(configJsonSchemaText());
  });

  const examples = readdirSync('examples').filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join('examples', f));
  it.each(examples)('%s names the schema for editors and both validators accept it', (file) => {
    const text = readFileSync(file, 'utf8');
    const first = text.split('\n')[0]!;
    expect(first).toMatch(/^# yaml-language-server: \$schema=(\S+)$/);
    const target = path.resolve(path.dirname(file), first.split('$schema=')[1]!);
    expect(target).toBe(path.resolve(CONFIG_SCHEMA_PATH));
    expect(backupctlAccepts(text)).toBe(true);
    expect(validate(parse(text)), ajv.errorsText(validate.errors)).toBe(true);
  });

  // Broken configs both refuse, and sound ones both accept. (References between sections, e.g. a job naming a
  // destination that is not defined, and "exactly one of" rules are config check's alone: not in this table.)
  const broken: [string, string][] = [
    ['an unknown top-level key', `${minimalConfig}stateDirectory: /var/lib/backupctl\n`],
    ['an unknown job key', minimalConfig.replace('    destinations: [nas]', '    destinations: [nas]\n    keep: 7')],
    ['no jobs section', minimalConfig.replace(/jobs:[\s\S]*/, '')],
    ['no destinations section', minimalConfig.replace(/destinations:\n {2}nas:\n {4}type: local\n {4}path: \/srv\/backups\n/, '')],
    ['an unknown source type', minimalConfig.replace('type: files', 'type: tape')],
    ['an unknown destination type', minimalConfig.replace('type: local', 'type: floppy')],
    ['a source without paths', minimalConfig.replace('        paths: [/srv/app]\n', '')],
    ['a source without name', minimalConfig.replace('      - name: files\n        type: files', '      - type: files')],
    ['a job without sources', minimalConfig.replace(/ {4}sources:[\s\S]*?paths: \[\/srv\/app\]\n/, '')],
    ['an empty source list', minimalConfig.replace(/ {4}sources:[\s\S]*?paths: \[\/srv\/app\]\n/, '    sources: []\n')],
    ['a malformed duration', minimalConfig.replace('    destinations: [nas]', '    destinations: [nas]\n    lockWait: two hours')],
    ['a negative duration', `${minimalConfig}settings:\n  heartbeatTimeout: -5\n`],
    ['retries out of range', `${minimalConfig}settings:\n  retries: 0\n`],
    ['a compression level that is not a number', `${minimalConfig}settings:\n  compressionLevel: high\n`],
    ['a malformed size', minimalConfig.replace('type: files\n        paths: [/srv/app]', 'type: command\n        command: [cat]\n        minSize: lots')],
    ['a port out of range', minimalConfig.replace('type: local\n    path: /srv/backups', 'type: sftp\n    host: nas\n    port: 70000\n    user: b\n    privateKey: /k\n    hostKey: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\n    path: /b')],
    ['a schedule type that is neither full nor diff', minimalConfig.replace('    destinations: [nas]', '    destinations: [nas]\n    schedules:\n      - type: hourly\n        cron: "0 * * * *"')],
    ['a size anomaly action that is unknown', minimalConfig.replace('    destinations: [nas]', '    destinations: [nas]\n    sizeAnomaly: { action: panic }')],
    ['a webhook without url', `${minimalConfig}notifiers:\n  hook:\n    type: webhook\n`],
    ['an email with no recipients', `${minimalConfig}notifiers:\n  mail:\n    type: email\n    host: smtp\n    from: a@b.c\n    to: []\n`],
    ['a metrics address without a port', `${minimalConfig}metrics:\n  prometheus: localhost\n`],
    ['a secret reference of an unknown kind', minimalConfig.replace('type: local\n    path: /srv/backups', 'type: sftp\n    host: nas\n    user: b\n    privateKey: /k\n    passphrase: { vault: x }\n    hostKey: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\n    path: /b')],
  ];
  const sound: [string, string][] = [
    ['the minimal config', minimalConfig],
    ['durations and sizes as people write them', `${minimalConfig.replace('    destinations: [nas]', '    destinations: [nas]\n    lockWait: 90m\n    freshness: { full: 2d, diff: 6h }\n    retention: { daily: 14, weekly: 90d }')}settings:\n  heartbeatTimeout: 45\n`],
    ['an sftp destination and notifiers', `${minimalConfig.replace('type: local\n    path: /srv/backups', 'type: sftp\n    host: nas\n    user: b\n    privateKey: /k\n    passphrase: { env: KEY_PASS }\n    hostKey: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\n    path: /b\n    bandwidthLimit: 20MB')}notifiers:\n  hook:\n    type: webhook\n    url: { env: HOOK }\n  mail:\n    type: email\n    host: smtp\n    from: a@b.c\n    to: [ops@b.c]\nmetrics:\n  prometheus: 127.0.0.1:9464\n  backups: 127.0.0.1:9465\n`],
    ['schedules by calendar and cron', minimalConfig.replace('    destinations: [nas]', '    destinations: [nas]\n    schedules:\n      - { type: full, calendar: { hour: [3, 11], minute: 0, dayOfWeek: [MONDAY] } }\n      - { type: diff, cron: "0 */6 * * *", timezone: Europe/Berlin }')],
  ];
  it.each([...broken.map(([n, t]) => [`refused: ${n}`, t, false] as const), ...sound.map(([n, t]) => [`accepted: ${n}`, t, true] as const)])('%s', (_name, text, verdict) => {
    expect(backupctlAccepts(text)).toBe(verdict);
    expect(validate(parse(text)), ajv.errorsText(validate.errors)).toBe(verdict);
  });
});
