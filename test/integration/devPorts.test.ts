// The dev stack is honest about its ports. `pgwarden dev` once found its default 7233 taken by
// another Temporal server, printed "Temporal dev server at 127.0.0.1:7233" and joined that server's
// task queue, with nothing on the UI port it printed. Now a taken port (server, UI, metrics) fails at
// once, in one line naming it, and `npm run dev` takes the same --port/--ui-port/--metrics-port flags,
// prints them and they answer; Ctrl-C stops all of it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGWARDEN, ROOT } from '../helpers/archiving.js';
import { accepts, freePort } from '../helpers/ports.js';

let dir: string;
let configFile: string;
const listeners: Server[] = [];

/** A plain TCP listener on 127.0.0.1:port; undefined when something listens there already. */
function occupy(port: number): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err),
    );
    server.listen(port, '127.0.0.1', () => {
      listeners.push(server);
      resolve(server);
    });
  });
}

async function dev(args: string[]) {
  const started = Date.now();
  const r = await execa(PGWARDEN, ['--config', configFile, 'dev', ...args], {
    cwd: dir,
    env: { PGWARDEN_FROM_SOURCE: '1' },
    stdin: 'ignore',
    reject: false,
    timeout: 60_000,
  });
  return { ...r, seconds: (Date.now() - started) / 1000 };
}

/** Fails in one line on stderr naming the port and its flag, nothing started, quickly. */
function expectRefused(r: Awaited<ReturnType<typeof dev>>, port: number, flag: string) {
  const output = `${r.stdout}\n${r.stderr}`;
  expect(r.exitCode, output).not.toBe(0);
  expect(r.stdout, output).not.toMatch(/Temporal dev server at/);
  expect(r.stderr.trim().split('\n'), output).toHaveLength(1);
  expect(r.stderr, output).toMatch(
    new RegExp(`^pgwarden: port ${port} \\(.+\\) is taken: .*choose another with ${flag}$`),
  );
  expect(r.seconds, output).toBeLessThan(30); // before: 60 s waiting for "something answers"
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-devports-'));
  configFile = join(dir, 'pgwarden.config.json');
  const config = {
    clusters: { main: { host: '127.0.0.1', port: 5432 } },
    repositories: { local: { type: 'local', path: join(dir, 'repo') } },
  };
  await writeFile(configFile, JSON.stringify(config));
});

afterAll(async () => {
  for (const l of listeners) l.close();
  await rm(dir, { recursive: true, force: true });
});

describe('pgwarden dev with a taken port', () => {
  it('refuses --port, --ui-port and --metrics-port taken by another listener, naming each', async () => {
    const ports = new Set<number>();
    while (ports.size < 3) ports.add(await freePort()); // distinct: two draws may return the same port
    const [taken, p1, p2] = [...ports] as [number, number, number];
    await occupy(taken);
    // One after another: each run's check binds the free ports for a moment, which a run beside it
    // would see as taken.
    const results = [];
    for (const args of [
      ['--port', String(taken), '--ui-port', String(p1)],
      ['--port', String(p1), '--ui-port', String(taken)],
      ['--port', String(p1), '--ui-port', String(p2), '--metrics-port', String(taken)],
    ])
      results.push(await dev(args));
    expectRefused(results[0]!, taken, '--port');
    expect(results[0]!.stderr).toMatch(/\(Temporal server\)/);
    expectRefused(results[1]!, taken, '--ui-port');
    expect(results[1]!.stderr).toMatch(/\(Temporal UI\)/);
    expectRefused(results[2]!, taken, '--metrics-port');
    expect(results[2]!.stderr).toMatch(/\(pgwarden metrics\)/);
    // Nothing was left listening on the free ones.
    expect(await accepts(p1)).toBe(false);
    expect(await accepts(p2)).toBe(false);
  });

  it('refuses the default port 7233 when it is taken', async () => {
    await occupy(7233); // or something listens there already: taken either way
    expectRefused(await dev([]), 7233, '--port');
  });
});

