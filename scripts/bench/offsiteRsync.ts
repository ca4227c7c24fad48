// npm run bench:offsite-rsync — offsiteSync's upload and remote check over rsync/ssh, for many small
// objects: a local WAL archive of --wal N archived WAL files (default 100, each a --kib KiB stored
// file, default 1024, plus its record: 2N objects), shipped by the syncToOffsite activity to the
// test sshd on 127.0.0.1 (the same helper the integration tests use), then the full remote check
// (checkOffsite: listing, sizes, recorded and remote-computed sha256 of every object).
// Each run ships into an empty remote directory; median of --runs (default 3).
// Prints the figures and, last, one JSON line.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createOffsiteActivities, type SyncResult } from '../../src/activities/offsite/sync.js';
import { parseConfig } from '../../src/config/index.js';
import type { CheckReport } from '../../src/lib/offsite.js';
import { startSshd, type SshServer } from '../../test/helpers/sshd.js';
import { median, option } from './worker.js';

const walFiles = option('--wal', 100);
const kib = option('--kib', 1024);
const runs = option('--runs', 3);
const since = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'pgwarden-bench-rsync-'));
  let sshd: SshServer | undefined;
  try {
    sshd = await startSshd();
    const repository = join(work, 'repo');
    const walDir = join(repository, 'main', 'wal');
    await mkdir(walDir, { recursive: true, mode: 0o700 });
    const start = Date.parse('2026-11-22T02:00:00Z');
    for (let i = 1; i <= walFiles; i++) {
      const name = `00000001000000000000${i.toString(16).toUpperCase().padStart(4, '0')}`;
      const stored = `${name}.zst.gpg`;
      const data = randomBytes(kib * 1024);
      const sha256 = createHash('sha256').update(data).digest('hex');
      await writeFile(join(walDir, stored), data, { mode: 0o600 });
      const record = {
        name,
        stored,
        bytes: data.length,
        sha256,
        rawBytes: 16 * 1048576,
        rawSha256: sha256,
        compression: 'zstd',
        encrypted: true,
        archivedAt: new Date(start + i * 60_000).toISOString(),
      };
      await writeFile(join(walDir, `${name}.json`), `${JSON.stringify(record)}\n`, { mode: 0o600 });
    }
    const objects = walFiles * 2;
    console.log(
      `${walFiles} WAL files of ${kib} KiB and their records: ${objects} objects, ${((walFiles * kib) / 1024).toFixed(0)} MiB, to sshd on 127.0.0.1:${sshd.port}`,
    );

    const syncRuns: number[] = [];
    const checkRuns: number[] = [];
    for (let i = 0; i < runs; i++) {
      const config = parseConfig({
        temporal: { address: 'unused', taskQueue: 'bench' },
        clusters: { main: { host: '127.0.0.1', port: 5432, user: 'postgres', dataDirectory: join(work, 'pgdata') } },
        repositories: {
          local: { type: 'local', path: repository },
          rsync: {
            type: 'rsync',
            destination: `${sshd.user}@${sshd.host}:${sshd.remoteRoot}/run-${i}`,
            port: sshd.port,
            identityFile: sshd.identityFile,
            knownHostsFile: sshd.knownHostsFile,
          },
        },
        worker: { host: 'bench' },
      });
      const activities = createOffsiteActivities({ config, env: {} });
      const env = new MockActivityEnvironment();
      const target = { cluster: 'main', repository: 'rsync', walOnly: true };
      let started = process.hrtime.bigint();
      const sync = (await env.run(activities.syncToOffsite, target)) as SyncResult;
      syncRuns.push(since(started));
      if (sync.uploaded !== objects) throw new Error(`uploaded ${sync.uploaded} objects, expected ${objects}`);
      started = process.hrtime.bigint();
      const report = (await env.run(activities.checkOffsite, { ...target, depth: 'full' as const })) as CheckReport;
      checkRuns.push(since(started));
      console.log(
        `  run ${i + 1}: sync ${syncRuns.at(-1)!.toFixed(2)} s (${sync.uploaded} objects), full check ${checkRuns.at(-1)!.toFixed(2)} s (${report.contentChecked} hashed on the remote)`,
      );
    }
    const syncSeconds = median(syncRuns, (v) => v);
    const checkSeconds = median(checkRuns, (v) => v);
    console.log(
      `sync:  ${syncSeconds.toFixed(2)} s median (${((syncSeconds / objects) * 1000).toFixed(1)} ms per object)`,
    );
    console.log(`check: ${checkSeconds.toFixed(2)} s median`);
    const round = (n: number) => Number(n.toFixed(2));
    console.log(
      JSON.stringify({
        bench: 'offsiteRsync',
        objects,
        mib: round((walFiles * kib) / 1024),
        syncSeconds: round(syncSeconds),
        msPerObject: round((syncSeconds / objects) * 1000),
        checkSeconds: round(checkSeconds),
      }),
    );
  } finally {
    await sshd?.stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
