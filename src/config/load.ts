import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { SecretRef } from './fields.js';
import { Config, type Job } from './schema.js';
import { BackupError } from '../errors.js';
import { destinationPlugin } from '../destinations/index.js';
import { notifierPlugin } from '../notifiers/index.js';
import { sourcePlugin } from '../sources/index.js';

export interface LoadedConfig {
  /** Absolute path of the config file. */
  file: string;
  config: Config;
}

/** `--config`, else `BACKUPCTL_CONFIG`, else `./backup.yml`. */
export function configPath(explicit?: string): string {
  return path.resolve(explicit ?? process.env.BACKUPCTL_CONFIG ?? 'backup.yml');
}

/** One problem in a config file, located by line and field. */
export interface ConfigProblem {
  line: number | undefined;
  field: string;
  message: string;
}

export class ConfigError extends BackupError {
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    const lines = problems.map((p) => `  ${file}${p.line ? `:${p.line}` : ''}: ${p.field ? `${p.field}: ` : ''}${p.message}`);
    super('CONFIG_INVALID', `invalid config ${file}:\n${lines.join('\n')}`, { hint: 'fix the fields above; the reference is in README.md, "Configuration"' });
    this.problems = problems;
  }
}

function lineOf(doc: Document, counter: LineCounter, fieldPath: (string | number)[]): number | undefined {
  // Walk up until a node exists: a missing field is reported at its parent's line.
  for (let n = fieldPath.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(fieldPath.slice(0, n), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

const fieldName = (p: (string | number | symbol)[]) => p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '');

/** Parses and validates a config text; `file` is used for messages and for resolving relative paths. */
export function parseConfig(text: string, file: string): LoadedConfig {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => ({
      line: counter.linePos(e.pos[0]).line, field: '', message: `YAML syntax: ${e.message.split('\n')[0]}`,
    })));
  }
  const result = Config.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    throw new ConfigError(file, result.error.issues.map((issue) => {
      const p = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
      let message = issue.message;
      if (issue.code === 'invalid_type' && message.startsWith('Invalid input: expected')) message = message.replace('Invalid input: ', '');
      if (issue.code === 'unrecognized_keys') {
        message = `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
        return { line: lineOf(doc, counter, [...p, issue.keys[0]!]), field: fieldName(issue.path), message };
      }
      return { line: lineOf(doc, counter, p), field: fieldName(issue.path), message };
    }));
  }
  const config = result.data as unknown as Config;
  const problems: ConfigProblem[] = [];
  for (const [jobName, job] of Object.entries(config.pgbackrest)) {
    job.notify.forEach((n, i) => {
      if (!config.notifiers[n]) problems.push({ line: lineOf(doc, counter, ['jobs', jobName, 'notify', i]), field: `jobs.${jobName}.notify[${i}]`, message: `no notifier named "${n}" (defined: ${Object.keys(config.notifiers).join(', ') || 'none'})` });
    });
  }
  for (const [jobName, job] of Object.entries(config.jobs)) {
    job.destinations.forEach((d, i) => {
      if (!config.destinations[d]) problems.push({ line: lineOf(doc, counter, ['jobs', jobName, 'destinations', i]), field: `jobs.${jobName}.destinations[${i}]`, message: `no destination named "${d}" (defined: ${Object.keys(config.destinations).join(', ') || 'none'})` });
    });
    job.notify.forEach((n, i) => {
      if (!config.notifiers[n]) problems.push({ line: lineOf(doc, counter, ['jobs', jobName, 'notify', i]), field: `jobs.${jobName}.notify[${i}]`, message: `no notifier named "${n}" (defined: ${Object.keys(config.notifiers).join(', ') || 'none'})` });
    });
    const seen = new Set<string>();
    job.sources.forEach((s, i) => {
      if (seen.has(s.name)) problems.push({ line: lineOf(doc, counter, ['jobs', jobName, 'sources', i, 'name']), field: `jobs.${jobName}.sources[${i}].name`, message: `duplicate source name "${s.name}"` });
      seen.add(s.name);
    });
  }
  if (problems.length > 0) throw new ConfigError(file, problems);
  return { file, config: resolvePaths(config, path.dirname(file), file) };
}

/** Relative paths in the config are relative to the config file, not to the current directory. */
function resolvePaths(config: Config, dir: string, file: string): Config {
  const abs = (p: string) => path.resolve(dir, p.replace(/^~(?=$|\/)/, process.env.HOME ?? '~'));
  const absRefs = (refs: SecretRef[]) => { for (const ref of refs) if ('file' in ref) ref.file = abs(ref.file); };
  for (const d of Object.values(config.destinations)) {
    const plugin = destinationPlugin(d.type);
    absRefs(plugin.secretRefs(d));
    plugin.resolvePaths(d, abs);
  }
  for (const n of Object.values(config.notifiers)) absRefs(notifierPlugin(n.type).secretRefs(n));
  for (const job of Object.values(config.jobs)) {
    for (const s of job.sources) {
      const plugin = sourcePlugin(s.type);
      absRefs(plugin.secretRefs(s));
      plugin.resolvePaths(s, abs);
    }
    if (job.drill.scratchDir) job.drill.scratchDir = abs(job.drill.scratchDir);
    if (job.drill.identity) job.drill.identity.file = abs(job.drill.identity.file);
    for (const r of job.encryption?.recipients ?? []) if (typeof r === 'object') r.file = abs(r.file);
    for (const srv of Object.values(job.drill.servers)) {
      if (srv.password && 'file' in srv.password) srv.password.file = abs(srv.password.file);
      if (srv.socket) srv.socket = abs(srv.socket);
    }
  }
  for (const job of Object.values(config.pgbackrest)) {
    job.configFile = abs(job.configFile);
    if (job.pgbackrest.includes('/')) job.pgbackrest = abs(job.pgbackrest);
    if (job.drill.scratchDir) job.drill.scratchDir = abs(job.drill.scratchDir);
  }
  config.stateDir = abs(config.stateDir);
  for (const r of config.encryption?.recipients ?? []) if (typeof r === 'object') r.file = abs(r.file);
  config.temporal.deployment ??= defaultDeployment(file);
  if (config.signing.key) config.signing.key.file = abs(config.signing.key.file);
  for (const t of config.signing.trust) if (typeof t === 'object') t.file = abs(t.file);
  return config;
}

export function loadConfig(explicit?: string): LoadedConfig {
  const file = configPath(explicit);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BackupError('CONFIG_NOT_FOUND', `cannot read config ${file}: ${(err as Error).message}`, {
      hint: 'pass --config FILE or set BACKUPCTL_CONFIG', cause: err,
    });
  }
  return parseConfig(text, file);
}

export function getJob(config: Config, name: string): Job {
  const job = config.jobs[name];
  if (!job && config.pgbackrest?.[name]) {
    throw new BackupError('JOB_UNKNOWN', `job "${name}" is a pgbackrest job: it has no sources or destinations of backupctl's own`);
  }
  if (!job) {
    throw new BackupError('JOB_UNKNOWN', `no job named "${name}" in the config (jobs: ${Object.keys(config.jobs).join(', ')})`);
  }
  return job;
}

export function taskQueueOf(config: Config, job: Pick<Job, 'taskQueue'>): string {
  return job.taskQueue ?? config.temporal.taskQueue;
}

/**
 * The default deployment name of a config file: its name without extension and the first 8 hex digits of the SHA-256
 * of its absolute path, e.g. `backup-1a2b3c4d`. Stable for as long as the file stays where it is.
 */
export function defaultDeployment(file: string): string {
  const base = path.basename(file).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').replace(/\.\.+/g, '.').slice(0, 40) || 'backupctl';
  return `${base}-${createHash('sha256').update(path.resolve(file)).digest('hex').slice(0, 8)}`;
}

/** The deployment a config belongs to (`temporal.deployment`, set by loading; a config built in code falls back to its task queue). */
export function deploymentOf(config: Config): string {
  return config.temporal.deployment ?? config.temporal.taskQueue;
}

/** Every task queue the config's jobs (of both kinds) run on (the worker's default). */
export function jobQueues(config: Config): string[] {
  return [...new Set([...Object.values(config.jobs), ...Object.values(config.pgbackrest)].map((j) => taskQueueOf(config, j)))];
}

/**
 * The task queues this host's worker polls: `--queue` (repeatable), else `worker.queues`, else every job's queue. A
 * queue the config does not use is refused.
 */
export function workerQueues(config: Config, given?: string[]): string[] {
  const wanted = given?.length ? [...new Set(given)] : config.worker.queues ?? jobQueues(config);
  const known = new Set([...jobQueues(config), config.temporal.taskQueue]);
  const unknown = wanted.filter((q) => !known.has(q));
  if (unknown.length) {
    throw new BackupError('CONFIG_INVALID', `task queue ${unknown.map((q) => `"${q}"`).join(', ')} is not used by this config (its queues: ${[...known].join(', ')})`, {
      hint: 'name a job\'s taskQueue or temporal.taskQueue in --queue or worker.queues',
    });
  }
  return wanted;
}
