/**
 * Every destination type, under the `type` its config names. A destination type is a folder
 * `src/destinations/<type>/` whose `plugin.ts` exports a `DestinationPlugin` as `plugin`; adding one is that folder
 * and one line here.
 */
export { plugin as local } from './local/plugin.js';
export { plugin as sftp } from './sftp/plugin.js';
export { plugin as s3 } from './s3/plugin.js';
