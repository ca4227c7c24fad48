import { describe, expect, it } from 'vitest';
import {
  APPROVAL_SIGNAL_INPUT,
  approvalDeadline,
  approvalDetails,
  failureCause,
  outcomeDetails,
  stepDetails,
} from '../../src/lib/runDetails.js';

const at = new Date('2026-11-22T14:31:00Z');

describe('run details', () => {
  it('name the step, since when, and its detail', () => {
    expect(stepDetails('stage', at)).toBe('**Step:** stage (since 2026-11-22T14:31:00.000Z)');
    expect(stepDetails('stage', at, 'base backup B and 3 WAL files')).toBe(
      '**Step:** stage (since 2026-11-22T14:31:00.000Z)\n\nbase backup B and 3 WAL files',
    );
  });

  it('put the approval deadline at the start plus the timeout, in any of its spellings', () => {
    expect(approvalDeadline(at, '24 hours').toISOString()).toBe('2026-11-23T14:31:00.000Z');
    expect(approvalDeadline(at, '10m').toISOString()).toBe('2026-11-22T14:41:00.000Z');
    expect(approvalDeadline(at, 1500).toISOString()).toBe('2026-11-22T14:31:01.500Z');
  });

  it('say at approve what will happen, until when, and the three ways to answer', () => {
    const text = approvalDetails({
      workflowId: 'pgwarden/main/app/restore/X',
      what: 'restore main/app from backup X.',
      since: at,
      deadline: approvalDeadline(at, '1 hour'),
    });
    expect(text).toContain('**Waiting for approval** until 2026-11-22T15:31:00.000Z');
    expect(text).toContain('**Approving will:** restore main/app from backup X.');
    expect(text).toContain(
      'Send Signal, signal name `approve` (or `reject`), input `{"approver":"NAME","reason":"TEXT"}`',
    );
    expect(text).toContain('`pgwarden approve pgwarden/main/app/restore/X --approver NAME --reason TEXT`');
    expect(text).toContain(
      `temporal workflow signal -w pgwarden/main/app/restore/X --name approve --input '${APPROVAL_SIGNAL_INPUT}'`,
    );
    // The JSON to paste is what the signal handler accepts.
    expect(JSON.parse(APPROVAL_SIGNAL_INPUT)).toEqual({ approver: 'NAME', reason: 'TEXT' });
  });

  it("keep a finished run's outcome", () => {
    expect(outcomeDetails('rejected by alice: wrong backup', at)).toBe(
      '**Finished:** rejected by alice: wrong backup (at 2026-11-22T14:31:00.000Z)',
    );
  });
});

describe('failureCause', () => {
  it("names the activity's own error, not the wrapper", () => {
    expect(failureCause(new Error('Activity task failed', { cause: new Error('no committed backup X') }))).toBe(
      'no committed backup X',
    );
    expect(failureCause(new Error('plain'))).toBe('plain');
    expect(failureCause('text')).toBe('text');
  });
});
