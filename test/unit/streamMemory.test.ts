import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { SCAVENGE_EVERY_BYTES, streamed } from '../../src/stream/memory.js';

describe('streamed', () => {
  it('frees spent transfer buffers as it goes: 256 MiB through 1 MiB buffers never holds more than a few MiB', () => {
    let peak = 0;
    for (let i = 0; i < 256; i++) {
      // A socket or file read: a fresh buffer outside V8's heap, consumed and dropped at once.
      const chunk = Buffer.alloc(1 << 20, i);
      streamed(chunk.length);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    // Without the scavenges V8 lets some 64 MB of dead buffers pile up before it collects.
    expect(peak).toBeLessThan(4 * SCAVENGE_EVERY_BYTES + (8 << 20));
  });

  it('leaves no gc function behind for other code or sandboxes', () => {
    streamed(SCAVENGE_EVERY_BYTES);
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
