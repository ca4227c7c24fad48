// A missing system dependency fails the run loudly with the fix; tests never skip silently.
import { existsSync } from 'node:fs';

export const PG_BIN = process.env.PGWARDEN_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export function requireBinary(path: string, what: string): string {
  if (!existsSync(path)) {
    throw new Error(`${what} not found at ${path}: run scripts/setup.sh (CI=${process.env.CI ?? 'unset'})`);
  }
  return path;
}
