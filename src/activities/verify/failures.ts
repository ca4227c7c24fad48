// What a failed verify says: a stored file that does not match its manifest is corrupt (whatever
// tool then failed on it), the tool that failed first otherwise, and how to create missing roles.
import { join } from 'node:path';
import { ErrorType, nonRetryable, retryable } from '../../lib/errors.js';
import type { LogicalManifest } from '../../lib/manifest.js';
import { grepRolesCommand } from '../../lib/privileges.js';
import { gpgFailure } from '../../stream/gpg.js';
import { ToolError } from '../../stream/processes.js';

/**
 * How to create a backup's missing roles with stock tools: their CREATE ROLE and ALTER ROLE lines
 * from the backup's globals (running all of it would also set existing roles' passwords back).
 */
export function globalsHint(dir: string, manifest: LogicalManifest): (missing: string[]) => string {
  const globals = manifest.artifacts.find((a) => a.role === 'globals');
  return (missing) => {
    if (!globals) return 'this backup has no globals.sql; create them by hand';
    const file = join(dir, globals.name);
    const read = manifest.encryption ? `gpg --decrypt ${file}` : `cat ${file}`;
    const unzstd = manifest.compression.algorithm === 'zstd' ? ' | zstd -d' : '';
    return `${read}${unzstd} | ${grepRolesCommand(missing)} | psql -d postgres (on the target; then the GRANT lines of their memberships, if any)`;
  };
}

export function assertIntact(
  path: string,
  actual: { sha256: string; bytes: number },
  expected: { sha256: string; bytes: number },
): void {
  if (actual.sha256 !== expected.sha256 || actual.bytes !== expected.bytes) {
    throw nonRetryable(
      ErrorType.IntegrityError,
      `${path} is corrupt: sha256 ${actual.sha256} (${actual.bytes} bytes), manifest says ${expected.sha256} (${expected.bytes} bytes)`,
    );
  }
}

export function throwFirst(path: string, results: PromiseSettledResult<unknown>[]): void {
  // The decryption's own error names the cause best; then pg_restore's; then the plumbing's.
  const failures = results
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => r.reason as Error);
  if (failures.length === 0) return;
  const decryption = failures.find((e): e is ToolError => e instanceof ToolError && e.tool === 'gpg --decrypt');
  if (decryption)
    throw nonRetryable(ErrorType.DecryptionFailed, `cannot decrypt ${path}: ${gpgFailure(decryption.stderr)}`);
  const tool =
    failures.find((e) => e instanceof ToolError && e.tool === 'pg_restore') ??
    failures.find((e) => e instanceof ToolError);
  if (tool) throw retryable(ErrorType.RestoreFailed, tool.message);
  throw failures[0];
}
