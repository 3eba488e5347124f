import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { endWritable } from '../../src/lib/process.js';

describe('endWritable', () => {
  it("resolves for a child's stdin whose child has exited (the stream destroyed under it), and for one ended while the child exits", async () => {
    const gone = spawn('sh', ['-c', 'exit 3'], { stdio: ['pipe', 'ignore', 'ignore'] });
    await once(gone, 'exit');
    await expect(endWritable(gone.stdin as Writable)).resolves.toBeUndefined();
    for (let i = 0; i < 20; i++) {
      const dying = spawn('sh', ['-c', 'exit 1'], { stdio: ['pipe', 'ignore', 'ignore'] });
      const exited = once(dying, 'exit');
      await expect(endWritable(dying.stdin as Writable)).resolves.toBeUndefined();
      await exited;
    }
  });

  it('rejects with the stream\'s own error', async () => {
    const child = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'] });
    const stdin = child.stdin as Writable;
    const ended = endWritable(stdin);
    stdin.destroy(new Error('broken'));
    await expect(ended).rejects.toThrow('broken');
    child.kill();
  });
});
