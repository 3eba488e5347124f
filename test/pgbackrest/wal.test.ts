import { describe, expect, it } from 'vitest';
import { archivedSegment, checkContinuity, parseLsn, parseSegment, segmentName, segmentSizesFor } from '../../src/pgbackrest/wal.js';

const MiB = 1024 * 1024;

describe('WAL segment names and the continuity check', () => {
  it('16 MiB segments: …000000FF is followed by the next log\'s …00000000; 64 MiB: …0000003F by the next log', () => {
    const next = (name: string, size: number) => segmentName({ ...parseSegment(name, size), segno: parseSegment(name, size).segno + 1n }, size);
    expect(next('0000000100000000000000FF', 16 * MiB)).toBe('000000010000000100000000');
    expect(next('00000001000000000000003F', 64 * MiB)).toBe('000000010000000100000000');
    expect(next('00000002000000050000000A', 16 * MiB)).toBe('00000002000000050000000B');
    // A segment part beyond the log's last segment is no segment of that size.
    expect(() => parseSegment('000000010000000000000040', 64 * MiB)).toThrow(/exceeds 3F/);
    expect(() => parseSegment('00000001000000000000004', 16 * MiB)).toThrow(/not a WAL segment name/);
  });

  it('an unbroken range passes, across a log boundary, with the range and count', () => {
    const names = ['0000000100000000000000FD', '0000000100000000000000FE', '0000000100000000000000FF', '000000010000000100000000', '000000010000000100000001'];
    const c = checkContinuity(names, '0000000100000000000000FE', 16 * MiB);
    expect(c).toEqual({ from: '0000000100000000000000FE', to: '000000010000000100000001', segments: 4, missing: undefined, missingCount: 0 });
  });

  it('names the first missing segment and counts the others; a naive hex count would miss the boundary', () => {
    const names = ['000000010000000000000003', '000000010000000000000005', '0000000100000000000000FF', '000000010000000100000001'];
    const c = checkContinuity(names, '000000010000000000000003', 16 * MiB);
    expect(c.missing).toBe('000000010000000000000004');
    expect(c.missingCount).toBe(0xFF - 5 - 1 + 1 + 1); // 06..FE and 1/00
    const boundary = checkContinuity(['0000000100000000000000FF', '000000010000000100000001'], '0000000100000000000000FF', 16 * MiB);
    expect(boundary.missing).toBe('000000010000000100000000');
  });

  it('a segment archived on a later timeline (after a promotion) counts; a missing one is named on the timeline before it', () => {
    const names = ['000000010000000000000003', '000000020000000000000004', '000000020000000000000006'];
    const c = checkContinuity(names, '000000010000000000000003', 16 * MiB);
    expect(c.to).toBe('000000020000000000000006');
    expect(c.missing).toBe('000000020000000000000005');
  });

  it('one name far ahead (planted in the repository) is a huge gap, counted without walking it; nothing archived after the start is its gap', () => {
    const c = checkContinuity(['000000010000000000000003', '000000010000000000000004', '00000001FFFFFFFF000000FF'], '000000010000000000000003', 16 * MiB);
    expect(c.missing).toBe('000000010000000000000005');
    expect(c.missingCount).toBe(0xFFFFFFFF * 256 + 0xFF - 5);
    expect(c.to).toBe('00000001FFFFFFFF000000FF');
    const none = checkContinuity(['000000010000000000000001'], '000000010000000000000003', 16 * MiB);
    expect(none).toEqual({ from: '000000010000000000000003', to: '000000010000000000000003', segments: 1, missing: '000000010000000000000003', missingCount: 1 });
  });

  it('archived file names: segments only (not .backup, .partial or .history files)', () => {
    expect(archivedSegment('000000010000000000000003-5f8973854b9fb3d63bca931b8b47a43945fd4f31.gz')).toBe('000000010000000000000003');
    expect(archivedSegment('000000010000000000000003-5f8973854b9fb3d63bca931b8b47a43945fd4f31.zst')).toBe('000000010000000000000003');
    expect(archivedSegment('000000010000000000000003.00000028.backup')).toBeUndefined();
    expect(archivedSegment('000000010000000000000003.partial-5f8973854b9fb3d63bca931b8b47a43945fd4f31.gz')).toBeUndefined();
    expect(archivedSegment('00000002.history')).toBeUndefined();
  });

  it('finds the segment size from the backups\' start LSNs and first segments', () => {
    expect(parseLsn('0/3000028')).toBe(0x3000028n);
    expect(parseLsn('1A/FF000000')).toBe((0x1an << 32n) + 0xff000000n);
    expect(segmentSizesFor([{ lsn: '0/3000028', segment: '000000010000000000000003' }])).toEqual([16 * MiB]);
    expect(segmentSizesFor([{ lsn: '0/C000028', segment: '000000010000000000000003' }])).toEqual([64 * MiB]);
    expect(segmentSizesFor([{ lsn: '0/3000028', segment: '000000010000000000000009' }])).toEqual([]);
  });
});
