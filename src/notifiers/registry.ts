/**
 * Every notifier type, under the `type` its config names. A notifier type is a folder `src/notifiers/<type>/` whose
 * `plugin.ts` exports a `NotifierPlugin` as `plugin`; adding one is that folder and one line here.
 */
export { plugin as email } from './email/plugin.js';
export { plugin as healthchecks } from './healthchecks/plugin.js';
export { plugin as webhook } from './webhook/plugin.js';
