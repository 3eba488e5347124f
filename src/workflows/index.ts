export { backupWorkflow, cancelSignal, progressQuery } from './backup.js';
