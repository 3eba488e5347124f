import { archive } from './archive.js';
import { checkSizes } from './check-sizes.js';
import { checksum } from './checksum.js';
import { cleanup } from './cleanup.js';
import type { ActivityDeps } from './context.js';
import { dump } from './dump.js';
import { finalize } from './finalize.js';
import { notifiersOf, notify } from './notify.js';
import { isRunning, requestLock } from './lock.js';
import { checkJobFreshness, freshnessJobs } from './monitor.js';
import { preflight } from './preflight.js';
import { prune } from './prune.js';
import { upload } from './upload.js';
import { verify } from './verify.js';
import { prepareDrill, writeDrillReport } from './drill.js';
import { fetchArtifact } from './fetch.js';
import { dropDatabases, loadDatabases } from './load-databases.js';
import { cleanupRestore } from './restore-cleanup.js';
import { planRestore } from './restore-plan.js';
import { unpackArtifacts } from './unpack.js';
import { requestStanzaLock } from './pgbackrest-lock.js';
import { pgbackrestPreflight } from './pgbackrest-preflight.js';
import { pgbackrestBackup } from './pgbackrest-backup.js';
import { pgbackrestVerify } from './pgbackrest-verify.js';
import { pgbackrestDrill, pgbackrestDrillPlan } from './pgbackrest-drill.js';

export type { ActivityDeps } from './context.js';

/** The steps of a backup run, bound to the worker's config file. */
export function createActivities(deps: ActivityDeps) {
  return {
    preflight: preflight(deps),
    dump: dump(deps),
    archive: archive(deps),
    checkSizes: checkSizes(deps),
    upload: upload(deps),
    verify: verify(deps),
    checksum: checksum(deps),
    finalize: finalize(deps),
    cleanup: cleanup(deps),
    notify: notify(deps),
    notifiersOf: notifiersOf(deps),
    requestLock: requestLock(deps),
    isRunning: isRunning(),
    freshnessJobs: freshnessJobs(deps),
    checkJobFreshness: checkJobFreshness(deps),
    prune: prune(deps),
    // Restore and restore drills.
    planRestore: planRestore(deps),
    fetchArtifact: fetchArtifact(deps),
    unpackArtifacts: unpackArtifacts(deps),
    loadDatabases: loadDatabases(deps),
    dropDatabases: dropDatabases(deps),
    cleanupRestore: cleanupRestore(deps),
    prepareDrill: prepareDrill(deps),
    writeDrillReport: writeDrillReport(deps),
    // pgBackRest jobs.
    requestStanzaLock: requestStanzaLock(deps),
    pgbackrestPreflight: pgbackrestPreflight(deps),
    pgbackrestBackup: pgbackrestBackup(deps),
    pgbackrestVerify: pgbackrestVerify(deps),
    pgbackrestDrillPlan: pgbackrestDrillPlan(deps),
    pgbackrestDrill: pgbackrestDrill(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
