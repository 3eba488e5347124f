import { describe, expect, it } from 'vitest';
import { backupWorkflowId, layout, rfc3339Seconds } from '../../src/shared.js';

describe('run identity and layout', () => {
  const slot = new Date('2025-11-04T03:00:00.123Z');
  it('derives the workflow ID from job, type and slot, like a Temporal schedule does', () => {
    expect(rfc3339Seconds(slot)).toBe('2025-11-04T03:00:00Z');
    expect(backupWorkflowId('app', 'full', slot)).toBe('backup-app-full-2025-11-04T03:00:00Z');
  });

  it('lays out backups by tier and slot, with the temporary file beside the final one', () => {
    const l = layout('app', 'full', 'daily', slot, 'backup-app-full-2025-11-04T03:00:00Z');
    expect(l.finalPath).toBe('daily/2025/11/04/0300/app-full-20251104T030000Z.tar');
    expect(l.manifestPath).toBe('daily/2025/11/04/0300/app-full-20251104T030000Z.tar.manifest.json');
    expect(l.tempPath).toBe('daily/2025/11/04/0300/.app-full-20251104T030000Z.tar.backup-app-full-2025-11-04T03:00:00Z.tmp');
  });

  it('keeps odd workflow IDs out of the path', () => {
    expect(layout('app', 'full', 'daily', slot, 'a/../b c').tempPath).toMatch(/\.a_\.\._b_c\.tmp$/);
  });
});
