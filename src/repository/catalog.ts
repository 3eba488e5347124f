/**
 * What lies on a destination for one job, read back: the catalog (finalized backups, anomalies, temporary files) that
 * `list`, `prune` and `restore` use, and the newest backups per type that `status`, the freshness check, the size
 * check and diff runs use. File names are read through src/repository/names.ts, folders walked by walk.ts. Only a
 * backup whose manifest signature verifies against a trusted key (`trust`, src/state/keys.ts) is a backup; one that
 * does not is listed apart as unverified, and the walkers skip it.
 */
import type { BackupType } from '../contracts/backup.js';
import type { Manifest, ManifestBase } from '../contracts/manifest.js';
import type { DestinationSession } from '../destinations/types.js';
import { BackupError, errorMessage } from '../errors.js';
import { checkManifest, readManifest, type ReadManifest } from './manifest.js';
import { manifestName, parseName } from './names.js';
import type { Trust } from './signatures.js';
import { slotDirsNewestFirst, tiersOf } from './walk.js';

/** One finalized backup on one destination: an artifact with its readable manifest. */
export interface CatalogEntry {
  destination: string;
  tier: string;
  type: BackupType;
  slot: string;
  workflowId: string;
  /** The artifact and its manifest, relative to the destination's root. */
  path: string;
  manifestPath: string;
  size: number;
  sha256: string;
  createdAt: string;
  base?: ManifestBase;
  manifest: Manifest;
  /** The key that signed the manifest (verified entries). */
  keyId?: string;
}

/** An artifact with a readable manifest whose signature does not verify: not a backup of this deployment. */
export type UnverifiedEntry = CatalogEntry & { reason: string };

/** A file that looks like part of a backup but is none: never listed as a backup, never deleted by retention. */
export interface CatalogAnomaly {
  path: string;
  problem: 'no manifest' | 'unreadable manifest' | 'artifact missing' | 'size differs from manifest';
  detail: string;
  mtimeMs: number;
}

/** A temporary upload file `.<artifact>.<workflow ID>.tmp` (src/repository/names.ts). */
export interface TemporaryFile {
  path: string;
  workflowId: string;
  size: number;
  mtimeMs: number;
}

export interface DestinationCatalog {
  destination: string;
  /** Newest slot first. */
  backups: CatalogEntry[];
  /** Newest slot first: never restored (but with `restore --trust-unsigned`), loaded or pruned. */
  unverified: UnverifiedEntry[];
  anomalies: CatalogAnomaly[];
  temporary: TemporaryFile[];
}

/**
 * Everything of one job on one destination, in every tier: finalized backups (artifact + readable manifest of this
 * job whose size matches, signed by a trusted key), the same with a signature that does not verify (unverified), files
 * that look like backups but are not (anomalies), and temporary upload files.
 */
export async function catalogDestination(d: DestinationSession, job: string, trust: Trust): Promise<DestinationCatalog> {
  const out: DestinationCatalog = { destination: d.name, backups: [], unverified: [], anomalies: [], temporary: [] };
  for (const tier of await tiersOf(d)) {
    for await (const dir of slotDirsNewestFirst(d, tier)) {
      const entries = (await d.list(dir)) ?? [];
      const files = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.name, e]));
      for (const e of files.values()) {
        const p = `${dir}/${e.name}`;
        const name = parseName(e.name, job);
        if (name?.kind === 'temporary') {
          out.temporary.push({ path: p, workflowId: name.workflowId!, size: e.size, mtimeMs: e.mtimeMs });
          continue;
        }
        if (name?.kind === 'manifest' && !files.has(name.artifact)) out.anomalies.push({ path: p, problem: 'artifact missing', detail: `manifest without its artifact ${name.artifact}`, mtimeMs: e.mtimeMs });
        if (name?.kind !== 'artifact') continue;
        const manifestFile = manifestName(e.name);
        if (!files.has(manifestFile)) {
          out.anomalies.push({ path: p, problem: 'no manifest', detail: 'an artifact without a manifest is not a finalized backup (an interrupted finalize, or a manifest removed by hand)', mtimeMs: e.mtimeMs });
          continue;
        }
        let read: ReadManifest;
        try {
          read = await readManifest(d, `${dir}/${manifestFile}`, trust);
          checkManifest(read.manifest, job, e.name);
        } catch (err) {
          out.anomalies.push({ path: p, problem: 'unreadable manifest', detail: `${manifestFile}: ${errorMessage(err)}`, mtimeMs: e.mtimeMs });
          continue;
        }
        const { manifest } = read;
        if (manifest.artifact.size !== e.size) {
          out.anomalies.push({ path: p, problem: 'size differs from manifest', detail: `${e.size} bytes stored, ${manifest.artifact.size} in the manifest`, mtimeMs: e.mtimeMs });
          continue;
        }
        const entry: CatalogEntry = {
          destination: d.name, tier, type: manifest.type, slot: manifest.slot, workflowId: manifest.workflowId, path: p, manifestPath: `${dir}/${manifestFile}`,
          size: manifest.artifact.size, sha256: manifest.artifact.sha256, createdAt: manifest.createdAt, ...(manifest.base ? { base: manifest.base } : {}), manifest,
        };
        if (read.unverified !== undefined) out.unverified.push({ ...entry, reason: read.unverified });
        else out.backups.push({ ...entry, keyId: read.keyId! });
      }
    }
  }
  const newestFirst = (a: CatalogEntry, b: CatalogEntry) => (a.slot < b.slot ? 1 : a.slot > b.slot ? -1 : a.path < b.path ? 1 : -1);
  out.backups.sort(newestFirst);
  out.unverified.sort(newestFirst);
  return out;
}

