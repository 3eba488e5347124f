import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getFreePort } from './free-port.js';
import { LogBuffer, watchExit, isProcessAlive, killAll, listDescendants, makeTempDir, runCommand, type RunResult } from './util.js';

/** OpenSSH's SFTP server program (Debian's openssh-sftp-server), for servers that log their requests. */
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

export interface SshdOptions {
  /** Account allowed to log in (default: the user running the tests; root in CI). */
  user?: string;
  /** Add `ForceCommand internal-sftp`: the account can use SFTP but cannot run commands. */
  sftpOnly?: boolean;
  /** Extra sshd_config lines, appended verbatim. */
  extraConfig?: readonly string[];
  /**
   * Serve `root` from a tmpfs of this size (e.g. '16m') mounted in a private mount namespace (`unshare -m`, needs
   * root) in which sshd runs: a remote disk that fills up. The files are visible only inside that namespace: use
   * `inNamespace` to look at them.
   */
  tmpfsSize?: string;
  /** Serve SFTP with the `sftp-server` program at log level VERBOSE: `sftpLog()` names each open, close, rename and fsync. */
  logSftpRequests?: boolean;
  /**
   * The server's host keys, in the order sshd lists them (default: ed25519 only). `hostKeyFingerprint` and
   * `hostPublicKey` describe the first; `hostKeys` all of them; known_hosts lists all of them.
   */
  hostKeyTypes?: readonly HostKeyType[];
}

export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';

export interface HostKeyInfo {
  type: HostKeyType;
  /** 'SHA256:…' as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** "ecdsa-sha2-nistp256 AAAA…". */
  publicKey: string;
}

export interface SshdHandle {
  host: '127.0.0.1';
  port: number;
  user: string;
  /** Temp dir holding keys, config, pid file; removed by stop(). */
  dir: string;
  /** Empty writable directory (absolute path) to use as a backup target on the "remote" side. */
  root: string;
  /** ed25519 private key (no passphrase) authorised for `user`. */
  clientKeyPath: string;
  /** Host key fingerprint as `ssh-keygen -lf` prints it: 'SHA256:…'. */
  hostKeyFingerprint: string;
  /** The host public key line, "ssh-ed25519 AAAA…". */
  hostPublicKey: string;
  /** Every host key of the server (`hostKeyTypes`). */
  hostKeys: readonly HostKeyInfo[];
  /** known_hosts file with the entry for [127.0.0.1]:port. */
  knownHostsPath: string;
  /** Path of the generated sshd_config. */
  configPath: string;
  /** PID of the listening sshd. */
  pid: number;
  sftpOnly: boolean;
  /**
   * OpenSSH client options for this server (no destination):
   * `-F none -i key -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=… -o StrictHostKeyChecking=yes -p port`.
   * Use as `ssh ${sshArgs} user@127.0.0.1 cmd`; for sftp/scp replace `-p` by `-P`.
   */
  sshArgs: readonly string[];
  /** sshd's stderr so far (LogLevel VERBOSE). */
  log(): string;
  /** With `logSftpRequests`: the SFTP requests so far, one per line ('' before the first session). */
  sftpLog(): string;
  /** Kill sshd and every session process it started, then remove `dir`. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server (and its sessions) but keeps its keys and files: the server went away. */
  down(): Promise<void>;
  /** Starts it again on the same port after `down()` (not with `tmpfsSize`: the tmpfs went with the namespace). */
  up(): Promise<void>;
  /** Runs a command in sshd's mount namespace (where a tmpfs root is visible); resolves with its result. */
  inNamespace(args: readonly string[]): Promise<RunResult>;
}

const SSHD_START_TIMEOUT_MS = 15_000;

function sshdPath(): string {
  // sshd re-executes itself, so it must be started by absolute path.
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, 'sshd');
    if (existsSync(candidate)) return candidate;
  }
  return '/usr/sbin/sshd';
}

async function mustRun(file: string, args: readonly string[]): Promise<RunResult> {
  const result = await runCommand(file, args, { timeoutMs: 30_000 });
  if (result.code !== 0) {
    throw new Error(`${file} ${args.join(' ')} failed (exit ${result.code}):\n${result.stderr}${result.stdout}`);
  }
  return result;
}

