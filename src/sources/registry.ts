/**
 * Every source type, under the `type` its config names. A source type is a folder `src/sources/<type>/` whose
 * `plugin.ts` exports a `SourcePlugin` as `plugin`; adding one is that folder and one line here.
 */
export { plugin as command } from './command/plugin.js';
export { plugin as files } from './files/plugin.js';
export { plugin as mysql } from './mysql/plugin.js';
export { plugin as postgres } from './postgres/plugin.js';
