// Every activity a workflow schedules notices a dead worker within seconds: each proxyActivities /
// proxyLocalActivities options object carries a heartbeatTimeout, or a start-to-close timeout of
// seconds. A proxy without one waits out its start-to-close timeout after a worker's death (5 to 15
// minutes: a live cluster left down during a rollback). Read from the sources, so that a new proxy
// is checked the day it is written; a failure names the file and line.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as activityOptions from '../../src/lib/activityOptions.js';

const ROOT = join(import.meta.dirname, '../..');
const WORKFLOWS = join(ROOT, 'src/workflows');
const PROXIES = new Set(['proxyActivities', 'proxyLocalActivities']);
/** The longest start-to-close timeout that bounds a takeover by itself. */
const MAX_SECONDS_WITHOUT_HEARTBEAT = 60;

type Verdict = { ok: true } | { ok: false; why: string };
/** The option constants workflows share, by name (plain data). */
const shared = activityOptions as unknown as Record<string, unknown>;

/** '20 seconds', '45s', 30_000 (ms) → seconds; undefined when it is not a literal duration. */
function seconds(node: ts.Expression): number | undefined {
  if (ts.isNumericLiteral(node)) return Number(node.text.replace(/_/g, '')) / 1000;
  if (!ts.isStringLiteralLike(node)) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?)\s*$/.exec(node.text);
  if (!m) return undefined;
  const unit = m[2]!;
  const factor =
    unit.startsWith('ms') || unit.startsWith('milli')
      ? 0.001
      : unit.startsWith('s')
        ? 1
        : unit.startsWith('m')
          ? 60
          : 3600;
  return Number(m[1]) * factor;
}

/** What a constant's options object says: its own heartbeatTimeout / startToCloseTimeout. */
function judgeValue(value: unknown, name: string): Verdict {
  if (!value || typeof value !== 'object')
    return { ok: false, why: `${name} is not an options object the test can read` };
  const o = value as { heartbeatTimeout?: unknown; startToCloseTimeout?: unknown };
  if (o.heartbeatTimeout !== undefined) return { ok: true };
  return { ok: false, why: `${name} has no heartbeatTimeout` };
}

/** Whether the options expression gives a heartbeatTimeout (or a start-to-close timeout of seconds). */
function judge(node: ts.Expression, locals: Map<string, ts.Expression>): Verdict {
  if (ts.isIdentifier(node)) {
    if (node.text in shared) return judgeValue(shared[node.text], node.text);
    const local = locals.get(node.text);
    if (local) return judge(local, locals);
    return {
      ok: false,
      why: `${node.text} is neither a constant of src/lib/activityOptions.ts nor a const of this file`,
    };
  }
  if (!ts.isObjectLiteralExpression(node)) return { ok: false, why: `options the test cannot read: ${node.getText()}` };
  let heartbeat: boolean | undefined;
  let startToClose: number | undefined;
  for (const p of node.properties) {
    // Later properties override earlier ones, as in the object itself.
    if (ts.isSpreadAssignment(p)) {
      if (
        ts.isObjectLiteralExpression(p.expression) ||
        ts.isParenthesizedExpression(p.expression) ||
        ts.isConditionalExpression(p.expression)
      )
        continue; // { cancellationType } and the like: no timeouts
      const spread = judge(p.expression, locals);
      if (spread.ok) heartbeat = true;
    } else if (ts.isPropertyAssignment(p) && p.name.getText() === 'heartbeatTimeout') {
      heartbeat = p.initializer.getText() !== 'undefined';
    } else if (ts.isPropertyAssignment(p) && p.name.getText() === 'startToCloseTimeout') {
      startToClose = seconds(p.initializer);
    } else if (ts.isShorthandPropertyAssignment(p) && p.name.text === 'heartbeatTimeout') {
      heartbeat = true;
    }
  }
  if (heartbeat) return { ok: true };
  if (startToClose !== undefined && startToClose <= MAX_SECONDS_WITHOUT_HEARTBEAT) return { ok: true };
  return {
    ok: false,
    why: `no heartbeatTimeout and no start-to-close timeout of at most ${MAX_SECONDS_WITHOUT_HEARTBEAT} s`,
  };
}

