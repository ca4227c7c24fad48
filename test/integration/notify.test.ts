// Notification channels are independent: a webhook that is down or refuses does not keep the mail
// from going out, and the failure says which channel failed and whether a retry can help. Real
// HTTP server and a sendmail stand-in script on this machine.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { sendNotification, type Notification } from '../../src/activities/health/notify.js';

let dir: string;
let server: Server;
let status = 204;
let posted = 0;

const notification: Notification = {
  event: 'alert',
  cluster: 'main',
  title: 'main: 1 health alert',
  lines: ['main/app: the newest backup finished 2 days ago'],
  at: new Date().toISOString(),
};

function configWith(url: string): Config {
  return {
    notifications: {
      webhook: { url },
      email: { to: ['dba@example.com'], from: 'pgwarden', sendmail: join(dir, 'sendmail') },
    },
  } as unknown as Config;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-notify-'));
  // Keeps each message it is given, as sendmail -t would deliver it.
  await writeFile(join(dir, 'sendmail'), `#!/bin/sh\ncat >> '${join(dir, 'mail.txt')}'\n`);
  await chmod(join(dir, 'sendmail'), 0o755);
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      posted++;
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await rm(dir, { recursive: true, force: true });
});

const url = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
const mail = () => readFile(join(dir, 'mail.txt'), 'utf8').catch(() => '');

it('sends to every channel', async () => {
  expect(await sendNotification(configWith(url()), {}, notification)).toEqual({
    sent: ['webhook', 'email'],
    skipped: [],
  });
  expect(await mail()).toContain('Subject: [pgwarden] main: 1 health alert');
});

it('a webhook that answers 500 or is unreachable still lets the mail go out, and the attempt is retryable', async () => {
  status = 500;
  const before = (await mail()).length;
  const failure = await sendNotification(configWith(url()), {}, notification).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect((failure as ApplicationFailure).nonRetryable).toBe(false);
  expect((failure as ApplicationFailure).message).toMatch(/^webhook 127\.0\.0\.1:\d+ answered 500; email: sent$/);
  expect((await mail()).length).toBeGreaterThan(before);

  const down = await sendNotification(configWith('http://127.0.0.1:1/hook'), {}, notification).catch((e: unknown) => e);
  expect((down as ApplicationFailure).nonRetryable).toBe(false);
  expect((down as ApplicationFailure).message).toMatch(/^webhook 127\.0\.0\.1:1: .*; email: sent$/);
});

it('a webhook that refuses (403: a wrong token or URL) is not retried', async () => {
  status = 403;
  const postedBefore = posted;
  const failure = (await sendNotification(configWith(url()), {}, notification).catch(
    (e: unknown) => e,
  )) as ApplicationFailure;
  expect(posted).toBe(postedBefore + 1);
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message).toMatch(/answered 403; email: sent$/);
  status = 204;
});
