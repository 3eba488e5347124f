import type { TestProject } from 'vitest/node';
import { resolveTemporalCli, startTemporalDevServer } from './helpers/temporal-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port of the Temporal frontend shared by the whole test run (namespace "default"). */
    temporalAddress: string;
    /** Path of the Temporal CLI binary (empty if Temporal is disabled for this run). */
    temporalCliPath: string;
  }
}

/**
 * Vitest globalSetup: one Temporal dev server for the whole run, exposed to tests as
 * `inject('temporalAddress')`.
 *
 * - `BACKUPCTL_TEST_TEMPORAL_ADDRESS=host:port` uses that server instead of starting one.
 * - `BACKUPCTL_TEST_TEMPORAL=off` starts nothing and provides '' (for runs without Temporal tests).
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const existing = process.env.BACKUPCTL_TEST_TEMPORAL_ADDRESS;
  if (process.env.BACKUPCTL_TEST_TEMPORAL === 'off') {
    project.provide('temporalAddress', existing ?? '');
    project.provide('temporalCliPath', process.env.TEMPORAL_CLI_PATH ?? '');
    return undefined;
  }
  const cliPath = await resolveTemporalCli();
  // Let test workers (forked after this) find the same binary without re-running the install script.
  process.env.TEMPORAL_CLI_PATH = cliPath;
  project.provide('temporalCliPath', cliPath);
  if (existing) {
    project.provide('temporalAddress', existing);
    return undefined;
  }
  const server = await startTemporalDevServer();
  project.provide('temporalAddress', server.address);
  return async () => {
    await server.stop();
  };
}
