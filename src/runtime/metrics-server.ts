/**
 * The worker's HTTP endpoint for backupctl's own metrics (`/metrics`, src/monitor/metrics.ts) and the live report
 * (`/report`, src/monitor/report.ts). The Temporal SDK serves its worker metrics on `metrics.prometheus` itself (it owns
 * that port), so this one listens on `metrics.backups`, by default the same host and the next port.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { backupMetrics, renderExposition } from '../monitor/metrics.js';
import { overview, type JobOverview } from '../monitor/overview.js';
import { renderReport } from '../monitor/report.js';

/** `metrics.backups`, or the SDK's host with its port + 1. */
export function backupMetricsAddress(metrics: NonNullable<Config['metrics']>): { host: string; port: number } {
  const [host, port] = (metrics.backups ?? metrics.prometheus).split(/:(?=\d+$)/) as [string, string];
  return { host, port: metrics.backups ? Number(port) : Number(port) + 1 };
}

/** Overviews are read at most this often: a scrape every 15 s must not walk every destination every 15 s. */
const CACHE_MS = 30_000;

export interface MetricsServer { url: string; close(): Promise<void> }

export interface MetricsServerOptions {
  config: Config;
  client: Client;
  host: string;
  /** 0: any free port. */
  port: number;
  /** What renders each route from the overviews; default the exposition and the HTML report (a test makes one fail). */
  render?: { metrics?: (jobs: JobOverview[]) => string; report?: (jobs: JobOverview[]) => string };
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const renderMetrics = opts.render?.metrics ?? ((jobs: JobOverview[]) => renderExposition(backupMetrics(jobs)));
  const renderHtml = opts.render?.report ?? renderReport;
  let cached: { at: number; value: Promise<JobOverview[]> } | undefined;
  const overviews = () => {
    if (!cached || Date.now() - cached.at > CACHE_MS) {
      const value = overview(opts.config, opts.client);
      cached = { at: Date.now(), value };
      value.catch(() => { cached = undefined; });
    }
    return cached.value;
  };
  const server: Server = createServer((req, res) => {
    const route = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (route !== '/metrics' && route !== '/report')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('backupctl serves /metrics and /report\n');
      return;
    }
    overviews().then((jobs) => {
      // Rendered before the status is set: a failure to render is a 500, never a 200 with an error for a body.
      const body = route === '/metrics' ? renderMetrics(jobs) : renderHtml(jobs);
      res.writeHead(200, { 'content-type': route === '/metrics' ? 'text/plain; version=0.0.4; charset=utf-8' : 'text/html; charset=utf-8' }).end(body);
    }, (err: unknown) => {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`backupctl: ${errorMessage(err)}\n`);
    }).catch((err: unknown) => {
      // Rendering failed: an answer, never an unhandled rejection (which would end the worker and its runs).
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`backupctl: ${errorMessage(err)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Later errors (accepting connections with no descriptor left) are logged; unheard, one would end the worker.
  server.on('error', (err) => { process.stderr.write(`backupctl metrics server ${opts.host}:${opts.port}: ${errorMessage(err)}\n`); });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
