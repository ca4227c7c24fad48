// Sample data for backup tests: several tables, a few hundred thousand rows, large values.
import type { TestCluster } from './postgres.js';

export async function createSampleDatabase(cluster: TestCluster, database: string, scale = 1): Promise<void> {
  await cluster.query(`CREATE DATABASE ${database}`);
  const rows = (n: number) => Math.round(n * scale);
  await cluster.query(
    `
    CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, created timestamptz NOT NULL DEFAULT now());
    INSERT INTO users SELECT g, 'user' || g || '@example.com', now() - g * interval '1 minute' FROM generate_series(1, ${rows(200_000)}) g;
    CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users, amount numeric(12,2), note text);
    INSERT INTO orders SELECT g, 1 + g % ${rows(200_000)}, (g % 1000) / 7.0, md5(g::text) FROM generate_series(1, ${rows(150_000)}) g;
    CREATE SCHEMA archive;
    CREATE TABLE archive."Old Events" (id int, payload jsonb);
    INSERT INTO archive."Old Events" SELECT g, jsonb_build_object('n', g) FROM generate_series(1, ${rows(5_000)}) g;
    -- large values (TOAST): random text does not compress, so these really are big
    CREATE TABLE documents (id int PRIMARY KEY, body text);
    INSERT INTO documents SELECT g, (SELECT string_agg(md5(random()::text || g || s), '') FROM generate_series(1, 8000) s) FROM generate_series(1, 40) g;
    CREATE TABLE empty_table (id int);
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_reader') THEN CREATE ROLE app_reader LOGIN PASSWORD 'reader-secret'; END IF;
    END $$;
    GRANT SELECT ON users TO app_reader;
  `,
    database,
  );
}