export interface BackupInfo {
  type: BackupType;
  slot: string;
  ageMs: number;
  size: number;
  sha256: string;
  destination: string;
  path: string;
  workflowId: string;
}

const byNameDesc = (a: { name: string }, b: { name: string }) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);

/**
 * Signed manifests of a job's stored backups in one tier, newest slot first (walks `<tier>/YYYY/MM/DD/HHMM/`, reading
 * only what it yields). Skipped, as no backup of this deployment: a manifest whose signature does not verify; one that
 * does not describe the artifact its name says, of this job (the signature binds the bytes, not the place: another
 * job's signed manifest copied here); one whose artifact is not stored beside it with the manifest's size (deleted by
 * hand or by a bucket's lifecycle rule: a manifest alone must not keep `status` fresh or become a diff's base).
 */
export async function* manifestsNewestFirst(d: DestinationSession, tier: string, job: string, trust: Trust): AsyncGenerator<{ dir: string; manifest: Manifest }> {
  for await (const dir of slotDirsNewestFirst(d, tier)) {
    const listed = ((await d.list(dir)) ?? []).filter((e) => e.type === 'file');
    const sizes = new Map(listed.map((e) => [e.name, e.size]));
    for (const f of listed.filter((e) => parseName(e.name, job)?.kind === 'manifest').sort(byNameDesc)) {
      const artifact = parseName(f.name, job)!.artifact;
      let read: ReadManifest;
      try {
        read = await readManifest(d, `${dir}/${f.name}`, trust);
        checkManifest(read.manifest, job, artifact);
      } catch {
        // an unreadable manifest, or one of another artifact, is no proof of a backup
        continue;
      }
      if (read.unverified === undefined && sizes.get(artifact) === read.manifest.artifact.size) yield { dir, manifest: read.manifest };
    }
  }
}

/**
 * Whether a destination holds the finalized backup at `finalPath` (with its manifest at `manifestPath`) of `job`:
 * `absent` when no manifest is there, `stored` when a manifest that verifies describes this artifact of this job and
 * the artifact is there with its size, else the problem (a planted, unsigned or damaged manifest, an artifact gone):
 * a slot whose name is taken by something that is no backup is neither skipped as done nor overwritten.
 */
export async function finalizedAt(d: DestinationSession, paths: { finalPath: string; manifestPath: string; artifactName: string }, job: string, trust: Trust): Promise<'absent' | 'stored' | { problem: string }> {
  if (!(await d.stat(paths.manifestPath))) return 'absent';
  let read: ReadManifest;
  try {
    read = await readManifest(d, paths.manifestPath, trust);
    checkManifest(read.manifest, job, paths.artifactName);
  } catch (err) {
    if (err instanceof BackupError) throw err;
    return { problem: `its manifest is unreadable or describes another backup (${errorMessage(err)})` };
  }
  if (read.unverified !== undefined) return { problem: `its manifest is not signed by a trusted key (${read.unverified})` };
  const stored = await d.stat(paths.finalPath);
  if (stored?.size !== read.manifest.artifact.size) {
    return { problem: stored ? `the artifact has ${stored.size} bytes, its manifest says ${read.manifest.artifact.size}` : 'its artifact is missing' };
  }
  return 'stored';
}

/**
 * The newest finalized backup per type on one destination, read from the signed manifests (a file without a manifest,
 * or with one that does not verify, is no backup). Stops walking a tier once every type was found in it.
 */
export async function newestOnDestination(d: DestinationSession, job: string, types: BackupType[], trust: Trust, now = Date.now()): Promise<Partial<Record<BackupType, BackupInfo>>> {
  const found: Partial<Record<BackupType, BackupInfo>> = {};
  for (const tier of await tiersOf(d)) {
    const inTier = new Set<BackupType>();
    for await (const { dir, manifest } of manifestsNewestFirst(d, tier, job, trust)) {
      inTier.add(manifest.type);
      const prev = found[manifest.type];
      if (!prev || manifest.slot > prev.slot) {
        found[manifest.type] = {
          type: manifest.type, slot: manifest.slot, ageMs: now - Date.parse(manifest.slot), size: manifest.artifact.size,
          sha256: manifest.artifact.sha256, destination: d.name, path: `${dir}/${manifest.artifact.name}`, workflowId: manifest.workflowId,
        };
      }
      if (types.every((t) => inTier.has(t))) break;
    }
  }
  return found;
}
