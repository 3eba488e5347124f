/**
 * The verify step's judgement of a pending write (src/activities/verify.ts; the contract suite uses it too): its size,
 * and a fresh SHA-256 where the destination hashes the stored bytes, or else the receipt of parts the server checked
 * on receipt. A missing write or a missing hash is a failure, never a pass (incident 01).
 */
import { BackupError } from '../errors.js';
import type { Capabilities, StagedExpectation, StagedFacts } from './types.js';

export function judgeStaged(facts: StagedFacts | undefined, expected: StagedExpectation, capabilities: Capabilities, where: string): { size: number; sha256: string; method: string } {
  if (!facts) throw new BackupError('VERIFY_MISSING', `verify: ${where} does not exist after the upload`);
  if (facts.size !== expected.size) throw new BackupError('VERIFY_MISMATCH', `verify: ${where} has ${facts.size} bytes, ${expected.size} were uploaded`);
  if (expected.receipt !== undefined && facts.receipt !== expected.receipt) {
    throw new BackupError('VERIFY_MISMATCH', `verify: ${where} holds parts with checksum ${facts.receipt ?? '(none)'} (${facts.method}), the upload sent ${expected.receipt}`);
  }
  if (facts.sha256 !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(facts.sha256)) throw new BackupError('VERIFY_MISMATCH', `verify: no valid SHA-256 for ${where} (${facts.method})`);
    if (facts.sha256 !== expected.sha256) throw new BackupError('VERIFY_MISMATCH', `verify: SHA-256 mismatch for ${where} (${facts.method}): stored ${facts.sha256}, uploaded ${expected.sha256}`);
    return { size: facts.size, sha256: facts.sha256, method: facts.method };
  }
  // No fresh hash: only parts whose SHA-256 the server checked on receipt, matching the upload's receipt, will do.
  if (!capabilities.serverSideHash || expected.receipt === undefined) {
    throw new BackupError('VERIFY_MISMATCH', `verify: no SHA-256 and no checked receipt for ${where} (${facts.method})`);
  }
  return { size: facts.size, sha256: expected.sha256, method: facts.method };
}
