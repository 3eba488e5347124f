import { describe, expect, it } from 'vitest';
import { backupWorkflowId, futureSlotProblem, rfc3339Seconds } from '../../src/contracts/backup.js';
import { isName } from '../../src/contracts/names.js';

describe('run identity', () => {
  const slot = new Date('2025-11-04T03:00:00.123Z');
  it('derives the workflow ID from deployment, job, type and slot, like a Temporal schedule does', () => {
    expect(rfc3339Seconds(slot)).toBe('2025-11-04T03:00:00Z');
    expect(backupWorkflowId('backup-1a2b3c4d', 'app', 'full', slot)).toBe('backup:backup-1a2b3c4d:app:full-2025-11-04T03:00:00Z');
    // The same job name in another deployment is another run of the slot.
    expect(backupWorkflowId('web-01', 'app', 'full', slot)).not.toBe(backupWorkflowId('web-02', 'app', 'full', slot));
  });
});

describe('slots in the future', () => {
  const now = Date.parse('2026-11-29T10:00:00Z');
  it('accepts a slot up to five minutes ahead of now (clock skew), refuses a later one with a clear reason', () => {
    expect(futureSlotProblem(new Date('2026-11-29T10:05:00Z'), now)).toBeUndefined();
    expect(futureSlotProblem(new Date('2025-11-04T03:00:00Z'), now)).toBeUndefined();
    expect(futureSlotProblem(new Date('2026-11-29T10:05:01Z'), now)).toMatch(/slot 2026-11-29T10:05:01Z is in the future \(now is 2026-11-29T10:00:00Z; at most 5 minutes ahead are accepted\)/);
    expect(futureSlotProblem(new Date('2099-01-01T00:00:00Z'), now)).toMatch(/in the future/);
  });
});

describe('the name grammar', () => {
  it('takes letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63, never ".."', () => {
    for (const ok of ['daily', 'app-files', 'db.main', 'x_y-z', 'a'.repeat(63), '0day']) expect(isName(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', '../x', 'a/b', '/abs', '.hidden', '-x', 'a..b', 'a'.repeat(64), 'ü', 'a b', 'a\0', 5, undefined]) expect(isName(bad), String(bad)).toBe(false);
  });
});
