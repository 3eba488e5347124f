import { spawn, type ChildProcess } from 'node:child_process';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { getFreePort, isPortOpen } from './free-port.js';
import { LogBuffer, makeTempDir, runCommand, waitFor, watchExit } from './util.js';

export interface S3ProxyOptions {
  /** Serve HTTPS with a keytool-generated self-signed certificate (its PEM is `caFile`). */
  tls?: boolean;
  /** A bucket to create once the server is up (default `backups`; empty string: none). */
  bucket?: string;
  /**
   * Run the JVM as a server would be run (the JIT's top tier on; a bigger heap) instead of tuned for a quick start in
   * tests (C1 only, which leaves SHA-256 and MD5 to unoptimised code): the bench measures the server as deployed.
   */
  serverJit?: boolean;
}

export interface S3ProxyHandle {
  /** `http(s)://127.0.0.1:<port>` */
  endpoint: string;
  host: string;
  port: number;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The server certificate as PEM (tls only): a client trusts it as its CA. */
  caFile?: string;
  /** Where the filesystem-nio2 provider keeps buckets (a bucket is a folder, an object a file). */
  baseDir: string;
  logs: LogBuffer;
  pid: number;
  stop(): Promise<void>;
}

/** The s3proxy 4.1.0 jar: $S3PROXY_JAR, else what scripts/install-s3proxy.sh prints. */
export async function s3proxyJar(): Promise<string> {
  if (process.env.S3PROXY_JAR) return process.env.S3PROXY_JAR;
  // From test/helpers, or from the bench's build folder (.bench-build/test/helpers).
  const script = ['../../scripts', '../../../scripts'].map((d) => path.resolve(import.meta.dirname, d, 'install-s3proxy.sh')).find((f) => existsSync(f));
  if (!script) throw new Error('scripts/install-s3proxy.sh not found; set S3PROXY_JAR');
  const r = await runCommand('bash', [script], { timeoutMs: 600_000 });
  const jar = r.stdout.trim().split('\n').pop();
  if (r.code !== 0 || !jar) throw new Error(`scripts/install-s3proxy.sh failed (${r.code}): ${r.stderr}`);
  return jar;
}

/**
 * Starts s3proxy on 127.0.0.1 (a free port) with the filesystem-nio2 provider in a temporary folder and AWS V4 auth;
 * with `tls`, on HTTPS with a throwaway keystore. The JVM takes a few seconds to start: one per test file.
 */
export async function startS3Proxy(opts: S3ProxyOptions = {}): Promise<S3ProxyHandle> {
  const jar = await s3proxyJar();
  const tmp = await makeTempDir('backupctl-s3proxy-');
  const baseDir = path.join(tmp.path, 'data');
  await mkdir(baseDir, { recursive: true });
  const accessKeyId = 'backupctl-test';
  const secretAccessKey = 'backupctl-test-secret-key';
  const host = '127.0.0.1';
  const logs = new LogBuffer();
  let caFile: string | undefined;
  const tlsProps: string[] = [];
  if (opts.tls) {
    const keystore = path.join(tmp.path, 'keystore.jks');
    // dns:127.0.0.1 too: pgBackRest before 2.46 (Debian 12 has 2.45) matches the host only against DNS names.
    const ks = await runCommand('keytool', ['-genkeypair', '-keystore', keystore, '-storepass', 'password', '-keypass', 'password', '-alias', 's3proxy',
      '-keyalg', 'RSA', '-keysize', '2048', '-validity', '2', '-dname', 'CN=127.0.0.1', '-ext', 'SAN=ip:127.0.0.1,dns:localhost,dns:127.0.0.1']);
    if (ks.code !== 0) throw new Error(`keytool -genkeypair failed: ${ks.stderr}`);
    caFile = path.join(tmp.path, 'ca.pem');
    const ex = await runCommand('keytool', ['-exportcert', '-rfc', '-keystore', keystore, '-storepass', 'password', '-alias', 's3proxy', '-file', caFile]);
    if (ex.code !== 0) throw new Error(`keytool -exportcert failed: ${ex.stderr}`);
    tlsProps.push(`s3proxy.keystore-path=${keystore}`, 's3proxy.keystore-password=password');
  }
  for (let attempt = 1; ; attempt++) {
    const port = await getFreePort(host);
    const props = path.join(tmp.path, 's3proxy.conf');
    await writeFile(props, [
      `s3proxy.${opts.tls ? 'secure-endpoint' : 'endpoint'}=${opts.tls ? 'https' : 'http'}://${host}:${port}`,
      's3proxy.authorization=aws-v4',
      `s3proxy.identity=${accessKeyId}`,
      `s3proxy.credential=${secretAccessKey}`,
      ...tlsProps,
      'jclouds.provider=filesystem-nio2',
      `jclouds.filesystem.basedir=${baseDir}`,
      `jclouds.identity=${accessKeyId}`,
      `jclouds.credential=${secretAccessKey}`,
      '',
    ].join('\n'));
    const jvm = opts.serverJit ? ['-Xmx512m', '-XX:+UseSerialGC'] : ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1'];
    const bucket = opts.bucket ?? 'backups';
    const child: ChildProcess = spawn('java', [...jvm, '-jar', jar, '--properties', props], {
      stdio: ['ignore', 'pipe', 'pipe'], detached: false,
    });
    child.stdout!.on('data', (d: Buffer) => logs.append(d));
    child.stderr!.on('data', (d: Buffer) => logs.append(d));
    const exit = watchExit(child, logs);
    try {
      await waitFor(async () => exit.exited() ? Promise.reject(new Error('s3proxy exited')) : isPortOpen(port, host), { timeoutMs: 60_000, intervalMs: 200, description: `s3proxy on ${host}:${port}` });
    } catch (err) {
      child.kill('SIGKILL');
      await exit.done;
      if (attempt < 3 && /BindException|Address already in use/.test(logs.toString())) continue;
      await tmp.cleanup();
      throw new Error(`s3proxy did not start: ${(err as Error).message}\n${logs.toString().slice(-4000)}`);
    }
    const endpoint = `${opts.tls ? 'https' : 'http'}://${host}:${port}`;
    // The filesystem-nio2 provider: a bucket is a folder of basedir.
    if (bucket) await mkdir(path.join(baseDir, bucket), { recursive: true });
    return {
      endpoint, host, port, bucket, accessKeyId, secretAccessKey, caFile, baseDir, logs, pid: child.pid!,
      async stop() {
        if (!exit.exited()) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exit.done;
          clearTimeout(t);
        }
        await tmp.cleanup();
      },
    };
  }
}

/** Every key under `prefix/` in the bucket, relative to it, sorted (what a test sees of a destination). */
export async function s3Keys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ...(token ? { ContinuationToken: token } : {}) }));
    out.push(...(r.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)));
    token = r.NextContinuationToken;
  } while (token);
  return out.sort();
}

/** The keys of the incomplete multipart uploads under `prefix/`, relative to it. */
export async function s3IncompleteUploads(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  return ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }))).Uploads ?? []).map((u) => u.Key!.slice(prefix.length + 1));
}

/** An object's bytes, by its key relative to `prefix/`. */
export async function s3Object(client: S3Client, bucket: string, prefix: string, rel: string): Promise<Buffer> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${rel}` }));
  return Buffer.from(await r.Body!.transformToByteArray());
}
