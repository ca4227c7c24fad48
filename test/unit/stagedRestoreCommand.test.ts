// The restore_command a PITR writes, run by /bin/sh as PostgreSQL runs it: a staged file is copied;
// a segment not staged yet is waited for; once staging is complete a missing file is "not found"
// (exit 1); a failed staging stops recovery (exit 200, above 125).
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stagedRestoreCommand } from '../../src/activities/pitr/stage.js';

let dir: string;
let walDir: string;
const SEG = '000000010000000000000007';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pgwarden-rc-it's-"));
  walDir = join(dir, 'wal');
  await execa('mkdir', [walDir]);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Substitutes %f and %p as PostgreSQL does (%p is relative to the data directory), and runs it with sh -c. */
function run(file: string, timeout = 10_000) {
  const command = stagedRestoreCommand(walDir).replaceAll('%f', file).replaceAll('%p', 'RECOVERYXLOG');
  return execa('/bin/sh', ['-c', command], { reject: false, timeout, cwd: dir });
}

describe('staged restore_command', () => {
  it('copies a staged file, even from a directory whose name needs quoting', async () => {
    await writeFile(join(walDir, SEG), 'segment');
    expect((await run(SEG)).exitCode).toBe(0);
    expect(await readFile(join(dir, 'RECOVERYXLOG'), 'utf8')).toBe('segment');
  });

  it('waits for a segment that staging has not written yet', async () => {
    const pending = run(SEG);
    await new Promise((r) => setTimeout(r, 500));
    // As staging writes: whole, then renamed into place (a plain write can be seen half done).
    await writeFile(join(walDir, `.${SEG}.tmp`), 'late');
    await rename(join(walDir, `.${SEG}.tmp`), join(walDir, SEG));
    expect((await pending).exitCode).toBe(0);
    expect(await readFile(join(dir, 'RECOVERYXLOG'), 'utf8')).toBe('late');
  });

  it('says "not found" once staging is complete, and history files do not wait for the segments', async () => {
    await writeFile(join(walDir, '.histories'), '');
    const history = await run('00000002.history');
    expect(history.exitCode).toBe(1);
    await writeFile(join(walDir, '.complete'), '');
    expect((await run(SEG)).exitCode).toBe(1);
  });

  it('stops recovery with exit 200 when staging failed', async () => {
    const pending = run(SEG);
    await writeFile(join(walDir, '.failed'), '');
    expect((await pending).exitCode).toBe(200);
  });
});
