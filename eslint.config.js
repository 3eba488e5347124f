import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'assert', 'buffer', 'child_process', 'crypto', 'dns', 'events', 'fs', 'fs/promises', 'http', 'https', 'net', 'os',
  'path', 'process', 'stream', 'timers', 'tls', 'url', 'util', 'worker_threads', 'zlib',
];

const temporalInWorkflows = [
  { name: '@temporalio/activity', message: 'Import activities as types only.' },
  { name: '@temporalio/client', message: 'Workflows cannot use the client.' },
  { name: '@temporalio/worker', message: 'Workflows cannot use the worker.' },
];

/** Folders above repository/ and state/ (see the layer list below). */
const upperLayers = ['restore', 'schedules', 'monitor', 'activities', 'workflows', 'runtime', 'cli'];
/** Folders above config/ and lib/ (plugin folders excepted: config's schema may name them). */
const lowerThanConfig = ['repository', 'state', ...upperLayers];

function upward(folders) {
  return { group: folders.flatMap((f) => [`../${f}`, `../${f}/*`, `./${f}/*`]), message: 'A lower layer must not import a higher one (README, Development).' };
}

/**
 * One `no-restricted-imports` setting per group of files (a later setting replaces an earlier one for the same file,
 * so each group lists everything it bans). `deterministic`: no Node built-ins and no Temporal client, worker or
 * activity, because the workflow bundle imports these files.
 */
function restrictedImports(files, { deterministic = false, patterns = [] }) {
  const paths = deterministic
    ? [...nodeBuiltins.flatMap((m) => [m, `node:${m}`]).map((name) => ({ name, message: 'Workflow code must be deterministic: no Node built-ins.' })), ...temporalInWorkflows]
    : [];
  return { files, rules: { 'no-restricted-imports': ['error', { paths, patterns }] } };
}

export default tseslint.config(
  { ignores: ['dist/**', '.bench-build/**', 'bench-results/**', 'node_modules/**', '.tools/**', '.backupctl/**', 'examples/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  // Deterministic code: the workflows and everything the workflow bundle imports (contracts, errors, lib/format).
  restrictedImports(['src/workflows/**/*.ts'], {
    deterministic: true,
    patterns: [{ group: ['../activities/*', '../activities'], allowTypeImports: true, message: 'Import activities as types only.' }],
  }),
  restrictedImports(['src/contracts/**/*.ts'], {
    deterministic: true,
    patterns: [{ group: ['../*', '!../errors.js'], message: 'Contracts are the lowest layer: they import only each other and src/errors.ts.' }],
  }),
  // Layers, lowest first: errors, lib, contracts → config → plugins → repository → state → restore, schedules →
  // monitor, activities → workflows → runtime, cli. A lower layer never imports a higher one.
  restrictedImports(['src/lib/**/*.ts', 'src/config/**/*.ts'], { patterns: [upward(lowerThanConfig)] }),
  restrictedImports(['src/errors.ts', 'src/lib/format.ts', 'src/sources/databases.ts', 'src/sources/*/component.ts'], { deterministic: true, patterns: [upward(['contracts', 'config', ...lowerThanConfig])] }),
  restrictedImports(['src/repository/**/*.ts'], { patterns: [upward(['state', ...upperLayers])] }),
  restrictedImports(['src/state/**/*.ts'], { patterns: [upward(upperLayers)] }),
  {
    files: ['scripts/**/*.mjs', 'test/**/*.mjs', 'bin/**/*.js', 'eslint.config.js', 'vitest.config.ts'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Buffer: 'readonly' } },
  },
);
