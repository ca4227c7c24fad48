// Notifications to the operator's channels: a webhook (JSON POST) and mail through the local
// sendmail. Delivery is at least once: a retried activity may send a message twice, never zero times.
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { Config } from '../../config/index.js';
import { ErrorType, nonRetryable, retryable } from '../../lib/errors.js';

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

/**
 * Tries every configured channel, each on its own: a dead webhook does not keep the mail from
 * going out. Any failure makes the attempt fail (retryable) with every channel's reason, so the
 * activity retries; a retry may repeat a channel that worked (at least once). A webhook answering
 * 4xx is misconfigured (URL, token): not retried.
 */
export async function sendNotification(config: Config, env: NodeJS.ProcessEnv, n: Notification): Promise<Delivery> {
  const delivery: Delivery = { sent: [], skipped: [] };
  const failures: { message: string; permanent: boolean }[] = [];
  const { webhook, email } = config.notifications;
  if (webhook) {
    // The URL may carry a token in its path: name the host only.
    const host = new URL(webhook.url).host;
    const token = webhook.tokenEnv ? env[webhook.tokenEnv] : undefined;
    try {
      const response = await fetch(webhook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ source: 'pgwarden', ...n, text: [n.title, ...n.lines].join('\n') }),
        signal: AbortSignal.timeout(10_000),
      });
      await response.body?.cancel();
      if (response.ok) delivery.sent.push('webhook');
      else
        failures.push({
          message: `webhook ${host} answered ${response.status}`,
          permanent:
            response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429,
        });
    } catch (err) {
      // Never e.message itself: a request that could not be built quotes its URL or header (the token).
      const e = err as Error;
      const reason =
        e.cause instanceof Error
          ? e.cause.message
          : e.name === 'TimeoutError'
            ? 'no answer within 10 s'
            : `request not sent (${e.name})`;
      failures.push({ message: `webhook ${host}: ${reason}`, permanent: false });
    }
  }
  if (email) {
    if (!existsSync(email.sendmail)) {
      delivery.skipped.push(`email: ${email.sendmail} not found`);
    } else {
      const message = [
        `From: ${email.from}`,
        `To: ${email.to.join(', ')}`,
        `Subject: [pgwarden] ${n.title}`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        ...n.lines,
        '',
      ].join('\n');
      const r = await execa(email.sendmail, ['-t', '-i'], { input: message, reject: false, timeout: 30_000 });
      if (r.exitCode === 0) delivery.sent.push('email');
      else
        failures.push({ message: `sendmail exited ${r.exitCode}: ${r.stderr.trim().slice(0, 300)}`, permanent: false });
    }
  }
  if (failures.length) {
    const message = [...failures.map((f) => f.message), ...delivery.sent.map((c) => `${c}: sent`)].join('; ');
    throw failures.every((f) => f.permanent)
      ? nonRetryable(ErrorType.NotificationFailed, message)
      : retryable(ErrorType.NotificationFailed, message);
  }
  return delivery;
}
