// wal-push's failure, with the type operators see elsewhere; its own module so that what shares the
// spool's checks (wal-get's fast path) does not load the pusher to name it.
import type { ErrorType } from '../lib/errorTypes.js';

/** A failure with the type operators see elsewhere (WalConflict, InvalidInput, ...). */
export class WalPushError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
  }
}
