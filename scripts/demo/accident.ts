// The demo's "accident" and the proof that pointInTimeRecovery undid it. Before time T: a marker
// batch, archived by a WAL switch. After T: half of "orders" deleted, "documents" dropped, then new
// users arrive. Recovered to T, the cluster must hold the markers, every order and "documents",
// and none of the later users.
import { switchAndArchive } from '../../test/helpers/archiving.js';
import type { TestCluster } from '../../test/helpers/postgres.js';
import { DATABASE } from './stack.js';

const MARKERS = 100;
const LATE = 10;

export interface Accident {
  /** The recovery target, e.g. `2026-11-22 13:30:33.446627+00`. */
  target: string;
  orders: number;
  documents: number;
}

interface State {
  orders: number;
  documents: number | null;
  markers: number;
  late: number;
}

async function state(cluster: TestCluster): Promise<State> {
  const [row] = await cluster.query<{ orders: number; hasDocuments: boolean; markers: number; late: number }>(
    `SELECT (SELECT count(*) FROM orders)::int AS orders, to_regclass('public.documents') IS NOT NULL AS "hasDocuments",
            (SELECT count(*) FROM users WHERE email LIKE 'marker%')::int AS markers,
            (SELECT count(*) FROM users WHERE email LIKE 'late%')::int AS late`,
    DATABASE,
  );
  const { hasDocuments, ...counts } = row!;
  const documents = hasDocuments
    ? (await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM documents', DATABASE))[0]!.n
    : null;
  return { ...counts, documents };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function causeAccident(cluster: TestCluster, say: (line: string) => void): Promise<Accident> {
  const q = (sql: string) => cluster.query(sql, DATABASE);
  await q(
    `INSERT INTO users (id, email) SELECT 800000 + g, 'marker' || g || '@example.com' FROM generate_series(1, ${MARKERS}) g`,
  );
  const segment = await switchAndArchive(cluster);
  const before = await state(cluster);
  const [{ t }] = (await q(
    `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t`,
  )) as [{ t: string }];
  say(`  ${MARKERS} marker users inserted, WAL switched (${segment} archived); T = ${t}`);
  await sleep(500);
  await q('DELETE FROM orders WHERE id % 2 = 0; DROP TABLE documents');
  await q(
    `INSERT INTO users (id, email) SELECT 900000 + g, 'late' || g || '@example.com' FROM generate_series(1, ${LATE}) g`,
  );
  await switchAndArchive(cluster);
  const after = await state(cluster);
  say(
    `  after T: orders ${before.orders} → ${after.orders}, "documents" dropped, ${after.late} users added; WAL archived`,
  );
  return { target: t, orders: before.orders, documents: before.documents ?? 0 };
}

/** What the recovered cluster holds; throws unless the accident is undone. */
export async function checkUndone(cluster: TestCluster, accident: Accident): Promise<string> {
  const s = await state(cluster);
  const problems = [
    s.documents === null && 'the dropped table "documents" is missing',
    s.documents !== null &&
      s.documents !== accident.documents &&
      `documents has ${s.documents} rows, expected ${accident.documents}`,
    s.orders !== accident.orders && `orders has ${s.orders} rows, expected ${accident.orders}`,
    s.markers !== MARKERS && `${s.markers} of ${MARKERS} marker users are there`,
    s.late !== 0 && `${s.late} users inserted after T are there`,
  ].filter((p): p is string => !!p);
  if (problems.length) throw new Error(`the accident is not undone: ${problems.join('; ')}`);
  return `accident undone: "documents" back (${s.documents} rows), orders ${s.orders} (deleted rows back), ${s.markers} markers kept, post-accident users absent`;
}
