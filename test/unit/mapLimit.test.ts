import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../src/lib/mapLimit.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('mapLimit', () => {
  it('keeps the order of the items and never runs more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      most = Math.max(most, ++running);
      for (let i = 0; i < n; i++) await tick();
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
  });

  it('rejects with the first failure and takes no new items after it', async () => {
    const started: number[] = [];
    const failing = mapLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
      started.push(n);
      await tick();
      if (n === 2) throw new Error('part 2 failed');
      return n;
    });
    await expect(failing).rejects.toThrow('part 2 failed');
    // 1 and 2 at once, then at most the one that 1's worker took before 2 failed.
    expect(started.slice(0, 2)).toEqual([1, 2]);
    expect(started.length).toBeLessThanOrEqual(3);
  });
});
