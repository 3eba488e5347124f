import { writeWorkflowBundle } from './bundle.js';

// `npm run build`, after tsc: bundles the workflow code once (src/runtime/bundle.ts), so that no worker start does.
const file = await writeWorkflowBundle();
console.log(`workflow bundle: ${file}`);
