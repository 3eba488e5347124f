import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { destinationContract } from './contract.js';
import { makeTempDir } from '../helpers/util.js';

// The destination contract against a local folder (no server).
destinationContract('local', async () => {
  const tmp = await makeTempDir('backupctl-contract-local-');
  const root = path.join(tmp.path, 'backups');
  mkdirSync(root);
  return {
    config: { type: 'local', path: root },
    async damage(_d, w) {
      const f = path.join(root, w.pending);
      const b = readFileSync(f);
      b[1000] = b[1000]! ^ 0xff;
      writeFileSync(f, b);
    },
    unreachable: { type: 'local', path: path.join(tmp.path, 'not-mounted') },
    why: {
      badAuth: 'a local folder has no credentials (a folder the worker may not write to is a permanent DESTINATION_IO)',
      full: 'a full local disk needs a mount of its own; the SFTP contract produces ENOSPC on a tmpfs, and the same errno maps to DESTINATION_SPACE here',
    },
    stop: () => tmp.cleanup(),
  };
});
