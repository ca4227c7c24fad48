// `pgwarden cluster archiving --cluster main [--apply]`: the settings that make PostgreSQL archive
// its WAL through `pgwarden wal-push`, printed for postgresql.conf or applied with ALTER SYSTEM.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { type Config } from '../../config/index.js';
import { defaultConfigPath } from '../../lib/configOverrides.js';
import { requireCluster } from '../errors.js';

export interface ArchivingSetting {
  name: 'wal_level' | 'archive_mode' | 'archive_command' | 'archive_timeout';
  value: string;
}

/** bin/pgwarden of this installation (the same relative path from src/cli/commands and dist/cli/commands). */
export function pgwardenBinary(): string {
  return fileURLToPath(new URL('../../../bin/pgwarden', import.meta.url));
}

/** The settings; paths are absolute because PostgreSQL runs archive_command from its data directory. */
export function archivingSettings(cluster: string, configPath: string, binary = pgwardenBinary()): ArchivingSetting[] {
  const command = [binary, '--config', resolve(configPath), 'wal-push', '--cluster', cluster].map(shellQuote).join(' ');
  return [
    { name: 'wal_level', value: 'replica' },
    { name: 'archive_mode', value: 'on' },
    { name: 'archive_command', value: `${command} %p %f` },
    // A quiet cluster still hands over its WAL within a minute: bounds what a PITR could lose.
    { name: 'archive_timeout', value: '60' },
  ];
}

/** A postgresql.conf line. */
export function confLine(s: ArchivingSetting): string {
  return `${s.name} = ${/^[A-Za-z0-9_.]+$/.test(s.value) ? s.value : sqlLiteral(s.value)}`;
}

export interface ApplyResult {
  /** Settings left as they are because they already do more (wal_level=logical, archive_mode=always). */
  kept: string[];
  /** Settings that take effect only after a restart (pg_settings.pending_restart after the reload). */
  pendingRestart: string[];
}

/** ALTER SYSTEM for each setting, then pg_reload_conf(); needs a superuser. */
export async function applyArchivingSettings(
  config: Config,
  clusterName: string,
  settings: ArchivingSetting[],
  env: NodeJS.ProcessEnv,
): Promise<ApplyResult> {
  const postgres = await import('../../postgres/connection.js');
  const cluster = postgres.clusterRef(config, clusterName);
  const names = settings.map((s) => s.name);
  return postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
    const current = async () =>
      (
        await client.query<{ name: string; setting: string; pending_restart: boolean }>(
          `SELECT name, setting, pending_restart FROM pg_settings WHERE name = ANY($1)`,
          [names],
        )
      ).rows;
    const before = new Map((await current()).map((r) => [r.name, r.setting]));
    // Never step down: logical decoding needs wal_level=logical, a standby's archive needs always.
    const stronger: Record<string, string> = { wal_level: 'logical', archive_mode: 'always' };
    const kept = settings
      .filter((s) => stronger[s.name] !== undefined && before.get(s.name) === stronger[s.name])
      .map((s) => s.name);
    const wanted = settings.filter((s) => !kept.includes(s.name));
    // ALTER SYSTEM takes no bind parameters: the values are quoted literals.
    for (const s of wanted) await client.query(`ALTER SYSTEM SET ${s.name} = ${sqlLiteral(s.value)}`);
    await client.query('SELECT pg_reload_conf()');
    // The reload reaches this backend asynchronously: wait until each setting is either in effect
    // or marked pending_restart.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const rows = await current();
      const settled = wanted.every((s) =>
        rows.some((r) => r.name === s.name && (r.pending_restart || r.setting === s.value)),
      );
      if (settled || Date.now() > deadline)
        return {
          kept,
          pendingRestart: rows
            .filter((r) => r.pending_restart)
            .map((r) => r.name)
            .sort(),
        };
      await new Promise((r) => setTimeout(r, 100));
    }
  });
}

export function registerClusterCommands(program: Command, config: () => Config): void {
  const cluster = program
    .command('cluster')
    .description('prepare a PostgreSQL cluster for pgwarden')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden cluster archiving --cluster main\n  pgwarden cluster archiving --cluster main --apply',
    );
  cluster
    .command('archiving')
    .description(
      'print the WAL archiving settings (wal_level, archive_mode, archive_command, archive_timeout); --apply sets them with ALTER SYSTEM',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .option('--apply', 'ALTER SYSTEM SET each setting and reload (needs a superuser); reports what needs a restart')
    .addHelpText(
      'after',
      '\nPostgreSQL runs archive_command as its own OS user: it must be able to run bin/pgwarden and read the config.\n\nExample:\n  pgwarden --config /etc/pgwarden/pgwarden.config.json cluster archiving --cluster main --apply',
    )
    .action(async (opts: { cluster: string; apply?: boolean }) => {
      const cfg = config();
      requireCluster(cfg, opts.cluster);
      const configOption = program.opts<{ config?: string }>().config;
      const settings = archivingSettings(opts.cluster, configOption ? resolve(configOption) : defaultConfigPath());
      if (!opts.apply) {
        console.log(`# postgresql.conf of cluster "${opts.cluster}" (or run with --apply)`);
        for (const s of settings) console.log(confLine(s));
        return;
      }
      const { kept, pendingRestart } = await applyArchivingSettings(cfg, opts.cluster, settings, process.env);
      const c = cfg.clusters[opts.cluster]!;
      console.log(`applied with ALTER SYSTEM on cluster "${opts.cluster}" (${c.host}:${c.port}):`);
      for (const s of settings)
        console.log(`  ${kept.includes(s.name) ? `${s.name}: kept, it already does more` : confLine(s)}`);
      console.log(
        pendingRestart.length
          ? `restart PostgreSQL for ${pendingRestart.join(', ')} to take effect; the rest is in effect now`
          : 'all in effect now, no restart needed',
      );
    });
}

function sqlLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** A word for the shell that runs archive_command, quoted only when it needs to be. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