/** Each proxy call of a source file that lacks a quick takeover, as `file:line: why`. */
export function proxiesWithoutTakeover(file: string, text: string): { proxies: number; problems: string[] } {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const locals = new Map<string, ts.Expression>();
  const calls: ts.CallExpression[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer)
      locals.set(node.name.text, node.initializer);
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && PROXIES.has(node.expression.text))
      calls.push(node);
    ts.forEachChild(node, visit);
  };
  visit(source);
  const problems: string[] = [];
  for (const call of calls) {
    const line = source.getLineAndCharacterOfPosition(call.getStart()).line + 1;
    const options = call.arguments[0];
    const verdict: Verdict = options ? judge(options, locals) : { ok: false, why: 'no options at all' };
    if (!verdict.ok) problems.push(`${file}:${line}: ${(call.expression as ts.Identifier).text}: ${verdict.why}`);
  }
  return { proxies: calls.length, problems };
}

async function workflowSources(): Promise<string[]> {
  const entries = await readdir(WORKFLOWS, { recursive: true });
  return entries
    .map(String)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(WORKFLOWS, f));
}

describe('activity timeouts in the workflow code', () => {
  it('the shared option constants carry a heartbeat timeout of seconds', () => {
    expect(activityOptions.QUICK_ACTIVITY.heartbeatTimeout).toBe(activityOptions.HEARTBEAT_TIMEOUT);
    expect(activityOptions.LONG_ACTIVITY.heartbeatTimeout).toBe(activityOptions.HEARTBEAT_TIMEOUT);
    const s = seconds(ts.factory.createStringLiteral(activityOptions.HEARTBEAT_TIMEOUT));
    expect(s).toBeGreaterThan(0);
    expect(s).toBeLessThanOrEqual(30);
  });

  it('every proxyActivities / proxyLocalActivities call in src/workflows gives a heartbeatTimeout', async () => {
    let proxies = 0;
    const problems: string[] = [];
    for (const file of await workflowSources()) {
      const found = proxiesWithoutTakeover(relative(ROOT, file), await readFile(file, 'utf8'));
      proxies += found.proxies;
      problems.push(...found.problems);
    }
    expect(problems).toEqual([]);
    expect(proxies).toBeGreaterThanOrEqual(10); // the scan does find the proxies
  });

  it('names the file and line of a proxy that would wait out its start-to-close timeout', () => {
    const text = [
      "import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';",
      "import { QUICK_ACTIVITY } from '../lib/activityOptions.js';",
      "const ok = proxyActivities({ ...QUICK_ACTIVITY, taskQueue: 'x' });",
      "const slow = proxyActivities({ startToCloseTimeout: '15 minutes' });",
      'const dropped = proxyActivities({ ...QUICK_ACTIVITY, heartbeatTimeout: undefined });',
      "const short = proxyLocalActivities({ startToCloseTimeout: '30 seconds' });",
      'const options = { startToCloseTimeout: 600_000 };',
      'const viaConst = proxyActivities(options);',
    ].join('\n');
    const { proxies, problems } = proxiesWithoutTakeover('src/workflows/example.ts', text);
    expect(proxies).toBe(5);
    expect(problems).toEqual([
      'src/workflows/example.ts:4: proxyActivities: no heartbeatTimeout and no start-to-close timeout of at most 60 s',
      'src/workflows/example.ts:5: proxyActivities: no heartbeatTimeout and no start-to-close timeout of at most 60 s',
      'src/workflows/example.ts:8: proxyActivities: no heartbeatTimeout and no start-to-close timeout of at most 60 s',
    ]);
  });
});
