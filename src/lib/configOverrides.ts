// Where the config file is and how the environment overrides it; no zod, so wal-push can use it.
import { resolve } from 'node:path';

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.PGWARDEN_CONFIG ?? 'pgwarden.config.json');
}

export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const config = structuredClone((raw ?? {}) as Record<string, unknown>);
  const setPath = (path: string[], value: unknown) => {
    let node: Record<string, unknown> = config;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== 'object' || next === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  };
  for (const [key, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!key.startsWith('PGWARDEN__') || value === undefined) continue;
    const path = key.slice('PGWARDEN__'.length).split('__').filter(Boolean);
    if (path.length) setPath(path, parseValue(value));
  }
  if (env.TEMPORAL_ADDRESS) setPath(['temporal', 'address'], env.TEMPORAL_ADDRESS);
  if (env.TEMPORAL_NAMESPACE) setPath(['temporal', 'namespace'], env.TEMPORAL_NAMESPACE);
  if (env.PGWARDEN_TASK_QUEUE) setPath(['temporal', 'taskQueue'], env.PGWARDEN_TASK_QUEUE);
  return config;
}

function parseValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
