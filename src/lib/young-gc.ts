/**
 * Prompt release of the SSH transport's short-lived buffers.
 *
 * ssh2 copies every SFTP request, and again every SSH packet, into a Buffer of its own: each byte sent or received
 * passes through two fresh allocations outside V8's heap. V8 frees that memory only when a scavenge finds the Buffer
 * objects dead, and scavenges follow the JavaScript objects allocated, not these bytes. With the 2 MiB semi-space
 * `backupctl worker` runs with, tens of MiB of dead packets piled up between scavenges: the worker's peak RSS during
 * the 1 GiB backup was 204 to 218 MiB, of which 40 MiB were dead Buffers (README "Memory and start-up").
 *
 * `collectYoung(bytes)` counts the bytes a transfer moved and runs a minor GC (a scavenge of the young generation,
 * well under a millisecond at that size) after every 2 MiB. It needs `gc`, which Node.js exposes only with
 * `--expose-gc`: the launcher (bin/backupctl.js) gives it to `worker`, `up`, `restore` and `drill`. Without it this
 * does nothing.
 */
/** Bytes moved between two minor GCs. */
export const COLLECT_EVERY = 2 << 20;
let since = 0;

export function collectYoung(bytes: number): void {
  since += bytes;
  if (since < COLLECT_EVERY) return;
  since = 0;
  globalThis.gc?.({ type: 'minor' });
}
