import { createReadStream } from 'node:fs';
import { openComponent, type ComponentSpec } from '../../src/restore/unpack.js';

/** A component whose bytes sit in a local file, and where they sit in it. */
export interface ComponentSource extends ComponentSpec {
  file: string;
  start: number;
}

/**
 * Unpacks one component from a local file into `root` through `openComponent`, the pipe a restore feeds from its
 * download. Returns the path it wrote, relative to `root`.
 */
export async function unpackComponent(c: ComponentSource, root: string, signal: AbortSignal, onBytes: (n: number) => void): Promise<string> {
  const w = await openComponent(c, root, signal);
  try {
    if (c.size > 0) {
      for await (const chunk of createReadStream(c.file, { start: c.start, end: c.start + c.size - 1, highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>) {
        await w.write(chunk);
        onBytes(chunk.length);
      }
    }
    w.end();
    await w.done;
    return w.rel;
  } finally {
    w.kill();
  }
}
