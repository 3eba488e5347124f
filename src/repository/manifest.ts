/**
 * Manifests read back from a destination. A destination is untrusted storage: a manifest is read with a size cap
 * (a larger one is never parsed), its signature checked over the bytes read (a manifest whose signature does not
 * verify is reported as unverified), parsed, and its shape checked here (`checkManifestShape`: names of the name
 * grammar, members that a source could have written, whole-number sizes); `checkManifest` refuses one that does not
 * describe the artifact beside it. Whether its components are those of the job's configured sources is checked where
 * the restore plan is built (src/restore/components.ts). The format itself is src/contracts/manifest.ts (the workflow
 * completes it).
 */
import type { Manifest } from '../contracts/manifest.js';
import { SMALL_FILE_MAX_BYTES } from '../destinations/limits.js';
import type { DestinationSession } from '../destinations/types.js';
import { AGE_RECIPIENT } from '../lib/age.js';
import { isName } from './names.js';
import { readSigned, type Trust } from './signatures.js';

/** The largest manifest read back (1 MiB): a larger one is an anomaly, never parsed. */
export const MANIFEST_MAX_BYTES = SMALL_FILE_MAX_BYTES;

/** A manifest read back, and whether its signature (`<manifest>.sig`) verifies against a trusted public key. */
export interface ReadManifest {
  manifest: Manifest;
  /** The key that signed it, when the signature verifies. */
  keyId?: string;
  /** Why it is not a manifest of this deployment, when the signature does not verify. */
  unverified?: string;
}

/**
 * Reads a manifest file (at most MANIFEST_MAX_BYTES), checks its signature over the bytes read
 * (src/repository/signatures.ts), parses it and checks its shape; throws when it is missing, too large, not JSON or
 * malformed. The one place manifests are read back: every consumer gets the verification.
 */
export async function readManifest(d: DestinationSession, path: string, trust: Trust): Promise<ReadManifest> {
  const { bytes, verification } = await readSigned(d, path, 'manifest', trust, MANIFEST_MAX_BYTES);
  if (bytes === undefined) throw new Error(`${path} is missing`);
  const manifest: unknown = JSON.parse(bytes.toString());
  checkManifestShape(manifest);
  return verification.ok ? { manifest, keyId: verification.keyId } : { manifest, unverified: verification.reason };
}

/** Throws unless the manifest is of `job`, names `artifact` and has a slot and a known type. */
export function checkManifest(manifest: Manifest, job: string, artifact: string): void {
  if (manifest.job !== job || manifest.artifact?.name !== artifact || typeof manifest.slot !== 'string' || (manifest.type !== 'full' && manifest.type !== 'diff')) {
    throw new Error('it does not describe this artifact');
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** What follows `<name>.` in a member: a source's extension (`tar.zst`, `sql.zst`, a command's `<ext>[.zst]`). */
const EXTENSION = /^[A-Za-z0-9][A-Za-z0-9_-]{0,30}(?:\.[A-Za-z0-9][A-Za-z0-9_-]{0,30}){0,3}$/;

/**
 * Whether `member` is a tar member that a source named `name` could have written: `<name>.<extension>`, one path
 * segment, no `..`. (Which extension exactly, the source's plugin says: src/restore/components.ts.)
 */
export function isMemberOf(name: string, member: unknown): member is string {
  return typeof member === 'string' && member.startsWith(`${name}.`) && EXTENSION.test(member.slice(name.length + 1));
}

/**
 * Throws (naming the first problem) unless the parsed JSON has the manifest's shape where backupctl builds paths or
 * allocates from it: the tier and every component's name and type are names of the grammar, members are
 * `<name>.<extension>` (a snapshot member `<name>.snar`), sizes and offsets are whole numbers, the slot is a time.
 */
export function checkManifestShape(m: unknown): asserts m is Manifest {
  const bad = (what: string): never => { throw new Error(`malformed manifest: ${what}`); };
  if (!isObject(m)) bad('not a JSON object');
  const o = m as Record<string, unknown>;
  if (typeof o.job !== 'string' || !isName(o.job)) bad(`job ${JSON.stringify(o.job)} is not a name`);
  if (o.type !== 'full' && o.type !== 'diff') bad(`type ${JSON.stringify(o.type)}`);
  if (!isName(o.tier)) bad(`tier ${JSON.stringify(o.tier)} is not a name`);
  if (typeof o.slot !== 'string' || Number.isNaN(Date.parse(o.slot))) bad(`slot ${JSON.stringify(o.slot)} is not a time`);
  if (typeof o.workflowId !== 'string') bad('no workflow ID');
  const a = o.artifact;
  if (!isObject(a) || typeof a.name !== 'string' || !isSize(a.size) || typeof a.sha256 !== 'string') bad('no artifact name, size and SHA-256');
  if (o.base !== undefined) {
    const b = o.base;
    if (!isObject(b) || typeof b.path !== 'string' || typeof b.workflowId !== 'string' || !isSize(b.size) || typeof b.sha256 !== 'string') bad('malformed base');
  }
  if (o.encryption !== undefined) {
    const e = o.encryption;
    if (!isObject(e) || e.type !== 'age' || !Array.isArray(e.recipients) || e.recipients.length === 0 || !e.recipients.every((r) => typeof r === 'string' && AGE_RECIPIENT.test(r))) {
      bad('encryption is not { type: "age", recipients: [age1…] }');
    }
  }
  if (o.components === undefined) return;
  if (!Array.isArray(o.components)) bad('components is not a list');
  const names = new Set<string>();
  for (const c of o.components as unknown[]) {
    if (!isObject(c)) bad('a component is not an object');
    const comp = c as Record<string, unknown>;
    const name = comp.name;
    if (!isName(name)) bad(`component name ${JSON.stringify(name)} is not a name`);
    const n = name as string;
    if (names.has(n)) bad(`component ${n} is listed twice`);
    names.add(n);
    if (!isName(comp.type)) bad(`component ${n}: type ${JSON.stringify(comp.type)} is not a name`);
    if (!isMemberOf(n, comp.member)) bad(`component ${n}: member ${JSON.stringify(comp.member)} is not one a source "${n}" writes`);
    if (!isSize(comp.size)) bad(`component ${n}: size ${JSON.stringify(comp.size)} is not a whole number of bytes`);
    if (typeof comp.sha256 !== 'string') bad(`component ${n}: no SHA-256`);
    if (comp.plaintextSize !== undefined && !isSize(comp.plaintextSize)) bad(`component ${n}: plaintextSize ${JSON.stringify(comp.plaintextSize)} is not a whole number of bytes`);
    if (o.encryption !== undefined && comp.plaintextSize === undefined) bad(`component ${n}: an encrypted backup's component has no plaintextSize`);
    if (!isObject(comp.stats)) bad(`component ${n}: stats is not an object`);
    if (comp.snapshot !== undefined) {
      const s = comp.snapshot;
      if (!isObject(s) || s.member !== `${n}.snar` || !isSize(s.offset) || !isSize(s.size) || typeof s.sha256 !== 'string' || (s.plaintextSize !== undefined && !isSize(s.plaintextSize))) bad(`component ${n}: malformed snapshot member`);
    }
  }
}
