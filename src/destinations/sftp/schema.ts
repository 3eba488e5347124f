import { z } from 'zod';
import { ByteSize, Port, SecretRef, pluginType } from '../../config/fields.js';

/** An `sftp` destination: a directory on an SSH server, reached with a key and a checked host key. */
export const sftpDestinationSchema = z.strictObject({
  type: pluginType('sftp', 'destination'),
  host: z.string().min(1).meta({ description: 'SSH server host name or address', examples: ['nas.internal'] }),
  port: Port.default(22).meta({ description: 'SSH port', examples: [22] }),
  user: z.string().min(1).meta({ description: 'SSH user', examples: ['backup'] }),
  privateKey: z.string().min(1).meta({ description: 'path of the private key file on the worker', examples: ['/etc/backupctl/id_ed25519'] }),
  passphrase: SecretRef.optional().meta({ description: 'passphrase of the private key, as a secret reference', examples: [{ env: 'BACKUP_KEY_PASSPHRASE' }] }),
  knownHosts: z.string().min(1).optional()
    .meta({ description: 'a known_hosts file holding the server\'s key; exactly one of knownHosts or hostKey', examples: ['/etc/backupctl/known_hosts'] }),
  hostKey: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, { error: 'expected a fingerprint as ssh-keygen -lf prints it: SHA256: and 43 base64 characters' }).optional()
    .meta({ description: 'the server key\'s pinned fingerprint, as ssh-keygen -lf prints it; exactly one of knownHosts or hostKey', examples: ['SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s'] }),
  path: z.string().min(1).meta({ description: 'remote directory under which tier/slot folders are made', examples: ['/volume1/backups'] }),
  /** Requests kept in flight while uploading. */
  parallelWrites: z.number().int().min(1).max(256).default(32)
    .meta({ description: 'SFTP write requests kept in flight while uploading', examples: [32] }),
  bandwidthLimit: ByteSize.optional().meta({ description: 'bytes per second', examples: ['20MB'] }),
}).refine((d) => (d.knownHosts === undefined) !== (d.hostKey === undefined), {
  error: 'set exactly one of knownHosts (a known_hosts file) or hostKey (a pinned SHA256: fingerprint); host key checking cannot be turned off',
  path: ['hostKey'],
});
export type SftpDestinationConfig = z.infer<typeof sftpDestinationSchema>;
