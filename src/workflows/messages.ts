// Public signals, queries and updates (names are public: operators use them from the UI and CLI).
import { defineQuery, setHandler } from '@temporalio/workflow';

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

/**
 * Answers the `progress` query for the calling workflow and returns `step(name, detail?)`, which
 * moves it to the next step.
 */
export function trackProgress(first: string): (step: string, detail?: string) => void {
  const progress: Progress = { step: first, since: new Date().toISOString(), done: [] };
  setHandler(progressQuery, () => progress);
  return (step, detail) => {
    progress.done.push(progress.step);
    Object.assign(progress, { step, since: new Date().toISOString(), detail });
  };
}
