// A real S3-compatible server for tests: versitygw with its posix backend in a temp dir. Objects are
// plain files under <rootDir>/<bucket>/<key> (metadata in xattrs), so a test can corrupt or delete
// one behind pgwarden's back, and stop/start the server to play an outage.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { accepts, freePort } from './ports.js';
import { requireBinary } from './require.js';

const VERSITYGW = join(import.meta.dirname, '../../.tools/bin/versitygw');

export interface S3Server {
  endpoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
  /** The posix backend's top directory: one subdirectory per bucket. */
  rootDir: string;
  /** Creates a bucket (through the S3 API, as an operator would). */
  bucket(name: string): Promise<void>;
  /** The file backing an object, to flip bytes or delete it behind pgwarden's back. */
  objectPath(bucket: string, key: string): string;
  /** Stops the server (SIGTERM, SIGKILL after 3 s); the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

export async function startS3Server(): Promise<S3Server> {
  const binary = requireBinary(VERSITYGW, 'versitygw (S3-compatible test server)');
  const base = await mkdtemp(join(tmpdir(), 'pgwarden-s3-'));
  const rootDir = join(base, 'data');
  await mkdir(rootDir);
  const logFile = join(base, 'versitygw.log');
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKey = `AK${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretKey = randomBytes(20).toString('hex');
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    if (child) return;
    const log = await open(logFile, 'a');
    // Credentials via the environment, not argv (ps shows argv); --quiet drops per-request lines.
    const proc = spawn(binary, ['--quiet', '--port', `127.0.0.1:${port}`, 'posix', rootDir], {
      env: { ...process.env, ROOT_ACCESS_KEY_ID: accessKey, ROOT_SECRET_ACCESS_KEY: secretKey },
      stdio: ['ignore', log.fd, log.fd],
    });
    await log.close();
    child = proc;
    let exited = false;
    proc.once('exit', () => {
      exited = true;
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + 15_000;
    while (!(await accepts(port))) {
      if (exited || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`versitygw did not start on port ${port}:\n${await readFile(logFile, 'utf8').catch(() => '')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }

  await start();
  return {
    endpoint,
    port,
    accessKey,
    secretKey,
    rootDir,
    async bucket(name) {
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
      });
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        client.destroy();
      }
    },
    objectPath: (bucket, key) => join(rootDir, bucket, ...key.split('/')),
    stop,
    start,
    async destroy() {
      await stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}
