/** The custom search attributes backupctl sets on runs (registered by `backupctl up` and the worker). */
export const SEARCH_ATTRIBUTE_NAMES = { job: 'BackupJob', type: 'BackupType', outcome: 'BackupOutcome' } as const;
