/**
 * The mixed dataset of the performance notes ("Dataset"), generated once per bench run:
 * - sql/dump.sql: INSERT lines with varied numbers and words (~419 MB; zstd -3 compresses it ~3–4×);
 * - blobs/random-{1,2,3}.bin: incompressible (3 × 105 MB);
 * - files/…: 30,000 small files (~313.5 MB) in nested folders: 45 % text, 30 % random, 15 % base64, 10 % exact duplicates.
 * Text is generated from a seeded PRNG (same bytes every run); random bytes come from the CSPRNG.
 * Sizes and the small-file count scale with `scale`.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

/** mulberry32: small, fast, good enough for test data. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  /** Index in [0, n) skewed towards small values (a rough Zipf), like word frequencies. */
  skewed(n: number): number {
    const r = this.next();
    return Math.floor(n * r * r);
  }
}

function vocabulary(rng: Rng, size: number): string[] {
  const onsets = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'ch', 'cl', 'dr', 'gr', 'pl', 'pr', 'sh', 'st', 'th', 'tr'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ee', 'io', 'ou', 'y'];
  const codas = ['', '', '', 'n', 'r', 's', 't', 'l', 'm', 'nd', 'st', 'ck', 'ng'];
  const words = new Set<string>();
  while (words.size < size) {
    const syllables = 1 + rng.int(3) + (rng.next() < 0.2 ? 1 : 0);
    let w = '';
    for (let i = 0; i < syllables; i++) w += rng.pick(onsets) + rng.pick(vowels) + (i === syllables - 1 ? rng.pick(codas) : '');
    words.add(w);
  }
  return [...words];
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));
const enc = (s: string) => Buffer.from(s, 'latin1');
const HEX = enc('0123456789abcdef');

/** Appends bytes to a fixed buffer without creating strings (string building made generation GC-bound). */
class ByteWriter {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  bytes(b: Buffer): void {
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }
  ch(c: number): void {
    this.buf[this.pos++] = c;
  }
  /** Non-negative integer in decimal, at least `width` digits (zero-padded). */
  num(n: number, width = 1): void {
    let digits = 1;
    for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
    const len = Math.max(digits, width);
    let v = n;
    for (let i = len - 1; i >= 0; i--) {
      this.buf[this.pos + i] = 48 + (v % 10);
      v = Math.floor(v / 10);
    }
    this.pos += len;
  }
}

/** Longest line either generator writes, with room to spare. */
const MAX_LINE = 1024;

class TextGen {
  readonly words: Buffer[];
  private readonly tables = ['orders', 'order_items', 'customers', 'shipments', 'invoices', 'payments', 'audit_log']
    .map((t) => enc(`INSERT INTO ${t} (id, customer_id, sku, qty, unit_price, ref, status, note, created_at) VALUES (`));
  private readonly statuses = ['new', 'paid', 'packed', 'shipped', 'delivered', 'returned', 'cancelled', 'on_hold'].map((s) => enc(`, '${s}', '`));
  private readonly levels = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'].map((l) => enc(` ${l} [`));
  private readonly bracketEnd = enc('] ');
  private readonly idText = enc(' id=');
  private readonly sqlEnd = enc("');\n");
  private readonly year = enc('2024-');
  private id = 1_000_000;
  constructor(private readonly rng: Rng) {
    this.words = vocabulary(rng, 6000).map(enc);
  }
  private phrase(w: ByteWriter, min: number, max: number): void {
    const n = min + this.rng.int(max - min + 1);
    for (let i = 0; i < n; i++) {
      if (i > 0) w.ch(32);
      w.bytes(this.words[this.rng.skewed(this.words.length)]!);
    }
  }
  private time(w: ByteWriter): void {
    const r = this.rng;
    w.bytes(this.year);
    w.num(1 + r.int(12), 2); w.ch(45);
    w.num(1 + r.int(28), 2); w.ch(32);
    w.num(r.int(24), 2); w.ch(58);
    w.num(r.int(60), 2); w.ch(58);
    w.num(r.int(60), 2);
  }
  sqlLine(w: ByteWriter): void {
    const r = this.rng;
    this.id += 1 + r.int(3);
    w.bytes(r.pick(this.tables));
    w.num(this.id); w.ch(44); w.ch(32);
    w.num(r.int(2_000_000)); w.ch(44); w.ch(32); w.ch(39);
    w.ch(65 + r.int(26)); w.ch(65 + r.int(26)); w.ch(45); w.num(r.int(100000)); w.ch(39); w.ch(44); w.ch(32);
    w.num(1 + r.int(50)); w.ch(44); w.ch(32);
    w.num(r.int(10000)); w.ch(46); w.num(r.int(100), 2); w.ch(44); w.ch(32); w.ch(39);
    for (let i = 0; i < 10; i++) w.ch(HEX[r.int(16)]!);
    w.ch(39);
    w.bytes(r.pick(this.statuses));
    this.phrase(w, 3, 12);
    w.ch(39); w.ch(44); w.ch(32); w.ch(39);
    this.time(w);
    w.bytes(this.sqlEnd);
  }
  logLine(w: ByteWriter): void {
    const r = this.rng;
    this.time(w);
    w.bytes(r.pick(this.levels));
    w.bytes(this.words[r.skewed(200)]!);
    w.bytes(this.bracketEnd);
    this.phrase(w, 4, 16);
    w.bytes(this.idText);
    w.num(r.int(1e9));
    w.ch(10);
  }
  /** Exactly `bytes` of text lines (the last one cut), in a new buffer. */
  text(bytes: number, line: (w: ByteWriter) => void): Buffer {
    const w = new ByteWriter(Buffer.allocUnsafe(bytes + MAX_LINE));
    while (w.pos < bytes) line(w);
    return w.buf.subarray(0, bytes);
  }
}

