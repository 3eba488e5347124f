/**
 * Just enough of the tar format for the outer artifact: one regular-file header per component, written
 * after the component's bytes are known (the dump reserves 512 bytes and fills them in at the end), and read back
 * as a restore streams (name and size only). GNU tar, bsdtar and busybox read it. Sizes of 8 GiB and more use the
 * GNU base-256 encoding.
 */
export const BLOCK = 512;

function writeString(buf: Buffer, s: string, off: number, len: number): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new Error(`tar field too long: ${s}`);
  b.copy(buf, off);
}

function writeOctal(buf: Buffer, n: number, off: number, len: number): void {
  const s = n.toString(8).padStart(len - 1, '0');
  if (s.length > len - 1) throw new Error(`tar number too large: ${n}`);
  writeString(buf, `${s}\0`, off, len);
}

function writeSize(buf: Buffer, size: number): void {
  if (size < 0o77777777777) {
    writeOctal(buf, size, 124, 12);
    return;
  }
  // GNU base-256: high bit set, big-endian binary in the remaining bytes.
  buf[124] = 0x80;
  let v = BigInt(size);
  for (let i = 135; i > 124; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

export function tarHeader(name: string, size: number, mtime: Date): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, name, 0, 100);
  writeOctal(h, 0o644, 100, 8);
  writeOctal(h, 0, 108, 8);
  writeOctal(h, 0, 116, 8);
  writeSize(h, size);
  writeOctal(h, Math.floor(mtime.getTime() / 1000), 136, 12);
  h.fill(0x20, 148, 156); // checksum field counts as spaces
  h[156] = 0x30; // '0': regular file
  writeString(h, 'ustar\0', 257, 6);
  writeString(h, '00', 263, 2);
  writeString(h, 'backupctl', 265, 32);
  writeString(h, 'backupctl', 297, 32);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, `${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

/**
 * Name and size of the tar header at `buf` (ustar, GNU base-256 sizes). Its checksum is not checked: a restore trusts
 * a header only once the artifact's SHA-256 and the manifest's member names and sizes matched (src/activities/fetch.ts).
 */
export function parseHeader(buf: Buffer): { name: string; size: number } {
  const nul = buf.indexOf(0);
  const name = buf.subarray(0, nul >= 0 && nul < 100 ? nul : 100).toString('utf8');
  let size: number;
  if (buf[124]! & 0x80) {
    let v = 0n;
    for (let i = 125; i < 136; i++) v = (v << 8n) | BigInt(buf[i]!);
    size = Number(v);
  } else {
    size = parseInt(buf.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || 'NaN', 8);
  }
  return { name, size };
}

/** Bytes of zero padding after `size` bytes of data. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
