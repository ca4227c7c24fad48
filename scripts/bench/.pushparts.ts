import { createHash } from 'node:crypto';
import { readFile, mkdtemp } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { zstdCompress, constants as zc } from 'node:zlib';
import { writeFileAtomic } from '../../src/activities/atomicFile.js';
const zcomp = promisify(zstdCompress);
const pub = '/tmp/exp/pub.asc';
const dir = await mkdtemp(join(tmpdir(), 'pp-'));
let t = process.hrtime.bigint();
const steps: Record<string, number> = {};
const lap = (k: string) => { const n = Number(process.hrtime.bigint() - t) / 1e6; t = process.hrtime.bigint(); steps[k] = (steps[k] ?? 0) + n; };
const N = 10;
const gpgRun = (input: Buffer) => new Promise<Buffer>((res, rej) => {
  const home = dir;
  const c = spawn('gpg', ['--homedir', home, '--batch', '--no-tty', '--quiet', '--no-autostart', '--trust-model', 'always', '--compress-algo', 'none', '--recipient-file', pub, '--output', '-', '--encrypt'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const out: Buffer[] = []; c.stdout.on('data', (d) => out.push(d)); c.on('close', (code) => code === 0 ? res(Buffer.concat(out)) : rej(new Error('gpg ' + code)));
  c.stdin.end(input);
});
for (let i = 0; i < N; i++) {
  t = process.hrtime.bigint();
  const raw = await readFile('/tmp/exp/seg'); lap('read');
  createHash('sha256').update(raw).digest('hex'); lap('sha raw');
  const z = await zcomp(raw, { params: { [zc.ZSTD_c_compressionLevel]: 1, [zc.ZSTD_c_checksumFlag]: 1 } }); lap('zstd-1 in-process');
  const enc = await gpgRun(z); lap('gpg encrypt (spawn+run)');
  createHash('sha256').update(enc).digest('hex'); lap('sha stored');
  await writeFileAtomic(join(dir, 'x.zst.gpg'), enc); lap('write data atomic (2 fsync)');
  await writeFileAtomic(join(dir, 'x.json'), '{"a":1}\n'); lap('write record atomic (2 fsync)');
}
for (const [k, v] of Object.entries(steps)) console.log(k.padEnd(32), (v / N).toFixed(1), 'ms');
