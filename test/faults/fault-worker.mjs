// A backupctl worker (the built one, as `backupctl worker` runs it) with a fault point, for the SIGKILL scenarios:
//   FAULT_PAUSE_BEFORE=<activity>  on its first attempt, write FAULT_MARKER and hang before the activity runs;
//   FAULT_PAUSE_AFTER=<activity>   on its first attempt that did something (notify: a message was sent), write
//                                   FAULT_MARKER and hang after it, before its result reaches Temporal.
// The test then kills this process with SIGKILL and starts a plain worker.
import { writeFileSync } from 'node:fs';
import { Context } from '@temporalio/activity';
import { DefaultLogger, Runtime } from '@temporalio/worker';

const { runWorkers } = await import(new URL('../../dist/runtime/worker.js', import.meta.url).href);
Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });

const before = process.env.FAULT_PAUSE_BEFORE;
const after = process.env.FAULT_PAUSE_AFTER;
const marker = process.env.FAULT_MARKER;
const hang = (what) => {
  writeFileSync(marker, what);
  return new Promise(() => undefined);
};

await runWorkers({
  configFile: process.argv[2],
  activities: (a) => Object.fromEntries(Object.entries(a).map(([name, fn]) => [name, async (input) => {
    const first = Context.current().info.attempt === 1;
    if (first && name === before) await hang(`before ${name}`);
    const result = await fn(input);
    if (first && name === after && (name !== 'notify' || result.sent)) await hang(`after ${name}`);
    return result;
  }])),
});
