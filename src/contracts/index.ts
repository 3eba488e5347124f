/**
 * The messages Temporal carries: workflow and signal/query names, workflow IDs, inputs, plans, results, events and
 * the manifest format. Plain data and pure functions only: the workflow bundle imports these files, and lint bans Node
 * built-ins in src/contracts as it does in src/workflows.
 */
export * from './backup.js';
export * from './drill.js';
export * from './events.js';
export * from './freshness.js';
export * from './lock.js';
export * from './manifest.js';
export * from './names.js';
export * from './prune.js';
export * from './restore.js';
export * from './search-attributes.js';
export * from './pgbackrest.js';
