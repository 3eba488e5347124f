import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, utimesSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The workflow bundle that `npm run build` writes once (src/runtime/bundle.ts): the compiled CLI and worker load it
// instead of bundling at every start, and fall back to bundling when it is older than the compiled code. `npm test`
// builds dist/ before the tests run; the e2e tests then run every worker on this file.

const dist = (rel: string) => fileURLToPath(new URL(`../../dist/${rel}`, import.meta.url));
const prebuilt = () => execFileSync(process.execPath, ['--input-type=module', '-e',
  `const m = await import(${JSON.stringify(dist('runtime/bundle.js'))}); console.log(m.prebuiltBundle() ?? 'none')`], { encoding: 'utf8' }).trim();

describe('prebuilt workflow bundle', () => {
  it('is used from dist/ while it is as new as the compiled code, and not once a compiled file is newer', () => {
    const bundle = dist('workflow-bundle.js');
    expect(statSync(bundle).size).toBeGreaterThan(100_000);
    expect(prebuilt()).toBe(bundle);
    const compiled = dist('workflows/backup.js');
    const { atime, mtime } = statSync(compiled);
    try {
      utimesSync(compiled, atime, new Date(statSync(bundle).mtimeMs + 60_000));
      expect(prebuilt()).toBe('none');
    } finally {
      utimesSync(compiled, atime, mtime);
    }
    expect(prebuilt()).toBe(bundle);
  });

  it('keeps its source map\'s mappings but not the sources\' text', () => {
    const code = readFileSync(dist('workflow-bundle.js'), 'utf8');
    const mark = '//# sourceMappingURL=data:application/json;charset=utf-8;base64,';
    const at = code.lastIndexOf(mark);
    expect(at).toBeGreaterThan(0);
    const map = JSON.parse(Buffer.from(code.slice(at + mark.length).trim(), 'base64').toString('utf8')) as Record<string, unknown>;
    expect(map).not.toHaveProperty('sourcesContent');
    expect((map.mappings as string).length).toBeGreaterThan(10_000);
    expect((map.sources as string[]).some((s) => /workflows\/backup\.(ts|js)$/.test(s))).toBe(true);
  });
});
