import { createHash, randomBytes } from 'node:crypto';
import { S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { destinationContract } from './contract.js';
import { getFreePort } from '../helpers/free-port.js';
import { readFile } from 'node:fs/promises';
import { startQuotaProxy } from '../helpers/quota-proxy.js';
import { startS3Proxy } from '../helpers/s3proxy.js';

// The destination contract against s3proxy 4.1.0 (filesystem-nio2, AWS V4 auth) on loopback, over HTTPS (caFile).
destinationContract('s3', async () => {
  const s3 = await startS3Proxy({ tls: true });
  process.env.CONTRACT_S3_KEY = s3.accessKeyId;
  process.env.CONTRACT_S3_SECRET = s3.secretAccessKey;
  process.env.CONTRACT_S3_WRONG = 'not-the-secret';
  const quota = await startQuotaProxy({ endpoint: s3.endpoint, ca: await readFile(s3.caFile!) }, 8 * 1024 * 1024, { status: 403, code: 'QuotaExceeded' });
  const config = {
    type: 's3', bucket: s3.bucket, prefix: 'contract/deep', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, caFile: s3.caFile,
    accessKeyId: { env: 'CONTRACT_S3_KEY' }, secretAccessKey: { env: 'CONTRACT_S3_SECRET' }, partSize: '5MiB', parallelParts: 3,
  };
  return {
    config,
    async damage(d, w) {
      // Part 1 replaced by other bytes of the same size (sent with their own correct SHA-256): stored bytes that are not
      // what the run sent.
      const record = JSON.parse((await d.readSmallFile(w.pending))!.toString()) as { uploadId: string };
      const client = new S3Client({
        endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        requestHandler: { httpsAgent: new (await import('node:https')).Agent({ ca: (await import('node:fs')).readFileSync(s3.caFile!) }) },
      });
      const body = randomBytes(5 * 1024 * 1024);
      await client.send(new UploadPartCommand({
        Bucket: s3.bucket, Key: `contract/deep/${w.final}`, UploadId: record.uploadId, PartNumber: 1, Body: body,
        ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
      }));
      client.destroy();
    },
    badAuth: { ...config, secretAccessKey: { env: 'CONTRACT_S3_WRONG' } },
    unreachable: { ...config, endpoint: `https://127.0.0.1:${await getFreePort()}` },
    // s3proxy has no quota (and answers a full disk with 500 InternalError, which no client can tell from a passing
    // fault): a proxy in front of it refuses writes past 8 MiB as Ceph RGW does when a bucket's quota is exceeded
    // (403 QuotaExceeded, which must not be taken for an auth failure).
    full: { config: { ...config, endpoint: quota.endpoint, caFile: undefined }, bytes: 20 * 1024 * 1024 },
    stop: async () => { await quota.stop(); await s3.stop(); },
  };
});
