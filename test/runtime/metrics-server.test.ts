import type { Client } from '@temporalio/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { startMetricsServer, type MetricsServer } from '../../src/runtime/metrics-server.js';

// The worker's metrics endpoint, a real HTTP server on loopback. A config without jobs: the overviews are empty and
// touch neither Temporal nor a destination, so the renderers are all there is to a request.
const config = { jobs: {} } as unknown as Config;
const client = {} as Client;

let server: MetricsServer | undefined;
/** A request that gets no answer (a handler that died) fails within 5 s. */
const get = (route: string) => fetch(`${server!.url}${route}`, { signal: AbortSignal.timeout(5000) });
afterEach(async () => { await server?.close(); server = undefined; });

const unhandled: unknown[] = [];
process.on('unhandledRejection', (reason) => { unhandled.push(reason); });

describe('metrics server', () => {
  it('a renderer that throws gives a 500 naming the error, never a 200 or an unhandled rejection; the server keeps answering', async () => {
    server = await startMetricsServer({ config, client, host: '127.0.0.1', port: 0, render: { report: () => { throw new Error('report renderer broke'); } } });
    const bad = await get('/report');
    expect(bad.status).toBe(500);
    expect(await bad.text()).toBe('backupctl: report renderer broke\n');
    const good = await get('/metrics');
    expect(good.status).toBe(200);
    expect(good.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    await new Promise((r) => setTimeout(r, 50));
    expect(unhandled).toEqual([]);
    expect((await get('/report')).status).toBe(500);
    expect((await get('/nothing')).status).toBe(404);
  });
});
