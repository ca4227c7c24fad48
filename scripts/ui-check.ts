// npm run ui-check — what the Temporal UI shows for a restore waiting at `approve`, checked in a real
// browser (headless Chromium, Debian's `chromium` package). Starts a Temporal dev server with its UI
// on free ports, runs pgwarden's restoreDatabase workflow with stubbed activities (no PostgreSQL
// needed: the workflow code is the real one) until it waits at approve, opens the run's page and
// checks its text: the waiting message, what approving does, how to answer. Exit 0, or 1 naming
// what the page lacks. `--out FILE.png` also keeps a screenshot.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { startDevServer } from '../src/worker/devServer.js';
import { workflowsPath } from '../src/worker/worker.js';
import type { Progress } from '../src/workflows/messages.js';
import { freePort } from '../test/helpers/ports.js';

const { values: flags } = parseArgs({
  options: { out: { type: 'string' }, chromium: { type: 'string', default: 'chromium' } },
});
const BACKUP = '20261122T020000Z';
/** What the page must say (the run's current details, rendered). */
const EXPECTED = [
  'Waiting for approval',
  `restore main/app from backup ${BACKUP}`,
  'Send Signal',
  '{"approver":"NAME","reason":"TEXT"}',
  'pgwarden approve',
];

/**
 * The page's rendered text once it shows everything in EXPECTED (or after a minute): headless
 * Chromium driven over its DevTools protocol, since the UI is a single-page app that renders the
 * run after its scripts have loaded it (`--dump-dom` returns the empty shell). `png` keeps a screenshot.
 */
async function pageText(url: string, png?: string): Promise<string> {
  const debugPort = await freePort();
  const profile = await mkdtemp(join(tmpdir(), 'pgwarden-ui-check-chromium-'));
  const browser = execa(
    flags.chromium!,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      `--user-data-dir=${profile}`,
      `--remote-debugging-port=${debugPort}`,
      '--window-size=1400,1800',
      'about:blank',
    ],
    { reject: false, stdio: 'ignore' },
  );
  try {
    let target: { webSocketDebuggerUrl: string } | undefined;
    for (let i = 0; !target; i++) {
      if (i > 150) throw new Error('chromium did not open its DevTools port');
      target = await fetch(`http://127.0.0.1:${debugPort}/json/new?${encodeURIComponent(url)}`, { method: 'PUT' })
        .then((r) => (r.ok ? (r.json() as Promise<{ webSocketDebuggerUrl: string }>) : undefined))
        .catch(() => undefined);
      if (!target) await new Promise((r) => setTimeout(r, 200));
    }
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve);
      ws.addEventListener('error', reject);
    });
    let id = 0;
    const call = (method: string, params: object = {}) =>
      new Promise<{ result?: { result?: { value?: string }; data?: string } }>((resolve) => {
        const mine = ++id;
        const onMessage = (event: MessageEvent) => {
          const message = JSON.parse(String(event.data)) as { id?: number };
          if (message.id === mine) {
            ws.removeEventListener('message', onMessage);
            resolve(message as never);
          }
        };
        ws.addEventListener('message', onMessage);
        ws.send(JSON.stringify({ id: mine, method, params }));
      });
    let text = '';
    for (let i = 0; i < 120; i++) {
      // The details' markdown is rendered in an iframe: its text (or its srcdoc, tags dropped) counts too.
      const expression = `[document.body?.innerText ?? '', ...[...document.querySelectorAll('iframe')].map((f) => f.contentDocument?.body?.innerText ?? (f.srcdoc || '').replace(/<[^>]*>/g, ' '))].join('\\n')`;
      text = (await call('Runtime.evaluate', { expression, returnByValue: true })).result?.result?.value ?? '';
      if (EXPECTED.every((e) => text.includes(e))) break;
      // The run's current details are on its "User Metadata" tab.
      await call('Runtime.evaluate', {
        expression: `[...document.querySelectorAll('a,button,[role=tab]')].find((e) => e.innerText.trim().startsWith('User Metadata'))?.click()`,
      });
      await new Promise((r) => setTimeout(r, 500));
    }
    if (png)
      await writeFile(
        png,
        Buffer.from((await call('Page.captureScreenshot', { format: 'png' })).result?.data ?? '', 'base64'),
      );
    ws.close();
    return text;
  } finally {
    browser.kill('SIGTERM');
    await browser;
    // Chromium's helper processes can still write into the profile for a moment after it exits.
    await rm(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'pgwarden-ui-check-'));
  // Two different free ports (a port just probed free may be handed out again).
  const port = await freePort();
  let uiPort = await freePort();
  while (uiPort === port) uiPort = await freePort();
  const [server, bundle] = await Promise.all([
    startDevServer({ port, uiPort, readyTimeoutMs: 120_000 }),
    bundleWorkflowCode({
      workflowsPath: workflowsPath(),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
    }),
  ]);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const native = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'ui-check';
  const plan = { backupId: BACKUP, cluster: 'main', database: 'app', kind: 'logical' };
  const worker = await Worker.create({
    connection: native,
    taskQueue,
    workflowBundle: { code: bundle.code },
    activities: {
      fetchLogicalFromOffsite: async () => undefined,
      planVerify: async () => plan,
      checkIntegrity: async () => undefined,
      notifyApproval: async () => ({ sent: [] }),
    },
  });
  const running = worker.run();
  const workflowId = `pgwarden/main/app/restore/${BACKUP}`;
  try {
    const handle = await client.workflow.start('restoreDatabase', {
      taskQueue,
      workflowId,
      args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
    });
    for (let i = 0; (await handle.query<Progress>('progress')).step !== 'approve'; i++) {
      if (i > 300) throw new Error('the restore never reached approve');
      await new Promise((r) => setTimeout(r, 200));
    }
    const url = `${server.uiAddress}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${handle.firstExecutionRunId}/history`;
    const text = await pageText(url, flags.out);
    await writeFile(join(dir, 'page.txt'), text);
    const missing = EXPECTED.filter((e) => !text.includes(e));
    if (missing.length) {
      console.error(
        `ui-check: the UI page ${url} lacks ${missing.map((m) => JSON.stringify(m)).join(', ')} (page text kept in ${join(dir, 'page.txt')})`,
      );
      return 1;
    }
    console.log(
      `ui-check: the UI page of a restore waiting at approve shows ${EXPECTED.map((e) => JSON.stringify(e)).join(', ')}`,
    );
    await rm(dir, { recursive: true, force: true });
    return 0;
  } finally {
    await client.workflow
      .getHandle(workflowId)
      .terminate('ui-check done')
      .catch(() => undefined);
    worker.shutdown();
    await running;
    await native.close();
    await connection.close();
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`ui-check: ${(err as Error).message}`);
    process.exit(1);
  },
);
