// The last WAL segment a base backup needs, from its stop LSN: a standby's backup may end exactly on a
// segment boundary (its last replayed record a WAL switch), and then needs nothing of the next one.
import { expect, it } from 'vitest';
import { lastSegmentOf } from '../../src/activities/baseFromStandby.js';

it('the segment holding the byte before the stop LSN', () => {
  expect(lastSegmentOf(1, '0/3000060')).toBe('000000010000000000000003');
  expect(lastSegmentOf(1, '0/3000000')).toBe('000000010000000000000002');
  expect(lastSegmentOf(2, '1/0')).toBe('0000000200000000000000FF');
  expect(lastSegmentOf(1, '1/1')).toBe('000000010000000100000000');
});
