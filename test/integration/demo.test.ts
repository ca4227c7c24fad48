// `npm run demo` runs to completion: every procedure once against real components (PostgreSQL 15
// archiving WAL, versitygw, gpg, pgwarden's workers), the summary table, the accident undone, and
// everything stopped afterwards. It runs on this test run's Temporal server, on a task queue of its
// own. A missing dependency (PostgreSQL, versitygw, gpg) makes the demo exit 1 naming it and
// scripts/setup.sh: this test then fails with that line, under CI=true as anywhere else.
import { execa } from 'execa';
import { describe, expect, it, inject } from 'vitest';
import { ROOT } from '../helpers/archiving.js';
import { accepts } from '../helpers/ports.js';

const STEPS = ['fullBackup', 'verifyBackup', 'offsiteSync', 'baseBackup', 'pointInTimeRecovery'];

describe('npm run demo', () => {
  it('runs every step, prints the summary and exits 0 after cleaning up', { timeout: 260_000 }, async () => {
    const r = await execa(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: ROOT,
      reject: false,
      env: { PGWARDEN_DEMO_TEMPORAL_ADDRESS: inject('temporalAddress') },
      timeout: 200_000,
      // On timeout the demo gets SIGTERM and cleans up before it exits.
      forceKillAfterDelay: 30_000,
    });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.exitCode, output).toBe(0);
    expect(r.stderr, output).not.toMatch(/demo failed|unhandled/);

    // Its own queue on the shared server.
    const queue = r.stdout.match(/task queue (pgwarden-demo-[0-9a-f]{8})/)?.[1];
    expect(queue, output).toBeDefined();

    const summary = r.stdout.slice(r.stdout.indexOf('\nSummary\n'));
    expect(summary, output).toMatch(/\n {2}step +workflow id +seconds +result\n/);
    for (const step of STEPS) {
      expect(summary, output).toMatch(
        new RegExp(`\\n  ${step} +pgwarden/main/\\S+-${queue!.slice(-8)} +\\d+\\.\\d  \\S`),
      );
    }
    expect(summary).toMatch(/\n {2}pointInTimeRecovery .* recovered to T from base backup \S+, timeline 2;/);
    expect(summary).toMatch(
      /\n {2}check .* accident undone: "documents" back \(40 rows\), orders \d+ \(deleted rows back\), 100 markers kept, post-accident users absent/,
    );

    // Approved by the demo once the workflow waited at `approve`.
    expect(r.stdout).toMatch(/waiting at step approve; the demo approves as "demo"/);
    expect(r.stdout).toMatch(/approved by demo; the previous data directory is kept at \S+/);

    // Cleaned up: the last line says so, and PostgreSQL and the S3 server are gone.
    expect(r.stdout.trimEnd().endsWith('cleaned up'), output).toBe(true);
    const pgPort = Number(r.stdout.match(/PostgreSQL 15 on 127\.0\.0\.1:(\d+)/)?.[1]);
    const s3Port = Number(r.stdout.match(/S3 at http:\/\/127\.0\.0\.1:(\d+)/)?.[1]);
    expect(pgPort && s3Port, output).toBeTruthy();
    expect(await accepts(pgPort)).toBe(false);
    expect(await accepts(s3Port)).toBe(false);
  });
});
