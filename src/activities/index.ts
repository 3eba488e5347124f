import { archive } from './archive.js';
import { checkSizes } from './check-sizes.js';
import { cleanup } from './cleanup.js';
import type { ActivityDeps } from './context.js';
import { dump } from './dump.js';
import { finalize } from './finalize.js';
import { notifiersOf, notify } from './notify.js';
import { isRunning, requestLock } from './lock.js';
import { checkFreshness } from './monitor.js';
import { preflight } from './preflight.js';
import { prune } from './prune.js';
import { upload } from './upload.js';
import { verify } from './verify.js';

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
    finalize: finalize(deps),
    cleanup: cleanup(deps),
    notify: notify(deps),
    notifiersOf: notifiersOf(deps),
    requestLock: requestLock(deps),
    isRunning: isRunning(),
    checkFreshness: checkFreshness(deps),
    prune: prune(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
