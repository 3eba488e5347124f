import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import { BackupError } from './errors.js';

/**
 * Connection settings the way the `temporal` CLI reads them: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
 * TEMPORAL_TLS*, and the profile file (TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE). Default: localhost:7233, "default".
 */
export function connectConfig() {
  const cfg = loadClientConnectConfig();
  cfg.connectionOptions.address ??= 'localhost:7233';
  return { connectionOptions: cfg.connectionOptions, namespace: cfg.namespace ?? 'default' };
}

function unavailable(address: string | undefined, err: unknown): BackupError {
  return new BackupError('TEMPORAL_UNAVAILABLE', `cannot reach the Temporal server at ${address}: ${(err as Error).message}`, {
    cause: err, hint: 'start it with `backupctl up`, or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TLS or TEMPORAL_API_KEY) to your server',
  });
}

export async function connectClient(): Promise<{ client: Client; connection: Connection; namespace: string }> {
  const { connectionOptions, namespace } = connectConfig();
  try {
    const connection = await Connection.connect({ ...connectionOptions, connectTimeout: '10s' } as Parameters<typeof Connection.connect>[0]);
    return { client: new Client({ connection, namespace }), connection, namespace };
  } catch (err) {
    throw unavailable(connectionOptions.address, err);
  }
}

export async function connectNative(): Promise<{ connection: NativeConnection; namespace: string }> {
  const { connectionOptions, namespace } = connectConfig();
  try {
    return { connection: await NativeConnection.connect(connectionOptions), namespace };
  } catch (err) {
    throw unavailable(connectionOptions.address, err);
  }
}
