import { describe, expect, it } from 'vitest';
import { passfileLookup } from '../../src/lib/passfile.js';

const target = { host: 'db1', port: 5432, database: 'app', user: 'backup' };

describe('passfile lookup', () => {
  it('returns the first matching line, with wildcards', () => {
    const content = ['# comment', 'db2:5432:*:backup:other', 'db1:*:app:backup:first', '*:*:*:*:fallback'].join('\n');
    expect(passfileLookup(content, target)).toBe('first');
    expect(passfileLookup(content, { ...target, host: 'db9' })).toBe('fallback');
  });

  it('honours escaped colons and backslashes', () => {
    expect(passfileLookup('db1:5432:app:backup:pa\\:ss\\\\word', target)).toBe('pa:ss\\word');
    expect(passfileLookup('db1:5432:app:backup:a:b', target)).toBe('a:b'); // colons after the 4th are the password's
  });

  it('returns undefined when nothing matches', () => {
    expect(passfileLookup('db1:5433:app:backup:x\nbad line', target)).toBeUndefined();
  });
});
