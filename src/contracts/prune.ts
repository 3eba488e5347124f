import type { RunRef } from './backup.js';
/** The prune workflow (`backupctl prune`): retention, orphan sweep and stale staging of one job. */
export const PRUNE_WORKFLOW = 'pruneWorkflow';

export interface PruneInput extends RunRef {
  /** Report what would be removed, remove nothing. */
  dryRun: boolean;
}

export interface OrphanReport {
  destination: string;
  path: string;
  workflowId: string;
  action: 'removed' | 'kept';
  reason: string;
}

export interface PruneReport {
  job: string;
  dryRun: boolean;
  destinations: {
    destination: string;
    /** Backups kept, with why. */
    kept: { path: string; slot: string; type: string; reasons: string[] }[];
    /** Backups removed (with dryRun: that would be removed). */
    removed: string[];
    /** Files retention does not touch, and why (no manifest, unreadable manifest, ...). */
    leftAlone: { path: string; reason: string }[];
    refused?: string;
    problems: string[];
  }[];
  orphans: OrphanReport[];
  staging: { path: string; action: 'removed' | 'kept'; reason: string }[];
  /** Any rule refused on any destination (nothing was removed there). */
  refused?: string;
  problems: string[];
}
