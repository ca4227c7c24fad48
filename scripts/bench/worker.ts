// What the benchmarks run: the production worker (compiled code plus the prebuilt workflow
// bundle, as `npm run build` makes them) as its own process, and medians of repeated runs.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

const root = join(import.meta.dirname, '../..');

export interface BenchWorker {
  /** Current (VmRSS) or peak (VmHWM) resident memory of the worker process, in kB. */
  memoryKb(field: 'VmRSS' | 'VmHWM'): Promise<number>;
  stop(): Promise<void>;
}

/** Compiles the code and the workflow bundle as `npm run build` does, into .bench/dist-<pid>; returns that directory. */
export async function buildDist(): Promise<string> {
  const dist = join(root, '.bench', `dist-${process.pid}`); // inside the project, so node_modules resolve
  await execa('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', dist], { cwd: root });
  await execa('npx', ['tsx', 'scripts/bundle-workflows.ts', dist], { cwd: root });
  return dist;
}

/** Runs the built worker; builds dist first unless given one (then the caller removes it). */
export async function startBuiltWorker(
  configFile: string,
  env: Record<string, string>,
  prebuilt?: string,
): Promise<BenchWorker> {
  const dist = prebuilt ?? (await buildDist());
  const worker = execa(process.execPath, [join(dist, 'cli/main.js'), 'worker', '--config', configFile], {
    env,
    reject: false,
    all: true,
    buffer: false,
  });
  let out = '';
  let exited = false;
  void worker.then(() => (exited = true));
  worker.all?.on('data', (d: Buffer) => (out += d.toString()));
  while (!out.includes('pgwarden worker:')) {
    if (exited) throw new Error(`worker did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    async memoryKb(field) {
      const status = await readFile(`/proc/${worker.pid}/status`, 'utf8');
      return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
    },
    async stop() {
      worker.kill('SIGTERM');
      await worker;
      if (!prebuilt) await rm(dist, { recursive: true, force: true });
    },
  };
}

/** The positive number after `name` on the command line, else `fallback`. */
export function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

export function median<T>(values: T[], key: (v: T) => number): T {
  return [...values].sort((a, b) => key(a) - key(b))[Math.floor(values.length / 2)]!;
}
