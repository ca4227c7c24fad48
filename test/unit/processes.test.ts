// startTool's priority groups: a process starts at the group's nice value, and raising the group
// brings the running processes and later ones back to the worker's own priority.
import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import { PriorityGroup, startTool } from '../../src/stream/processes.js';

/** The nice values the started shell reports for itself (field 19 of /proc/<pid>/stat) after each pause. */
function niceOf(group: PriorityGroup | undefined, pauses: number[]): { values: Promise<number[]> } {
  const script = pauses.map((p) => `sleep ${p}; cut -d" " -f19 /proc/$$/stat`).join('; ');
  const tool = startTool('sh', 'sh', ['-c', script], { priority: group });
  let out = '';
  tool.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return { values: tool.exited.then(() => out.trim().split('\n').map(Number)) };
}

describe('startTool priority groups', () => {
  it('starts at the group’s nice value; raise() brings running and later processes back', async () => {
    const own = getPriority();
    expect(own).toBeLessThan(10); // else this host's worker cannot show the difference
    const group = new PriorityGroup(10);
    const running = niceOf(group, [0.2, 0.6]);
    await new Promise((r) => setTimeout(r, 400));
    group.raise();
    // Root may lower a nice value again; another user keeps it (best effort).
    const raised = process.getuid?.() === 0 ? own : own + 10;
    expect(await running.values).toEqual([own + 10, raised]);
    expect(await niceOf(group, [0.1]).values).toEqual([own]);
    expect(await niceOf(undefined, [0.1]).values).toEqual([own]);
  });
});
