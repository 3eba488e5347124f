/**
 * The manifest: what a finalized backup's `<artifact>.manifest.json` holds on a destination (format
 * `backupctl-manifest/1`), and the draft the archive step hands the workflow, which fills in the hashes. The workflow
 * calls `completeManifest`, so this file stays free of Node built-ins. Reading a manifest back from (untrusted)
 * storage and checking it is src/repository/manifest.ts.
 */
import type { BackupType } from './backup.js';

/**
 * The GNU tar snapshot file of a files component, stored in the artifact as its own member (`<source>.snar`), so that
 * a diff can be taken against a full even when the worker's local copy is lost. `offset` is the member's header.
 */
export interface SnapshotMember {
  member: string;
  offset: number;
  /** The stored bytes (encrypted when the manifest has `encryption`). */
  size: number;
  sha256: string;
  /** Encrypted backups: the snapshot's size before encryption. */
  plaintextSize?: number;
}

/**
 * Encryption at rest: every member of the artifact (each component and each snapshot member) is its own age v1 file,
 * encrypted to these X25519 recipients (public keys). Sizes and SHA-256 are of the stored (encrypted) bytes.
 */
export interface ManifestEncryption {
  type: 'age';
  recipients: string[];
}

export interface Manifest {
  format: 'backupctl-manifest/1';
  job: string;
  type: BackupType;
  tier: string;
  slot: string;
  workflowId: string;
  runId: string;
  createdAt: string;
  artifact: { name: string; size: number; sha256: string; format: 'tar' };
  /**
   * `size` and `sha256` are of the stored bytes; `plaintextSize` (encrypted backups) is the component's size before
   * encryption: what the source wrote (compressed), checked again when a restore or drill decrypts it.
   */
  components: { name: string; type: string; member: string; size: number; sha256: string; plaintextSize?: number; stats: Record<string, number | string>; snapshot?: SnapshotMember }[];
  /** Absent: the members are stored as the sources wrote them (backups made without encryption, or before it existed). */
  encryption?: ManifestEncryption;
  warnings: string[];
  tools: Record<string, string>;
  /**
   * A differential run's base: the finalized full it holds the changes against. Restore unpacks the base first, then
   * this artifact (files components are GNU tar `--listed-incremental` archives, so deletions are applied too).
   * Absent on a full.
   */
  base?: ManifestBase;
}

export interface ManifestBase {
  workflowId: string;
  slot: string;
  /** The base artifact's final path, relative to the destination's root, and its size and SHA-256. */
  path: string;
  size: number;
  sha256: string;
}

/**
 * A manifest before its hashes are known: the artifact's SHA-256 is what the first upload sent, the components' are
 * computed from the staged artifact while the first destination re-reads its copy (`checksum`).
 */
export type ManifestDraft = Omit<Manifest, 'artifact' | 'components'> & {
  artifact: Omit<Manifest['artifact'], 'sha256'>;
  components: Omit<Manifest['components'][number], 'sha256'>[];
};

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The manifest with every hash filled in; throws when one is missing or malformed (never a manifest with a hole). */
export function completeManifest(draft: ManifestDraft, artifactSha256: string, componentSha256: string[]): Manifest {
  if (!SHA256_HEX.test(artifactSha256)) throw new Error(`no valid artifact SHA-256 for the manifest: "${artifactSha256}"`);
  if (componentSha256.length !== draft.components.length || !componentSha256.every((h) => SHA256_HEX.test(h))) {
    throw new Error(`component hashes do not match the components: ${componentSha256.length} for ${draft.components.length}`);
  }
  return {
    ...draft,
    artifact: { ...draft.artifact, sha256: artifactSha256 },
    components: draft.components.map((c, i) => ({ ...c, sha256: componentSha256[i]! })),
  };
}
