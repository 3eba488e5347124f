import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bootId, checkStagingBoot } from '../../../src/state/staging.js';
import { BackupError } from '../../../src/errors.js';

describe('staging from another boot', () => {
  it('reads this boot\'s ID from the kernel', () => {
    expect(bootId()).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  });

  it('accepts staging written in this boot, and where a boot ID is unknown', () => {
    expect(() => checkStagingBoot(bootId(), 'x')).not.toThrow();
    expect(() => checkStagingBoot('unknown', 'x')).not.toThrow();
  });

  it('refuses staging written before a restart: a permanent STAGING_LOST that names what and says what to do', () => {
    let err: unknown;
    try {
      checkStagingBoot('00000000-0000-0000-0000-000000000000', 'the artifact /s/artifact.tar');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BackupError);
    expect(err).toMatchObject({ code: 'STAGING_LOST', permanent: true, hint: 'run the backup again: it dumps anew' });
    expect((err as Error).message).toMatch(/the artifact \/s\/artifact.tar was staged before this worker's machine restarted/);
  });
});
