import { describe, expect, it } from 'vitest';
import { connectFailureReason, isConnectFailure, temporalUnreachableLine } from '../../src/lib/temporalUnreachable.js';

// What the SDK's native worker connection and Node sockets actually say (copied from real runs).
const REFUSED =
  'tonic::transport::Error(Transport, ConnectError(ConnectError("tcp connect error", 127.0.0.1:1, Os { code: 111, kind: ConnectionRefused, message: "Connection refused" })))';
const DNS =
  'tonic::transport::Error(Transport, ConnectError(ConnectError("dns error", Custom { kind: Uncategorized, error: "failed to lookup address information: Name or service not known" })))';

describe('temporalUnreachableLine', () => {
  it('turns the transport error into one line naming the address, the reason and what to do', () => {
    expect(temporalUnreachableLine('127.0.0.1:1', REFUSED)).toBe(
      'cannot reach Temporal at 127.0.0.1:1 (connection refused); is the server running? set temporal.address in the config (or TEMPORAL_ADDRESS)',
    );
    expect(temporalUnreachableLine('temporal.invalid:7233', DNS)).toContain('(host not found)');
  });

  it('knows the socket codes of a TCP probe, and keeps an unknown message (on one line)', () => {
    expect(connectFailureReason('ECONNREFUSED')).toBe('connection refused');
    expect(connectFailureReason('ETIMEDOUT')).toBe('timed out');
    expect(connectFailureReason('EHOSTUNREACH')).toBe('host unreachable');
    expect(connectFailureReason('Failed to connect before the deadline')).toBe('timed out');
    expect(connectFailureReason('something else')).toBeUndefined();
    expect(temporalUnreachableLine('h:1', 'odd\nthing')).toContain('(odd thing)');
  });

  it('tells a connection failure from other errors', () => {
    expect(isConnectFailure(REFUSED)).toBe(true);
    expect(isConnectFailure(DNS)).toBe(true);
    expect(isConnectFailure('Namespace nope is not found')).toBe(false);
  });
});
