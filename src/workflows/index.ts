export { backupWorkflow, cancelSignal, progressQuery } from './backup.js';
export { jobLockWorkflow, acquireSignal, releaseSignal, lockGrantedSignal, lockStateQuery } from './lock.js';
export { freshnessWorkflow } from './freshness.js';
export { pruneWorkflow } from './prune.js';
export { restoreWorkflow, restoreProgressQuery } from './restore.js';
export { drillWorkflow } from './drill.js';
export { pgbackrestWorkflow } from './pgbackrest.js';
export { pgbackrestDrillWorkflow } from './pgbackrest-drill.js';
