import type { DestinationSession } from './destinations/types.js';
import { errorMessage } from './errors.js';
import { escapeRe, slotDirsNewestFirst, tiersOf } from './monitor.js';
import type { BackupType, Manifest, ManifestBase } from './shared.js';

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
}

/** A file that looks like part of a backup but is none: never listed as a backup, never deleted by retention. */
export interface CatalogAnomaly {
  path: string;
  problem: 'no manifest' | 'unreadable manifest' | 'artifact missing' | 'size differs from manifest';
  detail: string;
  mtimeMs: number;
}

/** A temporary upload file `.<artifact>.<workflow ID>.tmp` (layout() in src/shared.ts). */
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
  anomalies: CatalogAnomaly[];
  temporary: TemporaryFile[];
}

/**
 * Everything of one job on one destination, in every tier: finalized backups (artifact + readable manifest of this
 * job whose size matches), files that look like backups but are not (anomalies), and temporary upload files.
 */
export async function catalogDestination(d: DestinationSession, job: string): Promise<DestinationCatalog> {
  const stem = `${escapeRe(job)}-(full|diff)-\\d{8}T\\d{6}Z\\.tar`;
  const artifactRe = new RegExp(`^${stem}$`);
  const manifestRe = new RegExp(`^(${stem})\\.manifest\\.json$`);
  const tempRe = new RegExp(`^\\.(${stem})\\.(.+)\\.tmp$`);
  const out: DestinationCatalog = { destination: d.name, backups: [], anomalies: [], temporary: [] };
  for (const tier of await tiersOf(d)) {
    for await (const dir of slotDirsNewestFirst(d, tier)) {
      const entries = (await d.list(dir)) ?? [];
      const files = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.name, e]));
      for (const e of files.values()) {
        const p = `${dir}/${e.name}`;
        const temp = tempRe.exec(e.name);
        if (temp) {
          out.temporary.push({ path: p, workflowId: temp[3]!, size: e.size, mtimeMs: e.mtimeMs });
          continue;
        }
        const m = manifestRe.exec(e.name);
        if (m && !files.has(m[1]!)) out.anomalies.push({ path: p, problem: 'artifact missing', detail: `manifest without its artifact ${m[1]}`, mtimeMs: e.mtimeMs });
        if (!artifactRe.test(e.name)) continue;
        const manifestName = `${e.name}.manifest.json`;
        if (!files.has(manifestName)) {
          out.anomalies.push({ path: p, problem: 'no manifest', detail: 'an artifact without a manifest is not a finalized backup (an interrupted finalize, or a manifest removed by hand)', mtimeMs: e.mtimeMs });
          continue;
        }
        let manifest: Manifest;
        try {
          manifest = JSON.parse((await d.readSmallFile(`${dir}/${manifestName}`))!.toString()) as Manifest;
          if (manifest.job !== job || manifest.artifact?.name !== e.name || typeof manifest.slot !== 'string' || (manifest.type !== 'full' && manifest.type !== 'diff')) {
            throw new Error('it does not describe this artifact');
          }
        } catch (err) {
          out.anomalies.push({ path: p, problem: 'unreadable manifest', detail: `${manifestName}: ${errorMessage(err)}`, mtimeMs: e.mtimeMs });
          continue;
        }
        if (manifest.artifact.size !== e.size) {
          out.anomalies.push({ path: p, problem: 'size differs from manifest', detail: `${e.size} bytes stored, ${manifest.artifact.size} in the manifest`, mtimeMs: e.mtimeMs });
          continue;
        }
        out.backups.push({
          destination: d.name, tier, type: manifest.type, slot: manifest.slot, workflowId: manifest.workflowId, path: p, manifestPath: `${dir}/${manifestName}`,
          size: manifest.artifact.size, sha256: manifest.artifact.sha256, createdAt: manifest.createdAt, ...(manifest.base ? { base: manifest.base } : {}), manifest,
        });
      }
    }
  }
  out.backups.sort((a, b) => (a.slot < b.slot ? 1 : a.slot > b.slot ? -1 : a.path < b.path ? 1 : -1));
  return out;
}
