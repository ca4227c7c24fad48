// Which failure of a chain of processes is reported (src/stream/failureCause.ts, shared by
// fullBackup's dump and baseBackup's chain): the store's, else gpg's key problem, else the tool that
// failed on its own; broken pipes are consequences.
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { ErrorType, nonRetryable } from '../../src/lib/errors.js';
import { chainFailed, failureCause, type Settled } from '../../src/stream/failureCause.js';
import { ToolError } from '../../src/stream/processes.js';

const ok: Settled = { status: 'fulfilled', value: undefined };
const failed = (reason: unknown): Settled => ({ status: 'rejected', reason });
const sigpipe = (tool: string) => failed(new ToolError(tool, null, 'SIGPIPE', ''));
const describeTool = (err: unknown) => `described: ${(err as Error).message}`;
const keyError = nonRetryable(ErrorType.KeyUnreadable, 'gpg --encrypt failed (exit code 2): Unusable public key');

describe('failureCause', () => {
  it("the store's errno error wins over every broken pipe: retryable, naming the file", () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const cause = failureCause(
      { tools: [sigpipe('pg_dump'), sigpipe('zstd')], gpg: sigpipe('gpg'), stored: failed(enospc), path: '/r/x' },
      describeTool,
    ) as ApplicationFailure;
    expect(cause).toMatchObject({ type: 'InsufficientDiskSpace', nonRetryable: false });
    expect(cause.message).toBe('storing /r/x failed: ENOSPC: no space left on device');
  });

  it("gpg inside the store refusing a key: the store's KeyUnreadable, not the tools' SIGPIPE", () => {
    const outcome = { tools: [sigpipe('pg_basebackup'), sigpipe('zstd')], stored: failed(keyError), path: '/r/x' };
    expect(chainFailed(outcome)).toBe(true);
    expect(failureCause(outcome, describeTool)).toBe(keyError);
  });

  it('gpg as a process naming a key problem wins over the tools it broke', () => {
    expect(
      failureCause({ tools: [sigpipe('pg_dump')], gpg: failed(keyError), stored: ok, path: '/r/x' }, describeTool),
    ).toBe(keyError);
  });

  it('a tool failing on its own is named, not the broken pipes after it', () => {
    const own = new ToolError('pg_basebackup', 1, null, 'connection refused');
    expect(failureCause({ tools: [failed(own), ok], stored: ok, path: '/r/x' }, describeTool)).toBe(
      `described: ${own.message}`,
    );
    const gpgWrite = new ToolError('gpg --encrypt', 2, null, 'gpg: write error: Broken pipe');
    expect(
      failureCause(
        { tools: [sigpipe('pg_dump'), failed(own)], gpg: failed(gpgWrite), stored: ok, path: '/r/x' },
        describeTool,
      ),
    ).toBe(`described: ${own.message}`);
  });

  it('only broken pipes: the first; nothing failed: chainFailed is false', () => {
    expect(
      failureCause({ tools: [ok, sigpipe('zstd')], gpg: sigpipe('gpg'), stored: ok, path: '/r/x' }, describeTool),
    ).toBe('described: zstd failed (signal SIGPIPE)');
    expect(chainFailed({ tools: [ok, ok], stored: ok, path: '/r/x' })).toBe(false);
  });
});
