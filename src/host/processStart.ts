// Which process a pid names: a pid is reused, its start time is not. Built-ins only (wal-push loads it).
import { readFileSync } from 'node:fs';

/** When a process started, in clock ticks since boot (/proc/<pid>/stat); undefined when it does not exist. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
