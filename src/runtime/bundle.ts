import { existsSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundleOption } from '@temporalio/worker';

/**
 * The workflow code as the Temporal worker loads it. `npm run build` bundles it once, after tsc, into
 * `dist/workflow-bundle.js` (runtime/write-bundle.ts); a worker, `restore`, `drill` or `prune` then starts without
 * webpack's 1 s of bundling and its memory. Under the test runner (TypeScript sources), or when the prebuilt file is
 * missing or older than the compiled code it was made from, the code is bundled in the process, once.
 */

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never;
const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

/** Where `npm run build` writes the bundle: beside the compiled code (dist/). */
export const PREBUILT_BUNDLE = here('../workflow-bundle.js');

/** The entry the bundle is made from: the compiled `.js` when installed, the `.ts` source under the test runner. */
function workflowsPath(): string {
  const js = here('../workflows/index.js');
  return existsSync(js) ? js : here('../workflows/index.ts');
}

/** The newest modification time of the compiled code under `dir` (the bundle must not be older). */
function newestCompiled(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestCompiled(p));
    else if (entry.name.endsWith('.js') && p !== PREBUILT_BUNDLE) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** The prebuilt bundle's path when it exists and is at least as new as every compiled file; otherwise undefined. */
export function prebuiltBundle(): string | undefined {
  if (!existsSync(PREBUILT_BUNDLE) || !workflowsPath().endsWith('.js')) return undefined;
  return statSync(PREBUILT_BUNDLE).mtimeMs >= newestCompiled(path.dirname(PREBUILT_BUNDLE)) ? PREBUILT_BUNDLE : undefined;
}

let inProcess: Promise<WorkflowBundleOption> | undefined;

/** The workflow code for `Worker.create({ workflowBundle })`: the prebuilt file, else bundled once per process. */
export function workflowBundle(): Promise<WorkflowBundleOption> {
  const codePath = prebuiltBundle();
  if (codePath) return Promise.resolve({ codePath });
  inProcess ??= bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: quiet });
  return inProcess;
}

const MAP_MARK = '//# sourceMappingURL=data:application/json;charset=utf-8;base64,';

/**
 * The bundle without the sources' text in its inline source map (`sourcesContent`, about half of the file): the
 * mappings stay, so a workflow's stack trace still names the original file, line and column. Every worker parses the
 * map and hands it to its workflow thread, so the text would only cost start-up time and memory.
 */
export function withoutSourcesContent(code: string): string {
  const at = code.lastIndexOf(MAP_MARK);
  if (at < 0) return code;
  const map = JSON.parse(Buffer.from(code.slice(at + MAP_MARK.length).trim(), 'base64').toString('utf8')) as { sourcesContent?: unknown };
  delete map.sourcesContent;
  return `${code.slice(0, at)}${MAP_MARK}${Buffer.from(JSON.stringify(map)).toString('base64')}\n`;
}

/** Bundles the compiled workflow code into PREBUILT_BUNDLE (written to a temporary name, then renamed). */
export async function writeWorkflowBundle(): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: quiet });
  const tmp = `${PREBUILT_BUNDLE}.${process.pid}.tmp`;
  writeFileSync(tmp, withoutSourcesContent(code));
  renameSync(tmp, PREBUILT_BUNDLE);
  return PREBUILT_BUNDLE;
}