async function lookupIds(user: string): Promise<{ uid: number; gid: number }> {
  const uid = await mustRun('id', ['-u', user]);
  const gid = await mustRun('id', ['-g', user]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Start a throwaway OpenSSH server on a free 127.0.0.1 port, with fresh host and client keys.
 * Requires openssh-server. As root, /run/sshd is created if missing.
 */
export async function startSshd(opts: SshdOptions = {}): Promise<SshdHandle> {
  const user = opts.user ?? os.userInfo().username;
  const sftpOnly = opts.sftpOnly ?? false;
  const sshd = sshdPath();
  const isRoot = process.getuid?.() === 0;
  if (isRoot) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const tmp = await makeTempDir('backupctl-sshd-');
  try {
    const dir = tmp.path;
    const sftpLogPath = path.join(dir, 'sftp-server.log');
    const hostKeyTypes = opts.hostKeyTypes ?? ['ed25519'];
    if (hostKeyTypes.length === 0) throw new Error('startSshd: hostKeyTypes must name at least one type');
    const hostKeyFiles = hostKeyTypes.map((t, i) => path.join(dir, i === 0 && t === 'ed25519' ? 'host_key' : `host_key_${t}`));
    const clientKeyPath = path.join(dir, 'client_key');
    const authorizedKeys = path.join(dir, 'authorized_keys');
    const knownHostsPath = path.join(dir, 'known_hosts');
    const configPath = path.join(dir, 'sshd_config');
    const pidFile = path.join(dir, 'sshd.pid');
    const root = path.join(dir, 'remote');

    const hostKeys: HostKeyInfo[] = [];
    for (const [i, type] of hostKeyTypes.entries()) {
      const file = hostKeyFiles[i]!;
      await mustRun('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '3072'] : []), '-N', '', '-C', 'backupctl-test-host', '-f', file]);
      const publicKey = (await readFile(`${file}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
      const fp = (await mustRun('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`])).stdout.split(/\s+/)[1] ?? '';
      if (!fp.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output for ${file}.pub`);
      hostKeys.push({ type, fingerprint: fp, publicKey });
    }
    await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'backupctl-test-client', '-f', clientKeyPath]);
    await writeFile(authorizedKeys, await readFile(`${clientKeyPath}.pub`), { mode: 0o600 });
    await mkdir(root, { mode: 0o700 });

    const hostPublicKey = hostKeys[0]!.publicKey;
    const fingerprint = hostKeys[0]!.fingerprint;

    if (user !== os.userInfo().username) {
      // Another account logs in: it must reach authorized_keys (sshd reads it as that user) and own the target dir.
      if (!isRoot) throw new Error(`startSshd: only root can serve another user (${user})`);
      const { uid, gid } = await lookupIds(user);
      await chmod(dir, 0o711);
      await chown(authorizedKeys, uid, gid);
      await chown(root, uid, gid);
    }

    const sshArgsFor = (port: number): string[] => [
      '-F', 'none',
      '-i', clientKeyPath,
      '-o', 'IdentitiesOnly=yes',
      '-o', 'IdentityAgent=none',
      '-o', 'BatchMode=yes',
      '-o', `UserKnownHostsFile=${knownHostsPath}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'ConnectTimeout=10',
      '-p', String(port),
    ];

    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const port = await getFreePort();
      const config = [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        ...hostKeyFiles.map((f) => `HostKey ${f}`),
        `PidFile ${pidFile}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'UsePAM no',
        'StrictModes no',
        'UseDNS no',
        'PrintMotd no',
        'PrintLastLog no',
        'LogLevel VERBOSE',
        `AllowUsers ${user}`,
        'PermitRootLogin prohibit-password',
        // Backup tests open several connections and channels at once.
        'MaxStartups 100:30:200',
        'MaxSessions 100',
        // Logged requests: the sftp-server program, its log appended to a file (the subsystem runs via the shell).
        opts.logSftpRequests ? `Subsystem sftp ${SFTP_SERVER} -e -l VERBOSE 2>>${sftpLogPath}` : 'Subsystem sftp internal-sftp',
        ...(sftpOnly ? ['ForceCommand internal-sftp', 'AllowTcpForwarding no', 'X11Forwarding no', 'PermitTTY no'] : []),
        ...(opts.extraConfig ?? []),
        '',
      ].join('\n');
      await writeFile(configPath, config, { mode: 0o600 });
      await mustRun(sshd, ['-t', '-f', configPath]);
      await writeFile(knownHostsPath, hostKeys.map((k) => `[127.0.0.1]:${port} ${k.publicKey}\n`).join(''), { mode: 0o600 });

      const command: [string, string[]] = opts.tmpfsSize
        ? ['unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c',
          `mount -t tmpfs -o size=${opts.tmpfsSize},mode=0700 backupctl-test-remote "$1" && exec "$2" -D -e -f "$3"`, 'sh', root, sshd, configPath]]
        : [sshd, ['-D', '-e', '-f', configPath]];
      try {
        let started = await launch(command, port);
        let stopping: Promise<void> | undefined;
        const stop = (): Promise<void> => {
          stopping ??= (async () => {
            await started.stop();
            await tmp.cleanup();
          })();
          return stopping;
        };
        const handle = { pid: started.pid };
        return {
          host: '127.0.0.1',
          port,
          user,
          dir,
          root,
          clientKeyPath,
          hostKeyFingerprint: fingerprint,
          hostPublicKey,
          hostKeys,
          knownHostsPath,
          configPath,
          get pid() { return handle.pid; },
          sftpOnly,
          sshArgs: sshArgsFor(port),
          log: () => started.log(),
          sftpLog: () => (existsSync(sftpLogPath) ? readFileSync(sftpLogPath, 'utf8').replace(/\r\n/g, '\n') : ''),
          stop,
          down: () => started.stop(),
          async up() {
            if (opts.tmpfsSize) throw new Error('a tmpfs-backed sshd cannot come back: its disk went with it');
            started = await launch(command, port);
            handle.pid = started.pid;
          },
          inNamespace: (args) => runCommand('nsenter', ['-t', String(handle.pid), '-m', '--', ...args], { timeoutMs: 30_000 }),
        };
      } catch (err) {
        lastError = err as Error;
        if (!(err instanceof PortClashError)) throw err;
      }
    }
    throw lastError ?? new Error('could not start sshd');
  } catch (err) {
    await tmp.cleanup();
    throw err;
  }
}

/** `startSshd({ ...opts, sftpOnly: true })`: the account can only use the SFTP subsystem. */
export function startSshdSftpOnly(opts: Omit<SshdOptions, 'sftpOnly'> = {}): Promise<SshdHandle> {
  return startSshd({ ...opts, sftpOnly: true });
}

class PortClashError extends Error {}

interface Launched {
  pid: number;
  log(): string;
  stop(): Promise<void>;
}

function launch([file, args]: [string, string[]], port: number): Promise<Launched> {
  const logs = new LogBuffer();
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const watched = watchExit(child, logs);
  const exitPromise = watched.done;

  // Session processes call setsid(), so they are not in sshd's process group: find them via /proc.
  const killTree = (): void => {
    const pid = child.pid;
    if (pid === undefined) return;
    const descendants = listDescendants(pid);
    if (!watched.exited()) killAll([pid], 'SIGKILL');
    killAll(descendants, 'SIGKILL');
  };
  process.once('exit', killTree);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const pid = child.pid;
      const descendants = pid === undefined ? [] : listDescendants(pid);
      if (!watched.exited()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exitPromise;
        clearTimeout(timer);
      }
      killAll(descendants, 'SIGKILL');
      const deadline = Date.now() + 5_000;
      while (descendants.some(isProcessAlive) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      process.removeListener('exit', killTree);
    })();
    return stopping;
  };

  return new Promise<Launched>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stderr.removeListener('data', onReady);
      if (err) {
        stop().then(() => reject(err), () => reject(err));
      } else {
        resolve({ pid: child.pid as number, log: () => logs.toString(), stop });
      }
    };
    const onReady = (): void => {
      const text = logs.toString();
      if (text.includes(`Server listening on 127.0.0.1 port ${port}`)) finish();
      else if (/Address already in use|Cannot bind any address/i.test(text)) {
        finish(new PortClashError(`sshd could not bind port ${port}:\n${text}`));
      }
    };
    const timer = setTimeout(() => {
      finish(new Error(`sshd did not report "Server listening" within ${SSHD_START_TIMEOUT_MS} ms:\n${logs.toString()}`));
    }, SSHD_START_TIMEOUT_MS);
    child.stderr.on('data', (chunk: Buffer) => logs.append(chunk));
    child.stderr.on('data', onReady);
    void exitPromise.then(() => {
      const text = logs.toString();
      if (/Address already in use|Cannot bind any address/i.test(text)) {
        finish(new PortClashError(`sshd could not bind port ${port}:\n${text}`));
      } else {
        finish(new Error(`sshd exited during startup:\n${text}`));
      }
    });
  });
}
