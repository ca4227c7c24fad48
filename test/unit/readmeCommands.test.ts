// `pgwarden` works as the README and docs/ print it: one convention (`pgwarden ...`, put on PATH by
// scripts/setup.sh as a symlink in .tools/bin), and the symlink runs the CLI from any directory.
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { readDocs } from '../helpers/docs.js';

const ROOT = join(import.meta.dirname, '../..');

it('the README and docs/ write `pgwarden`, never `bin/pgwarden` or `npx pgwarden`, in their commands', async () => {
  const commands = (await readDocs()).flatMap(({ path, text }) => {
    const blocks = [...text.matchAll(/```(?:sh|bash)?\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const inline = [...text.matchAll(/`([^`\n]*pgwarden [^`\n]*)`/g)].map((m) => m[1]!);
    return [...blocks.flatMap((b) => b.split('\n')), ...inline].map((l) => `${path}: ${l}`);
  });
  const offenders = commands.filter(
    (l) => /(^|[\s=])(\.\/)?bin\/pgwarden |npx pgwarden/.test(l) && !l.includes('/opt/pgwarden/bin/pgwarden'),
  );
  expect(offenders).toEqual([]);
  expect(commands.filter((l) => /^[^:]+: \s*pgwarden /.test(l)).length).toBeGreaterThan(20);
});

it('scripts/setup.sh links .tools/bin/pgwarden to bin/pgwarden, and such a link runs the CLI from anywhere', async () => {
  const setup = await readFile(join(ROOT, 'scripts/setup.sh'), 'utf8');
  expect(setup).toContain('ln -sfn "$ROOT/bin/pgwarden" "$TOOLS/bin/pgwarden"');
  expect(await readFile(join(ROOT, 'scripts/env.sh'), 'utf8')).toMatch(/PATH="\$_pgw_root\/\.tools\/bin:/);
  const dir = await mkdtemp(join(tmpdir(), 'pgwarden-link-'));
  try {
    await symlink(join(ROOT, 'bin/pgwarden'), join(dir, 'pgwarden'));
    const r = await execa('pgwarden', ['backups', '--help'], {
      cwd: tmpdir(),
      env: { PATH: `${dir}:${process.env.PATH}`, PGWARDEN_FROM_SOURCE: '1' },
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: pgwarden backups/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);
