import { describe, expect, it } from 'vitest';
import { backupWorkflowId, rfc3339Seconds } from '../../src/contracts/backup.js';

describe('run identity', () => {
  const slot = new Date('2025-11-04T03:00:00.123Z');
  it('derives the workflow ID from job, type and slot, like a Temporal schedule does', () => {
    expect(rfc3339Seconds(slot)).toBe('2025-11-04T03:00:00Z');
    expect(backupWorkflowId('app', 'full', slot)).toBe('backup-app-full-2025-11-04T03:00:00Z');
  });
});
