import { expect } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';

/** A minimal valid config: one files job backing up to one local destination. */
export const minimalConfig = `
destinations:
  nas:
    type: local
    path: /srv/backups
jobs:
  app:
    sources:
      - name: files
        type: files
        paths: [/srv/app]
    destinations: [nas]
`;

/** The problems a config with mistakes is refused with (fails the test if it is accepted). */
export function problems(text: string) {
  try {
    parseConfig(text, '/etc/backupctl/backup.yml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}
