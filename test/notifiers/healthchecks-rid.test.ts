import { describe, expect, it } from 'vitest';
import { pingRunId, pingSuffix, pingUrl } from '../../src/notifiers/healthchecks/index.js';

describe('healthchecks run IDs and URLs', () => {
  it('rid: the first 16 bytes of SHA-256(workflow ID) as an RFC 9562 version 8 UUID', () => {
    // sha256("backup-app-full-2025-11-04T03:00:00Z") = bbde302aea13de26af4dc7bd47d6996a… (sha256sum);
    // version nibble set to 8 (de → 8e), variant bits to 10 (af stays af).
    expect(pingRunId('backup-app-full-2025-11-04T03:00:00Z')).toBe('bbde302a-ea13-8e26-af4d-c7bd47d6996a');
  });

  it('rid: stable per workflow, different between workflows, always a valid UUID', () => {
    const ids = ['a', 'backup-app-full-2025-11-04T03:00:00Z', 'backup-app-diff-2025-11-04T03:00:00Z', 'x'.repeat(500), 'ümlaut'];
    const rids = ids.map(pingRunId);
    expect(ids.map(pingRunId)).toEqual(rids);
    expect(new Set(rids).size).toBe(ids.length);
    for (const rid of rids) expect(rid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('endpoints: start → /start, success → the check itself, everything else → /fail', () => {
    expect(pingSuffix('start')).toBe('/start');
    expect(pingSuffix('success')).toBe('');
    for (const k of ['failure', 'cancelled', 'skipped', 'alert'] as const) expect(pingSuffix(k)).toBe('/fail');
  });

  it('URLs: base without trailing slashes, optional rid', () => {
    expect(pingUrl('https://hc-ping.com', 'u-u-i-d', '/start', 'r-i-d').href).toBe('https://hc-ping.com/u-u-i-d/start?rid=r-i-d');
    expect(pingUrl('https://hc.example.org/ping//', 'key/slug', '').href).toBe('https://hc.example.org/ping/key/slug');
  });
});
