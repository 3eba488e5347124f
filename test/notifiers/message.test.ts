import { describe, expect, it } from 'vitest';
import { renderMessage } from '../../src/notifiers/message.js';
import type { BackupEvent } from '../../src/contracts/index.js';

const ctx = { uiUrl: 'http://localhost:8233/', namespace: 'default' };
const failure: BackupEvent = {
  kind: 'failure', job: 'app', type: 'full', slot: '2025-11-04T03:00:00Z', workflowId: 'backup-app-full-2025-11-04T03:00:00Z',
  runId: 'r1', step: 'verify', error: 'SHA-256 mismatch', code: 'VERIFY_MISMATCH', attempts: 2, finalized: [], durationMs: 5000,
};

describe('notification messages', () => {
  it('a failure names the step, the error, the attempts and the run link', () => {
    const m = renderMessage(failure, ctx);
    expect(m.subject).toBe('[backupctl] FAILED: app full backup 2025-11-04T03:00:00Z (verify)');
    expect(m.text).toContain('FAILED in the verify step');
    expect(m.text).toContain('Attempts: 2');
    expect(m.text).toContain('http://localhost:8233/namespaces/default/workflows/backup-app-full-2025-11-04T03%3A00%3A00Z/r1/history');
    expect(m.text).toContain('No backup was stored for this slot');
  });

  it('message IDs are stable per workflow and event, and differ between events', () => {
    expect(renderMessage(failure, ctx).id).toBe(renderMessage({ ...failure, runId: 'r2', attempts: 3 }, ctx).id);
    expect(renderMessage(failure, ctx).id).not.toBe(renderMessage({ ...failure, kind: 'cancelled' }, ctx).id);
  });

  it('a success with warnings headlines them', () => {
    const m = renderMessage({ kind: 'success', result: {
      status: 'succeeded_with_warnings', workflowId: 'w', job: 'app', type: 'full', slot: 's', size: 2048, sha256: 'ab'.repeat(32),
      locations: [{ destination: 'nas', path: 'daily/x.tar' }], warnings: ['file changed as we read it'], durationMs: 1000,
    } }, ctx);
    expect(m.subject).toContain('WARNING');
    expect(m.text).toMatch(/WARNINGS:\n {2}- file changed as we read it/);
    expect(m.text).toContain('nas: daily/x.tar');
    expect(m.text).toContain('ab'.repeat(32));
  });
  it('an alert is the job\'s of this config: its link lists the runs on the job\'s task queue, and its ID differs between deployments', () => {
    const alert: BackupEvent = { kind: 'alert', job: 'app', problems: ['newest full backup is 26 h old (threshold 25 h)'], checkedAt: '2025-11-05T05:00:00Z', alertId: 'alert:app:2025-11-05:stale-full' };
    const m = renderMessage(alert, { ...ctx, deployment: 'web-01', taskQueue: 'backupctl-web01' });
    expect(m.text).toContain(`/namespaces/default/workflows?query=${encodeURIComponent('BackupJob="app" AND TaskQueue="backupctl-web01"')}`);
    expect(renderMessage({ ...alert, checkedAt: '2025-11-05T06:00:00Z' }, { ...ctx, deployment: 'web-01' }).id).toBe(m.id);
    expect(renderMessage(alert, { ...ctx, deployment: 'web-02', taskQueue: 'backupctl-web01' }).id).not.toBe(m.id);
  });
});
