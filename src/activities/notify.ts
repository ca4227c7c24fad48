// Notifications to the operator's channels: a webhook (JSON POST) and mail through the local
// sendmail. Delivery is at least once: a retried activity may send a message twice, never zero times.
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { Config } from '../config/index.js';
import { ErrorType, retryable } from '../lib/errors.js';

export interface Notification {
  /** `alert`, `resolved` (all clear again) or `approval` (a restore waits for a human). */
  event: 'alert' | 'resolved' | 'approval';
  cluster: string;
  /** One line for a subject or a chat message. */
  title: string;
  /** Every detail, one per line. */
  lines: string[];
  workflowId?: string;
  at: string;
}

export interface Delivery {
  sent: string[];
  /** Channels configured but unusable here (no sendmail), with the reason. */
  skipped: string[];
}

export async function sendNotification(config: Config, env: NodeJS.ProcessEnv, n: Notification): Promise<Delivery> {
  const delivery: Delivery = { sent: [], skipped: [] };
  const { webhook, email } = config.notifications;
  if (webhook) {
    const token = webhook.tokenEnv ? env[webhook.tokenEnv] : undefined;
    const response = await fetch(webhook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ source: 'pgwarden', ...n, text: [n.title, ...n.lines].join('\n') }),
      signal: AbortSignal.timeout(10_000),
    }).catch((err: Error) => {
      // The URL may carry a token in its path: name the host only.
      throw retryable(ErrorType.NotificationFailed, `webhook ${new URL(webhook.url).host}: ${err.cause instanceof Error ? err.cause.message : err.message}`);
    });
    await response.body?.cancel();
    if (!response.ok) throw retryable(ErrorType.NotificationFailed, `webhook ${new URL(webhook.url).host} answered ${response.status}`);
    delivery.sent.push('webhook');
  }
  if (email) {
    if (!existsSync(email.sendmail)) {
      delivery.skipped.push(`email: ${email.sendmail} not found`);
    } else {
      const message = [`From: ${email.from}`, `To: ${email.to.join(', ')}`, `Subject: [pgwarden] ${n.title}`, 'Content-Type: text/plain; charset=utf-8', '', ...n.lines, ''].join('\n');
      const r = await execa(email.sendmail, ['-t', '-i'], { input: message, reject: false, timeout: 30_000 });
      if (r.exitCode !== 0) throw retryable(ErrorType.NotificationFailed, `sendmail exited ${r.exitCode}: ${r.stderr.trim().slice(0, 300)}`);
      delivery.sent.push('email');
    }
  }
  return delivery;
}
