#!/usr/bin/env node
import('../dist/cli/index.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli')) {
    console.error('backupctl is not built yet: run `npm install` (or `npm run build`) in the project folder first');
    process.exit(2);
  }
  throw err;
});
