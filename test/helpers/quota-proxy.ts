import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/** How a store says that a write does not fit: Ceph RGW's bucket quota (403 QuotaExceeded), MinIO's full disk (507). */
export type QuotaAnswer = { status: 403; code: 'QuotaExceeded' } | { status: 507; code: 'XMinioStorageFull' };

export interface QuotaProxy {
  /** `http://127.0.0.1:<port>`: give it to the S3 client as its endpoint. */
  endpoint: string;
  /** Writes refused so far. */
  refused(): number;
  stop(): Promise<void>;
}

/**
 * An S3 quota in front of a real S3 server that has none (s3proxy): an HTTP proxy on 127.0.0.1 that forwards every
 * request unchanged (the Host header too, so the client's V4 signature still verifies there) and counts the bodies
 * of PUTs (objects and parts). A PUT that would take the total past `quotaBytes` is answered as `answer` says, with
 * S3's XML error body, and never reaches the server.
 */
export async function startQuotaProxy(target: { endpoint: string; ca?: Buffer }, quotaBytes: number, answer: QuotaAnswer): Promise<QuotaProxy> {
  const to = new URL(target.endpoint);
  const agent = to.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...(target.ca ? { ca: target.ca } : {}) }) : new http.Agent({ keepAlive: true });
  const request = to.protocol === 'https:' ? https.request : http.request;
  let stored = 0;
  let refused = 0;
  const server = http.createServer((req, res) => {
    const length = Number(req.headers['content-length'] ?? 0);
    if (req.method === 'PUT' && !req.headers['x-amz-copy-source'] && stored + length > quotaBytes) {
      refused++;
      req.resume();
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${answer.code}</Code><Message>quota of ${quotaBytes} bytes exceeded</Message><RequestId>quota-proxy</RequestId></Error>`;
      res.writeHead(answer.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
      return;
    }
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers, agent }, (down) => {
      if (req.method === 'PUT' && down.statusCode === 200) stored += length;
      res.writeHead(down.statusCode ?? 502, down.headers);
      down.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    refused: () => refused,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
