// Loads the config: a JSON file, then environment overrides, then zod validation.
//
// File: --config, else $PGWARDEN_CONFIG, else ./pgwarden.config.json.
// Overrides: PGWARDEN__<path> with `__` between keys sets that field, the value parsed as JSON
// when it parses (numbers, booleans, arrays) and as a string otherwise:
//   PGWARDEN__clusters__main__port=5433   PGWARDEN__repositories__local__path=/srv/backups
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and PGWARDEN_TASK_QUEUE set the temporal section.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { applyEnvOverrides, defaultConfigPath } from '../lib/configOverrides.js';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(path?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const file = path ? resolve(path) : defaultConfigPath(env);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(`cannot read config ${file}: ${reason}`);
  }
  return parseConfig(applyEnvOverrides(raw, env), file);
}

export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`invalid config ${source}: ${describeIssues(result.error)}`);
  return result.data;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
