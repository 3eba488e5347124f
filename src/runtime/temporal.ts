import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnection } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_NAMES } from '../contracts/search-attributes.js';
import { BackupError } from '../errors.js';

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
  // Loaded here, by the commands that run a worker: the others (run, status, `restore --no-worker`, ...) need only the client.
  const { NativeConnection } = await import('@temporalio/worker');
  try {
    return { connection: await NativeConnection.connect(connectionOptions), namespace };
  } catch (err) {
    throw unavailable(connectionOptions.address, err);
  }
}

/**
 * Registers backupctl's search attributes (BackupJob, BackupType, BackupOutcome: Keyword) when the server lacks
 * them. A run upserts them; on a server without them its workflow task would fail.
 */
export async function ensureSearchAttributes(client: Client, namespace: string): Promise<string[]> {
  const names = Object.values(SEARCH_ATTRIBUTE_NAMES);
  const existing = await client.connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set([...Object.keys(existing.customAttributes ?? {}), ...Object.keys(existing.systemAttributes ?? {})]);
  const missing = names.filter((n) => !known.has(n));
  if (missing.length === 0) return [];
  try {
    await client.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((n) => [n, proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
  } catch (err) {
    throw new BackupError('TEMPORAL_UNAVAILABLE', `the Temporal namespace "${namespace}" lacks the search attributes ${missing.join(', ')} and they could not be added: ${(err as Error).message}`, {
      cause: err, hint: missing.map((n) => `temporal operator search-attribute create --namespace ${namespace} --name ${n} --type Keyword`).join('; '),
    });
  }
  return missing;
}
