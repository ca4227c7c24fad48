// Failure types: the `type` of an ApplicationFailure. Operators and tests match on these names.
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from './errorTypes.js';

export { ErrorType };

/** A failure that retrying cannot fix: the workflow ends with it and the message names the problem. */
export function nonRetryable(type: ErrorType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** A failure worth retrying (transient), typed so it shows clearly in the UI. */
export function retryable(type: ErrorType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: false });
}
