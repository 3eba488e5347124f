import { z } from 'zod';
import { ByteSize, SecretRef, httpUrl, pluginType } from '../../config/fields.js';

const MiB = 1024 * 1024;

/** How the SDK treats request and response checksums; S3-compatible stores differ (aws-sdk-js-v3#6810). */
const ChecksumMode = z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']);

/**
 * An `s3` destination: a bucket (and a prefix in it) on AWS S3 or an S3-compatible store. Uploads are multipart with a
 * SHA-256 per part, committed with CompleteMultipartUpload `If-None-Match: *` (README, "S3 destination").
 */
export const s3DestinationSchema = z.strictObject({
  type: pluginType('s3', 'destination'),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: 'expected an S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)' })
    .meta({ description: 'the bucket', examples: ['acme-backups'] }),
  prefix: z.string().regex(/^(?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]*$/, { error: 'expected a key prefix of folder names separated by /, without a leading /' })
    .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), { error: 'a prefix segment may not be . or ..' })
    .default('').meta({ description: 'key prefix under which the tier folders are made (empty: the bucket\'s root)', examples: ['backupctl/prod'] }),
  region: z.string().min(1).default('us-east-1').meta({ description: 'the bucket\'s region', examples: ['eu-central-1'] }),
  endpoint: httpUrl('the S3 endpoint').optional()
    .meta({ description: 'endpoint of an S3-compatible store (absent: AWS S3 for the region)', examples: ['https://minio.internal:9000'] }),
  forcePathStyle: z.boolean().default(false)
    .meta({ description: 'address the bucket in the path (https://host/bucket/key), as most S3-compatible stores need', examples: [true] }),
  caFile: z.string().min(1).optional()
    .meta({ description: 'PEM file of the CA (or certificate) that signs a private endpoint\'s TLS certificate, on the worker', examples: ['/etc/backupctl/s3-ca.pem'] }),
  accessKeyId: SecretRef.optional()
    .meta({ description: 'access key ID as a secret reference; with secretAccessKey, or neither (then the SDK\'s default chain: environment, shared config, instance profile)', examples: [{ env: 'S3_ACCESS_KEY_ID' }] }),
  secretAccessKey: SecretRef.optional()
    .meta({ description: 'secret access key as a secret reference; with accessKeyId', examples: [{ file: '/etc/backupctl/s3-secret' }] }),
  sessionToken: SecretRef.optional()
    .meta({ description: 'session token of temporary credentials, as a secret reference', examples: [{ env: 'S3_SESSION_TOKEN' }] }),
  partSize: ByteSize.default(16 * MiB).pipe(z.number().int().min(5 * MiB).max(5 * 1024 * MiB))
    .meta({ description: 'size of each multipart upload part (5 MiB to 5 GiB; at most 10,000 parts per artifact)', examples: ['16MiB'] }),
  parallelParts: z.number().int().min(1).max(64).default(4)
    .meta({ description: 'parts uploaded (and ranges downloaded) at once', examples: [4] }),
  storageClass: z.string().regex(/^[A-Z_]{1,40}$/).optional()
    .meta({ description: 'storage class of the artifacts (absent: the bucket\'s default)', examples: ['STANDARD_IA'] }),
  verify: z.enum(['parts', 'read']).default('parts')
    .meta({ description: 'parts: the server checks each part\'s SHA-256 and the composite checksum is checked after the commit; read: also reads the whole object back and hashes it (egress)', examples: ['parts'] }),
  requestChecksumCalculation: ChecksumMode.default('WHEN_REQUIRED')
    .meta({ description: 'when the SDK adds checksums of its own to requests (backupctl always sends SHA-256 of each part)', examples: ['WHEN_REQUIRED'] }),
  responseChecksumValidation: ChecksumMode.default('WHEN_REQUIRED')
    .meta({ description: 'when the SDK validates checksums of responses', examples: ['WHEN_REQUIRED'] }),
  bandwidthLimit: ByteSize.optional().meta({ description: 'bytes per second', examples: ['20MB'] }),
}).refine((d) => (d.accessKeyId === undefined) === (d.secretAccessKey === undefined), {
  error: 'set both accessKeyId and secretAccessKey, or neither (the SDK\'s default credential chain)',
  path: ['secretAccessKey'],
});
export type S3DestinationConfig = z.infer<typeof s3DestinationSchema>;
