// throwaway: per-segment WAL decode cost, current vs alternatives
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, writeFile, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushWalFile } from '../../src/activities/walPush.js';
import { WalArchive, decodeWal } from '../../src/activities/walArchive.js';
import { LocalRepository } from '../../src/activities/repository.js';
import { openKeyring } from '../../src/activities/gpg.js';
import { createTestKey } from '../../test/helpers/gpg.js';
const N = Number(process.argv[2] ?? 30);
const key = await createTestKey();
const work = await mkdtemp(join(tmpdir(), 'waldec-'));
const archiveDir = join(work, 'wal');
await mkdir(archiveDir);
const src = join(work, 'src'); await mkdir(src);
const names: string[] = [];
for (let i = 0; i < N; i++) {
  const seg = Buffer.alloc(16 << 20);
  for (let p = 0; p < seg.length; p += 8192) Buffer.from(randomBytes(1536).toString('hex')).copy(seg, p);
  const name = `0000000100000000000000${(i + 16).toString(16).toUpperCase().padStart(2, '0')}`;
  await writeFile(join(src, name), seg);
  names.push(name);
}
let t = process.hrtime.bigint();
const ms = () => { const n = Number(process.hrtime.bigint() - t) / 1e6; t = process.hrtime.bigint(); return n; };
for (const n of names) await pushWalFile({ archiveDir, compression: { algorithm: 'zstd', level: 1 }, recipients: [key.publicKeyFile] }, join(src, n), n);
console.log(`push: ${(ms() / N).toFixed(1)} ms/segment (in-process)`);
const archive = new WalArchive({} as LocalRepository, archiveDir);
const keyring = await openKeyring(key.privateKeyFile);
const dec = { keyring, passphrase: key.passphrase };
await decodeWal(archive, names[0]!, dec); ms();
const cpu0 = process.cpuUsage();
for (const n of names) await decodeWal(archive, n, dec);
console.log(`decodeWal sequential: ${(ms() / N).toFixed(1)} ms/segment wall`);
const q = [...names];
await Promise.all([0, 1, 2].map(async () => { for (let n = q.shift(); n; n = q.shift()) await decodeWal(archive, n, dec); }));
console.log(`decodeWal x3: ${(ms() / N).toFixed(1)} ms/segment wall`);
{
  const { readFile } = await import('node:fs/promises');
  const { zstdDecompress } = await import('node:zlib');
  const { promisify } = await import('node:util');
  const zd = promisify(zstdDecompress);
  const steps: Record<string, number> = {};
  const lap = (k: string) => { steps[k] = (steps[k] ?? 0) + ms(); };
  ms();
  for (const n of names) {
    const rec = await archive.record(n); lap('record');
    const data = await readFile(join(archiveDir, rec!.stored)); lap('read');
    await crypto.subtle.digest('SHA-256', data); lap('sha stored (subtle)');
    const plain = await keyring.decryptBuffer(data, key.passphrase); lap('gpg decrypt');
    const raw = await zd(plain, { chunkSize: rec!.rawBytes + 65536 }); lap('zstd');
    await crypto.subtle.digest('SHA-256', raw); lap('sha raw (subtle)');
    const { createHash } = await import('node:crypto'); createHash('sha256').update(raw).digest('hex'); lap('sha raw (createHash)');
  }
  for (const [k, v] of Object.entries(steps)) console.log(k.padEnd(24), (v / N).toFixed(1), 'ms');
}
{
  const { execa } = await import('execa');
  const { symlink, mkdir: mk, readdir: rd } = await import('node:fs/promises');
  const { hashFile } = await import('../../src/activities/pipeline.js');
  const scratch = join(work, 'batch'); await mk(scratch);
  ms();
  const cpu = process.cpuUsage();
  for (let b = 0; b < names.length; b += 8) {
    const batch = names.slice(b, b + 8);
    for (const n of batch) { await hashFile(join(archiveDir, `${n}.zst.gpg`)); await symlink(join(archiveDir, `${n}.zst.gpg`), join(scratch, `${n}.zst.gpg`)); }
    await execa('gpg', ['--homedir', keyring.home, '--batch', '--no-tty', '--quiet', '--yes', '--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--decrypt-files', ...batch.map((n) => join(scratch, `${n}.zst.gpg`))], { input: key.passphrase, env: { PATH: process.env.PATH!, GNUPGHOME: keyring.home } });
    await execa('zstd', ['-d', '-q', '--rm', '-f', ...batch.map((n) => join(scratch, `${n}.zst`))]);
    for (const n of batch) await hashFile(join(scratch, n));
  }
  const c = process.cpuUsage(cpu);
  console.log(`batch (gpg --decrypt-files, zstd -d multi-file, hashes): ${(ms() / N).toFixed(1)} ms/segment wall; node cpu ${((c.user + c.system) / 1000 / N).toFixed(1)} ms/segment`);
  console.log((await rd(scratch)).length, 'files in scratch');
}
await keyring.remove(); await key.remove(); await rm(work, { recursive: true, force: true });
