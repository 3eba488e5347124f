import { describe, expect, it } from 'vitest';
import { currentArchiveId, newestOfType, parseInfo, parseRepoLs, quoteSystemIds } from '../../src/pgbackrest/info.js';

// What Debian's pgBackRest 2.45 printed for a stanza with a full and a diff (trimmed to the fields backupctl reads).
const INFO = `[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000005","min":"000000010000000000000001"}],
"backup":[{"archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":23033310,"repository":{"delta":3048699,"size":3048699},"size":23033310},"label":"20261129-130214F","lsn":{"start":"0/3000028","stop":"0/3000100"},"prior":null,"reference":null,"timestamp":{"start":1795957334,"stop":1795957336},"type":"full"},
{"archive":{"start":"000000010000000000000004","stop":"000000010000000000000005"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":8458,"repository":{"delta":431,"size":3048700},"size":23033310},"label":"20261129-130214F_20261129-130217D","lsn":{"start":"0/4000028","stop":"0/5000050"},"prior":"20261129-130214F","reference":["20261129-130214F"],"timestamp":{"start":1795957337,"stop":1795957338},"type":"diff"}],
"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7713577997676752295,"version":"15"}],"name":"main","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]`;

describe('pgbackrest info --output=json', () => {
  it('keeps every digit of system-id (beyond 2^53, JSON.parse alone rounds it)', () => {
    expect(String((JSON.parse(INFO) as [{ db: [{ 'system-id': number }] }])[0].db[0]['system-id'])).not.toBe('7713577997676752295');
    const info = parseInfo(INFO, 'main');
    expect(info.db[0]!['system-id']).toBe('7713577997676752295');
    expect(quoteSystemIds('{"system-id": 18446744073709551615, "x": "system-id"}')).toBe('{"system-id": "18446744073709551615", "x": "system-id"}');
  });

  it('reads backups, the newest per type and the current archive', () => {
    const info = parseInfo(INFO, 'main');
    expect(newestOfType(info, 'full')!.label).toBe('20261129-130214F');
    expect(newestOfType(info, 'diff')!.info.delta).toBe(8458);
    expect(newestOfType(info, 'incr')).toBeUndefined();
    expect(currentArchiveId(info)).toBe('15-1');
  });

  it('refuses another stanza, no JSON, and an unexpected shape', () => {
    expect(() => parseInfo(INFO, 'other')).toThrow(/knows no stanza "other"/);
    expect(() => parseInfo('P00 ERROR: [055]', 'main')).toThrow(/printed no JSON/);
    expect(() => parseInfo(INFO.replace('"label":"20261129-130214F"', '"label":"../../etc"'), 'main')).toThrow(/unexpected shape: backup\.0\.label/);
    // The version becomes part of the path of the server binaries a drill runs: a major version only.
    expect(() => parseInfo(INFO.replace('"version":"15"', '"version":"../../../tmp/x"'), 'main')).toThrow(/unexpected shape: db\.0\.version/);
    expect(parseInfo(INFO.replace('"version":"15"', '"version":"9.6"'), 'main').db[0]!.version).toBe('9.6');
  });

  it('repo-ls: files with their time', () => {
    const files = parseRepoLs('{".":{"type":"path"},"15-1/0000000100000000/000000010000000000000001-e458763440114eeb76ed722d72a30ce368735244.gz":{"type":"file","size":1396377,"time":1795957332}}');
    expect(files).toEqual([{ path: '15-1/0000000100000000/000000010000000000000001-e458763440114eeb76ed722d72a30ce368735244.gz', size: 1396377, time: 1795957332 }]);
  });
});
