// Public signals, queries and updates (names are public: operators use them from the UI and CLI).
import { defineQuery } from '@temporalio/workflow';

export interface Progress {
  /** The step the workflow is in, as named in the README. */
  step: string;
  /** ISO time the step started. */
  since: string;
  /** Steps finished so far, in order. */
  done: string[];
  detail?: string;
}

/** `temporal workflow query --type progress` */
export const progressQuery = defineQuery<Progress>('progress');
