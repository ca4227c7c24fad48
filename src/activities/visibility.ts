// Whether the namespace has pgwarden's search attributes: asked by the CLI before it labels a run,
// and by a run started without labels (the README's bare `temporal workflow start`) before it sets
// its own (an attribute the server does not know fails the run's workflow task). The check itself
// is searchAttributesRegisteredIn (src/lib/visibility.ts), which the CLI calls with its own client.
import { Context } from '@temporalio/activity';
import { searchAttributesRegisteredIn } from '../lib/visibility.js';

export function createVisibilityActivities() {
  return {
    /** Reads only; runs as a local activity on the workflow's worker, with the worker's client. */
    async searchAttributesRegistered(): Promise<boolean> {
      return searchAttributesRegisteredIn(Context.current().client);
    },
  };
}
