// The one line an operator reads when Temporal cannot be reached, instead of the SDK's raw
// `tonic::transport::Error(Transport, ConnectError(...))` or "Failed to connect before the deadline".
// Pure: the worker and the CLI pass what the SDK (or a TCP probe) said.

/** "connection refused", "host not found", ... from an SDK or socket error; undefined when it says nothing we know. */
export function connectFailureReason(raw: string): string | undefined {
  if (/dns error|failed to lookup address|ENOTFOUND|EAI_AGAIN|Name or service not known/i.test(raw))
    return 'host not found';
  if (/ConnectionRefused|ECONNREFUSED|connection refused/i.test(raw)) return 'connection refused';
  if (/TimedOut|ETIMEDOUT|timed out|before the deadline/i.test(raw)) return 'timed out';
  if (/HostUnreachable|EHOSTUNREACH|NetworkUnreachable|ENETUNREACH/i.test(raw)) return 'host unreachable';
  if (/ConnectionReset|ECONNRESET/i.test(raw)) return 'connection reset';
  if (/invalid uri|InvalidUri|invalid socket address/i.test(raw)) return 'not a host:port address';
  return undefined;
}

/** `cannot reach Temporal at HOST:PORT (connection refused); is the server running? set temporal.address in the config` */
export function temporalUnreachableLine(address: string, raw: string): string {
  const reason = connectFailureReason(raw) ?? raw.replace(/\s*\n\s*/g, ' ').trim();
  return `cannot reach Temporal at ${address} (${reason}); is the server running? set temporal.address in the config (or TEMPORAL_ADDRESS)`;
}

/** Whether an error from connecting is one of reaching the server (not, say, a bad namespace). */
export function isConnectFailure(raw: string): boolean {
  return /tonic::transport|ConnectError|Failed to connect before the deadline|ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH/.test(
    raw,
  );
}
