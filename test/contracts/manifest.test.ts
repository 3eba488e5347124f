import { describe, expect, it } from 'vitest';
import { completeManifest, type ManifestDraft } from '../../src/contracts/manifest.js';

describe('completing a manifest', () => {
  const draft: ManifestDraft = {
    format: 'backupctl-manifest/1', job: 'app', type: 'full', tier: 'daily', slot: '2025-11-04T03:00:00Z', workflowId: 'w', runId: 'r',
    createdAt: '2025-11-04T03:00:05Z', artifact: { name: 'a.tar', size: 4096, format: 'tar' },
    components: [{ name: 'files', type: 'files', member: 'files.tar.zst', size: 100, stats: {} }, { name: 'db', type: 'mysql', member: 'db.sql.zst', size: 50, stats: {} }],
    warnings: [], tools: {},
  };
  it('fills in the artifact\'s and each component\'s SHA-256, in order', () => {
    const m = completeManifest(draft, 'a'.repeat(64), ['b'.repeat(64), 'c'.repeat(64)]);
    expect(m.artifact).toEqual({ name: 'a.tar', size: 4096, format: 'tar', sha256: 'a'.repeat(64) });
    expect(m.components.map((c) => [c.name, c.sha256])).toEqual([['files', 'b'.repeat(64)], ['db', 'c'.repeat(64)]]);
  });
  it('never produces a manifest with a missing or malformed hash', () => {
    expect(() => completeManifest(draft, '', ['b'.repeat(64), 'c'.repeat(64)])).toThrow(/no valid artifact SHA-256/);
    expect(() => completeManifest(draft, 'a'.repeat(64), ['b'.repeat(64)])).toThrow(/component hashes do not match/);
    expect(() => completeManifest(draft, 'a'.repeat(64), ['b'.repeat(64), 'xyz'])).toThrow(/component hashes do not match/);
  });
});