describe('npm run dev -- --port P --ui-port U --metrics-port M', () => {
  let proc: ResultPromise | undefined;
  let exited = false;
  afterAll(async () => {
    if (proc?.pid && !exited) process.kill(-proc.pid, 'SIGKILL');
  });

  it(
    'prints the three, they answer, another dev stack on P is refused, Ctrl-C stops them',
    { timeout: 180_000 },
    async () => {
      const [port, uiPort, metricsPort] = await Promise.all([freePort(), freePort(), freePort()]);
      const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
      delete env.PGWARDEN_DEMO_TEMPORAL_ADDRESS;
      // Its own process group, so a Ctrl-C (SIGINT to the group) reaches npm, tsx and the demo as in a terminal.
      proc = execa(
        'npm',
        [
          'run',
          'dev',
          '--',
          '--port',
          String(port),
          '--ui-port',
          String(uiPort),
          '--metrics-port',
          String(metricsPort),
        ],
        {
          cwd: ROOT,
          env,
          extendEnv: false,
          stdin: 'ignore',
          reject: false,
          detached: true,
          all: true,
        },
      );
      let output = '';
      const up = new Promise<void>((resolve, reject) => {
        proc!.all!.on('data', (d: Buffer) => {
          output += d.toString();
          if (output.includes('Ctrl-C stops everything')) resolve();
        });
        void proc!.then(() => reject(new Error(`npm run dev exited: ${output}`)));
      });
      await up;
      expect(output).toContain(`Temporal:     127.0.0.1:${port}\n`);
      expect(output).toContain(`Temporal UI:  http://127.0.0.1:${uiPort}\n`);
      expect(output).toContain(`Metrics:      http://127.0.0.1:${metricsPort}/metrics\n`);

      // They answer: the Temporal frontend, the web UI and pgwarden's metrics.
      const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
      try {
        const info = await connection.workflowService.getSystemInfo({});
        expect(info.serverVersion).toBeTruthy();
      } finally {
        await connection.close();
      }
      const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
      expect(ui.status).toBe(200);
      expect(await ui.text()).toMatch(/<html/i);
      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^# HELP pgwarden_/m);

      // The bug itself: another dev stack on P, a real Temporal server there, is refused, not joined.
      expectRefused(await dev(['--port', String(port), '--ui-port', String(await freePort())]), port, '--port');

      // Ctrl-C: everything stopped and cleaned up (npm itself ends by the SIGINT it got).
      process.kill(-proc.pid!, 'SIGINT');
      const r = await proc;
      exited = true;
      expect(r.exitCode === 0 || r.signal === 'SIGINT', output).toBe(true);
      expect(output.trimEnd().endsWith('cleaned up'), output).toBe(true);
      for (const p of [port, uiPort, metricsPort]) expect(await accepts(p), `port ${p}`).toBe(false);
    },
  );

  it('fails in one line naming a taken --ui-port, before starting anything', async () => {
    const [port, taken] = await Promise.all([freePort(), freePort()]);
    await occupy(taken);
    const started = Date.now();
    const env = { ...process.env };
    delete env.PGWARDEN_DEMO_TEMPORAL_ADDRESS;
    const args = ['run', '--silent', 'dev', '--', '--port', String(port), '--ui-port', String(taken)];
    const r = await execa('npm', args, { cwd: ROOT, env, extendEnv: false, reject: false, stdin: 'ignore' });
    expect(r.exitCode, r.stderr).not.toBe(0);
    expect(r.stderr.trim().split('\n'), r.stderr).toEqual([
      `npm run dev failed: port ${taken} (Temporal UI) is taken: another process listens on 127.0.0.1:${taken}; stop it or choose another with --ui-port`,
    ]);
    expect(r.stdout).not.toMatch(/starting/);
    expect((Date.now() - started) / 1000).toBeLessThan(30);
  });
});
