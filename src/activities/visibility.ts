// Whether the namespace has pgwarden's search attributes: asked by the CLI before it labels a run,
// and by a run started without labels (the README's bare `temporal workflow start`) before it sets
// its own (an attribute the server does not know fails the run's workflow task).
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_NAMES } from '../lib/visibility.js';

export async function searchAttributesRegisteredIn(client: Client): Promise<boolean> {
  const r = await client.connection.operatorService.listSearchAttributes({ namespace: client.options.namespace });
  return SEARCH_ATTRIBUTE_NAMES.every((n) => n in (r.customAttributes ?? {}));
}

export function createVisibilityActivities() {
  return {
    /** Reads only; runs as a local activity on the workflow's worker, with the worker's client. */
    async searchAttributesRegistered(): Promise<boolean> {
      return searchAttributesRegisteredIn(Context.current().client);
    },
  };
}
