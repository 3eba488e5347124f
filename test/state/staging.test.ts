import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Config, Job } from '../../src/config/schema.js';
import { BackupError } from '../../src/errors.js';
import { safeWorkflowId } from '../../src/repository/names.js';
import { drillScratchDir } from '../../src/state/scratch.js';
import { bootId, checkStagingBoot, stagingDir, stagingRoot } from '../../src/state/staging.js';

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

describe('staging and scratch folders', () => {
  const config = { stateDir: '/var/lib/backupctl' } as Config;
  it('keys a run\'s staging by its workflow ID, under <stateDir>/staging', () => {
    expect(stagingRoot(config)).toBe('/var/lib/backupctl/staging');
    expect(stagingDir(config, 'backup-app-full-2025-11-04T03:00:00Z')).toBe('/var/lib/backupctl/staging/backup-app-full-2025-11-04T03:00:00Z');
  });

  it('never lets a workflow ID leave the staging folder', () => {
    for (const id of ['../../etc', 'a/b', 'x/../../y']) {
      const dir = stagingDir(config, id);
      expect(path.dirname(dir)).toBe(stagingRoot(config));
      expect(path.basename(dir)).toBe(safeWorkflowId(id));
    }
    // An ID that would name the staging root itself or the state folder is refused, not mapped to another name.
    for (const id of ['.', '..', '']) expect(() => stagingDir(config, id)).toThrow(/cannot name a folder/);
  });

  it('puts a drill\'s restore under its scratch folder, keyed by the drill\'s workflow ID', () => {
    const job = (scratchDir?: string) => ({ drill: { scratchDir } }) as Job;
    expect(drillScratchDir(config, job(), 'drill-app-2025-11-04T03:00:00Z')).toBe('/var/lib/backupctl/drills/drill-app-2025-11-04T03:00:00Z/restore');
    expect(drillScratchDir(config, job('/scratch'), 'drill/../x')).toBe('/scratch/drill_.._x/restore');
  });
});
