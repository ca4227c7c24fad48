// Human-readable output for the CLI.
import { formatBytes } from '../lib/diskSpace.js';
import type { LiveStatus } from './client.js';

export { formatBytes };

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function progressLine(live: LiveStatus): string {
  const step = live.progress?.step ?? live.status.toLowerCase();
  const hb = live.heartbeat;
  const bytes = hb && typeof hb.storedBytes === 'number' ? ` ${hb.phase ?? ''}: ${formatBytes(hb.storedBytes)} stored` : '';
  return `${step}${bytes}`;
}
