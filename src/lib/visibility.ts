// What makes pgwarden's runs findable in the Temporal UI and `temporal workflow list`: three
// Keyword search attributes (cluster, database, kind) and the same values in the memo, which is
// all a server without the attributes registered can show. Pure: shared by the CLI, the
// schedules and the workflows that start children.
import type { Client } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

/** Kinds of pgwarden run, one per workflow type (public: `pgwarden list --kind`, UI filters). */
export const WORKFLOW_OF_KIND = {
  full: 'fullBackup',
  base: 'baseBackup',
  verify: 'verifyBackup',
  restore: 'restoreDatabase',
  pitr: 'pointInTimeRecovery',
  offsite: 'offsiteSync',
  'wal-maintenance': 'walMaintenance',
  health: 'healthCheck',
  retention: 'retention',
  standby: 'createStandby',
  promote: 'promoteStandby',
} as const;
export type RunKind = keyof typeof WORKFLOW_OF_KIND;
export const RUN_KINDS = Object.keys(WORKFLOW_OF_KIND) as RunKind[];

export function kindOfWorkflow(workflowType: string): RunKind | undefined {
  return RUN_KINDS.find((k) => WORKFLOW_OF_KIND[k] === workflowType);
}

/** Search attribute names (public: `temporal workflow list --query "PgwardenCluster='main'"`). */
export const SEARCH_ATTRIBUTE_NAMES = ['PgwardenCluster', 'PgwardenDatabase', 'PgwardenKind'] as const;
export const clusterKey = defineSearchAttributeKey('PgwardenCluster', SearchAttributeType.KEYWORD);
export const databaseKey = defineSearchAttributeKey('PgwardenDatabase', SearchAttributeType.KEYWORD);
export const kindKey = defineSearchAttributeKey('PgwardenKind', SearchAttributeType.KEYWORD);

/**
 * Whether the namespace has pgwarden's search attributes: asked by the CLI before it labels a run,
 * and by a run started without labels (the README's bare `temporal workflow start`) before it sets
 * its own (an attribute the server does not know fails the run's workflow task). No I/O of its own:
 * it asks the client it is given (the CLI's, or the worker's in the activity).
 */
export async function searchAttributesRegisteredIn(client: Client): Promise<boolean> {
  const r = await client.connection.operatorService.listSearchAttributes({ namespace: client.options.namespace });
  return SEARCH_ATTRIBUTE_NAMES.every((n) => n in (r.customAttributes ?? {}));
}

export interface RunLabels {
  cluster: string;
  /** A database name, "*" for all of a cluster's; absent for cluster-wide runs. */
  database?: string;
  kind: RunKind;
}

export function memoOf(labels: RunLabels): Record<string, string> {
  return { cluster: labels.cluster, ...(labels.database ? { database: labels.database } : {}), kind: labels.kind };
}

export function searchAttributesOf(labels: RunLabels): SearchAttributePair[] {
  return [
    { key: clusterKey, value: labels.cluster },
    ...(labels.database ? [{ key: databaseKey, value: labels.database }] : []),
    { key: kindKey, value: labels.kind },
  ];
}

export interface ListFilter {
  cluster?: string;
  database?: string;
  kind?: RunKind;
  /** Temporal execution status: running, completed, failed, canceled, terminated, timed-out. */
  status?: string;
}

const STATUS = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  canceled: 'Canceled',
  terminated: 'Terminated',
  'timed-out': 'TimedOut',
  'continued-as-new': 'ContinuedAsNew',
} as const;
export const RUN_STATUSES = Object.keys(STATUS);

/** A string literal of a visibility query. */
export const quote = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * The visibility query for `pgwarden list`. Kind and status use built-in attributes (WorkflowType,
 * ExecutionStatus), so they work on any server; cluster and database need the search attributes.
 */
export function listQuery(filter: ListFilter, withSearchAttributes: boolean): string {
  const terms: string[] = [
    `WorkflowType IN (${(filter.kind ? [WORKFLOW_OF_KIND[filter.kind]] : Object.values(WORKFLOW_OF_KIND)).map(quote).join(', ')})`,
  ];
  if (filter.status) {
    const status = STATUS[filter.status as keyof typeof STATUS];
    if (!status) throw new Error(`unknown status "${filter.status}" (one of ${RUN_STATUSES.join(', ')})`);
    terms.push(`ExecutionStatus = ${quote(status)}`);
  }
  if (withSearchAttributes) {
    if (filter.cluster) terms.push(`PgwardenCluster = ${quote(filter.cluster)}`);
    if (filter.database) terms.push(`PgwardenDatabase = ${quote(filter.database)}`);
  }
  return terms.join(' AND ');
}

/** Runs the server could not filter (no search attributes) are filtered by their workflow id. */
export function matchesById(workflowId: string, filter: ListFilter): boolean {
  const parts = workflowId.split('/');
  if (parts[0] !== 'pgwarden') return false;
  if (filter.cluster && parts[1] !== filter.cluster) return false;
  if (filter.database && parts[2] !== filter.database) return false;
  return true;
}