export interface DatasetInfo {
  dir: string;
  files: number;
  bytes: number;
  sqlBytes: number;
  randomBytes: number;
  smallFiles: number;
  smallBytes: number;
  kinds: Record<string, number>;
  seconds: number;
}

/** Writes `bytes` of SQL text to `file` in 8 MB chunks. */
function writeSql(file: string, bytes: number, gen: TextGen): void {
  const fd = openSync(file, 'w');
  try {
    let left = bytes;
    while (left > 0) {
      const chunk = gen.text(Math.min(left, 8 * 1024 * 1024), (w) => gen.sqlLine(w));
      writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    closeSync(fd);
  }
}

function writeRandom(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  try {
    let left = bytes;
    while (left > 0) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

function base64Text(bytes: number): Buffer {
  const raw = Buffer.allocUnsafe(Math.ceil((bytes * 3) / 4) + 3);
  randomFillSync(raw);
  const b64 = raw.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return Buffer.from(lines.join('\n'), 'latin1').subarray(0, bytes);
}

export async function generateDataset(dir: string, scale: number): Promise<DatasetInfo> {
  const started = Date.now();
  const rng = new Rng(20261121);
  const gen = new TextGen(rng);
  mkdirSync(path.join(dir, 'sql'), { recursive: true });
  mkdirSync(path.join(dir, 'blobs'), { recursive: true });

  const sqlBytes = Math.round(419e6 * scale);
  writeSql(path.join(dir, 'sql', 'dump.sql'), sqlBytes, gen);

  const blobBytes = Math.round(105e6 * scale);
  for (let i = 1; i <= 3; i++) writeRandom(path.join(dir, 'blobs', `random-${i}.bin`), blobBytes);

  // Small files: log-uniform sizes from 256 B to 64 KiB, scaled so that they add up to the target total.
  const count = Math.max(30, Math.round(30_000 * scale));
  const total = Math.round(313.5e6 * scale);
  const raw = Array.from({ length: count }, () => Math.exp(Math.log(256) + rng.next() * (Math.log(65536) - Math.log(256))));
  const factor = total / raw.reduce((a, b) => a + b, 0);
  const sizes = raw.map((s) => Math.max(1, Math.round(s * factor)));
  sizes[0]! += total - sizes.reduce((a, b) => a + b, 0);

  const top = 30;
  const sub = 20;
  for (let a = 0; a < top; a++) for (let b = 0; b < sub; b++) mkdirSync(path.join(dir, 'files', `d${pad2(a)}`, `s${pad2(b)}`), { recursive: true });

  const kinds: Record<string, number> = { text: 0, random: 0, base64: 0, duplicate: 0 };
  const originals: Buffer[] = [];
  const pending = new Set<Promise<void>>();
  let smallBytes = 0;
  for (let i = 0; i < count; i++) {
    const r = rng.next();
    let kind: 'text' | 'random' | 'base64' | 'duplicate' = r < 0.45 ? 'text' : r < 0.75 ? 'random' : r < 0.9 ? 'base64' : 'duplicate';
    if (kind === 'duplicate' && originals.length === 0) kind = 'text';
    let data: Buffer;
    let ext: string;
    if (kind === 'text') {
      data = gen.text(sizes[i]!, (w) => gen.logLine(w));
      ext = 'log';
    } else if (kind === 'random') {
      data = Buffer.allocUnsafe(sizes[i]!);
      randomFillSync(data);
      ext = 'bin';
    } else if (kind === 'base64') {
      data = base64Text(sizes[i]!);
      ext = 'b64';
    } else {
      data = originals[rng.int(originals.length)]!;
      ext = 'dup';
    }
    // Keep a bounded pool of earlier files to duplicate.
    if (kind !== 'duplicate') {
      if (originals.length < 512) originals.push(data);
      else originals[rng.int(512)] = data;
    }
    kinds[kind]! += 1;
    smallBytes += data.length;
    const file = path.join(dir, 'files', `d${pad2(i % top)}`, `s${pad2(Math.floor(i / top) % sub)}`, `f${String(i).padStart(5, '0')}.${ext}`);
    const p: Promise<void> = writeFile(file, data).finally(() => pending.delete(p));
    pending.add(p);
    if (pending.size >= 32) await Promise.race(pending);
  }
  await Promise.all(pending);

  return {
    dir,
    files: 1 + 3 + count,
    bytes: sqlBytes + 3 * blobBytes + smallBytes,
    sqlBytes,
    randomBytes: 3 * blobBytes,
    smallFiles: count,
    smallBytes,
    kinds,
    seconds: (Date.now() - started) / 1000,
  };
}
